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

static void die(const char *what)
{
    fprintf(stderr, "bench_lm_head: %s: %s\n", what, sm_last_error());
    exit(1);
}

typedef struct model {
    sm_graph *g;
    sm_gpt_tensors io;
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    int B, T;
} model;

static model gpt2(int B, int T, int full_logits)
{
    model m = {.B = B, .T = T};
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 50257, c.context = T > 1024 ? T : 1024, c.n_layer = 12, c.n_head = 12, c.n_embd = 768;
    c.batch = B, c.seq = T, c.full_logits = full_logits;
    sm_adamw_config_default(&m.ac);
    if (sm_graph_create(&m.g) || sm_gpt_build(m.g, &c, &m.io) || sm_graph_backward(m.g, m.io.loss) ||
        sm_graph_adamw(m.g, &m.ac, &m.opt))
        die("building");
    return m;
}

static sm_plan *plan(const model *m, const char *policy)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    if (sm_recompute_parse(policy, &o.recompute)) die(policy);
    sm_plan *p;
    if (sm_plan_create(m->g, &o, &p)) die("planning");
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
                model m = gpt2(shapes[s][0], shapes[s][1], full);
                sm_plan *p = plan(&m, pol[k]);
                sm_plan_arena_info a;
                if (sm_plan_arena_stats(p, SM_ARENA_ACT, &a)) die("arena");
                act[full] = a.size;
                if (sm_plan_arena_stats(p, SM_ARENA_WORK, &a)) die("arena");
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

static double step(const model *m, sm_runtime *rt, float *loss)
{
    size_t n = (size_t)m->B * (size_t)m->T;
    int32_t *ids = malloc(sizeof *ids * n);
    if (!ids) die("memory");
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((i * 2654435761u) % 50257);
    float hp[SM_ADAMW_HPARAMS];
    sm_adamw_hparams(&m->ac, 0, hp);
    if (sm_runtime_set(rt, m->io.tokens, ids, sizeof *ids * n) || sm_runtime_set(rt, m->io.targets, ids, sizeof *ids * n) ||
        sm_runtime_set(rt, m->opt.hparams, hp, sizeof hp))
        die("inputs");
    free(ids);
    double t0 = sm_bench_now();
    if (sm_runtime_run(rt)) die("run");
    double s = sm_bench_now() - t0;
    if (sm_runtime_get(rt, m->io.loss, loss, sizeof *loss)) die("loss");
    return s;
}

/* Both runtimes exist at once (the bench needs the two plans' memory together). The weights start
 * from the same seed, and each timed step is the first optimizer step again: the steps of one model
 * change its weights, so only the warm-up's loss is compared. */
static void timing(sm_json *j, int B, int T)
{
    model m[2];
    sm_plan *p[2];
    sm_runtime *rt[2];
    double best[2] = {1e30, 1e30};
    float loss[2];
    for (int f = 0; f < 2; f++) {
        m[f] = gpt2(B, T, f);
        p[f] = plan(&m[f], "none");
        if (sm_runtime_create(m[f].g, p[f], &rt[f]) || sm_runtime_init_params(rt[f], 1)) die("runtime");
        step(&m[f], rt[f], &loss[f]);   /* warm-up: page faults, caches */
    }
    for (int r = 0; r < 2; r++)
        for (int f = 0; f < 2; f++) {
            float l;
            double s = step(&m[f], rt[f], &l);
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
