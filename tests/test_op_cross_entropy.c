/* test_op_cross_entropy.c — the fused softmax cross-entropy against a double-precision reference on
 * odd vocabulary sizes and row counts (more rows than the kernel's 256 blocks, too), with ignored
 * rows (target -1); and, independently: uniform logits give ln V, V = 1 gives 0, known two-class
 * values, every row ignored gives 0, and an out-of-range target gives NaN without reading out of
 * bounds (the sanitizer build checks that).
 * Tolerance: per row the kernel's max is exact, each exp is within 2 ulp (4u, u = 2^-24) and summed
 * in double, so log(Σ) is within 4u·(1 + ...) ≈ 2.4e-7 absolute; x - max one more rounding,
 * u·|x - max| ≤ 2.4e-6 absolute for these inputs (|x - max| < 40); the mean is in double and rounded
 * once (u·|loss|). So |loss - ref| ≤ 3e-6 + 2^-23·|ref|. */
#include <criterion/criterion.h>
#include <math.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(int nd, const int64_t *lshape, float scale, int32_t tlo, const float *logits,
                            const int32_t *targets, uint64_t seed)
{
    static op_check_spec s;   /* static: the result keeps a pointer to the spec */
    s = (op_check_spec){.op = SM_OP_CROSS_ENTROPY, .n_in = 2, .seed = seed, .rtol = ldexp(1.0, -23), .atol = 3e-6};
    s.in[0] = op_in_f32(nd, lshape);
    s.in[0].scale = scale;
    s.in[0].data = logits;
    s.in[1] = op_in_i32(nd - 1, lshape, tlo, (int32_t)lshape[nd - 1]);
    s.in[1].data = targets;
    return op_check_run(&s);
}

static float loss_of(const op_check_result *r) { return ((const float *)r->y)[0]; }

Test(op_cross_entropy, against_reference)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 3, 7}, {2, 7, 65}, {1, 65, 129}, {3, 100, 33}, {1, 2, 50257}};
    const float scales[] = {1.0f, 8.0f};
    uint64_t seed = 1;
    for (int i = 0; i < 6; i++)
        for (int v = 0; v < 2; v++)
            for (int ign = 0; ign < 2; ign++) {
                op_check_result *r = run(3, shapes[i], scales[v], ign ? -1 : 0, NULL, NULL, seed++);
                cr_assert(isfinite(loss_of(r)) && loss_of(r) >= 0);
                op_check_free(r);
            }
    op_check_free(run(2, (int64_t[]){300, 7}, 1, 0, NULL, NULL, seed++));
}

Test(op_cross_entropy, known_values)
{
    enum { V = 129 };
    static float uni[3 * V];
    for (int i = 0; i < 3 * V; i++) uni[i] = 2.5f;
    op_check_result *r = run(2, (int64_t[]){3, V}, 1, 0, uni, NULL, 1);
    cr_assert(fabs(loss_of(r) - log((double)V)) < 1e-6, "uniform: %g, ln V = %g", loss_of(r), log((double)V));
    op_check_free(r);

    r = run(2, (int64_t[]){5, 1}, 1, 0, NULL, NULL, 2);   /* one class: loss 0 */
    cr_assert_eq(loss_of(r), 0.0f);
    op_check_free(r);

    /* two classes, logits (0, ln 3): p = (1/4, 3/4); rows target 0, 1, ignored -> (ln 4 + ln 4/3) / 2 */
    const float two[6] = {0.0f, logf(3.0f), 0.0f, logf(3.0f), 100.0f, -100.0f};
    const int32_t t2[3] = {0, 1, -1};
    r = run(2, (int64_t[]){3, 2}, 1, 0, two, t2, 3);
    double want = (log(4.0) + log(4.0 / 3.0)) / 2;
    cr_assert(fabs(loss_of(r) - want) < 1e-6, "%g, want %g", loss_of(r), want);
    op_check_free(r);
}

Test(op_cross_entropy, ignored_and_invalid_targets)
{
    const int32_t none[4] = {-1, -1, -1, -1};
    op_check_result *r = run(2, (int64_t[]){4, 7}, 1, 0, NULL, none, 1);
    cr_assert_eq(loss_of(r), 0.0f);
    op_check_free(r);
    const int32_t bad[][4] = {{0, 7, 1, 2}, {0, 1, -2, 2}, {0x7fffffff, 1, 2, 3}, {(int32_t)0x80000000, -1, -1, -1}};
    for (int b = 0; b < 4; b++) {
        r = run(2, (int64_t[]){4, 7}, 1, 0, NULL, bad[b], 2 + b);
        cr_assert(isnan(loss_of(r)), "case %d: %g", b, loss_of(r));
        op_check_free(r);
    }
}
