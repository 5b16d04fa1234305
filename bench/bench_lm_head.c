/* bench_lm_head.c — the fused LM head (lm_head_ce) against linear + cross_entropy on the GPT-2 124M
 * shape, as JSON.
 *
 *   bench_lm_head [--time B T]
 *     memory: for B=1 at T = 1k..32k and B=4 T=1024, the training plan's activation and workspace arenas
 *             fused and unfused, without recompute and with sqrt (plans only: nothing is allocated);
 *     time:   one training step fused and unfused at B, T (default 4 x 1024), side by side: one warm-up
 *             each, then two timed steps in turn, the best kept; the losses (bitwise equal) are printed.
 * Reproduce: docs/PERFORMANCE.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "smallmind.h"

static sm_plan *plan(const sm_bench_gpt2 *m, const char *policy)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    if (sm_recompute_parse(policy, &o.recompute)) sm_bench_die("bench_lm_head", policy);
    sm_plan *p;
    if (sm_plan_create(m->g, &o, &p)) sm_bench_die("bench_lm_head", "planning");
    return p;
}

static void memory(sm_json *j)
{
    static const int shapes[][2] = {{1, 1024}, {1, 4096}, {1, 16384}, {1, 32768}, {4, 1024}};
    static const char *const pol[] = {"none", "sqrt"};
    sm_json_arr(j, "memory");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int k = 0; k < 2; k++) {
            uint64_t act[2], work[2], total[2];
            for (int full = 0; full < 2; full++) {
                sm_bench_gpt2 m = sm_bench_gpt2_train(shapes[s][0], shapes[s][1], full);
                sm_plan *p = plan(&m, pol[k]);
                sm_plan_arena_info a;
                if (sm_plan_arena_stats(p, SM_ARENA_ACT, &a)) sm_bench_die("bench_lm_head", "arena");
                act[full] = a.size;
                if (sm_plan_arena_stats(p, SM_ARENA_WORK, &a)) sm_bench_die("bench_lm_head", "arena");
                work[full] = a.size;
                total[full] = sm_plan_estimate(p);
                sm_plan_free(p);
                sm_graph_free(m.g);
            }
            sm_json_obj(j, NULL);
            sm_json_int(j, "B", shapes[s][0]);
            sm_json_int(j, "T", shapes[s][1]);
            sm_json_str(j, "recompute", pol[k]);
            sm_json_int(j, "unfused_activations", (int64_t)act[1]);
            sm_json_int(j, "fused_activations", (int64_t)act[0]);
            sm_json_int(j, "unfused_workspace", (int64_t)work[1]);
            sm_json_int(j, "fused_workspace", (int64_t)work[0]);
            sm_json_int(j, "unfused_plan_total", (int64_t)total[1]);
            sm_json_int(j, "fused_plan_total", (int64_t)total[0]);
            sm_json_num(j, "total_ratio", (double)total[1] / (double)total[0]);
            sm_json_obj_end(j);
        }
    sm_json_arr_end(j);
}

/* Both runtimes exist at once (the bench needs the two plans' memory together). The weights start
 * from the same seed, and each timed step is the first optimizer step again: the steps of one model
 * change its weights, so only the warm-up's loss is compared. */
static void timing(sm_json *j, int B, int T)
{
    sm_bench_gpt2 m[2];
    sm_plan *p[2];
    sm_runtime *rt[2];
    double best[2] = {1e30, 1e30};
    float loss[2];
    for (int f = 0; f < 2; f++) {
        m[f] = sm_bench_gpt2_train(B, T, f);
        p[f] = plan(&m[f], "none");
        if (sm_runtime_create(m[f].g, p[f], &rt[f]) || sm_runtime_init_params(rt[f], 1)) sm_bench_die("bench_lm_head", "runtime");
        sm_bench_gpt2_step(&m[f], rt[f]);   /* warm-up: page faults, caches */
        if (sm_runtime_get(rt[f], m[f].io.loss, &loss[f], sizeof loss[f])) sm_bench_die("bench_lm_head", "loss");
    }
    for (int r = 0; r < 2; r++)
        for (int f = 0; f < 2; f++) {
            double s = sm_bench_gpt2_step(&m[f], rt[f]);
            if (s < best[f]) best[f] = s;
        }
    sm_json_obj(j, "step");
    sm_json_int(j, "B", B);
    sm_json_int(j, "T", T);
    sm_json_num(j, "fused_seconds", best[0]);
    sm_json_num(j, "unfused_seconds", best[1]);
    sm_json_num(j, "fused_over_unfused", best[0] / best[1]);
    sm_json_num(j, "fused_loss", loss[0]);
    sm_json_num(j, "unfused_loss", loss[1]);
    sm_json_bool(j, "losses_bitwise_equal", memcmp(&loss[0], &loss[1], sizeof(float)) == 0);
    sm_json_obj_end(j);
    for (int f = 0; f < 2; f++) {
        sm_runtime_free(rt[f]);
        sm_plan_free(p[f]);
        sm_graph_free(m[f].g);
    }
}

int main(int argc, char **argv)
{
    int B = 4, T = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--time") && i + 2 < argc) {
            B = atoi(argv[i + 1]);
            T = atoi(argv[i + 2]);
            i += 2;
        } else {
            fprintf(stderr, "usage: bench_lm_head [--time B T]\n");
            return 2;
        }
    }
    if (B < 1 || T < 1) {
        fprintf(stderr, "bench_lm_head: --time needs B >= 1 and T >= 1\n");
        return 2;
    }
    sm_json j;
    sm_json_begin(&j, stdout);
    memory(&j);
    timing(&j, B, T);
    sm_json_end(&j);
    return 0;
}
