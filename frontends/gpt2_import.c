#include "gpt2_import.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/error.h"
#include "../base/atomic_file.h"
#include "../base/fp16.h"
#include "../base/json.h"

#define C1 {SM_GPT2_DIM_C, 1}
#define C3 {SM_GPT2_DIM_C, 3}
#define C4 {SM_GPT2_DIM_C, 4}
#define PER_LAYER 12   /* parameter arrays per transformer block */

static const sm_gpt2_param table[] = {
    {"wte", "wte.weight", false, false, 2, {{SM_GPT2_DIM_V, 0}, C1}},
    {"wpe", "wpe.weight", false, false, 2, {{SM_GPT2_DIM_T, 0}, C1}},
    {"h%d.ln1.w", "h.%d.ln_1.weight", true, false, 1, {C1}},
    {"h%d.ln1.b", "h.%d.ln_1.bias", true, false, 1, {C1}},
    {"h%d.attn.qkv.w", "h.%d.attn.c_attn.weight", true, true, 2, {C3, C1}},
    {"h%d.attn.qkv.b", "h.%d.attn.c_attn.bias", true, false, 1, {C3}},
    {"h%d.attn.proj.w", "h.%d.attn.c_proj.weight", true, true, 2, {C1, C1}},
    {"h%d.attn.proj.b", "h.%d.attn.c_proj.bias", true, false, 1, {C1}},
    {"h%d.ln2.w", "h.%d.ln_2.weight", true, false, 1, {C1}},
    {"h%d.ln2.b", "h.%d.ln_2.bias", true, false, 1, {C1}},
    {"h%d.mlp.fc.w", "h.%d.mlp.c_fc.weight", true, true, 2, {C4, C1}},
    {"h%d.mlp.fc.b", "h.%d.mlp.c_fc.bias", true, false, 1, {C4}},
    {"h%d.mlp.proj.w", "h.%d.mlp.c_proj.weight", true, true, 2, {C1, C4}},
    {"h%d.mlp.proj.b", "h.%d.mlp.c_proj.bias", true, false, 1, {C1}},
    {"lnf.w", "ln_f.weight", false, false, 1, {C1}},
    {"lnf.b", "ln_f.bias", false, false, 1, {C1}},
};
#define N_KINDS ((int)(sizeof table / sizeof table[0]))

const sm_gpt2_param *sm_gpt2_param_table(int *n)
{
    if (n) *n = N_KINDS;
    return table;
}

static int64_t dim_value(sm_gpt2_dim d, const sm_gpt2_hparams *hp)
{
    switch (d.kind) {
    case SM_GPT2_DIM_V: return hp->vocab;
    case SM_GPT2_DIM_T: return hp->max_seq;
    default: return (int64_t)d.mult * hp->n_embd;
    }
}

static int64_t kind_numel(int k, const sm_gpt2_hparams *hp)
{
    int64_t n = 1;
    for (int d = 0; d < table[k].ndim; d++) n *= dim_value(table[k].dims[d], hp);
    return n;
}

/* Index in the canonical array list of kind k in layer l. */
static int array_index(int k, int l, int n_layer)
{
    if (k < 2) return k;
    if (table[k].per_layer) return 2 + l * PER_LAYER + (k - 2);
    return 2 + n_layer * PER_LAYER + (k - 2 - PER_LAYER);
}

static void format_name(char *buf, size_t cap, const char *pattern, int layer)
{
    /* the patterns are this file's constants, each with at most one %d */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(buf, cap, pattern, layer);
#pragma GCC diagnostic pop
}

void sm_gpt2_weights_free(sm_gpt2_weights *w)
{
    if (!w) return;
    free(w->arrays);
    free(w->storage);
    memset(w, 0, sizeof *w);
}

/* Allocates every canonical array for hp (hp already validated to keep sizes in range). */
static sm_status alloc_layout(const sm_gpt2_hparams *hp, const char *src, sm_gpt2_weights *w)
{
    memset(w, 0, sizeof *w);
    w->hp = *hp;
    w->n = 4 + PER_LAYER * hp->n_layer;
    w->arrays = calloc((size_t)w->n, sizeof *w->arrays);
    if (!w->arrays) return sm_error(SM_ERR_NOMEM, "%s: out of memory for %d arrays", src, w->n);
    uint64_t total = 0;
    for (int k = 0; k < N_KINDS; k++) {
        int layers = table[k].per_layer ? hp->n_layer : 1;
        for (int l = 0; l < layers; l++) {
            sm_named_array *a = &w->arrays[array_index(k, l, hp->n_layer)];
            format_name(a->name, sizeof a->name, table[k].canon, l);
            a->ndim = table[k].ndim;
            for (int d = 0; d < a->ndim; d++) a->shape[d] = dim_value(table[k].dims[d], hp);
            a->numel = kind_numel(k, hp);
            total += (uint64_t)a->numel;
        }
    }
    if (total > SIZE_MAX / sizeof(float) || !(w->storage = malloc((size_t)total * sizeof(float)))) {
        sm_gpt2_weights_free(w);
        return sm_error(SM_ERR_NOMEM, "%s: out of memory for %llu parameters (%.1f MiB of f32)", src,
                        (unsigned long long)total, (double)total * 4 / (1024.0 * 1024.0));
    }
    float *p = w->storage;
    for (int i = 0; i < w->n; i++) {
        w->arrays[i].data = p;
        p += w->arrays[i].numel;
    }
    return SM_OK;
}

const sm_named_array *sm_gpt2_weights_find(const sm_gpt2_weights *w, const char *name)
{
    for (int i = 0; w && name && i < w->n; i++)
        if (strcmp(w->arrays[i].name, name) == 0) return &w->arrays[i];
    return NULL;
}

/* ---- llm.c ------------------------------------------------------------------------------------ */

static int32_t le32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static sm_status check_hparams(const char *path, const sm_gpt2_hparams *hp)
{
    struct {
        const char *what;
        int v, max;
    } f[] = {
        {"maxT", hp->max_seq, 1 << 24}, {"vocab_size", hp->vocab, 1 << 24}, {"num_layers", hp->n_layer, 4096},
        {"num_heads", hp->n_head, 1 << 16}, {"channels", hp->n_embd, 1 << 16}, {"padded_vocab_size", hp->padded_vocab, 1 << 24},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < 1 || f[i].v > f[i].max)
            return sm_error(SM_ERR_FORMAT, "%s: header %s = %d is out of range (1..%d); the file is corrupt", path,
                            f[i].what, f[i].v, f[i].max);
    if (hp->n_embd % hp->n_head)
        return sm_error(SM_ERR_FORMAT, "%s: channels %d is not a multiple of num_heads %d; the file is corrupt", path,
                        hp->n_embd, hp->n_head);
    if (hp->padded_vocab < hp->vocab)
        return sm_error(SM_ERR_FORMAT, "%s: padded_vocab_size %d is smaller than vocab_size %d; the file is corrupt "
                        "(or from an llm.c version before padding: re-export it)", path, hp->padded_vocab, hp->vocab);
    return SM_OK;
}

sm_status sm_gpt2_load_llmc(const char *path, sm_gpt2_weights *out)
{
    memset(out, 0, sizeof *out);
    sm_file_map m;
    sm_status s = sm_file_map_open(path, &m);
    if (s) return s;
    const unsigned char *b = m.data;
    if (m.size < 1024) {
        sm_file_map_close(&m);
        return sm_error(SM_ERR_FORMAT, "%s: %zu bytes, smaller than the 1024-byte llm.c header; the file is truncated "
                        "or not an llm.c checkpoint", path, m.size);
    }
    int32_t magic = le32(b), version = le32(b + 4);
    if (magic != SM_LLMC_MAGIC) {
        sm_file_map_close(&m);
        return sm_error(SM_ERR_FORMAT, "%s: magic number %d, expected %d: not an llm.c GPT-2 checkpoint", path,
                        (int)magic, SM_LLMC_MAGIC);
    }
    if (version != SM_LLMC_VERSION_F32 && version != SM_LLMC_VERSION_BF16) {
        sm_file_map_close(&m);
        return sm_error(SM_ERR_UNSUPPORTED, "%s: llm.c checkpoint version %d; supported are %d (fp32) and %d (bf16)",
                        path, (int)version, SM_LLMC_VERSION_F32, SM_LLMC_VERSION_BF16);
    }
    sm_gpt2_hparams hp = {
        .max_seq = le32(b + 8), .vocab = le32(b + 12), .n_layer = le32(b + 16),
        .n_head = le32(b + 20), .n_embd = le32(b + 24), .padded_vocab = le32(b + 28),
    };
    if ((s = check_hparams(path, &hp))) {
        sm_file_map_close(&m);
        return s;
    }
    size_t elem = version == SM_LLMC_VERSION_F32 ? 4 : 2;
    /* the file stores wte with Vp rows */
    sm_gpt2_hparams file_hp = hp;
    file_hp.vocab = hp.padded_vocab;
    uint64_t total = 0;
    for (int k = 0; k < N_KINDS; k++)
        total += (uint64_t)kind_numel(k, &file_hp) * (uint64_t)(table[k].per_layer ? hp.n_layer : 1);
    size_t have = m.size - 1024;
    if (have != total * elem) {
        sm_file_map_close(&m);
        return sm_error(SM_ERR_FORMAT, "%s: %zu bytes of parameters, but the header (V=%d, Vp=%d, maxT=%d, L=%d, C=%d, "
                        "%s) needs %llu; the file is %s; re-export or re-download it", path, have, hp.vocab,
                        hp.padded_vocab, hp.max_seq, hp.n_layer, hp.n_embd, elem == 4 ? "fp32" : "bf16",
                        (unsigned long long)(total * elem), have < total * elem ? "truncated" : "too long");
    }
    if ((s = alloc_layout(&hp, path, out))) {
        sm_file_map_close(&m);
        return s;
    }
    const unsigned char *p = b + 1024;
    for (int k = 0; k < N_KINDS && !s; k++) {
        int layers = table[k].per_layer ? hp.n_layer : 1;
        size_t file_numel = (size_t)kind_numel(k, &file_hp);
        for (int l = 0; l < layers && !s; l++) {
            sm_named_array *a = &out->arrays[array_index(k, l, hp.n_layer)];
            /* wte keeps its first V rows; the rest is llm.c's padding */
            if (elem == 4) memcpy(a->data, p, (size_t)a->numel * 4);
            else sm_bf16_to_f32_array((const uint16_t *)(const void *)p, a->data, (size_t)a->numel);
            s = sm_st_check_finite(path, a->name, a->data, (size_t)a->numel);
            p += file_numel * elem;
        }
    }
    sm_file_map_close(&m);
    if (s) sm_gpt2_weights_free(out);
    return s;
}

/* ---- Hugging Face ----------------------------------------------------------------------------- */

static bool is_ignored_hf(const char *name, const char *prefix, const sm_gpt2_hparams *hp, const sm_st_tensor *t)
{
    if (strcmp(name, "lm_head.weight") == 0)
        return t->ndim == 2 && t->shape[0] == hp->vocab && t->shape[1] == hp->n_embd;
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0) return false;
    name += pl;
    int layer, used = 0;
    char rest[32];
    if (sscanf(name, "h.%d.attn.%31[a-z_]%n", &layer, rest, &used) == 2 && name[used] == '\0')
        return layer >= 0 && layer < hp->n_layer && (strcmp(rest, "bias") == 0 || strcmp(rest, "masked_bias") == 0);
    return false;
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static sm_status load_hf_tensor(const sm_st_file *f, const char *name, const sm_gpt2_param *kind, sm_named_array *a,
                                float *tmp)
{
    const sm_st_tensor *t;
    sm_status s = sm_st_get(f, name, &t);
    if (s) return sm_error_prefix(s, "GPT-2 import: ");
    int64_t want[2] = {a->shape[0], a->ndim > 1 ? a->shape[1] : 1};
    if (kind->hf_transposed) {
        want[0] = a->shape[1];
        want[1] = a->shape[0];
    }
    bool ok = t->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = t->shape[d] == want[d];
    if (!ok) {
        char got[96], exp[96];
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(exp, sizeof exp, a->ndim, want);
        return sm_error(SM_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s%s; the checkpoint does not match the "
                        "model sizes read from wte/wpe", sm_st_name(f), name, got, exp,
                        kind->hf_transposed ? " (Conv1D layout [in, out])" : "");
    }
    if (!kind->hf_transposed) return sm_st_read_f32(f, t, a->data, (size_t)a->numel);
    if ((s = sm_st_read_f32(f, t, tmp, (size_t)a->numel))) return s;
    /* Conv1D [in, out] -> Linear [out, in] */
    int64_t out = a->shape[0], in = a->shape[1];
    for (int64_t i = 0; i < in; i++)
        for (int64_t o = 0; o < out; o++) a->data[o * in + i] = tmp[i * out + o];
    return SM_OK;
}

sm_status sm_gpt2_load_hf(const sm_st_file *f, int n_head, sm_gpt2_weights *out)
{
    memset(out, 0, sizeof *out);
    const char *src = sm_st_name(f);
    const char *prefix = "";
    const sm_st_tensor *wte = sm_st_find(f, "wte.weight"), *wpe;
    if (!wte && (wte = sm_st_find(f, "transformer.wte.weight"))) prefix = "transformer.";
    if (!wte)
        return sm_error(SM_ERR_FORMAT, "%s: no tensor 'wte.weight' or 'transformer.wte.weight': not a GPT-2 checkpoint",
                        src);
    char name[160];
    snprintf(name, sizeof name, "%swpe.weight", prefix);
    if (!(wpe = sm_st_find(f, name)))
        return sm_error(SM_ERR_FORMAT, "%s: no tensor '%s': not a GPT-2 checkpoint", src, name);
    if (wte->ndim != 2 || wpe->ndim != 2 || wte->shape[1] != wpe->shape[1])
        return sm_error(SM_ERR_SHAPE, "%s: wte and wpe must be [V, C] and [T, C] with the same C; not a GPT-2 "
                        "checkpoint", src);
    sm_gpt2_hparams hp = {.vocab = (int)wte->shape[0], .padded_vocab = (int)wte->shape[0],
                          .max_seq = (int)wpe->shape[0], .n_embd = (int)wte->shape[1], .n_head = n_head};
    if (wte->shape[0] < 1 || wte->shape[0] > (1 << 24) || wpe->shape[0] < 1 || wpe->shape[0] > (1 << 24) ||
        wte->shape[1] < 1 || wte->shape[1] > (1 << 16))
        return sm_error(SM_ERR_SHAPE, "%s: wte/wpe sizes out of range", src);
    if (n_head < 0 || (n_head > 0 && hp.n_embd % n_head))
        return sm_error(SM_ERR_INVALID_ARG, "%s: n_head %d does not divide n_embd %d", src, n_head, hp.n_embd);
    for (hp.n_layer = 0; hp.n_layer < 4096; hp.n_layer++) {
        snprintf(name, sizeof name, "%sh.%d.ln_1.weight", prefix, hp.n_layer);
        if (!sm_st_find(f, name)) break;
    }
    if (hp.n_layer == 0)
        return sm_error(SM_ERR_FORMAT, "%s: no '%sh.0.ln_1.weight': not a GPT-2 checkpoint", src, prefix);

    sm_status s = alloc_layout(&hp, src, out);
    if (s) return s;
    size_t tmp_n = 4 * (size_t)hp.n_embd * (size_t)hp.n_embd; /* the largest transposed matrix */
    float *tmp = malloc(tmp_n * sizeof *tmp);
    bool *used = calloc((size_t)sm_st_count(f) + 1, sizeof *used);
    if (!tmp || !used) s = sm_error(SM_ERR_NOMEM, "%s: out of memory", src);
    for (int k = 0; k < N_KINDS && !s; k++) {
        for (int l = 0; l < (table[k].per_layer ? hp.n_layer : 1) && !s; l++) {
            char hf[128];
            format_name(hf, sizeof hf, table[k].hf, l);
            snprintf(name, sizeof name, "%s%s", prefix, hf);
            s = load_hf_tensor(f, name, &table[k], &out->arrays[array_index(k, l, hp.n_layer)], tmp);
            const sm_st_tensor *t = sm_st_find(f, name);
            if (!s && t) used[t - sm_st_at(f, 0)] = true;
        }
    }
    for (int i = 0; i < sm_st_count(f) && !s; i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        if (!used[i] && !is_ignored_hf(t->name, prefix, &hp, t))
            s = sm_error(SM_ERR_FORMAT, "%s: unexpected tensor '%.100s' for a GPT-2 with %d layers; is this a GPT-2 "
                         "checkpoint?", src, t->name, hp.n_layer);
    }
    free(tmp);
    free(used);
    if (s) sm_gpt2_weights_free(out);
    return s;
}

/* ---- Hugging Face config.json ----------------------------------------------------------------- */

/* The sizes config.json gives, under GPT-2's names or the generic transformers aliases. */
static const struct hf_key {
    const char *name, *alias;
    size_t field;          /* offset of the int in sm_gpt2_hparams */
    int max;
    const char *weights;   /* what the weights show of it, for mismatch messages (NULL: not shown) */
} hf_keys[] = {
    {"n_head", "num_attention_heads", offsetof(sm_gpt2_hparams, n_head), 1 << 16, NULL},
    {"n_layer", "num_hidden_layers", offsetof(sm_gpt2_hparams, n_layer), 4096, "layers (h.0 ...)"},
    {"n_embd", "hidden_size", offsetof(sm_gpt2_hparams, n_embd), 1 << 16, "channels (columns of wte)"},
    {"vocab_size", NULL, offsetof(sm_gpt2_hparams, vocab), 1 << 24, "tokens (rows of wte)"},
    {"n_positions", "max_position_embeddings", offsetof(sm_gpt2_hparams, max_seq), 1 << 24, "positions (rows of wpe)"},
};
#define N_HF_KEYS ((int)(sizeof hf_keys / sizeof hf_keys[0]))

static int hp_get(const sm_gpt2_hparams *hp, const struct hf_key *k)
{
    int v;
    memcpy(&v, (const char *)hp + k->field, sizeof v);
    return v;
}

static sm_status read_config_key(const char *path, const char *text, size_t len, const sm_json_value *root,
                                 const struct hf_key *k, sm_gpt2_hparams *hp)
{
    const char *key = k->name;
    const sm_json_value *v = sm_json_get(root, key);
    if (!v && k->alias) v = sm_json_get(root, key = k->alias);
    if (!v) return SM_OK;
    int64_t x;
    if (sm_json_to_i64(v, &x) || x < 1 || x > k->max) {
        int line, col;
        sm_json_line_col(text, len, v->offset, &line, &col);
        return sm_error(SM_ERR_FORMAT, "%s:%d:%d: \"%s\" is %s; it must be an integer from 1 to %d", path, line, col,
                        key, v->type == SM_JSON_NUMBER ? v->str : sm_json_type_name(v->type), k->max);
    }
    int value = (int)x;
    memcpy((char *)hp + k->field, &value, sizeof value);
    return SM_OK;
}

sm_status sm_gpt2_hf_config_load(const char *path, sm_gpt2_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    void *text;
    size_t len;
    sm_status s = sm_file_read_all(path, (size_t)1 << 20, &text, &len);
    if (s) return s;
    sm_json_doc *doc;
    if (!(s = sm_json_parse(text, len, path, NULL, &doc))) {
        const sm_json_value *root = sm_json_root(doc);
        if (root->type != SM_JSON_OBJECT)
            s = sm_error(SM_ERR_FORMAT, "%s: a model config is a JSON object, this is %s", path,
                         sm_json_type_name(root->type));
        for (int i = 0; !s && i < N_HF_KEYS; i++) s = read_config_key(path, text, len, root, &hf_keys[i], hp);
        sm_json_free(doc);
    }
    free(text);
    return s;
}

/* Every size the config gives must be the weights' own. */
static sm_status check_config(const char *config, const sm_gpt2_hparams *c, const char *weights,
                              const sm_gpt2_hparams *w)
{
    for (int i = 0; i < N_HF_KEYS; i++) {
        const struct hf_key *k = &hf_keys[i];
        int want = hp_get(c, k), have = hp_get(w, k);
        if (k->weights && want && want != have)
            return sm_error(SM_ERR_FORMAT, "%s: %s is %d, but %s has %d %s: the config belongs to another model; put "
                            "the model's own config.json next to its weights", config, k->name, want, weights, have,
                            k->weights);
    }
    return SM_OK;
}

/* dir/config.json for path dir/model.safetensors (./config.json for a bare file name). */
static bool config_next_to(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    int dir = slash ? (int)(slash - path + 1) : 0;
    return snprintf(buf, cap, "%.*sconfig.json", dir, path) < (int)cap;
}

sm_status sm_gpt2_load_hf_file(const char *path, int n_head, sm_gpt2_weights *out)
{
    memset(out, 0, sizeof *out);
    char config[4096];
    struct stat st;
    bool have_config = config_next_to(path, config, sizeof config) && stat(config, &st) == 0;
    sm_gpt2_hparams c = {0};
    sm_status s = have_config ? sm_gpt2_hf_config_load(config, &c) : SM_OK;
    if (s) return s;
    if (n_head > 0 && c.n_head && n_head != c.n_head)
        return sm_error(SM_ERR_INVALID_ARG, "%s: %d attention heads were asked for, but %s says n_head %d: ask for "
                        "that many, or leave the count to the config", path, n_head, config, c.n_head);
    sm_st_file *f;
    if ((s = sm_st_open(path, &f))) return s;
    s = sm_gpt2_load_hf(f, n_head > 0 ? n_head : c.n_head, out);
    sm_st_close(f);
    if (!s && have_config && (s = check_config(config, &c, path, &out->hp))) sm_gpt2_weights_free(out);
    return s;
}
