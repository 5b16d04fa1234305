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
