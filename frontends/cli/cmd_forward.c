/* cmd_forward.c — `smallmind forward`: build a model, plan it, run its forward pass on random tokens,
 * print the loss and timing. A smoke test of the whole pipeline on real shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <omp.h>

#include "../../base/rng.h"
#include "session.h"

static void help(void)
{
    printf("usage: smallmind forward [MODEL] [-B N] [-T N] [-D KEY=VALUE]... [--threads N] [--seed N] [--runs N]\n"
           "  Runs the forward pass of MODEL (default gpt) on random tokens and prints loss and timing.\n"
           "  MODEL is a template or a graph file (-D sets its parameters; -B/-T set its B and T).\n"
           "  models: %s\n", sm_cli_templates_help());
}

static int run_forward(const char *cmd, int argc, char **argv)
{
    sm_model_spec spec = {.name = "gpt"};
    long long threads = 0, seed = 1, runs = 3, v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return help(), 0;
        else if (!strcmp(a, "-B")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 20, &v)) return 2; spec.batch = (int)v; i++; }
        else if (!strcmp(a, "-T")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return 2; spec.seq = (int)v; i++; }
        else if (!strcmp(a, "-D")) { if (!sm_cli_define(cmd, &spec, val)) return 2; i++; }
        else if (!strncmp(a, "-D", 2)) { if (!sm_cli_define(cmd, &spec, a + 2)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!sm_cli_int(cmd, a, val, 1, 4096, &threads)) return 2; i++; }
        else if (!strcmp(a, "--seed")) { if (!sm_cli_int(cmd, a, val, 0, INT64_MAX, &seed)) return 2; i++; }
        else if (!strcmp(a, "--runs")) { if (!sm_cli_int(cmd, a, val, 1, 1000000, &runs)) return 2; i++; }
        else if (a[0] == '-') { fprintf(stderr, "smallmind %s: unknown option '%s' (see --help)\n", cmd, a); return 2; }
        else spec.name = a;
    }
    sm_session se;
    if (sm_session_open(&se, &spec, NULL, (int)threads)) return sm_cli_fail(cmd, "%s", sm_last_error());
    const sm_model m = se.m;
    sm_plan *plan = se.plan;
    sm_runtime *rt = se.rt;
    int rc = 1;
    if (m.io.loss == SM_NO_TENSOR) { sm_cli_fail(cmd, "model '%s' has no loss to report", spec.name); goto out; }
    if (m.io.tokens == SM_NO_TENSOR || m.gpt.batch < 1 || m.gpt.vocab < 1) {
        sm_cli_fail(cmd, "model '%s' needs an input 'tokens' [B, T] and an output 'logits' [..., V]", spec.name);
        goto out;
    }
    if (sm_runtime_init_params(rt, (uint64_t)seed)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    int64_t n = (int64_t)m.gpt.batch * m.gpt.seq;
    int32_t *tok = malloc(sizeof *tok * (size_t)n * 2);
    if (!tok) { sm_cli_fail(cmd, "out of memory"); goto out; }
    for (int64_t i = 0; i < 2 * n; i++) tok[i] = (int32_t)(sm_rng_mix((uint64_t)seed * 7919 + (uint64_t)i) % (uint64_t)m.gpt.vocab);
    printf("model %s: L=%d C=%d H=%d V=%d, B=%d T=%d, %d threads, plan %.1f MiB, %.2f GFLOP per forward\n",
           spec.name, m.gpt.n_layer, m.gpt.n_embd, m.gpt.n_head, m.gpt.vocab, m.gpt.batch, m.gpt.seq,
           threads ? (int)threads : omp_get_max_threads(), (double)sm_plan_total_bytes(plan) / 1048576.0,
           sm_plan_flops(plan) / 1e9);
    for (long long r = 0; r < runs; r++) {
        float loss;
        double t0 = omp_get_wtime();
        if (sm_runtime_set(rt, m.io.tokens, tok, sizeof *tok * (size_t)n) ||
            sm_runtime_set(rt, m.io.targets, tok + n, sizeof *tok * (size_t)n) || sm_runtime_run(rt) ||
            sm_runtime_get(rt, m.io.loss, &loss, sizeof loss)) {
            sm_cli_fail(cmd, "%s", sm_last_error());
            free(tok);
            goto out;
        }
        double dt = omp_get_wtime() - t0;
        printf("run %lld: loss %.4f (random tokens: expect about ln V = %.4f), %.1f ms, %.1f GFLOPS\n", r + 1,
               loss, log((double)m.gpt.vocab), dt * 1e3, sm_plan_flops(plan) / dt / 1e9);
    }
    free(tok);
    rc = 0;
out:
    sm_session_close(&se);
    return rc;
}

int sm_cmd_forward(int argc, char **argv) { return run_forward("forward", argc, argv); }
