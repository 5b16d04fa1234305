/* test_op_rmsnorm.c — rmsnorm against a double-precision reference; and, independently, that with
 * w = 1 every output row has mean square ms/(ms + eps).
 * Tolerance: Σx² is summed in double and rounded once; the output takes ~4 float roundings (the
 * sqrt, the divide, ·rrms, ·w), each at most u = 2^-24 relative, so |y - ref| ≤ 8u·|ref| ≈ 5e-7·|ref|;
 * we allow 1e-6·|ref| + 1e-12 (the atol only matters for exact zeros). */
#include <criterion/criterion.h>
#include <math.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(int nd, const int64_t *shape, float scale, float eps, const float *w, uint64_t seed)
{
    static int64_t C;   /* static: the result keeps a pointer to the spec */
    static sm_attrs at;
    static op_check_spec s;
    C = shape[nd - 1];
    at = sm_op_default_attrs(SM_OP_RMSNORM);
    at.f[0] = eps;
    s = (op_check_spec){.op = SM_OP_RMSNORM, .n_in = 2, .attrs = &at, .seed = seed, .rtol = 1e-6, .atol = 1e-12};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].scale = scale;
    s.in[1] = op_in_f32(1, &C);
    s.in[1].data = w;
    return op_check_run(&s);
}

Test(op_rmsnorm, against_reference)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 7}, {1, 3, 65}, {2, 5, 129}, {1, 7, 384}, {2, 3, 1000}};
    const float scales[] = {1.0f, 0.01f, 30.0f};
    uint64_t seed = 1;
    for (int i = 0; i < 6; i++)
        for (int v = 0; v < 3; v++) op_check_free(run(3, shapes[i], scales[v], v ? 1e-5f : 1e-2f, NULL, seed++));
    op_check_free(run(1, (int64_t[]){129}, 1, 1e-5f, NULL, seed++));
}

Test(op_rmsnorm, unit_mean_square)
{
    const int64_t C = 65, shape[2] = {5, C};
    float w[65];
    for (int i = 0; i < C; i++) w[i] = 1;
    op_check_result *r = run(2, shape, 3.0f, 1e-5f, w, 7);
    const float *x = r->x[0], *y = r->y;
    for (int row = 0; row < 5; row++) {
        double msx = 0, msy = 0;
        for (int i = 0; i < C; i++) msx += (double)x[row * C + i] * x[row * C + i], msy += (double)y[row * C + i] * y[row * C + i];
        msx /= C, msy /= C;
        cr_assert(fabs(msy - msx / (msx + 1e-5)) < 1e-5, "row %d: mean square %g", row, msy);
    }
    op_check_free(r);
}
