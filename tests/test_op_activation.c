/* test_op_activation.c — gelu and silu against double-precision references, over wide input ranges
 * and special values; the vectorised exp of ops/vmath.h against exp(); and identities that do not
 * use the reference (gelu(x) - gelu(-x) = x, the same for silu; gelu(0) = 0).
 * Tolerances:
 *  - sm_vexpf is within 2 ulp of exp (the header's claim, checked below on a dense grid).
 *  - silu: x/(1 + e) with e = exp(-x) within 2 ulp (4u, u = 2^-24), then two roundings: relative
 *    error ≤ 6u ≈ 3.6e-7; we allow 1e-6 relative (plus 1e-30 absolute for results that underflow).
 *  - gelu: the kernel computes u = √(2/π)(x + 0.044715x³) in float (≤ 4 roundings, and x and x³
 *    have the same sign: relative error ≤ 4u ≈ 2.4e-7) and x/(1 + exp(-2u)); for x < 0 the result
 *    is ≈ x·exp(2u), whose relative error is |2u| times u's: 1e-5 at x = -8 (|2u| = 49), while the
 *    other roundings give ≤ 8u ≈ 5e-7. So |y - ref| ≤ 1e-6·|ref|·(1 + |2u|) + 1e-30, about 4× the bound.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "ops/vmath.h"
#include "tests/helpers/op_check.h"

Test(vmath, vexpf_within_2_ulp)
{
    double worst = 0;
    for (double xd = -86.9; xd <= 88.7; xd += 7.7e-4) {
        float x = (float)xd, y = sm_vexpf(x);
        double r = exp((double)x), ulp = ldexp(1.0, ilogb(r) - 23);
        double e = fabs((double)y - r) / ulp;
        if (e > worst) worst = e;
    }
    cr_assert(worst <= 2.0, "sm_vexpf is %g ulp off", worst);
    cr_assert_eq(sm_vexpf(0.0f), 1.0f);
    cr_assert_eq(sm_vexpf(-INFINITY), 0.0f);
    cr_assert_eq(sm_vexpf(-1000.0f), 0.0f);
    cr_assert(isinf(sm_vexpf(INFINITY)) && isinf(sm_vexpf(89.0f)));
    cr_assert(isnan(sm_vexpf(NAN)));
    cr_assert(isfinite(sm_vexpf(88.7f)));
}

static double tol_gelu(const op_check_result *r, int64_t i)
{
    double x = ((const float *)r->x[0])[i], ref = ((const float *)r->ref)[i];
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return 1e-6 * fabs(ref) * (1.0 + fabs(2.0 * u)) + 1e-30;
}

static void check(sm_op_kind op, int nd, const int64_t *shape, float scale, uint64_t seed)
{
    op_check_spec s = {.op = op, .n_in = 1, .seed = seed, .rtol = 1e-6, .atol = 1e-30};
    if (op == SM_OP_GELU) s.tol = tol_gelu;
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].scale = scale;
    op_check_free(op_check_run(&s));
}

Test(op_activation, against_reference)
{
    const int64_t shapes[][2] = {{1, 1}, {1, 7}, {3, 65}, {7, 129}, {2, 5000}};
    const float scales[] = {1.0f, 4.0f, 30.0f};
    for (int op = 0; op < 2; op++)
        for (int i = 0; i < 5; i++)
            for (int v = 0; v < 3; v++)
                check(op ? SM_OP_SILU : SM_OP_GELU, 2, shapes[i], scales[v], (uint64_t)(i * 3 + v));
    check(SM_OP_GELU, 4, (int64_t[]){2, 3, 5, 7}, 2.0f, 99);
}

/* x and -x side by side, plus special values: the identities f(x) - f(-x) = x hold for both
 * (0.5·x·(1 + tanh u) - 0.5·(-x)·(1 - tanh u) = x;  x·σ(x) + x·σ(-x) = x). */
Test(op_activation, odd_part_identity_and_specials)
{
    enum { N = 2 * 500 + 6 };
    static float x[N];
    for (int i = 0; i < 500; i++) {
        x[2 * i] = (float)(i - 250) * 0.037f;
        x[2 * i + 1] = -x[2 * i];
    }
    const float special[6] = {0.0f, -0.0f, INFINITY, -INFINITY, 1e30f, -1e30f};
    for (int i = 0; i < 6; i++) x[1000 + i] = special[i];
    for (int op = 0; op < 2; op++) {
        op_check_spec s = {.op = op ? SM_OP_SILU : SM_OP_GELU, .n_in = 1, .rtol = 1e-6, .atol = 1e-30};
        if (!op) s.tol = tol_gelu;
        s.in[0] = op_in_f32(1, (int64_t[]){N});
        s.in[0].data = x;
        op_check_result *r = op_check_run(&s);
        const float *y = r->y;
        for (int i = 0; i < 500; i++) {
            double d = (double)y[2 * i] - (double)y[2 * i + 1] - (double)x[2 * i];
            cr_assert(fabs(d) <= 1e-6 * (1 + fabs(x[2 * i])), "%s: f(%g) - f(%g) = %g + %g", sm_op_name(s.op),
                      (double)x[2 * i], (double)x[2 * i + 1], (double)x[2 * i], d);
        }
        cr_assert_eq(y[1000], 0.0f);
        cr_assert(isinf(y[1002]) && y[1002] > 0, "f(inf) = %g", (double)y[1002]);
        cr_assert(isnan(y[1003]), "f(-inf) = %g: -inf·0 is NaN, as in PyTorch", (double)y[1003]);
        cr_assert_eq(y[1004], 1e30f);
        cr_assert_eq(y[1005], 0.0f);
        op_check_free(r);
    }
}
