/* test_op_rope.c — rotary embedding against a double-precision reference (per element, from the
 * definition) for several head counts and sizes, both bases and both directions; and, independently,
 * that the inverse undoes the rotation, position 0 and v pass through bitwise, and pair norms are kept.
 * Tolerance: the kernel rounds cos and sin to float (u each) and computes x0·c - x1·s in float (3
 * roundings), so |y - ref| ≤ 5u·(|x0| + |x1|), u = 2^-24, for the pair (x0, x1) the element is in.
 * The angle itself is computed in double in both, so large positions lose nothing. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tests/helpers/op_check.h"

static double tol_rope(const op_check_result *r, int64_t e)
{
    const float *x = r->x[0];
    int64_t p = e & ~(int64_t)1;
    return 5.0 * ldexp(1.0, -24) * (fabs((double)x[p]) + fabs((double)x[p + 1]));
}

static op_check_result *run(int64_t B, int64_t T, int64_t C, int64_t H, float base, int inverse, const float *data,
                            uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(SM_OP_ROPE);
    at.i[0] = H;
    at.i[1] = inverse;
    at.f[0] = base;
    s = (op_check_spec){.op = SM_OP_ROPE, .n_in = 1, .attrs = &at, .seed = seed, .tol = tol_rope};
    s.in[0] = op_in_f32(3, (int64_t[]){B, T, 3 * C});
    s.in[0].data = data;
    return op_check_run(&s);
}

Test(op_rope, against_reference)
{
    /* B, T, C, H */
    const int64_t cases[][4] = {{1, 1, 2, 1}, {2, 7, 4, 2}, {1, 65, 64, 2}, {3, 5, 12, 3}, {2, 33, 96, 4}, {1, 129, 8, 1}};
    uint64_t seed = 1;
    for (int c = 0; c < 6; c++)
        for (int inv = 0; inv < 2; inv++)
            op_check_free(run(cases[c][0], cases[c][1], cases[c][2], cases[c][3], inv ? 100.0f : 10000.0f, inv, NULL,
                              seed++));
}

Test(op_rope, inverse_undoes_and_invariants)
{
    const int64_t B = 2, T = 65, C = 32, H = 4, n = B * T * 3 * C;
    op_check_result *f = run(B, T, C, H, 10000.0f, 0, NULL, 7);
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, f->y, (size_t)n * sizeof *y);
    const float *x = f->x[0];
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *xr = x + (b * T + t) * 3 * C, *yr = y + (b * T + t) * 3 * C;
            /* v passes through, and at t = 0 everything does (cos 0 = 1, sin 0 = 0 exactly) */
            cr_assert_eq(memcmp(xr + 2 * C, yr + 2 * C, (size_t)C * sizeof *x), 0);
            if (t == 0) cr_assert_eq(memcmp(xr, yr, (size_t)3 * C * sizeof *x), 0);
            for (int64_t p = 0; p < 2 * C; p += 2) {   /* a rotation keeps each pair's length */
                double lx = hypot(xr[p], xr[p + 1]), ly = hypot(yr[p], yr[p + 1]);
                cr_assert(fabs(lx - ly) <= 1e-6 * (1 + lx));
            }
        }
    op_check_result *g = run(B, T, C, H, 10000.0f, 1, y, 8);
    const float *z = g->y;
    for (int64_t i = 0; i < n; i++) cr_assert(fabs(z[i] - x[i]) < 1e-5, "element %lld: %g, was %g", (long long)i, z[i], x[i]);
    op_check_free(g);
    op_check_free(f);
    free(y);
}
