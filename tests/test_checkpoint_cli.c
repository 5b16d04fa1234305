/* test_checkpoint_cli.c — what generate, eval and train --resume accept from a checkpoint, end to end:
 * weights that are not finite, a tokenizer larger than the model, an edited graph file, edited or
 * malformed metadata (with its checksum kept, recomputed or absent), sampler options, raw output and
 * eval's JSON when a number is out of JSON's reach. Damaged checkpoints are made from a real one by
 * rewriting it here: tensors through an edit, one metadata pair changed, the metadata checksum
 * kept, recomputed as checkpoint.h documents it, or dropped. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/json.h"
#include "frontends/safetensors.h"
#include "tests/helpers/cli_run.h"

#define TINY "gpt-tiny -B 2 -T 16 --val-every 0"

static char dir[256];

static const char *at(const char *name) { return sm_test_path(dir, name); }

/* a.st: two steps of gpt-tiny, saved after step 1 of 2 (so a resume has a step to run); small.txt:
 * a text for eval to score quickly */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_checkpoint_cli_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 2 --until 1 --save %s >/dev/null", sm_test_cli(),
                            sm_test_corpus(), at("a.st")), 0);
    cr_assert_eq(sm_test_sh("head -c 400 %s > %s", sm_test_corpus(), at("small.txt")), 0);
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(checkpoint_cli, .init = setup, .fini = teardown, .timeout = 300);

typedef void (*tensor_edit)(const char *name, float *x, int64_t n);
/* the metadata checksum: kept as it was, recomputed, dropped, or dropped with the graph identity
 * (a checkpoint written before either existed) */
typedef enum { KEEP_SUM, NEW_SUM, NO_SUM, LEGACY } sum_mode;

static int by_key(const void *a, const void *b) { return strcmp(((const sm_st_kv *)a)->key, ((const sm_st_kv *)b)->key); }

/* checkpoint.h's metadata checksum: XXH3-64 chained through the pairs in key order */
static uint64_t meta_checksum(sm_st_kv *kv, int n)
{
    qsort(kv, (size_t)n, sizeof *kv, by_key);
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        h = XXH3_64bits_withSeed(kv[i].key, strlen(kv[i].key) + 1, h);
        h = XXH3_64bits_withSeed(kv[i].value, strlen(kv[i].value) + 1, h);
    }
    return h;
}

/* dst = a.st with its f32 tensors through edit (if any), metadata key set to value (NULL: dropped)
 * and the metadata checksum as mode says. The safetensors layer's own "sm." keys are written anew. */
static void rewrite(const char *dst, tensor_edit edit, const char *key, const char *value, sum_mode mode)
{
    sm_st_file *f;
    cr_assert_eq(sm_st_open(at("a.st"), &f), SM_OK, "%s", sm_last_error());
    int n = sm_st_count(f), m = 0;
    sm_st_entry *e = calloc((size_t)n, sizeof *e);
    float **copies = calloc((size_t)n, sizeof *copies);
    sm_st_kv kv[64];
    char sum[17];
    for (int i = 0; i < n; i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        e[i] = (sm_st_entry){t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        if (!edit || t->dtype != SM_ST_F32) continue;
        e[i].data = copies[i] = malloc(t->nbytes);
        memcpy(copies[i], t->data, t->nbytes);
        edit(t->name, copies[i], t->numel);
    }
    for (int i = 0; i < sm_st_metadata_count(f); i++) {
        const char *k, *v;
        sm_st_metadata_at(f, i, &k, &v);
        bool drop = !strncmp(k, "sm.", 3) || (key && !strcmp(k, key)) ||
                    (mode != KEEP_SUM && !strcmp(k, "metadata_xxh3")) || (mode == LEGACY && !strcmp(k, "graph_identity"));
        if (!drop) kv[m++] = (sm_st_kv){k, v};
    }
    if (key && value) kv[m++] = (sm_st_kv){key, value};
    if (mode == NEW_SUM) {
        snprintf(sum, sizeof sum, "%016llx", (unsigned long long)meta_checksum(kv, m));
        kv[m++] = (sm_st_kv){"metadata_xxh3", sum};
    }
    cr_assert_eq(sm_st_write(dst, e, n, kv, m, 0), SM_OK, "%s", sm_last_error());
    for (int i = 0; i < n; i++) free(copies[i]);
    free(copies);
    free(e);
    sm_st_close(f);
}

/* Runs `smallmind ARGS` (stderr to dir/err) and checks its exit status and that stderr holds want. */
static void expect_fail(int rc, const char *want, const char *args)
{
    int got = sm_test_sh("%s %s >/dev/null 2>%s", sm_test_cli(), args, at("err"));
    char err[4096] = "";
    FILE *f = fopen(at("err"), "r");
    if (f) {
        err[fread(err, 1, sizeof err - 1, f)] = '\0';
        fclose(f);
    }
    cr_assert_eq(got, rc, "%s: exit %d, stderr: %s", args, got, err);
    cr_assert(strstr(err, want), "%s: stderr '%s' lacks '%s'", args, err, want);
}

static void nan_in_fc(const char *name, float *x, int64_t n)
{
    if (!strcmp(name, "h1.mlp.fc.w") && n > 7) x[7] = NAN;
}

static void inf_in_adam(const char *name, float *x, int64_t n)
{
    if (!strcmp(name, "adam.v.wpe") && n > 0) x[0] = INFINITY;
}

/* Weights and optimizer state are finite numbers: anything else is refused naming the tensor and the
 * element, by every command that loads them. */
Test(checkpoint_cli, values_that_are_not_finite_are_refused)
{
    char args[1024], nan_st[512];
    const char *data = sm_test_corpus();
    snprintf(nan_st, sizeof nan_st, "%s", at("nan.st"));
    rewrite(nan_st, nan_in_fc, NULL, NULL, KEEP_SUM);
    const char *want = "nan.st: tensor 'h1.mlp.fc.w' holds NaN at element 7";
    snprintf(args, sizeof args, "generate --checkpoint %s -n 2", nan_st);
    expect_fail(1, want, args);
    snprintf(args, sizeof args, "eval --checkpoint %s --data %s -T 16", nan_st, data);
    expect_fail(1, want, args);
    snprintf(args, sizeof args, "train --resume %s --data %s", nan_st, data);
    expect_fail(1, want, args);
    rewrite(at("inf.st"), inf_in_adam, NULL, NULL, KEEP_SUM);
    snprintf(args, sizeof args, "train --resume %s --data %s", at("inf.st"), data);
    expect_fail(1, "inf.st: tensor 'adam.v.wpe' holds +Inf at element 0", args);
}

static void huge_lnf_bias(const char *name, float *x, int64_t n)
{
    if (!strcmp(name, "lnf.b"))
        for (int64_t i = 0; i < n; i++) x[i] = 1e30f;   /* finite, but the loss is huge */
}

/* eval --json is JSON whatever the numbers: a perplexity beyond a double (exp of a huge loss) is
 * null, not a bare inf. */
Test(checkpoint_cli, eval_json_holds_no_bare_infinity)
{
    rewrite(at("huge.st"), huge_lnf_bias, NULL, NULL, KEEP_SUM);
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s --data %s -T 16 -B 8 --json > %s", sm_test_cli(), at("huge.st"),
                            at("small.txt"), at("out")), 0);
    size_t n;
    char *text = sm_test_read(at("out"), &n);
    sm_json_doc *d;
    cr_assert_eq(sm_json_parse(text, n, "eval --json", NULL, &d), SM_OK, "%s", sm_last_error());
    const sm_json_value *ce = sm_json_get(sm_json_root(d), "cross_entropy");
    cr_assert(ce && ce->type == SM_JSON_NUMBER && ce->num > 1e20, "%s", text);
    cr_assert_eq(sm_json_get(sm_json_root(d), "perplexity")->type, SM_JSON_NULL, "%s", text);
    sm_json_free(d);
    free(text);
}

/* A tokenizer with ids the model has no embedding for is refused, as train refuses it. */
Test(checkpoint_cli, a_tokenizer_larger_than_the_model_is_refused)
{
    const char *fx = getenv("SM_FIXTURES");
    cr_assert(fx, "SM_FIXTURES is set by ctest");
    char tok[600], args[2048];
    snprintf(tok, sizeof tok, "gpt2:%s/tokenizer/vocab.json:%s/tokenizer/merges.txt", fx, fx);
    const char *want = "the tokenizer has 270 tokens but model";
    snprintf(args, sizeof args, "generate --checkpoint %s --tokenizer %s -n 2", at("a.st"), tok);
    expect_fail(1, want, args);
    snprintf(args, sizeof args, "eval --checkpoint %s --tokenizer %s --data %s -T 16", at("a.st"), tok, sm_test_corpus());
    expect_fail(1, want, args);
    snprintf(args, sizeof args, "train " TINY " --tokenizer %s --data %s --steps 1", tok, sm_test_corpus());
    expect_fail(1, want, args);
}

/* Resuming from a graph file edited since the save (here: more heads, the same weight shapes) is
 * refused, naming both identities, the checkpoint and the graph file. */
Test(checkpoint_cli, resume_refuses_an_edited_graph_file)
{
    const char *ex = getenv("SM_EXAMPLES"), *data = sm_test_corpus();
    cr_assert(ex, "SM_EXAMPLES is set by ctest");
    cr_assert_eq(sm_test_sh("cp %s/gpt-tiny.smg %s", ex, at("m.smg")), 0);
    cr_assert_eq(sm_test_sh("%s train %s -B 2 -T 16 --val-every 0 --steps 3 --until 1 --data %s --save %s >/dev/null",
                            sm_test_cli(), at("m.smg"), data, at("m.st")), 0);
    cr_assert_eq(sm_test_sh("%s train --resume %s --data %s --until 2 --save %s >/dev/null", sm_test_cli(), at("m.st"),
                            data, at("m.st")), 0, "the unedited graph resumes");
    cr_assert_eq(sm_test_sh("sed -i 's/^param H = 2 /param H = 4 /' %s && grep -q '^param H = 4 ' %s", at("m.smg"),
                            at("m.smg")), 0);
    char args[1024];
    snprintf(args, sizeof args, "train --resume %s --data %s", at("m.st"), data);
    expect_fail(1, "m.st: saved from a model of graph identity ", args);
    expect_fail(1, "m.smg' has identity ", args);
}

/* Every metadata field is checked; the metadata is covered by a checksum; a checkpoint written before
 * the checksum existed still resumes. */
Test(checkpoint_cli, checkpoint_metadata_is_checked)
{
    const char *data = sm_test_corpus();
    char args[1024];
    struct {
        const char *key, *value, *want;
    } bad[] = {
        {"step", "x", "metadata 'step' is \"x\"; it must be an integer from 0 to 9223372036854775807"},
        {"step", "-1", "metadata 'step' is \"-1\""},
        {"batch", "0", "metadata 'batch' is \"0\"; it must be an integer from 1 to 1048576"},
        {"seq", "16 ", "metadata 'seq' is \"16 \""},
        {"seed", "99999999999999999999", "metadata 'seed' is \"99999999999999999999\""},
        {"adamw", "lr=fast", "metadata 'adamw' is \"lr=fast\"; it must read"},
        {"adamw", "lr=0.001 min_lr=0.0001 warmup=20 total=3 beta1=1 beta2=0.95 eps=1e-08 wd=0.1 clip=1",
         "metadata 'adamw': AdamW: beta1 1 and beta2 0.95 must be in [0, 1)"},
        {"adamw", "lr=nan min_lr=0.0001 warmup=20 total=3 beta1=0.9 beta2=0.95 eps=1e-08 wd=0.1 clip=1",
         "with finite numbers"},
        {"defines", "C", "metadata 'defines' holds 'C'; it must be up to 32 KEY=VALUE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rewrite(at("bad.st"), NULL, bad[i].key, bad[i].value, NEW_SUM);
        snprintf(args, sizeof args, "train --resume %s --data %s", at("bad.st"), data);
        expect_fail(1, bad[i].want, args);
    }
    snprintf(args, sizeof args, "generate --checkpoint %s -n 1", at("bad.st"));
    expect_fail(1, "metadata 'defines'", args);
    /* edited without recomputing the checksum */
    rewrite(at("edited.st"), NULL, "step", "0", KEEP_SUM);
    snprintf(args, sizeof args, "train --resume %s --data %s", at("edited.st"), data);
    expect_fail(1, "edited.st: metadata checksum mismatch", args);
    rewrite(at("edited.st"), NULL, "graph_identity", NULL, KEEP_SUM);
    expect_fail(1, "edited.st: metadata checksum mismatch", args);
    rewrite(at("edited.st"), NULL, NULL, NULL, NO_SUM);
    expect_fail(1, "has a 'graph_identity' but no 'metadata_xxh3'", args);
    /* written before metadata checksums and identities: still resumes, still range-checked */
    rewrite(at("old.st"), NULL, NULL, NULL, LEGACY);
    cr_assert_eq(sm_test_sh("%s train --resume %s --data %s >/dev/null", sm_test_cli(), at("old.st"), data), 0);
    rewrite(at("old.st"), NULL, "step", "x", LEGACY);
    snprintf(args, sizeof args, "train --resume %s --data %s", at("old.st"), data);
    expect_fail(1, "metadata 'step' is \"x\"", args);
}

/* Sampler options out of range are usage errors naming the flag's range; --top-p sets top-p. */
Test(checkpoint_cli, generate_checks_its_sampler_options)
{
    char ck[512];
    snprintf(ck, sizeof ck, "%s", at("a.st"));
    struct {
        const char *opt, *want;
    } bad[] = {
        {"--top-p 2", "--top-p needs a number in (0, 1]"}, {"--top-p 0", "--top-p needs a number in (0, 1]"},
        {"--top-p nan", "--top-p needs"},                  {"--top-p 1e-60", "--top-p needs"},
        {"--temperature -1", "--temperature needs a number >= 0"}, {"--temperature inf", "--temperature needs"},
        {"--temperature 1e39", "--temperature needs"},    {"--top-k -1", "--top-k needs an integer from 0"},
    };
    char args[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "generate --checkpoint %s -n 1 %s", ck, bad[i].opt);
        expect_fail(2, bad[i].want, args);
    }
    /* greedy stays greedy whatever the nucleus: --top-p must not set the temperature */
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s -n 30 --temperature 0 > %s", sm_test_cli(), ck, at("g0")), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s -n 30 --temperature 0 --top-p 0.5 > %s", sm_test_cli(), ck,
                            at("g1")), 0);
    cr_assert_eq(sm_test_sh("cmp -s %s %s", at("g0"), at("g1")), 0);
}

/* A model that always says byte 0xE9: no final norm gain, a bias of ones, and only 0xE9's embedding
 * row along it. */
static void always_e9(const char *name, float *x, int64_t n)
{
    if (!strcmp(name, "lnf.w")) memset(x, 0, sizeof *x * (size_t)n);
    if (!strcmp(name, "lnf.b"))
        for (int64_t i = 0; i < n; i++) x[i] = 1;
    if (!strcmp(name, "wte"))
        for (int64_t c = 0; c < n / 256; c++) x[0xE9 * (n / 256) + c] = 1;
}

/* --raw writes a byte tokenizer's bytes as they are; by default a byte that is no UTF-8 character
 * shows as U+FFFD. */
Test(checkpoint_cli, raw_output_writes_the_bytes)
{
    rewrite(at("e9.st"), always_e9, NULL, NULL, KEEP_SUM);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s -n 3 --temperature 0 --raw > %s", sm_test_cli(), at("e9.st"),
                            at("raw")), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s -n 3 --temperature 0 > %s", sm_test_cli(), at("e9.st"),
                            at("text")), 0);
    size_t n;
    char *out = sm_test_read(at("raw"), &n);
    cr_assert_eq(n, 4);
    cr_assert_eq(memcmp(out, "\xE9\xE9\xE9\n", 4), 0);
    free(out);
    out = sm_test_read(at("text"), &n);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\n", 10), 0);
    free(out);
}
