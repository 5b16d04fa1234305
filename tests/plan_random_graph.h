/* plan_random_graph.h — random DAGs for the planner's tests: chains and long-range uses of
 * elementwise ops (scale, add, mul; in-place candidates), matmul/linear (new shapes) and reshape
 * views, over f32 tensors of assorted sizes. Only ops with kernels on main are used, so the graphs
 * also run. Deterministic in the seed. */
#ifndef SM_TEST_PLAN_RANDOM_GRAPH_H
#define SM_TEST_PLAN_RANDOM_GRAPH_H

#include <stdio.h>

#include "smallmind.h"

typedef struct rg_rng {
    uint64_t s;
} rg_rng;

static inline uint64_t rg_next(rg_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline int rg_int(rg_rng *r, int lo, int hi) { return lo + (int)(rg_next(r) % (uint64_t)(hi - lo + 1)); }

#define RG_MAX 512

typedef struct rg_graph {
    sm_graph *g;
    sm_tensor pool[RG_MAX];   /* f32 tensors with 2 dims, usable as inputs of later nodes */
    int n_pool;
    sm_tensor inputs[8];
    int n_inputs;
    sm_tensor outputs[8];
    int n_outputs;
} rg_graph;

static inline int64_t rg_dim(rg_rng *r)
{
    static const int64_t dims[] = {1, 3, 4, 8, 16, 24, 32, 64, 96};
    return dims[rg_int(r, 0, (int)(sizeof dims / sizeof dims[0]) - 1)];
}

static inline sm_tensor rg_pick(rg_rng *r, const rg_graph *rg)
{
    /* mostly recent tensors (chains that die young), sometimes any (long lifetimes) */
    if (rg->n_pool > 4 && rg_int(r, 0, 9) < 6) return rg->pool[rg->n_pool - 1 - rg_int(r, 0, 3)];
    return rg->pool[rg_int(r, 0, rg->n_pool - 1)];
}

static inline void rg_shape(const sm_graph *g, sm_tensor t, int64_t ne[SM_MAX_DIMS])
{
    sm_tensor_info(g, t, NULL, NULL, NULL, NULL, ne);
}

/* A graph of about n_nodes nodes. Returns SM_OK or the first builder error (a bug in the test). */
static inline sm_status rg_build(rg_graph *rg, uint64_t seed, int n_nodes)
{
    rg_rng r = {seed * 0x2545f4914f6cdd1dull + 1};
    sm_status s = sm_graph_create(&rg->g);
    if (s) return s;
    sm_graph *g = rg->g;
    rg->n_pool = rg->n_inputs = rg->n_outputs = 0;
    char name[32];
    rg->n_inputs = rg_int(&r, 1, 3);
    for (int i = 0; i < rg->n_inputs; i++) {
        int64_t shape[2] = {rg_dim(&r), rg_dim(&r)};
        snprintf(name, sizeof name, "in%d", i);
        if ((s = sm_graph_input(g, name, SM_F32, 2, shape, &rg->inputs[i]))) return s;
        rg->pool[rg->n_pool++] = rg->inputs[i];
    }
    int n_params = 0;
    for (int k = 0; k < n_nodes && rg->n_pool < RG_MAX; k++) {
        sm_tensor x = rg_pick(&r, rg), y = SM_NO_TENSOR, out;
        int64_t ne[SM_MAX_DIMS];
        rg_shape(g, x, ne);
        int op = rg_int(&r, 0, 99);
        if (op < 22) {
            s = sm_scale(g, x, 0.5f + (float)rg_int(&r, 0, 8) * 0.125f, NULL, &out);
        } else if (op < 55) {
            /* add or mul: with another pool tensor of the same shape, else a broadcast bias param */
            for (int tries = 0; tries < 12 && y == SM_NO_TENSOR; tries++) {
                sm_tensor c = rg->pool[rg_int(&r, 0, rg->n_pool - 1)];
                int64_t nc[SM_MAX_DIMS];
                rg_shape(g, c, nc);
                if (nc[0] == ne[0] && nc[1] == ne[1]) y = c;
            }
            if (y == SM_NO_TENSOR) {
                int64_t bshape[1] = {ne[1]};
                snprintf(name, sizeof name, "p%d", n_params++);
                if ((s = sm_graph_param(g, name, SM_F32, 1, bshape, SM_INIT_NORMAL, 0.5f, &y))) return s;
            }
            s = op < 45 ? sm_add(g, x, y, NULL, &out) : sm_mul(g, x, y, NULL, &out);
        } else if (op < 80) {
            int64_t N = rg_dim(&r);
            int lin = rg_int(&r, 0, 1);
            int64_t wshape[2] = {lin ? N : ne[1], lin ? ne[1] : N};
            snprintf(name, sizeof name, "p%d", n_params++);
            if ((s = sm_graph_param(g, name, SM_F32, 2, wshape, SM_INIT_NORMAL, 0.2f, &y))) return s;
            s = lin ? sm_linear(g, x, y, SM_NO_TENSOR, NULL, &out) : sm_matmul(g, x, y, 0, 0, NULL, &out);
        } else {
            /* a view with the rows and columns regrouped */
            int64_t n = ne[0] * ne[1], c = ne[1] % 2 == 0 && rg_int(&r, 0, 1) ? ne[1] / 2 : ne[0];
            int64_t shape[2] = {n / c, c};
            s = sm_reshape(g, x, 2, shape, NULL, &out);
        }
        if (s) return s;
        rg->pool[rg->n_pool++] = out;
    }
    /* the last tensor is an output; sometimes an earlier one too (it then lives to the end) */
    rg->outputs[rg->n_outputs++] = rg->pool[rg->n_pool - 1];
    if (rg->n_pool > 6 && rg_int(&r, 0, 2) == 0) rg->outputs[rg->n_outputs++] = rg->pool[rg_int(&r, 0, rg->n_pool - 2)];
    for (int i = 0; i < rg->n_outputs; i++)
        if ((s = sm_graph_mark_output(g, rg->outputs[i]))) return s;
    return SM_OK;
}

#endif
