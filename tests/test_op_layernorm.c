/* test_op_layernorm.c — layernorm against a double-precision reference, on odd row lengths, shifted
 * and scaled inputs and two eps values; and, independently, that with w = 1, b = 0 every row of the
 * output has mean 0 and variance var/(var + eps).
 * Tolerance: the kernel's mean and variance are summed in double and rounded once, the mean kept as
 * two floats so x - mean is exact near the mean (large offsets cost nothing); the output then takes
 * ~6 float roundings (x - mean, ·rstd, ·w, + b, and rstd's sqrt and divide), each at most u = 2^-24
 * relative to the magnitudes involved, |x̂·w| + |b| ≲ 5·(1 + |ref|) for these inputs (|x̂| ≲ 5,
 * w, b ~ N(0,1)). So |y - ref| ≤ 16u·(1 + |ref|) ≈ 1e-6·(1 + |ref|); the cases reach a third of it.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "tests/helpers/op_check.h"

#define TOL 1e-6

static op_check_result *run(int nd, const int64_t *shape, float scale, float offset, float eps, const float *w,
                            const float *b, uint64_t seed)
{
    static int64_t C;   /* static: the result keeps a pointer to the spec */
    static sm_attrs at;
    static op_check_spec s;
    C = shape[nd - 1];
    at = sm_op_default_attrs(SM_OP_LAYERNORM);
    at.f[0] = eps;
    s = (op_check_spec){.op = SM_OP_LAYERNORM, .n_in = 3, .attrs = &at, .seed = seed, .rtol = TOL, .atol = TOL};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].scale = scale;
    s.in[0].offset = offset;
    s.in[1] = op_in_f32(1, &C);
    s.in[2] = op_in_f32(1, &C);
    s.in[1].data = w;
    s.in[2].data = b;
    return op_check_run(&s);
}

Test(op_layernorm, against_reference)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 7}, {1, 3, 65}, {2, 5, 129}, {1, 7, 384}, {2, 3, 1000}};
    const float scales[] = {1.0f, 0.01f, 3.0f}, offsets[] = {0.0f, 3.0f, -1.0f}, epss[] = {1e-5f, 1e-3f};
    uint64_t seed = 1;
    for (int i = 0; i < 6; i++)
        for (int v = 0; v < 3; v++) {
            op_check_free(run(3, shapes[i], scales[v], offsets[v], epss[v % 2], NULL, NULL, seed++));
        }
    /* 1-D and 2-D inputs */
    op_check_free(run(1, (int64_t[]){129}, 1, 0, 1e-5f, NULL, NULL, seed++));
    op_check_free(run(2, (int64_t[]){65, 3}, 1, 0, 1e-5f, NULL, NULL, seed++));
}

/* Independent of the reference: with w = 1, b = 0 each output row has mean 0 and (biased) variance
 * var/(var + eps), var being the input row's. */
Test(op_layernorm, normalises_rows)
{
    const int64_t C = 129, shape[2] = {7, C};
    float w[129], b[129];
    for (int i = 0; i < C; i++) w[i] = 1, b[i] = 0;
    op_check_result *r = run(2, shape, 2.0f, 5.0f, 1e-5f, w, b, 42);
    const float *x = r->x[0], *y = r->y;
    for (int row = 0; row < 7; row++) {
        double mx = 0, vx = 0, my = 0, vy = 0;
        for (int i = 0; i < C; i++) mx += x[row * C + i], my += y[row * C + i];
        mx /= C, my /= C;
        for (int i = 0; i < C; i++) {
            vx += (x[row * C + i] - mx) * (x[row * C + i] - mx);
            vy += (y[row * C + i] - my) * (y[row * C + i] - my);
        }
        vx /= C, vy /= C;
        cr_assert(fabs(my) < 1e-6, "row %d: mean %g", row, my);
        cr_assert(fabs(vy - vx / (vx + 1e-5)) < 1e-5, "row %d: var %g, expected %g", row, vy, vx / (vx + 1e-5));
    }
    op_check_free(r);
}

/* A constant row has variance 0: the output is b exactly (0 · rstd · w + b). */
Test(op_layernorm, constant_row_gives_bias)
{
    const int64_t shape[2] = {3, 7};
    float x[21];
    for (int i = 0; i < 21; i++) x[i] = 2.5f;
    int64_t C = 7;
    sm_attrs at = sm_op_default_attrs(SM_OP_LAYERNORM);
    op_check_spec s = {.op = SM_OP_LAYERNORM, .n_in = 3, .attrs = &at, .seed = 5, .rtol = TOL, .atol = TOL};
    s.in[0] = op_in_f32(2, shape);
    s.in[0].data = x;
    s.in[1] = op_in_f32(1, &C);
    s.in[2] = op_in_f32(1, &C);
    op_check_result *r = op_check_run(&s);
    const float *b = r->x[2], *y = r->y;
    for (int i = 0; i < 21; i++) cr_assert_eq(y[i], b[i % 7]);
    op_check_free(r);
}
