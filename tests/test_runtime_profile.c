/* test_runtime_profile.c — the executor's optional per-step timing: one entry per plan step naming
 * its node, totals that add up over runs, a reset when switched on again, and results that do not
 * change with it (no timing values are asserted beyond being sane). */
#include <criterion/criterion.h>
#include <string.h>

#include "smallmind.h"

typedef struct fixture {
    sm_graph *g;
    sm_plan *p;
    sm_runtime *rt;
    sm_tensor x, y;
} fixture;

/* y = gelu(linear(reshape(x))) + 1: a view (reshape), a gemm and elementwise steps. */
static void build(fixture *f, int threads)
{
    int64_t sx[3] = {4, 8, 16}, sx2[2] = {32, 16}, sw[2] = {24, 16}, sb[1] = {24};
    sm_tensor x2, w, b, h, one;
    cr_assert_eq(sm_graph_create(&f->g), SM_OK);
    sm_graph_input(f->g, "x", SM_F32, 3, sx, &f->x);
    sm_graph_param(f->g, "w", SM_F32, 2, sw, SM_INIT_NORMAL, 0.5f, &w);
    sm_graph_param(f->g, "b", SM_F32, 1, sb, SM_INIT_NORMAL, 0.5f, &b);
    sm_graph_param(f->g, "one", SM_F32, 1, sb, SM_INIT_ONES, 0, &one);
    cr_assert_eq(sm_reshape(f->g, f->x, 2, sx2, "x2", &x2), SM_OK);
    cr_assert_eq(sm_linear(f->g, x2, w, b, "h", &h), SM_OK);
    cr_assert_eq(sm_gelu(f->g, h, "act", &h), SM_OK);
    cr_assert_eq(sm_add(f->g, h, one, "y", &f->y), SM_OK);
    sm_graph_mark_output(f->g, f->y);
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = SM_PLAN_PACKED;
    o.n_threads = threads;
    cr_assert_eq(sm_plan_create(f->g, &o, &f->p), SM_OK);
    cr_assert_eq(sm_runtime_create(f->g, f->p, &f->rt), SM_OK);
    cr_assert_eq(sm_runtime_init_params(f->rt, 3), SM_OK);
}

static void run(fixture *f, float *out)
{
    float in[4 * 8 * 16];
    for (int i = 0; i < 4 * 8 * 16; i++) in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    cr_assert_eq(sm_runtime_set(f->rt, f->x, in, sizeof in), SM_OK);
    cr_assert_eq(sm_runtime_run(f->rt), SM_OK);
    cr_assert_eq(sm_runtime_get(f->rt, f->y, out, 32 * 24 * sizeof *out), SM_OK);
}

static void destroy(fixture *f)
{
    sm_runtime_free(f->rt);
    sm_plan_free(f->p);
    sm_graph_free(f->g);
}

Test(runtime_profile, off_by_default_and_refused_when_off)
{
    fixture f;
    build(&f, 1);
    const sm_profile_step *st;
    int n, runs;
    cr_assert_eq(sm_runtime_profile(f.rt, &st, &n, &runs), SM_ERR_STATE);
    cr_assert(strstr(sm_last_error(), "sm_runtime_set_profile"));
    cr_assert_eq(sm_runtime_set_profile(NULL, 1), SM_ERR_INVALID_ARG);
    destroy(&f);
}

Test(runtime_profile, one_entry_per_step_summed_over_runs)
{
    for (int threads = 1; threads <= 2; threads++) {
        fixture f;
        build(&f, threads);
        float plain[32 * 24], profiled[32 * 24];
        run(&f, plain);
        cr_assert_eq(sm_runtime_set_profile(f.rt, 1), SM_OK);
        const sm_profile_step *st;
        int n, runs;
        cr_assert_eq(sm_runtime_profile(f.rt, &st, &n, &runs), SM_OK);
        cr_assert_eq(n, sm_graph_node_count(f.g));
        cr_assert_eq(runs, 0);
        for (int r = 0; r < 3; r++) {
            run(&f, profiled);
            cr_assert(memcmp(plain, profiled, sizeof plain) == 0, "profiling changed the results");
        }
        cr_assert_eq(sm_runtime_profile(f.rt, &st, &n, &runs), SM_OK);
        cr_assert_eq(runs, 3);
        /* every node appears once, by its op and output */
        const char *want[4] = {"x2", "h", "act", "y"};
        const sm_op_kind want_op[4] = {SM_OP_RESHAPE, SM_OP_LINEAR, SM_OP_GELU, SM_OP_ADD};
        for (int k = 0; k < 4; k++) {
            int found = 0;
            for (int s = 0; s < n; s++) {
                const char *name;
                cr_assert_eq(sm_tensor_info(f.g, st[s].out, &name, NULL, NULL, NULL, NULL), SM_OK);
                if (strcmp(name, want[k])) continue;
                found++;
                cr_assert_eq(st[s].op, want_op[k], "step of '%s' names op %s", name, sm_op_name(st[s].op));
                cr_assert(st[s].seconds >= 0.0);
                if (want_op[k] == SM_OP_RESHAPE) cr_assert_eq(st[s].seconds, 0.0, "a view runs no kernel");
            }
            cr_assert_eq(found, 1, "'%s' appears %d times", want[k], found);
        }
        /* switching on again resets; off releases */
        cr_assert_eq(sm_runtime_set_profile(f.rt, 1), SM_OK);
        cr_assert_eq(sm_runtime_profile(f.rt, &st, &n, &runs), SM_OK);
        cr_assert_eq(runs, 0);
        for (int s = 0; s < n; s++) cr_assert_eq(st[s].seconds, 0.0);
        cr_assert_eq(sm_runtime_set_profile(f.rt, 0), SM_OK);
        cr_assert_eq(sm_runtime_profile(f.rt, &st, &n, &runs), SM_ERR_STATE);
        run(&f, profiled);
        cr_assert(memcmp(plain, profiled, sizeof plain) == 0);
        destroy(&f);
    }
}
