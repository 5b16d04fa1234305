/* bench_plan.c — the memory planner on the model graphs: for each config and mode, every arena's
 * naive size (no reuse), planned size and lower bound (max bytes live at one step), what each
 * packer reached, and the planning time (median of repeated sm_plan_create calls, graph already
 * built). Prints JSON. Targets (DESIGN.md): activations <= 1.05 x lower bound, planning < 50 ms.
 *
 *   ./build/bench_plan            all configs
 *   ./build/bench_plan --reps N   planning time over N plans (default 21) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "smallmind.h"

typedef struct config {
    const char *name;
    sm_gpt_config c;
} config;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static sm_status build(const config *cf, int training, sm_graph **g)
{
    /* inference: the generation graph (no targets or loss; the logits are the output) */
    sm_gpt_tensors io;
    sm_gpt_config c = cf->c;
    c.with_loss = training;
    sm_status s = sm_graph_create(g);
    if (!s) s = sm_gpt_build(*g, &c, &io);
    if (!s && training) {
        /* forward, backward, one AdamW step with the default settings (clipping on) */
        sm_adamw_config cfg;
        sm_adamw_tensors opt;
        sm_adamw_config_default(&cfg);
        s = sm_graph_backward(*g, io.loss);
        if (!s) s = sm_graph_adamw(*g, &cfg, &opt);
    }
    if (s) {
        sm_graph_free(*g);
        *g = NULL;
    }
    return s;
}

static void arena_json(const sm_plan *naive, const sm_plan *p, sm_arena_id a, int last)
{
    sm_plan_arena_info in, ip;
    sm_plan_arena_stats(naive, a, &in);
    sm_plan_arena_stats(p, a, &ip);
    printf("        \"%s\": {\"naive\": %llu, \"planned\": %llu, \"lower_bound\": %llu, \"ratio\": %.4f", sm_arena_name(a),
           (unsigned long long)in.size, (unsigned long long)ip.size, (unsigned long long)ip.lower_bound,
           ip.lower_bound ? (double)ip.size / (double)ip.lower_bound : 1.0);
    if (ip.n_packers) {
        printf(", \"chosen\": \"%s\", \"packers\": {", ip.packer_name[ip.chosen]);
        for (int k = 0; k < ip.n_packers; k++)
            printf("%s\"%s\": %llu", k ? ", " : "", ip.packer_name[k], (unsigned long long)ip.packer_size[k]);
        printf("}");
    }
    printf("}%s\n", last ? "" : ",");
}

static void run(const config *cf, int training, int reps, int last)
{
    sm_graph *g;
    printf("    {\"config\": \"%s\", \"mode\": \"%s\", \"L\": %d, \"C\": %d, \"H\": %d, \"V\": %d, \"B\": %d, \"T\": %d, ",
           cf->name, training ? "training" : "inference", cf->c.n_layer, cf->c.n_embd, cf->c.n_head, cf->c.vocab,
           cf->c.batch, cf->c.seq);
    if (build(cf, training, &g)) {
        printf("\"error\": \"%s\"}%s\n", sm_last_error(), last ? "" : ",");
        return;
    }
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = SM_PLAN_NAIVE;
    sm_plan *naive, *p = NULL;
    if (sm_plan_create(g, &o, &naive)) {
        printf("\"error\": \"%s\"}%s\n", sm_last_error(), last ? "" : ",");
        sm_graph_free(g);
        return;
    }
    o.strategy = SM_PLAN_PACKED;
    double *ms = malloc(sizeof *ms * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        sm_plan_free(p);
        double t0 = omp_get_wtime();
        sm_plan_create(g, &o, &p);
        ms[r] = (omp_get_wtime() - t0) * 1e3;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    printf("\"nodes\": %d, \"tensors\": %d, \"plan_ms_median\": %.3f, \"plan_ms_min\": %.3f, \"plan_ms_max\": %.3f,\n",
           sm_graph_node_count(g), sm_graph_tensor_count(g), ms[reps / 2], ms[0], ms[reps - 1]);
    printf("      \"total\": {\"naive\": %llu, \"planned\": %llu},\n      \"arenas\": {\n",
           (unsigned long long)sm_plan_total_bytes(naive), (unsigned long long)sm_plan_total_bytes(p));
    for (int a = 0; a < SM_ARENA_COUNT; a++) arena_json(naive, p, (sm_arena_id)a, a + 1 == SM_ARENA_COUNT);
    printf("      }}%s\n", last ? "" : ",");
    free(ms);
    sm_plan_free(p);
    sm_plan_free(naive);
    sm_graph_free(g);
}

int main(int argc, char **argv)
{
    int reps = 21;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_plan [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    config cfs[3];
    sm_gpt_config_default(&cfs[0].c);   /* L=6 C=384 H=6 V=256 T=256 B=8 */
    cfs[0].name = "gpt";
    sm_gpt_config g2 = {.vocab = 50257, .context = 1024, .n_layer = 12, .n_head = 12, .n_embd = 768, .mlp_ratio = 4,
                        .tied_embeddings = 1, .batch = 4, .seq = 64, .with_loss = 1};
    cfs[1] = (config){"gpt2-124M", g2};
    g2.batch = 1;
    g2.seq = 1024;
    cfs[2] = (config){"gpt2-124M", g2};
    printf("{\n  \"bench\": \"plan\",\n  \"threads\": %d,\n  \"reps\": %d,\n  \"runs\": [\n", omp_get_max_threads(), reps);
    for (int k = 0; k < 3; k++)
        for (int training = 1; training >= 0; training--) run(&cfs[k], training, reps, k == 2 && training == 0);
    printf("  ]\n}\n");
    return 0;
}
