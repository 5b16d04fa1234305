/* test_plan_cli.c — `smallmind plan`, `fit` and `sysinfo` as a user runs them (the binary named by
 * SM_CLI, which ctest sets): exit codes, the budget verdict, the JSON report, the SVG and plan files
 * (a plan saved by the CLI loads for the same graph built here, so the graph hash is stable across
 * processes), and `fit`'s answer checked against plans made here: T fits, T+1 does not. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/cli_run.h"
#include "smallmind.h"

typedef struct ran {
    int rc;
    char out[1 << 16];
} ran;

static ran cli(const char *args)
{
    cr_assert(getenv("SM_CLI"), "SM_CLI is set by ctest (run the tests through ctest)");
    static ran r;
    r.rc = sm_test_capture(r.out, sizeof r.out, "OMP_WAIT_POLICY=passive '%s' %s 2>&1", sm_test_cli(), args);
    return r;
}

Test(plan_cli, help_and_usage_errors)
{
    ran r = cli("plan --help");
    cr_assert_eq(r.rc, 0);
    cr_assert(strstr(r.out, "usage: smallmind plan"), "%s", r.out);
    cr_assert(strstr(r.out, "--budget"), "%s", r.out);
    r = cli("fit --help");
    cr_assert_eq(r.rc, 0);
    r = cli("sysinfo --help");
    cr_assert_eq(r.rc, 0);
    r = cli("plan gpt-tiny --budget lots");
    cr_assert_eq(r.rc, 2, "%s", r.out);
    cr_assert(strstr(r.out, "--budget"), "%s", r.out);
    r = cli("plan gpt-tiny --strategy magic");
    cr_assert_eq(r.rc, 2, "%s", r.out);
    r = cli("fit gpt-tiny");
    cr_assert_eq(r.rc, 2, "%s", r.out);
    cr_assert(strstr(r.out, "give a budget"), "%s", r.out);
    r = cli("plan no-such-model");
    cr_assert_eq(r.rc, 1, "%s", r.out);
    cr_assert(strstr(r.out, "no-such-model"), "%s", r.out);
}

Test(plan_cli, plan_reports_and_budget_verdict)
{
    ran r = cli("plan gpt-tiny");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strstr(r.out, "weights") && strstr(r.out, "activations") && strstr(r.out, "lower bound"), "%s", r.out);
    r = cli("plan gpt-tiny --train --budget 1K");
    cr_assert_eq(r.rc, 1, "over budget is exit status 1:\n%s", r.out);
    cr_assert(strstr(r.out, "does NOT fit"), "%s", r.out);
    cr_assert(strstr(r.out, "dominant term"), "%s", r.out);
    r = cli("plan gpt-tiny --train --budget 1G --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strstr(r.out, "\"mode\": \"training\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"schema\": \"smallmind.plan-report/1\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"fits\": true"), "%s", r.out);
    r = cli("plan gpt-tiny --budget auto");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strstr(r.out, "budget auto"), "%s", r.out);
    r = cli("plan gpt-tiny --strategy naive --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strstr(r.out, "\"strategy\": \"naive\""), "%s", r.out);
}

Test(plan_cli, svg_and_plan_file)
{
    char dir[] = "/tmp/sm_plan_cli_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char args[512], svg[128], pf[128];
    snprintf(svg, sizeof svg, "%s/a.svg", dir);
    snprintf(pf, sizeof pf, "%s/a.plan", dir);
    snprintf(args, sizeof args, "plan gpt-tiny --train --threads 2 --svg %s --save %s", svg, pf);
    ran r = cli(args);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    FILE *f = fopen(svg, "rb");
    cr_assert_not_null(f);
    char head[5] = {0};
    cr_assert_eq(fread(head, 1, 4, f), 4);
    fclose(f);
    cr_assert_str_eq(head, "<svg");

    /* the same graph built here (the gpt-tiny template, then backward and AdamW with defaults) */
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = 2, c.n_embd = 64, c.n_head = 2, c.context = 64, c.batch = 2, c.seq = 64;
    sm_graph *g;
    sm_gpt_tensors io;
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    sm_adamw_config_default(&ac);
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_gpt_build(g, &c, &io), SM_OK);
    cr_assert_eq(sm_graph_backward(g, io.loss), SM_OK);
    cr_assert_eq(sm_graph_adamw(g, &ac, &opt), SM_OK);
    sm_plan *p, *q;
    cr_assert_eq(sm_plan_load(g, pf, &p), SM_OK, "%s", sm_last_error());
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = 2;
    cr_assert_eq(sm_plan_create(g, &o, &q), SM_OK);
    cr_assert_eq(sm_plan_hash(p), sm_plan_hash(q));
    cr_assert_eq(sm_plan_total_bytes(p), sm_plan_total_bytes(q));
    sm_plan_free(p);
    sm_plan_free(q);
    sm_graph_free(g);
    unlink(svg);
    unlink(pf);
    rmdir(dir);
}

static long long json_int(const char *s, const char *key)
{
    const char *at = strstr(s, key);
    cr_assert_not_null(at, "no %s in %s", key, s);
    return atoll(at + strlen(key));
}

static int fits_at(int B, int T, uint64_t budget)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = 2, c.n_embd = 64, c.n_head = 2, c.context = T > 64 ? T : 64, c.batch = B, c.seq = T;
    c.with_loss = 0;   /* fit plans inference by default: the generation graph */
    sm_graph *g;
    sm_gpt_tensors io;
    sm_plan *p;
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_gpt_build(g, &c, &io), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK, "%s", sm_last_error());
    int ok = sm_plan_can_fit(p, budget);
    sm_plan_free(p);
    sm_graph_free(g);
    return ok;
}

Test(plan_cli, fit_answers_from_plans)
{
    ran r = cli("fit gpt-tiny --budget 48M --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    long long T = json_int(r.out, "\"largest_seq\": {\"batch\": 2, \"seq\": ");
    long long B = json_int(r.out, "\"largest_batch\": {\"seq\": 64, \"batch\": ");
    /* the plan gets the budget less what the process holds already (measured, a few MB) */
    long long process = json_int(r.out, "\"process\": ");
    cr_assert(process > (1 << 20) && process < (48 << 20), "%lld", process);
    uint64_t budget = (48ull << 20) - (uint64_t)process;
    cr_assert_gt(T, 64);
    cr_assert(fits_at(2, (int)T, budget), "T=%lld should fit", T);
    cr_assert(!fits_at(2, (int)T + 1, budget), "T=%lld should not fit", T + 1);
    cr_assert(fits_at((int)B, 64, budget), "B=%lld should fit", B);
    cr_assert(!fits_at((int)B + 1, 64, budget), "B=%lld should not fit", B + 1);
    r = cli("fit gpt2 --budget 100M");
    cr_assert_eq(r.rc, 1, "nothing fits: exit 1\n%s", r.out);
    cr_assert(strstr(r.out, "not even T=1"), "%s", r.out);
    cr_assert(strstr(r.out, "weights"), "%s", r.out);
}

/* fit --train answers for the whole of `train`: its validation model (unless --val-every 0) and its
 * training data (--data) come off the budget too. */
Test(plan_cli, fit_counts_what_train_holds)
{
    ran r = cli("fit gpt-tiny --train --budget 48M --val-every 0 --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    long long alone = json_int(r.out, "\"largest_seq\": {\"batch\": 2, \"seq\": ");
    cr_assert_eq(json_int(r.out, "\"validation\": "), 0);
    r = cli("fit gpt-tiny --train --budget 48M --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    long long with_val = json_int(r.out, "\"largest_seq\": {\"batch\": 2, \"seq\": ");
    cr_assert_gt(json_int(r.out, "\"validation\": "), 1 << 20, "%s", r.out);
    cr_assert_lt(with_val, alone, "the validation model takes room: %lld vs %lld", with_val, alone);
    /* 64 MiB of data (a sparse file) take 256 MiB as tokens: nothing fits in 48M any more */
    char data[64], args[160];
    snprintf(data, sizeof data, "/tmp/sm_fit_data_%d", (int)getpid());
    FILE *f = fopen(data, "w");
    cr_assert(f && ftruncate(fileno(f), 64 << 20) == 0);
    fclose(f);
    snprintf(args, sizeof args, "fit gpt-tiny --train --budget 48M --data %s", data);
    r = cli(args);
    unlink(data);
    cr_assert_eq(r.rc, 1, "%s", r.out);
    cr_assert(strstr(r.out, "training data 256.00 MiB") && strstr(r.out, "not even T=1"), "%s", r.out);
}

Test(plan_cli, sysinfo)
{
    ran r = cli("sysinfo");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert(strstr(r.out, "memory") && strstr(r.out, "budget auto") && strstr(r.out, "recommended"), "%s", r.out);
    r = cli("sysinfo --json");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_gt(json_int(r.out, "\"budget_auto\": "), 0);
}

/* A model too large for the graph's limits says which setting is too large and the limit, not
 * "every dim must be >= 1" about a tensor deep inside it. */
Test(plan_cli, oversized_models_name_what_is_too_large)
{
    ran r = cli("plan gpt2 --train -B 1048576 -T 16777216");
    cr_assert_eq(r.rc, 1, "%s", r.out);
    cr_assert(strstr(r.out, "batch 1048576 x seq 16777216 = 17592186044416 tokens per run is too many"), "%s", r.out);
    cr_assert(strstr(r.out, "at most 2^40 = 1099511627776; lower batch or seq"), "%s", r.out);
    cr_assert_null(strstr(r.out, "every dim must be"), "%s", r.out);

    struct {
        int vocab, context, n_head, n_embd, mlp_ratio, batch, seq;
        const char *want;
    } big[] = {
        {256, 64, 1, 1 << 12, 1 << 30, 1, 1, "the MLP width mlp_ratio 1073741824 x n_embd 4096 = 4398046511104 is too "
                                             "large: a tensor dim is at most 2^40"},
        {1 << 30, 1 << 24, 1, 64, 1, 1 << 20, 1 << 24, "tokens per run, with rows of 1073741824 values, is more than "
                                                        "one tensor may hold (2^61"},
        {1 << 30, 64, 2, 2147483646, 1, 1, 1, "a weight matrix of 2147483646 x n_embd 2147483646 values is more than "
                                              "one tensor may hold"},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        sm_gpt_config c;
        sm_gpt_config_default(&c);
        c.vocab = big[i].vocab, c.context = big[i].context, c.n_head = big[i].n_head, c.n_embd = big[i].n_embd;
        c.mlp_ratio = big[i].mlp_ratio, c.batch = big[i].batch, c.seq = big[i].seq, c.with_loss = 0;
        sm_graph *g;
        sm_gpt_tensors io;
        cr_assert_eq(sm_graph_create(&g), SM_OK);
        cr_assert_eq(sm_gpt_build(g, &c, &io), SM_ERR_INVALID_ARG, "case %zu", i);
        cr_assert(strstr(sm_last_error(), big[i].want), "'%s' lacks '%s'", sm_last_error(), big[i].want);
        sm_graph_free(g);
    }
}
