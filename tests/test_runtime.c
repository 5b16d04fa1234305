/* test_runtime.c — the executor on the naive plan: inputs, parameters, outputs, state errors. */
#include <criterion/criterion.h>
#include <string.h>

#include "smallmind.h"

Test(runtime, runs_and_reports_state_errors)
{
    sm_graph *g;
    sm_graph_create(&g);
    int64_t sx[2] = {3, 5}, sb[1] = {5};
    sm_tensor x, b, y;
    sm_graph_input(g, "x", SM_F32, 2, sx, &x);
    sm_graph_param(g, "b", SM_F32, 1, sb, SM_INIT_ONES, 0, &b);
    cr_assert_eq(sm_add(g, x, b, "y", &y), SM_OK);
    sm_graph_mark_output(g, y);
    sm_plan *p;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    cr_assert_eq(sm_runtime_create(g, p, &rt), SM_OK);
    cr_assert_eq(sm_runtime_init_params(rt, 7), SM_OK);
    float in[15], out[15];
    for (int i = 0; i < 15; i++) in[i] = (float)i;
    cr_assert_eq(sm_runtime_run(rt), SM_ERR_STATE, "inputs must be set first");
    cr_assert(strstr(sm_last_error(), "'x'"));
    cr_assert_eq(sm_runtime_set(rt, x, in, 8), SM_ERR_INVALID_ARG, "wrong byte count");
    cr_assert_eq(sm_runtime_set(rt, x, in, sizeof in), SM_OK);
    cr_assert_eq(sm_runtime_run(rt), SM_OK);
    cr_assert_eq(sm_runtime_get(rt, y, out, sizeof out), SM_OK);
    for (int i = 0; i < 15; i++) cr_assert_eq(out[i], in[i] + 1.0f);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
}

Test(runtime, init_is_deterministic_and_keyed_by_name)
{
    float a[64], b[64], c[64];
    for (int round = 0; round < 3; round++) {
        sm_graph *g;
        sm_graph_create(&g);
        int64_t s[1] = {64};
        sm_tensor w, other;
        /* round 2 adds another parameter first: w's values must not change */
        if (round == 2) sm_graph_param(g, "other", SM_F32, 1, s, SM_INIT_NORMAL, 1, &other);
        sm_graph_param(g, "w", SM_F32, 1, s, SM_INIT_NORMAL, 0.5f, &w);
        sm_plan *p;
        sm_runtime *rt;
        sm_plan_create(g, NULL, &p);
        sm_runtime_create(g, p, &rt);
        sm_runtime_init_params(rt, round == 1 ? 99 : 5);
        sm_runtime_get(rt, w, round == 0 ? a : round == 1 ? b : c, sizeof a);
        sm_runtime_free(rt);
        sm_plan_free(p);
        sm_graph_free(g);
    }
    cr_assert(memcmp(a, c, sizeof a) == 0);
    cr_assert(memcmp(a, b, sizeof a) != 0, "another seed gives other values");
    double m = 0, v = 0;
    for (int i = 0; i < 64; i++) m += a[i] / 64.0;
    for (int i = 0; i < 64; i++) v += (a[i] - m) * (a[i] - m) / 63.0;
    cr_assert(v > 0.25 * 0.4 && v < 0.25 * 2.0, "std ~0.5, var %g", v);
}

/* x [3,4] · wᵀ, w [out,4]: a weight the bf16 policy stores in 16 bits in an inference plan. */
static sm_runtime *linear_runtime(sm_graph **g, sm_plan **p, int64_t out, const char *wname, sm_precision prec,
                                  uint64_t seed)
{
    int64_t sx[2] = {3, 4}, sw[2] = {out, 4};
    sm_tensor x, w, y;
    cr_assert_eq(sm_graph_create(g), SM_OK);
    sm_graph_input(*g, "x", SM_F32, 2, sx, &x);
    sm_graph_param(*g, wname, SM_F32, 2, sw, SM_INIT_NORMAL, 0.5f, &w);
    cr_assert_eq(sm_linear(*g, x, w, SM_NO_TENSOR, "y", &y), SM_OK, "%s", sm_last_error());
    sm_graph_mark_output(*g, y);
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.precision = prec;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(*g, &po, p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_create(*g, *p, &rt), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_init_params(rt, seed), SM_OK);
    return rt;
}

static void weights_of(sm_runtime *rt, float out[20])
{
    sm_tensor w;
    cr_assert_eq(sm_graph_find(sm_runtime_graph(rt), "w", &w), SM_OK);
    cr_assert_eq(sm_runtime_get(rt, w, out, 20 * sizeof(float)), SM_OK);
}

/* Parameters by name, as get/set see them: f32 to f32 bit for bit; into a plan that stores the weight
 * in bf16 and back out of it, rounded once; a missing or differently shaped one is refused by name. */
Test(runtime, copy_params_by_name)
{
    sm_graph *ga, *gb, *gc, *gd, *ge;
    sm_plan *pa, *pb, *pc, *pd, *pe;
    sm_runtime *a = linear_runtime(&ga, &pa, 5, "w", SM_PRECISION_FP32, 1),
               *b = linear_runtime(&gb, &pb, 5, "w", SM_PRECISION_FP32, 2),
               *c = linear_runtime(&gc, &pc, 5, "w", SM_PRECISION_BF16, 3),
               *d = linear_runtime(&gd, &pd, 6, "w", SM_PRECISION_FP32, 4),
               *e = linear_runtime(&ge, &pe, 5, "v", SM_PRECISION_FP32, 5);
    sm_dtype stored;
    cr_assert_eq(sm_runtime_storage(c, 1, &stored), SM_OK);
    cr_assert_eq(stored, SM_BF16, "the bf16 inference plan stores the weight in bf16");
    float wa[20], wb[20], wc[20];
    weights_of(a, wa);
    weights_of(b, wb);
    cr_assert(memcmp(wa, wb, sizeof wa) != 0, "different seeds, different weights");
    cr_assert_eq(sm_runtime_copy_params(b, a), SM_OK, "%s", sm_last_error());
    weights_of(b, wb);
    cr_assert(memcmp(wa, wb, sizeof wa) == 0, "f32 to f32: the same bits");
    cr_assert_eq(sm_runtime_copy_params(c, a), SM_OK, "%s", sm_last_error());
    weights_of(c, wc);
    for (int i = 0; i < 20; i++) {
        uint32_t u;
        memcpy(&u, &wa[i], 4);
        u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;   /* round to nearest-even bf16 (finite values) */
        float want;
        memcpy(&want, &u, 4);
        cr_assert_eq(wc[i], want, "w[%d]: %g stored as bf16 reads %g, not %g", i, wa[i], wc[i], want);
    }
    cr_assert_eq(sm_runtime_copy_params(b, c), SM_OK, "%s", sm_last_error());
    weights_of(b, wb);
    cr_assert(memcmp(wb, wc, sizeof wb) == 0, "out of bf16 storage: the rounded values");
    cr_assert_eq(sm_runtime_copy_params(d, a), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "'w' is f32 with 20 values in the source, the model needs f32 with 24"), "%s",
              sm_last_error());
    cr_assert_eq(sm_runtime_copy_params(e, a), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "the source has no tensor 'v'"), "%s", sm_last_error());
    sm_runtime *rts[] = {a, b, c, d, e};
    sm_plan *ps[] = {pa, pb, pc, pd, pe};
    sm_graph *gs[] = {ga, gb, gc, gd, ge};
    for (int i = 0; i < 5; i++) sm_runtime_free(rts[i]), sm_plan_free(ps[i]), sm_graph_free(gs[i]);
}
