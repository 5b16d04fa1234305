/* test_plan_props.c — properties of the memory planner on random graphs, each checked by code that
 * does not share the planner's reasoning:
 *   - a memory simulation: walk the order stamping every 64-byte block with the tensor that last
 *     wrote it; every read must find its own data (so no live tensor was overwritten), and outputs
 *     and inputs must survive to the end;
 *   - the lower bound recomputed from the spans; achieved >= bound;
 *   - the kept layout is the smallest packer's and never above in-order best fit;
 *   - every packer's layout alone passes the same checks and sm_plan_validate;
 *   - in-place reuse happens exactly where the rules allow, on hand-built graphs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "scheduler/plan.h"
#include "tests/plan_random_graph.h"

/* The tensor whose bytes u shows: views show their source's data, followed to a non-view. */
static sm_tensor data_of(const sm_graph *g, sm_tensor u)
{
    while (g->t[u].node >= 0 && g->nodes[g->t[u].node].op == SM_OP_RESHAPE) u = g->nodes[g->t[u].node].in[0];
    return u;
}

typedef struct stamps {
    int32_t *b[SM_ARENA_COUNT];
} stamps;

static void stamp(stamps *st, const sm_plan *p, sm_tensor t, int32_t who)
{
    const sm_plan_tensor *pt = &p->t[t];
    for (uint64_t b = pt->offset / 64; b < (pt->offset + pt->bytes + 63) / 64; b++) st->b[pt->arena][b] = who;
}

static void expect_stamp(const stamps *st, const sm_plan *p, const sm_graph *g, sm_tensor t, int step, const char *ctx)
{
    const sm_plan_tensor *pt = &p->t[t];
    int32_t want = data_of(g, t);
    for (uint64_t b = pt->offset / 64; b < (pt->offset + pt->bytes + 63) / 64; b++)
        cr_assert_eq(st->b[pt->arena][b], want, "%s: step %d: '%s' block %llu holds '%s', not '%s'", ctx, step,
                     g->t[t].name, (unsigned long long)b, st->b[pt->arena][b] >= 0 ? g->t[st->b[pt->arena][b]].name : "-",
                     g->t[want].name);
}

/* Runs the plan's order on stamps instead of data. */
static void simulate(const sm_plan *p, const sm_graph *g, const char *ctx)
{
    stamps st;
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        size_t nb = (size_t)(p->arena[a].size / 64 + 1);
        st.b[a] = malloc(sizeof(int32_t) * nb);
        for (size_t i = 0; i < nb; i++) st.b[a][i] = -1;
    }
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].node < 0) stamp(&st, p, i, i);   /* leaves: set by the caller or persistent */
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        for (int i = 0; i < n->n_in; i++) expect_stamp(&st, p, g, n->in[i], s, ctx);
        if (n->op != SM_OP_RESHAPE) stamp(&st, p, n->out, n->out);
    }
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].is_output || g->t[i].node < 0) expect_stamp(&st, p, g, i, p->n_steps, ctx);
    for (int a = 0; a < SM_ARENA_COUNT; a++) free(st.b[a]);
}

static uint64_t bound_of(const sm_plan *p, int a)
{
    uint64_t best = 0;
    for (int s = 0; s < (p->n_steps ? p->n_steps : 1); s++) {
        uint64_t live = 0;
        for (int i = 0; i < p->n_tensors; i++)
            if (p->t[i].arena == a && p->t[i].alias == SM_NO_TENSOR && p->t[i].first <= s && s <= p->t[i].last)
                live += (p->t[i].bytes + 63) / 64 * 64;
        if (live > best) best = live;
    }
    return best;
}

static sm_plan *plan_with(const sm_graph *g, sm_plan_strategy strategy, int force)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = strategy;
    o.n_threads = 2;
    sm_plan *p;
    cr_assert_eq(sm_plan_build(g, &o, (sm_rc_choice){0, false}, force, &p), SM_OK, "%s", sm_last_error());
    return p;
}

Test(plan_props, random_graphs)
{
    int n_inplace = 0, n_views = 0;
    for (uint64_t seed = 1; seed <= 170; seed++) {   /* 150 small graphs, 20 of 300 nodes */
        rg_graph rg;
        cr_assert_eq(rg_build(&rg, seed, seed <= 150 ? 10 + (int)(seed % 50) : 300), SM_OK, "seed %llu: %s", (unsigned long long)seed,
                     sm_last_error());
        char ctx[64];
        sm_plan *p;
        cr_assert_eq(sm_plan_create(rg.g, NULL, &p), SM_OK, "%s", sm_last_error());
        snprintf(ctx, sizeof ctx, "seed %llu packed", (unsigned long long)seed);
        cr_assert_eq(sm_plan_validate(p, rg.g), SM_OK, "%s: %s", ctx, sm_last_error());
        simulate(p, rg.g, ctx);
        const sm_plan_arena *act = &p->arena[SM_ARENA_ACT];
        cr_assert_eq(act->lower_bound, bound_of(p, SM_ARENA_ACT), "%s", ctx);
        cr_assert_geq(act->size, act->lower_bound, "%s", ctx);
        uint64_t min = UINT64_MAX;
        for (int k = 0; k < SM_PACK_COUNT; k++) min = act->packed[k] < min ? act->packed[k] : min;
        cr_assert_eq(act->size, min, "%s: kept %llu, smallest packer %llu", ctx, (unsigned long long)act->size,
                     (unsigned long long)min);
        cr_assert_eq(act->size, act->packed[act->chosen], "%s", ctx);
        cr_assert_leq(act->size, act->packed[SM_PACK_BESTFIT_INORDER], "%s", ctx);
        cr_assert_leq(act->size, act->naive, "%s", ctx);
        /* persistent arenas: everything end to end, which is also their bound */
        cr_assert_eq(p->arena[SM_ARENA_PARAMS].size, bound_of(p, SM_ARENA_PARAMS), "%s", ctx);
        n_inplace += p->n_inplace;
        for (int i = 0; i < rg.g->n_t; i++) n_views += p->t[i].alias != SM_NO_TENSOR && !p->t[i].inplace;

        for (int k = 0; k < SM_PACK_COUNT; k++) {
            sm_plan *q = plan_with(rg.g, SM_PLAN_PACKED, k);
            snprintf(ctx, sizeof ctx, "seed %llu %s", (unsigned long long)seed, sm_packer_name(k));
            cr_assert_eq(q->arena[SM_ARENA_ACT].size, act->packed[k], "%s", ctx);
            cr_assert_eq(sm_plan_validate(q, rg.g), SM_OK, "%s: %s", ctx, sm_last_error());
            simulate(q, rg.g, ctx);
            sm_plan_free(q);
        }
        sm_plan *nv = plan_with(rg.g, SM_PLAN_NAIVE, -1);
        snprintf(ctx, sizeof ctx, "seed %llu naive", (unsigned long long)seed);
        cr_assert_eq(sm_plan_validate(nv, rg.g), SM_OK, "%s: %s", ctx, sm_last_error());
        simulate(nv, rg.g, ctx);
        cr_assert_eq(nv->arena[SM_ARENA_ACT].size, act->naive, "%s", ctx);
        sm_plan_free(nv);
        sm_plan_free(p);
        sm_graph_free(rg.g);
    }
    /* the generator must exercise what it claims to */
    cr_assert_gt(n_inplace, 50, "only %d in-place reuses over all graphs", n_inplace);
    cr_assert_gt(n_views, 50, "only %d views over all graphs", n_views);
}

/* The validator and the debug runtime must be able to fail: corrupt a good plan. */
Test(plan_props, validator_catches_overlap)
{
    rg_graph rg;
    cr_assert_eq(rg_build(&rg, 7, 40), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(rg.g, NULL, &p), SM_OK);
    /* find two roots in the activation arena live at the same step and stack them */
    int a = -1, b = -1;
    for (int i = 0; i < p->n_tensors && b < 0; i++)
        for (int j = i + 1; j < p->n_tensors && b < 0; j++) {
            const sm_plan_tensor *x = &p->t[i], *y = &p->t[j];
            if (x->arena == SM_ARENA_ACT && y->arena == SM_ARENA_ACT && x->alias == SM_NO_TENSOR &&
                y->alias == SM_NO_TENSOR && x->first <= y->last && y->first <= x->last && x->offset != y->offset) {
                a = i;
                b = j;
            }
        }
    cr_assert_geq(b, 0);
    p->t[b].offset = p->t[a].offset;
    cr_assert_eq(sm_plan_validate(p, rg.g), SM_ERR_INTERNAL);
    cr_assert(strstr(sm_last_error(), "overlap"), "%s", sm_last_error());
    sm_plan_free(p);
    sm_graph_free(rg.g);
}

/* ---- in-place rules on small hand-built graphs ---- */

typedef struct hand {
    sm_graph *g;
    sm_tensor x;
} hand;

static hand hand_new(void)
{
    hand h;
    int64_t shape[2] = {8, 16};
    cr_assert_eq(sm_graph_create(&h.g), SM_OK);
    cr_assert_eq(sm_graph_input(h.g, "x", SM_F32, 2, shape, &h.x), SM_OK);
    return h;
}

static sm_plan *plan_of(const sm_graph *g)
{
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_plan_validate(p, g), SM_OK, "%s", sm_last_error());
    simulate(p, g, "hand");
    return p;
}

Test(plan_props, inplace_chain)
{
    hand h = hand_new();
    sm_tensor a, b, c;
    cr_assert_eq(sm_scale(h.g, h.x, 2, "a", &a), SM_OK);
    cr_assert_eq(sm_scale(h.g, a, 2, "b", &b), SM_OK);
    cr_assert_eq(sm_scale(h.g, b, 2, "c", &c), SM_OK);
    cr_assert_eq(sm_graph_mark_output(h.g, c), SM_OK);
    sm_plan *p = plan_of(h.g);
    cr_assert_eq(p->t[a].alias, SM_NO_TENSOR, "a must not take the input's storage");
    cr_assert_eq(p->t[b].alias, a);
    cr_assert_eq(p->t[c].alias, a, "a chain keeps one root");
    cr_assert(p->t[b].inplace && p->t[c].inplace);
    cr_assert_eq(p->t[a].last, p->n_steps - 1, "the root lives as long as the output sharing it");
    cr_assert_eq(p->arena[SM_ARENA_ACT].size, 2 * 8 * 16 * 4);
    sm_plan_free(p);
    sm_graph_free(h.g);
}

Test(plan_props, inplace_refused_when_input_lives_on)
{
    hand h = hand_new();
    sm_tensor a, b, c, d, v, e, f;
    cr_assert_eq(sm_scale(h.g, h.x, 2, "a", &a), SM_OK);
    cr_assert_eq(sm_scale(h.g, a, 2, "b", &b), SM_OK);      /* a is read again by c: no */
    cr_assert_eq(sm_add(h.g, b, a, "c", &c), SM_OK);        /* b dies here, a is another root: yes */
    cr_assert_eq(sm_add(h.g, c, c, "d", &d), SM_OK);        /* input 1 is the same storage: no */
    int64_t shape[2] = {16, 8};
    cr_assert_eq(sm_reshape(h.g, d, 2, shape, "v", &v), SM_OK);
    cr_assert_eq(sm_scale(h.g, d, 2, "e", &e), SM_OK);      /* d's view v is read later: no */
    cr_assert_eq(sm_scale(h.g, v, 2, "f", &f), SM_OK);      /* v (a view) is input 0; its root d dies: yes */
    cr_assert_eq(sm_graph_mark_output(h.g, f), SM_OK);
    cr_assert_eq(sm_graph_mark_output(h.g, e), SM_OK);
    sm_plan *p = plan_of(h.g);
    cr_assert_eq(p->t[b].alias, SM_NO_TENSOR);
    cr_assert_eq(p->t[c].alias, b);
    cr_assert_eq(p->t[d].alias, SM_NO_TENSOR);
    cr_assert_eq(p->t[v].alias, d);
    cr_assert(!p->t[v].inplace);
    cr_assert_eq(p->t[e].alias, SM_NO_TENSOR);
    cr_assert_eq(p->t[f].alias, d, "f takes the storage of its input's root");
    sm_plan_free(p);
    sm_graph_free(h.g);
}

Test(plan_props, inplace_never_into_params_inputs_or_outputs)
{
    hand h = hand_new();
    sm_tensor w, a, b, c;
    int64_t shape[2] = {8, 16};
    cr_assert_eq(sm_graph_param(h.g, "w", SM_F32, 2, shape, SM_INIT_ONES, 0, &w), SM_OK);
    cr_assert_eq(sm_scale(h.g, w, 2, "a", &a), SM_OK);      /* a parameter: no */
    cr_assert_eq(sm_scale(h.g, h.x, 2, "b", &b), SM_OK);    /* an input: no */
    cr_assert_eq(sm_graph_mark_output(h.g, b), SM_OK);
    cr_assert_eq(sm_add(h.g, b, a, "c", &c), SM_OK);        /* an output: no */
    cr_assert_eq(sm_graph_mark_output(h.g, c), SM_OK);
    sm_plan *p = plan_of(h.g);
    cr_assert_eq(p->n_inplace, 0);
    sm_plan_free(p);
    sm_graph_free(h.g);
}

Test(plan_props, naive_strategy_reuses_nothing)
{
    rg_graph rg;
    cr_assert_eq(rg_build(&rg, 3, 30), SM_OK);
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = SM_PLAN_NAIVE;
    sm_plan *p;
    cr_assert_eq(sm_plan_create(rg.g, &o, &p), SM_OK);
    uint64_t sum = 0;
    for (int i = 0; i < rg.g->n_t; i++)
        if (p->t[i].arena == SM_ARENA_ACT && p->t[i].alias == SM_NO_TENSOR) sum += (p->t[i].bytes + 63) / 64 * 64;
    cr_assert_eq(p->arena[SM_ARENA_ACT].size, sum);
    cr_assert_eq(p->n_inplace, 0);
    sm_plan_free(p);
    sm_graph_free(rg.g);
}

/* The optimizer updates parameters in place: a node reading a parameter after its update would see
 * the new values, so the validator refuses such an order. */
Test(plan_props, validator_orders_in_place_updates_last)
{
    hand h = hand_new();
    sm_tensor w, y, loss, late;
    int64_t ws[2] = {4, 16};
    cr_assert_eq(sm_graph_param(h.g, "w", SM_F32, 2, ws, SM_INIT_NORMAL, 0.1f, &w), SM_OK);
    cr_assert_eq(sm_linear(h.g, h.x, w, SM_NO_TENSOR, "y", &y), SM_OK);
    cr_assert_eq(sm_mean(h.g, y, -1, "loss", &loss), SM_OK);
    cr_assert_eq(sm_graph_set_loss(h.g, loss), SM_OK);
    cr_assert_eq(sm_graph_backward(h.g, loss), SM_OK, "%s", sm_last_error());
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    sm_adamw_config_default(&ac);
    cr_assert_eq(sm_graph_adamw(h.g, &ac, &opt), SM_OK, "%s", sm_last_error());
    sm_plan *p = plan_of(h.g);
    sm_plan_free(p);
    cr_assert_eq(sm_scale(h.g, w, 2, "late", &late), SM_OK);
    cr_assert_eq(sm_graph_mark_output(h.g, late), SM_OK);
    cr_assert_eq(sm_plan_create(h.g, NULL, &p), SM_OK);
    cr_assert_eq(sm_plan_validate(p, h.g), SM_ERR_INTERNAL);
    cr_assert(strstr(sm_last_error(), "updates its inputs in place, but node 'late' reads 'w'"), "%s", sm_last_error());
    sm_plan_free(p);
    sm_graph_free(h.g);
}
