/* bench_recompute.c — what recomputation buys and costs on the GPT-2 124M shape, as JSON.
 *
 *   bench_recompute              B=4 T=1024 training: per policy the activation arena, extra FLOPs and
 *                                planning time; the step time of none, sqrt and selective measured side
 *                                by side (one warm-up each, then timed steps in turn, best kept); then
 *                                budget:X for X between the every:1 plan and the plan without
 *                                recompute, against the best every:K that fits X.
 *   bench_recompute --step-at T [--budget BYTES]
 *                                B=1, sequence T, recompute budget:BYTES (default 16G): plans, then runs
 *                                one real training step and reports the peak RSS against the plan.
 * Reproduce: docs/PERFORMANCE.md. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "smallmind.h"

static sm_plan *plan(const sm_bench_gpt2 *m, const char *policy, int threads)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = threads;
    if (sm_recompute_parse(policy, &o.recompute)) sm_bench_die("bench_recompute", policy);
    sm_plan *p;
    if (sm_plan_create(m->g, &o, &p)) sm_bench_die("bench_recompute", policy);
    return p;
}

static sm_runtime *runtime(const sm_bench_gpt2 *m, const sm_plan *p)
{
    sm_runtime *rt;
    if (sm_runtime_create(m->g, p, &rt) || sm_runtime_init_params(rt, 1)) sm_bench_die("bench_recompute", "runtime");
    return rt;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void policies(sm_json *j, const sm_bench_gpt2 *m, int threads)
{
    static const char *const pol[] = {"none", "selective", "every:1", "every:2", "every:4", "sqrt"};
    sm_json_arr(j, "policies");
    for (size_t k = 0; k < sizeof pol / sizeof *pol; k++) {
        double ms[11];
        sm_plan *p = NULL;
        for (int r = 0; r < 11; r++) {
            sm_plan_free(p);
            double t0 = sm_bench_now();
            p = plan(m, pol[k], threads);
            ms[r] = (sm_bench_now() - t0) * 1e3;
        }
        qsort(ms, 11, sizeof *ms, cmp_d);
        sm_plan_recompute_info ri;
        sm_plan_recompute(p, &ri);
        sm_json_obj(j, NULL);
        sm_json_str(j, "policy", pol[k]);
        sm_json_int(j, "every", ri.every);
        sm_json_int(j, "boundaries", ri.n_boundaries);
        sm_json_int(j, "recomputed", ri.n_recomputed);
        sm_json_num(j, "extra_flops_share", ri.flops > 0 ? ri.extra_flops / ri.flops : 0);
        sm_json_int(j, "activation_bytes", (int64_t)ri.act);
        sm_json_num(j, "activation_ratio_vs_none", ri.act_none ? (double)ri.act_none / (double)ri.act : 1.0);
        sm_json_int(j, "plan_total_bytes", (int64_t)sm_plan_estimate(p));
        sm_json_num(j, "plan_ms_median", ms[5]);
        sm_json_num(j, "plan_ms_max", ms[10]);
        sm_json_obj_end(j);
        sm_plan_free(p);
    }
    sm_json_arr_end(j);
}

static void step_times(sm_json *j, const sm_bench_gpt2 *m, int threads)
{
    static const char *const pol[] = {"none", "sqrt", "selective"};
    enum { NP = 3, REPS = 2 };
    sm_plan *p[NP];
    sm_runtime *rt[NP];
    double best[NP];
    for (int k = 0; k < NP; k++) {
        p[k] = plan(m, pol[k], threads);
        rt[k] = runtime(m, p[k]);
        sm_bench_gpt2_step(m, rt[k]);   /* warm-up: page faults, caches */
        best[k] = 1e30;
    }
    for (int r = 0; r < REPS; r++)
        for (int k = 0; k < NP; k++) {
            double s = sm_bench_gpt2_step(m, rt[k]);
            if (s < best[k]) best[k] = s;
        }
    sm_json_arr(j, "step_seconds");
    for (int k = 0; k < NP; k++) {
        sm_json_obj(j, NULL);
        sm_json_str(j, "policy", pol[k]);
        sm_json_num(j, "seconds", best[k]);
        sm_json_num(j, "ratio_vs_none", best[k] / best[0]);
        sm_json_obj_end(j);
        sm_runtime_free(rt[k]);
        sm_plan_free(p[k]);
    }
    sm_json_arr_end(j);
}

static void budgets(sm_json *j, const sm_bench_gpt2 *m, int threads)
{
    sm_plan *hi = plan(m, "none", threads), *lo = plan(m, "every:1", threads);
    uint64_t a = sm_plan_estimate(lo), b = sm_plan_estimate(hi);
    sm_plan_free(hi);
    sm_plan_free(lo);
    sm_json_arr(j, "budgets");
    for (int s = 0; s <= 5; s++) {
        uint64_t x = a + (b - a) * (uint64_t)s / 5;
        char pol[64];
        snprintf(pol, sizeof pol, "budget:%llu", (unsigned long long)x);
        double t0 = sm_bench_now();
        sm_plan *p = plan(m, pol, threads);
        double plan_ms = (sm_bench_now() - t0) * 1e3;
        sm_plan_recompute_info ri;
        sm_plan_recompute(p, &ri);
        double best = -1;
        int best_k = 0;
        for (int k = 1; k <= ri.n_boundaries; k++) {
            char e[32];
            snprintf(e, sizeof e, "every:%d", k);
            sm_plan *q = plan(m, e, threads);
            sm_plan_recompute_info qi;
            sm_plan_recompute(q, &qi);
            if (sm_plan_estimate(q) <= x && (best < 0 || qi.extra_flops < best)) best = qi.extra_flops, best_k = k;
            sm_plan_free(q);
        }
        sm_json_obj(j, NULL);
        sm_json_int(j, "budget", (int64_t)x);
        sm_json_int(j, "plan_bytes", (int64_t)sm_plan_estimate(p));
        sm_json_num(j, "plan_ms", plan_ms);
        sm_json_int(j, "chosen_every", ri.every);
        sm_json_bool(j, "chosen_keeps_costly", ri.kind == SM_RECOMPUTE_SELECTIVE);
        sm_json_num(j, "extra_flops", ri.extra_flops);
        sm_json_int(j, "best_every_k", best_k);
        sm_json_num(j, "best_every_k_extra_flops", best);
        sm_json_obj_end(j);
        sm_plan_free(p);
    }
    sm_json_arr_end(j);
}

static void step_at(sm_json *j, int T, uint64_t budget, int threads)
{
    sm_bench_gpt2 m = sm_bench_gpt2_train(1, T, 0);
    char pol[64];
    snprintf(pol, sizeof pol, "budget:%llu", (unsigned long long)budget);
    double t0 = sm_bench_now();
    sm_plan *p = plan(&m, pol, threads);
    double plan_ms = (sm_bench_now() - t0) * 1e3;
    sm_plan_recompute_info ri;
    sm_plan_recompute(p, &ri);
    fprintf(stderr, "bench_recompute: T=%d planned in %.0f ms (every:%d, %.1f GiB); running one step...\n", T, plan_ms,
            ri.every, (double)sm_plan_estimate(p) / (1 << 30));
    sm_runtime *rt = runtime(&m, p);
    double s = sm_bench_gpt2_step(&m, rt);
    size_t rss = sm_bench_peak_rss();
    float loss;
    if (sm_runtime_get(rt, m.io.loss, &loss, sizeof loss)) sm_bench_die("bench_recompute", "loss");
    sm_json_int(j, "T", T);
    sm_json_int(j, "budget", (int64_t)budget);
    sm_json_num(j, "plan_ms", plan_ms);
    sm_json_int(j, "every", ri.every);
    sm_json_num(j, "extra_flops_share", ri.extra_flops / ri.flops);
    sm_json_int(j, "plan_estimate_bytes", (int64_t)sm_plan_estimate(p));
    sm_json_int(j, "peak_rss_bytes", (int64_t)rss);
    sm_json_num(j, "rss_over_plan", (double)rss / (double)sm_plan_estimate(p));
    sm_json_num(j, "step_seconds", s);
    sm_json_num(j, "loss", loss);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(m.g);
}

int main(int argc, char **argv)
{
    int threads = omp_get_max_threads(), at = 0;
    uint64_t budget = 16ull << 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--step-at") && i + 1 < argc) at = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--budget") && i + 1 < argc && !sm_parse_bytes(argv[i + 1], &budget)) i++;
        else {
            fprintf(stderr, "usage: bench_recompute [--step-at T [--budget BYTES]]\n");
            return 2;
        }
    }
    sm_json j;
    char cpu[128];
    sm_json_begin(&j, stdout);
    sm_json_str(&j, "bench", "recompute");
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));
    sm_json_int(&j, "threads", threads);
    if (at > 0) {
        step_at(&j, at, budget, threads);
    } else {
        sm_bench_gpt2 m = sm_bench_gpt2_train(4, 1024, 0);
        sm_json_str(&j, "model", "GPT-2 124M shape, B=4 T=1024, training");
        policies(&j, &m, threads);
        budgets(&j, &m, threads);
        step_times(&j, &m, threads);
        sm_graph_free(m.g);
    }
    sm_json_end(&j);
    return 0;
}
