/* test_plan_exec.c — the executor on packed plans: results bitwise equal to the naive plan (where
 * nothing shares memory), in debug mode (dead ranges poisoned with NaN, every read checked), over
 * repeated runs; and the debug checks themselves must catch a broken layout. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "base/rng.h"
#include "scheduler/plan.h"
#include "scheduler/runtime_debug.h"
#include "tests/plan_random_graph.h"

typedef struct result {
    float *out[8];
    size_t bytes[8];
    int n;
} result;

static void result_free(result *r)
{
    for (int i = 0; i < r->n; i++) free(r->out[i]);
}

/* Builds a runtime for g with strategy, fills the inputs from the seed, runs `runs` times and keeps
 * the outputs of the last run. */
static result run_graph(const rg_graph *rg, sm_plan_strategy strategy, bool debug, int runs, int threads)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = strategy;
    o.n_threads = 2;
    sm_plan *p;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(rg->g, &o, &p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_create(rg->g, p, &rt), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_set_threads(rt, threads), SM_OK);
    if (debug) cr_assert_eq(sm_runtime_set_debug(rt, 1), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_init_params(rt, 42), SM_OK, "%s", sm_last_error());
    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < rg->n_inputs; i++) {
            int64_t n = sm_tensor_numel(rg->g, rg->inputs[i]);
            float *x = malloc(sizeof *x * (size_t)n);
            for (int64_t j = 0; j < n; j++) x[j] = (float)sm_rng_normal(1000 + (uint64_t)i, (uint64_t)j);
            cr_assert_eq(sm_runtime_set(rt, rg->inputs[i], x, sizeof *x * (size_t)n), SM_OK);
            free(x);
        }
        cr_assert_eq(sm_runtime_run(rt), SM_OK, "%s", sm_last_error());
    }
    result res = {.n = rg->n_outputs};
    for (int i = 0; i < rg->n_outputs; i++) {
        res.bytes[i] = sizeof(float) * (size_t)sm_tensor_numel(rg->g, rg->outputs[i]);
        res.out[i] = malloc(res.bytes[i]);
        cr_assert_eq(sm_runtime_get(rt, rg->outputs[i], res.out[i], res.bytes[i]), SM_OK);
    }
    sm_runtime_free(rt);
    sm_plan_free(p);
    return res;
}

Test(plan_exec, packed_equals_naive_on_random_graphs)
{
    int compared = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rg_graph rg;
        cr_assert_eq(rg_build(&rg, seed, 10 + (int)(seed % 30)), SM_OK);
        /* one thread mostly: on a loaded 2-core machine every barrier of a 2-thread team can wait a
         * time slice; the 2-thread runs (every 8th graph) check the team kernels on packed memory */
        result a = run_graph(&rg, SM_PLAN_NAIVE, false, 1, 1);
        result b = run_graph(&rg, SM_PLAN_PACKED, true, 2, 1);
        result c = run_graph(&rg, SM_PLAN_PACKED, false, 1, seed % 8 == 0 ? 2 : 1);
        for (int i = 0; i < a.n; i++) {
            cr_assert(memcmp(a.out[i], b.out[i], a.bytes[i]) == 0, "seed %llu: output %d differs (debug packed)",
                      (unsigned long long)seed, i);
            cr_assert(memcmp(a.out[i], c.out[i], a.bytes[i]) == 0, "seed %llu: output %d differs (packed)",
                      (unsigned long long)seed, i);
            compared++;
        }
        result_free(&a);
        result_free(&b);
        result_free(&c);
        sm_graph_free(rg.g);
    }
    cr_assert_geq(compared, 40);
}

/* After a debug run, a dead activation whose range nobody reclaimed holds NaN (all-ones bytes). */
Test(plan_exec, debug_poisons_dead_ranges)
{
    sm_graph *g;
    sm_tensor x, a, b, c;
    int64_t shape[2] = {4, 16};
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_graph_input(g, "x", SM_F32, 2, shape, &x), SM_OK);
    cr_assert_eq(sm_scale(g, x, 2, "a", &a), SM_OK);
    cr_assert_eq(sm_add(g, x, a, "b", &b), SM_OK);    /* a dies here */
    cr_assert_eq(sm_scale(g, b, 3, "c", &c), SM_OK);
    cr_assert_eq(sm_graph_mark_output(g, c), SM_OK);
    sm_plan *p;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    cr_assert_eq(sm_runtime_create(g, p, &rt), SM_OK);
    cr_assert_eq(sm_runtime_set_debug(rt, 1), SM_OK, "%s", sm_last_error());
    float in[64];
    for (int i = 0; i < 64; i++) in[i] = (float)i;
    cr_assert_eq(sm_runtime_set(rt, x, in, sizeof in), SM_OK);
    cr_assert_eq(sm_runtime_run(rt), SM_OK, "%s", sm_last_error());
    float out[64];
    cr_assert_eq(sm_runtime_get(rt, c, out, sizeof out), SM_OK);
    for (int i = 0; i < 64; i++) cr_assert_eq(out[i], 3.0f * (float)(i + 2 * i));
    /* a's storage is dead and, unless c took it, poisoned */
    if (p->t[a].offset != p->t[c].offset && p->t[a].offset != p->t[p->t[c].alias != SM_NO_TENSOR ? p->t[c].alias : c].offset) {
        void *pa;
        cr_assert_eq(sm_runtime_data(rt, a, &pa), SM_OK);
        unsigned char *bytes = pa;
        for (int i = 0; i < 256; i++) cr_assert_eq(bytes[i], 0xff);
    }
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
}

/* A plan whose layout puts two live tensors on the same bytes is refused by the debug runtime
 * before it runs, and the shadow checks catch the clash step by step even when asked directly. */
Test(plan_exec, debug_catches_broken_layout)
{
    sm_graph *g;
    sm_tensor x, a, b, c;
    int64_t shape[2] = {4, 16};
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_graph_input(g, "x", SM_F32, 2, shape, &x), SM_OK);
    cr_assert_eq(sm_scale(g, x, 2, "a", &a), SM_OK);
    cr_assert_eq(sm_scale(g, x, 3, "b", &b), SM_OK);
    cr_assert_eq(sm_add(g, a, b, "c", &c), SM_OK);
    cr_assert_eq(sm_graph_mark_output(g, c), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    p->t[b].offset = p->t[a].offset;   /* b is born while a is live: b overwrites a */
    sm_runtime *rt;
    cr_assert_eq(sm_runtime_create(g, p, &rt), SM_OK);
    cr_assert_eq(sm_runtime_set_debug(rt, 1), SM_ERR_INTERNAL);
    cr_assert(strstr(sm_last_error(), "overlap"), "%s", sm_last_error());
    sm_runtime_free(rt);

    void *base[SM_ARENA_COUNT];
    for (int i = 0; i < SM_ARENA_COUNT; i++) base[i] = calloc(1, p->arena[i].size + 64);
    sm_rt_debug *d;
    cr_assert_eq(sm_rt_debug_create(g, p, base, &d), SM_OK);
    cr_assert_eq(sm_rt_debug_begin(d), SM_OK);
    sm_status s = SM_OK;
    for (int step = 0; step < p->n_steps && !s; step++) {
        s = sm_rt_debug_before(d, step);
        if (!s) sm_rt_debug_after(d, step);
    }
    cr_assert_eq(s, SM_ERR_INTERNAL);
    cr_assert(strstr(sm_last_error(), "'b' is born over 'a'"), "%s", sm_last_error());
    sm_rt_debug_free(d);
    for (int i = 0; i < SM_ARENA_COUNT; i++) free(base[i]);
    sm_plan_free(p);
    sm_graph_free(g);
}

/* A read of a range that died is named: make the plan claim a dies before c reads it. */
Test(plan_exec, debug_catches_dead_read)
{
    sm_graph *g;
    sm_tensor x, a, b, c;
    int64_t shape[2] = {4, 16};
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_graph_input(g, "x", SM_F32, 2, shape, &x), SM_OK);
    cr_assert_eq(sm_scale(g, x, 2, "a", &a), SM_OK);
    cr_assert_eq(sm_scale(g, x, 3, "b", &b), SM_OK);
    cr_assert_eq(sm_add(g, b, a, "c", &c), SM_OK);
    cr_assert_eq(sm_graph_mark_output(g, c), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    p->t[a].last = p->t[a].first;   /* wrong span: a "dies" at birth */
    void *base[SM_ARENA_COUNT];
    for (int i = 0; i < SM_ARENA_COUNT; i++) base[i] = calloc(1, p->arena[i].size + 64);
    sm_rt_debug *d;
    cr_assert_eq(sm_rt_debug_create(g, p, base, &d), SM_OK);
    cr_assert_eq(sm_rt_debug_begin(d), SM_OK);
    sm_status s = SM_OK;
    for (int step = 0; step < p->n_steps && !s; step++) {
        s = sm_rt_debug_before(d, step);
        if (!s) sm_rt_debug_after(d, step);
    }
    cr_assert_eq(s, SM_ERR_INTERNAL);
    cr_assert(strstr(sm_last_error(), "reads 'a', whose storage is dead"), "%s", sm_last_error());
    sm_rt_debug_free(d);
    for (int i = 0; i < SM_ARENA_COUNT; i++) free(base[i]);
    sm_plan_free(p);
    sm_graph_free(g);
}
