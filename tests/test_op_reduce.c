/* test_op_reduce.c — sum and mean along every axis and over everything, against the serial reference;
 * and, independently, sums of constants (exact) and the output shapes.
 * Tolerance: kernel and reference both sum in double (in different orders), which differ by at most
 * 2·γ_N(double)·Σ|x| ≈ 2N·2^-53·Σ|x| (< 1e-11·Σ|x| here), and both round the result to float once:
 * so the outputs differ by at most one float rounding of |ref| (2^-24·|ref|, allowed 2^-23·|ref|)
 * plus 1e-11·Σ|x| (allowed as 1e-9 absolute: Σ|x| < 1e5 for these sizes). */
#include <criterion/criterion.h>
#include <math.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(sm_op_kind op, int nd, const int64_t *shape, int axis, const float *data, uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(op);
    at.i[0] = axis;
    s = (op_check_spec){.op = op, .n_in = 1, .attrs = &at, .seed = seed, .rtol = ldexp(1.0, -23), .atol = 1e-9};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].offset = 0.5f;
    s.in[0].data = data;
    return op_check_run(&s);
}

Test(op_reduce, axes_and_all)
{
    const int64_t shapes[][4] = {{2, 7, 3, 5}, {1, 65, 1, 129}, {3, 1, 9, 2}, {1, 1, 1, 1}};
    uint64_t seed = 1;
    for (int op = 0; op < 2; op++)
        for (int s = 0; s < 4; s++)
            for (int axis = -1; axis < 4; axis++) {
                op_check_result *r = run(op ? SM_OP_MEAN : SM_OP_SUM, 4, shapes[s], axis, NULL, seed++);
                const sm_tensor_rec *o = op_check_out_rec(r);
                if (axis == -1) {
                    cr_assert(o->ndim == 1 && o->ne[0] == 1);
                } else {
                    cr_assert_eq(o->ndim, 3);
                    for (int d = 0, k = 0; d < 4; d++)
                        if (d != axis) cr_assert_eq(o->ne[k++], shapes[s][d]);
                }
                op_check_free(r);
            }
    /* 1-D and 2-D, and a large all-elements sum (many elements per block) */
    op_check_free(run(SM_OP_SUM, 1, (int64_t[]){7}, 0, NULL, seed++));
    op_check_free(run(SM_OP_MEAN, 2, (int64_t[]){129, 65}, 1, NULL, seed++));
    op_check_free(run(SM_OP_MEAN, 2, (int64_t[]){129, 65}, 0, NULL, seed++));
    op_check_free(run(SM_OP_SUM, 2, (int64_t[]){3, 300}, 0, NULL, seed++));   /* inner > the kernel's 256 chunk */
    op_check_free(run(SM_OP_SUM, 1, (int64_t[]){100003}, -1, NULL, seed++));
}

/* Sums of 1s are exact integers in any order; the mean of a constant is that constant. */
Test(op_reduce, constants)
{
    enum { N = 3 * 4099 };
    static float ones[N], c[N];
    for (int i = 0; i < N; i++) ones[i] = 1.0f, c[i] = 0.1f;
    op_check_result *r = run(SM_OP_SUM, 1, (int64_t[]){N}, -1, ones, 1);
    cr_assert_eq(((const float *)r->y)[0], (float)N);
    op_check_free(r);
    r = run(SM_OP_SUM, 2, (int64_t[]){3, 4099}, 1, ones, 2);
    for (int i = 0; i < 3; i++) cr_assert_eq(((const float *)r->y)[i], 4099.0f);
    op_check_free(r);
    r = run(SM_OP_MEAN, 2, (int64_t[]){3, 4099}, 0, c, 3);
    for (int i = 0; i < 4099; i++) cr_assert_eq(((const float *)r->y)[i], 0.1f);
    op_check_free(r);
    r = run(SM_OP_MEAN, 1, (int64_t[]){N}, -1, c, 4);
    cr_assert_eq(((const float *)r->y)[0], 0.1f);
    op_check_free(r);
}
