/* Tests of the GPT-2 importers: a tiny llm.c checkpoint and tiny Hugging Face safetensors files are
 * written here from known canonical weights (transposing by hand where Hugging Face's Conv1D needs
 * it), read back, and compared name by name, shape by shape, value by value. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/gpt2_import.h"
#include "base/atomic_file.h"
#include "base/fp16.h"

enum { V = 5, VP = 8, T = 3, L = 2, H = 2, C = 4, N_ARRAYS = 2 + 12 * L + 2 };

static char dir[256];
static void setup_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_test_gpt2_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}
static void teardown_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
static const char *in_dir(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* ---- the canonical truth, written independently of the library's table ------------------------ */

typedef struct truth {
    char name[64];
    char hf[64];
    int ndim;
    int64_t shape[2];
    int transposed;     /* Hugging Face stores it as [in, out] */
    float data[4 * C * C];
} truth;

static truth tr[N_ARRAYS];

/* Distinct per array (exponent) and per element (mantissa), exact in f16, bf16 and f32. */
static float value(int g, int j) { return ldexpf(1.0f + (float)(j % 64) / 64.0f, g - 14) * (j % 2 ? -1.0f : 1.0f); }

static void add(int *g, const char *name, const char *hf, int ndim, int64_t d0, int64_t d1, int transposed)
{
    truth *t = &tr[*g];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->hf, sizeof t->hf, "%s", hf);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 1;
    t->transposed = transposed;
    for (int j = 0; j < d0 * t->shape[1]; j++) t->data[j] = value(*g, j);
    (*g)++;
}

static void make_truth(void)
{
    int g = 0;
    add(&g, "wte", "wte.weight", 2, V, C, 0);
    add(&g, "wpe", "wpe.weight", 2, T, C, 0);
    for (int l = 0; l < L; l++) {
        char n[64], h[64];
#define ADD(canon, hfname, nd, d0, d1, tp)                                                         \
        snprintf(n, sizeof n, "h%d." canon, l);                                                    \
        snprintf(h, sizeof h, "h.%d." hfname, l);                                                  \
        add(&g, n, h, nd, d0, d1, tp)
        ADD("ln1.w", "ln_1.weight", 1, C, 0, 0);
        ADD("ln1.b", "ln_1.bias", 1, C, 0, 0);
        ADD("attn.qkv.w", "attn.c_attn.weight", 2, 3 * C, C, 1);
        ADD("attn.qkv.b", "attn.c_attn.bias", 1, 3 * C, 0, 0);
        ADD("attn.proj.w", "attn.c_proj.weight", 2, C, C, 1);
        ADD("attn.proj.b", "attn.c_proj.bias", 1, C, 0, 0);
        ADD("ln2.w", "ln_2.weight", 1, C, 0, 0);
        ADD("ln2.b", "ln_2.bias", 1, C, 0, 0);
        ADD("mlp.fc.w", "mlp.c_fc.weight", 2, 4 * C, C, 1);
        ADD("mlp.fc.b", "mlp.c_fc.bias", 1, 4 * C, 0, 0);
        ADD("mlp.proj.w", "mlp.c_proj.weight", 2, C, 4 * C, 1);
        ADD("mlp.proj.b", "mlp.c_proj.bias", 1, C, 0, 0);
#undef ADD
    }
    add(&g, "lnf.w", "ln_f.weight", 1, C, 0, 0);
    add(&g, "lnf.b", "ln_f.bias", 1, C, 0, 0);
    cr_assert_eq(g, N_ARRAYS);
}

static int64_t numel(const truth *t) { return t->shape[0] * t->shape[1]; }

static void expect_weights(const sm_gpt2_weights *w)
{
    cr_assert_eq(w->n, N_ARRAYS);
    cr_assert_eq(w->hp.vocab, V);
    cr_assert_eq(w->hp.max_seq, T);
    cr_assert_eq(w->hp.n_layer, L);
    cr_assert_eq(w->hp.n_embd, C);
    for (int g = 0; g < N_ARRAYS; g++) {
        const sm_named_array *a = &w->arrays[g];
        cr_assert_str_eq(a->name, tr[g].name, "array %d", g);
        cr_assert_eq(sm_gpt2_weights_find(w, tr[g].name), a);
        cr_assert_eq(a->ndim, tr[g].ndim, "%s", a->name);
        for (int d = 0; d < a->ndim; d++) cr_assert_eq(a->shape[d], tr[g].shape[d], "%s dim %d", a->name, d);
        cr_assert_eq(a->numel, numel(&tr[g]));
        for (int64_t j = 0; j < a->numel; j++)
            cr_assert_eq(a->data[j], tr[g].data[j], "%s[%lld]: %g vs %g", a->name, (long long)j, (double)a->data[j],
                         (double)tr[g].data[j]);
    }
    cr_assert_null(sm_gpt2_weights_find(w, "h2.ln1.w"));
}

TestSuite(gpt2, .init = setup_dir, .fini = teardown_dir);

/* ---- llm.c ------------------------------------------------------------------------------------ */

/* llm.c order: each parameter kind for all layers, wte padded to VP rows. */
static size_t write_llmc(const char *path, int version, int32_t magic, int h, int trim)
{
    make_truth();
    int elem = version == 3 ? 4 : 2;
    size_t cap = 1024 + 100000;
    unsigned char *buf = calloc(1, cap);
    int32_t hdr[256] = {magic, version, T, V, L, h, C, VP};
    memcpy(buf, hdr, sizeof hdr);
    size_t k = 1024;
#define PUT(x)                                                                                     \
    do {                                                                                           \
        float x_ = (x);                                                                            \
        if (elem == 4) memcpy(buf + k, &x_, 4);                                                    \
        else {                                                                                     \
            uint16_t b_ = sm_f32_to_bf16(x_);                                                      \
            memcpy(buf + k, &b_, 2);                                                               \
        }                                                                                          \
        k += (size_t)elem;                                                                         \
    } while (0)
    for (int j = 0; j < V * C; j++) PUT(tr[0].data[j]);
    for (int j = V * C; j < VP * C; j++) PUT(99.0f); /* padding rows: must be dropped */
    for (int j = 0; j < T * C; j++) PUT(tr[1].data[j]);
    for (int kind = 0; kind < 12; kind++)
        for (int l = 0; l < L; l++) {
            const truth *t = &tr[2 + l * 12 + kind];
            for (int64_t j = 0; j < numel(t); j++) PUT(t->data[j]);
        }
    for (int j = 0; j < C; j++) PUT(tr[N_ARRAYS - 2].data[j]);
    for (int j = 0; j < C; j++) PUT(tr[N_ARRAYS - 1].data[j]);
#undef PUT
    k -= (size_t)trim;
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, k, f);
    fclose(f);
    free(buf);
    return k;
}

Test(gpt2, llmc_fp32)
{
    const char *p = in_dir("gpt2_124M.bin");
    size_t n = write_llmc(p, 3, 20240326, H, 0);
    /* the size llm.c's own formula gives: 1024 + 4 * (Vp*C + T*C + L*(12C^2 + 13C) + 2C) */
    cr_assert_eq(n, 1024 + 4 * (size_t)(VP * C + T * C + L * (12 * C * C + 13 * C) + 2 * C));
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_llmc(p, &w), SM_OK, "%s", sm_last_error());
    cr_assert_eq(w.hp.padded_vocab, VP);
    cr_assert_eq(w.hp.n_head, H);
    expect_weights(&w);
    sm_gpt2_weights_free(&w);
}

Test(gpt2, llmc_bf16)
{
    const char *p = in_dir("gpt2_bf16.bin");
    write_llmc(p, 5, 20240326, H, 0);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_llmc(p, &w), SM_OK, "%s", sm_last_error());
    expect_weights(&w); /* the values are exact in bf16 */
    sm_gpt2_weights_free(&w);
}

static void expect_llmc_error(int version, int32_t magic, int h, int trim, sm_status want, const char *substr)
{
    const char *p = in_dir("bad.bin");
    write_llmc(p, version, magic, h, trim);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_llmc(p, &w), want, "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), substr), "'%s' lacks '%s'", sm_last_error(), substr);
    cr_assert(strstr(sm_last_error(), "bad.bin"), "%s", sm_last_error());
    cr_assert_null(w.arrays);
}

Test(gpt2, llmc_errors)
{
    expect_llmc_error(3, 1234, H, 0, SM_ERR_FORMAT, "magic number 1234, expected 20240326");
    expect_llmc_error(4, 20240326, H, 0, SM_ERR_UNSUPPORTED, "version 4");
    expect_llmc_error(3, 20240326, H, 4, SM_ERR_FORMAT, "truncated");
    expect_llmc_error(3, 20240326, H, -8, SM_ERR_FORMAT, "too long");
    expect_llmc_error(3, 20240326, 3, 0, SM_ERR_FORMAT, "channels 4 is not a multiple of num_heads 3");
    expect_llmc_error(3, 20240326, 0, 0, SM_ERR_FORMAT, "num_heads = 0 is out of range");
    const char *p = in_dir("short.bin");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_llmc(p, &w), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "smaller than the 1024-byte llm.c header"), "%s", sm_last_error());
}

/* A NaN or infinity among the weights is refused, naming the array and the element. */
Test(gpt2, llmc_values_that_are_not_finite)
{
    for (int version = 3; version <= 5; version += 2) {
        const char *p = in_dir("nan.bin");
        write_llmc(p, version, 20240326, H, 0);
        int elem = version == 3 ? 4 : 2;
        unsigned char nan32[4], nan16[2] = {0xC0, 0x7F};   /* bf16 quiet NaN, little-endian */
        float q = NAN;
        memcpy(nan32, &q, 4);
        FILE *f = fopen(p, "r+b");
        fseek(f, 1024 + (long)(VP * C + 5) * elem, SEEK_SET);   /* wpe, element 5 */
        fwrite(version == 3 ? nan32 : nan16, 1, (size_t)elem, f);
        fclose(f);
        sm_gpt2_weights w;
        cr_assert_eq(sm_gpt2_load_llmc(p, &w), SM_ERR_FORMAT, "%s", sm_last_error());
        cr_assert(strstr(sm_last_error(), "nan.bin: tensor 'wpe' holds NaN at element 5"), "%s", sm_last_error());
        cr_assert_null(w.arrays);
    }
}

/* ---- Hugging Face ----------------------------------------------------------------------------- */

typedef struct hf_opts {
    const char *prefix;
    sm_st_dtype dtype;
    const char *skip;          /* a Hugging Face name to leave out */
    const char *extra;         /* an extra tensor to add */
    int untransposed;          /* write Conv1D weights in Linear layout (wrong) */
    const char *poison;        /* a Hugging Face name whose element 1 becomes +Inf */
} hf_opts;

static const char *write_hf(const hf_opts *o)
{
    make_truth();
    static char names[N_ARRAYS + 4][96];
    static uint16_t half[N_ARRAYS][4 * C * C];
    static float conv[N_ARRAYS][4 * C * C];
    static float mask[9], lm_head[V * C], extra[4];
    sm_st_entry e[N_ARRAYS + 4];
    int n = 0;
    for (int g = 0; g < N_ARRAYS; g++) {
        const truth *t = &tr[g];
        if (o->skip && strcmp(o->skip, t->hf) == 0) continue;
        snprintf(names[n], sizeof names[n], "%s%s", o->prefix, t->hf);
        e[n] = (sm_st_entry){names[n], o->dtype, t->ndim, {t->shape[0], t->shape[1]}, conv[g]};
        memcpy(conv[g], t->data, sizeof t->data);
        if (t->transposed && !o->untransposed) {
            /* Conv1D: [in, out] = the transpose of Linear's [out, in] */
            int64_t out = t->shape[0], in = t->shape[1];
            for (int64_t i = 0; i < in; i++)
                for (int64_t oo = 0; oo < out; oo++) conv[g][i * out + oo] = t->data[oo * in + i];
            e[n].shape[0] = in;
            e[n].shape[1] = out;
        }
        if (o->poison && strcmp(o->poison, t->hf) == 0) conv[g][1] = INFINITY;
        if (o->dtype == SM_ST_F16) {
            for (int j = 0; j < 4 * C * C; j++) half[g][j] = sm_f32_to_f16(conv[g][j]);
            e[n].data = half[g];
        }
        n++;
    }
    /* what transformers' state dicts also hold: the causal mask buffer and the tied head */
    snprintf(names[n], sizeof names[n], "%sh.1.attn.bias", o->prefix);
    e[n] = (sm_st_entry){names[n], SM_ST_F32, 4, {1, 1, 3, 3}, mask};
    n++;
    e[n++] = (sm_st_entry){"lm_head.weight", SM_ST_F32, 2, {V, C}, lm_head};
    if (o->extra) e[n++] = (sm_st_entry){o->extra, SM_ST_F32, 1, {4}, extra};
    sm_st_kv fmt = {"format", "pt"};
    const char *p = in_dir("model.safetensors");
    cr_assert_eq(sm_st_write(p, e, n, &fmt, 1, SM_ST_WRITE_PLAIN | SM_ST_WRITE_SORTED), SM_OK, "%s", sm_last_error());
    return p;
}

Test(gpt2, hf_f32_and_f16_with_and_without_prefix)
{
    const char *prefixes[] = {"", "transformer."};
    sm_st_dtype types[] = {SM_ST_F32, SM_ST_F16};
    for (int i = 0; i < 2; i++)
        for (int d = 0; d < 2; d++) {
            hf_opts o = {.prefix = prefixes[i], .dtype = types[d]};
            const char *p = write_hf(&o);
            sm_gpt2_weights w;
            cr_assert_eq(sm_gpt2_load_hf_file(p, H, &w), SM_OK, "%s", sm_last_error());
            cr_assert_eq(w.hp.n_head, H);
            cr_assert_eq(w.hp.padded_vocab, V);
            expect_weights(&w);
            sm_gpt2_weights_free(&w);
        }
}

/* Both sources give the same arrays: what the GPT template binds does not depend on the source. */
Test(gpt2, llmc_and_hf_agree)
{
    write_llmc(in_dir("a.bin"), 3, 20240326, H, 0);
    hf_opts o = {.prefix = "", .dtype = SM_ST_F32};
    char p[512];
    snprintf(p, sizeof p, "%s", write_hf(&o));
    sm_gpt2_weights a, b;
    cr_assert_eq(sm_gpt2_load_llmc(in_dir("a.bin"), &a), SM_OK);
    cr_assert_eq(sm_gpt2_load_hf_file(p, 0, &b), SM_OK);
    cr_assert_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        cr_assert_str_eq(a.arrays[i].name, b.arrays[i].name);
        cr_assert_eq(memcmp(a.arrays[i].data, b.arrays[i].data, (size_t)a.arrays[i].numel * 4), 0, "%s",
                     a.arrays[i].name);
    }
    cr_assert_eq(b.hp.n_head, 0, "unknown without config.json");
    sm_gpt2_weights_free(&a);
    sm_gpt2_weights_free(&b);
}

static void expect_hf_error(const hf_opts *o, int n_head, sm_status want, const char *substr)
{
    const char *p = write_hf(o);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_hf_file(p, n_head, &w), want, "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), substr), "'%s' lacks '%s'", sm_last_error(), substr);
    cr_assert_null(w.arrays);
}

Test(gpt2, hf_errors)
{
    hf_opts o = {.prefix = "", .dtype = SM_ST_F32};
    o.extra = "h.0.mlp.gate.weight";
    expect_hf_error(&o, H, SM_ERR_FORMAT, "unexpected tensor 'h.0.mlp.gate.weight' for a GPT-2 with 2 layers");
    o.extra = "h.5.attn.bias";
    expect_hf_error(&o, H, SM_ERR_FORMAT, "unexpected tensor 'h.5.attn.bias'");
    o.extra = NULL;
    o.skip = "h.1.ln_2.bias";
    expect_hf_error(&o, H, SM_ERR_FORMAT, "no tensor named 'h.1.ln_2.bias'");
    o.skip = "wpe.weight";
    expect_hf_error(&o, H, SM_ERR_FORMAT, "no tensor 'wpe.weight'");
    o.skip = NULL;
    o.untransposed = 1;
    expect_hf_error(&o, H, SM_ERR_SHAPE,
                    "tensor 'h.0.attn.c_attn.weight' has shape [12, 4], expected [4, 12] (Conv1D layout [in, out])");
    o.untransposed = 0;
    expect_hf_error(&o, 3, SM_ERR_INVALID_ARG, "n_head 3 does not divide n_embd 4");
    o.poison = "h.1.mlp.c_fc.weight";
    expect_hf_error(&o, H, SM_ERR_FORMAT, "tensor 'h.1.mlp.c_fc.weight' holds +Inf at element 1 (of 64)");
    o.dtype = SM_ST_F16;
    expect_hf_error(&o, H, SM_ERR_FORMAT, "tensor 'h.1.mlp.c_fc.weight' holds +Inf at element 1");
    o.dtype = SM_ST_F32;
    o.poison = NULL;
    sm_st_entry e = {"foo", SM_ST_F32, 1, {1}, "abcd"};
    cr_assert_eq(sm_st_write(in_dir("x.safetensors"), &e, 1, NULL, 0, 0), SM_OK);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_hf_file(in_dir("x.safetensors"), 0, &w), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "not a GPT-2 checkpoint"), "%s", sm_last_error());
}

/* ---- config.json ------------------------------------------------------------------------------- */

static void write_config(const char *json)
{
    FILE *f = fopen(in_dir("config.json"), "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
}

/* The heads come from the config.json saved next to the weights, under GPT-2's or the generic names. */
Test(gpt2, hf_config_gives_the_heads)
{
    hf_opts o = {.prefix = "transformer.", .dtype = SM_ST_F32};
    const char *configs[] = {
        "{\"model_type\": \"gpt2\", \"n_head\": 2, \"n_layer\": 2, \"n_embd\": 4, \"vocab_size\": 5, \"n_positions\": 3}",
        "{\"num_attention_heads\": 2, \"num_hidden_layers\": 2, \"hidden_size\": 4}",
        "{\"n_head\": 2}",
    };
    for (int i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s", write_hf(&o));
        write_config(configs[i]);
        sm_gpt2_weights w;
        cr_assert_eq(sm_gpt2_load_hf_file(p, 0, &w), SM_OK, "%s", sm_last_error());
        cr_assert_eq(w.hp.n_head, H, "config %d", i);
        expect_weights(&w);
        sm_gpt2_weights_free(&w);
        cr_assert_eq(sm_gpt2_load_hf_file(p, H, &w), SM_OK, "the same count given agrees: %s", sm_last_error());
        sm_gpt2_weights_free(&w);
    }
}

static void expect_config_error(const char *json, int n_head, sm_status want, const char *substr)
{
    hf_opts o = {.prefix = "", .dtype = SM_ST_F32};
    char p[512];
    snprintf(p, sizeof p, "%s", write_hf(&o));
    write_config(json);
    sm_gpt2_weights w;
    cr_assert_eq(sm_gpt2_load_hf_file(p, n_head, &w), want, "%s: %s", json, sm_last_error());
    cr_assert(strstr(sm_last_error(), substr), "'%s' lacks '%s'", sm_last_error(), substr);
    cr_assert_null(w.arrays);
}

/* A config that disagrees with the weights, or with the head count asked for, or is malformed. */
Test(gpt2, hf_config_errors)
{
    expect_config_error("{\"n_head\": 2}", 4, SM_ERR_INVALID_ARG, "4 attention heads were asked for, but");
    expect_config_error("{\"n_head\": 2}", 4, SM_ERR_INVALID_ARG, "config.json says n_head 2");
    expect_config_error("{\"n_head\": 2, \"n_layer\": 3}", 0, SM_ERR_FORMAT,
                        "config.json: n_layer is 3, but");
    expect_config_error("{\"n_head\": 2, \"n_layer\": 3}", 0, SM_ERR_FORMAT, "model.safetensors has 2 layers");
    expect_config_error("{\"n_head\": 2, \"n_embd\": 8}", 0, SM_ERR_FORMAT, "config.json: n_embd is 8, but");
    expect_config_error("{\"n_head\": 2, \"vocab_size\": 50257}", 0, SM_ERR_FORMAT, "has 5 tokens (rows of wte)");
    expect_config_error("{\"n_head\": 2, \"max_position_embeddings\": 1024}", 0, SM_ERR_FORMAT,
                        "n_positions is 1024, but");
    expect_config_error("{\"n_head\": 3}", 0, SM_ERR_INVALID_ARG, "n_head 3 does not divide n_embd 4");
    expect_config_error("{\n  \"n_head\": \"2\"}", 0, SM_ERR_FORMAT,
                        "config.json:2:3: \"n_head\" is string; it must be an integer from 1 to 65536");
    expect_config_error("{\"n_head\": 2.5}", 0, SM_ERR_FORMAT, "\"n_head\" is 2.5; it must be an integer");
    expect_config_error("{\"n_layer\": 0}", 0, SM_ERR_FORMAT, "\"n_layer\" is 0; it must be an integer from 1 to 4096");
    expect_config_error("[2]", 0, SM_ERR_FORMAT, "a model config is a JSON object, this is array");
    expect_config_error("{\"n_head\": 2,}", 0, SM_ERR_FORMAT, "config.json: line 1, column 14");
}

Test(gpt2, param_table)
{
    int n;
    const sm_gpt2_param *p = sm_gpt2_param_table(&n);
    cr_assert_eq(n, 16);
    make_truth();
    /* the table, instantiated for layer 1, names what the importer produced for layer 1 */
    for (int k = 2; k < 14; k++) {
        char canon[64], hf[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(canon, sizeof canon, p[k].canon, 1);
        snprintf(hf, sizeof hf, p[k].hf, 1);
#pragma GCC diagnostic pop
        const truth *t = &tr[2 + 12 + (k - 2)];
        cr_assert_str_eq(canon, t->name);
        cr_assert_str_eq(hf, t->hf);
        cr_assert(p[k].per_layer);
        cr_assert_eq(p[k].hf_transposed, t->transposed, "%s", canon);
    }
    cr_assert_str_eq(p[0].canon, "wte");
    cr_assert_str_eq(p[15].canon, "lnf.b");
    cr_assert_str_eq(p[15].hf, "ln_f.bias");
}
