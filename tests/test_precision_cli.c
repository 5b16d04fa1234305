/* test_precision_cli.c — `--precision` as a user runs it (the binary named by SM_CLI): plan shows the
 * policy, the 16-bit tensors and the bytes per parameter (about 2 for inference weights, 4 for
 * training's f32 masters) and shrinks a training plan's activations; an unknown policy is a usage
 * error; train in bf16 saves a checkpoint that eval reads under fp32 and bf16 with cross-entropies
 * within 1e-2 of each other. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/cli_run.h"

typedef struct ran {
    int rc;
    char out[1 << 17];
} ran;

static ran *cli(const char *fmt, const char *a, const char *b)
{
    cr_assert(getenv("SM_CLI"), "SM_CLI is set by ctest (run the tests through ctest)");
    char args[1024];
    snprintf(args, sizeof args, fmt, a, b);
    static ran r;
    r.rc = sm_test_capture(r.out, sizeof r.out, "OMP_WAIT_POLICY=passive '%s' %s 2>&1", sm_test_cli(), args);
    return &r;
}

/* The number after `"key": ` at or after the first `"after"` in s. */
static double json_num(const char *s, const char *after, const char *key)
{
    const char *p = after ? strstr(s, after) : s;
    cr_assert(p, "no %s in:\n%s", after, s);
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    p = strstr(p, k);
    cr_assert(p, "no %s in:\n%s", k, s);
    return strtod(p + strlen(k), NULL);
}

/* The size of the arena named `name` in a plan report's JSON. */
static double arena_size(const char *s, const char *name)
{
    char k[64];
    snprintf(k, sizeof k, "{\"name\": \"%s\"", name);
    return json_num(s, k, "size");
}

Test(precision_cli, plan, .timeout = 120)
{
    ran *r = cli("plan gpt-tiny --train -T 64 --json%s%s", "", "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    double act32 = arena_size(r->out, "activations");
    cr_assert(strstr(r->out, "\"policy\": \"fp32\""), "%s", r->out);
    r = cli("plan gpt-tiny --train -T 64 --json --precision %s%s", "bf16", "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    cr_assert(strstr(r->out, "\"policy\": \"bf16\""), "%s", r->out);
    cr_assert_gt(json_num(r->out, "\"precision\": {", "half"), 0);
    cr_assert_gt(json_num(r->out, "\"stored\": {", "bf16"), 0);
    cr_assert_eq(json_num(r->out, "\"precision\": {", "bytes_per_param"), 4.0, "training keeps f32 masters");
    double act16 = arena_size(r->out, "activations");
    cr_assert_lt(act16, 0.8 * act32, "activations %.0f (bf16) vs %.0f (fp32)", act16, act32);
    /* text: the policy in the passes and the precision line */
    r = cli("plan gpt-tiny --train --precision %s%s", "fp16", "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    cr_assert(strstr(r->out, "precision fp16:") && strstr(r->out, "f16 ") && strstr(r->out, "bytes/param"), "%s",
              r->out);
    /* inference: the weights in 16 bits */
    r = cli("plan gpt2 --json --precision %s%s", "bf16", "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    double bpp = json_num(r->out, "\"precision\": {", "bytes_per_param");
    cr_assert(bpp >= 2.0 && bpp < 2.05, "gpt2 inference weights: %f bytes/param", bpp);
    /* fit takes it too */
    r = cli("fit gpt-tiny --train --budget 64M --json --precision %s%s", "bf16", "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    cr_assert(strstr(r->out, "\"precision\": \"bf16\""), "%s", r->out);
    /* a usage error names the choices */
    r = cli("plan gpt-tiny --precision %s%s", "fp8", "");
    cr_assert_eq(r->rc, 2, "%s", r->out);
    cr_assert(strstr(r->out, "fp8") && strstr(r->out, "bf16"), "%s", r->out);
}

Test(precision_cli, train_then_eval, .timeout = 300)
{
    char path[] = "/tmp/sm_prec_cli_XXXXXX";
    close(mkstemp(path));
    const char *data = getenv("SM_EXAMPLES");
    cr_assert(data, "SM_EXAMPLES is set by ctest");
    char corpus[1024];
    snprintf(corpus, sizeof corpus, "%s/../data/kjv-genesis-exodus.txt", data);
    char args[1400];
    snprintf(args, sizeof args, "train gpt-tiny --data '%s' --steps 20 --log-every 20 --val-every 0 --precision bf16 "
             "--save '%%s'%%s", corpus);
    ran *r = cli(args, path, "");
    cr_assert_eq(r->rc, 0, "%s", r->out);
    double ce[2];
    const char *pol[2] = {"fp32", "bf16"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "eval --checkpoint '%%s' --data '%s' --json --precision %%s", corpus);
        r = cli(args, path, pol[i]);
        cr_assert_eq(r->rc, 0, "%s", r->out);
        ce[i] = json_num(r->out, NULL, "cross_entropy");
    }
    cr_assert(ce[0] > 0 && ce[0] < 6, "%f", ce[0]);
    cr_assert(ce[1] - ce[0] < 1e-2 && ce[0] - ce[1] < 1e-2, "eval cross-entropy bf16 weights %f vs fp32 %f", ce[1],
              ce[0]);
    unlink(path);
}
