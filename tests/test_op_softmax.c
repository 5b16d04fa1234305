/* test_op_softmax.c — softmax against a double-precision reference on odd row lengths, wide and
 * shifted inputs (the max subtraction), masked (-inf) entries; and, independently, that rows sum to 1.
 * Tolerance per element (u = 2^-24, 1 ulp ≤ 2u): x - max is one float rounding (relative error
 * u·|x - max| after exp), exp is within 2 ulp (4u), the sum is in double, 1/sum and the product are
 * one rounding each: |y - ref| ≤ (6 + |x - max|)·u·|ref|; we allow (8 + |x - max|)·u·|ref|, plus
 * 2^-125 for exps the kernel flushes to 0. */
#include <criterion/criterion.h>
#include <math.h>

#include "tests/helpers/op_check.h"

static double tol_softmax(const op_check_result *r, int64_t e)
{
    static int64_t row = -1;   /* the row max, cached: the harness asks element by element, in order */
    static double m;
    const sm_tensor_rec *o = op_check_out_rec(r);
    int64_t V = o->ne[o->ndim - 1];
    const float *x = (const float *)r->x[0] + e / V * V;
    if (e % V == 0 || e / V != row) {
        m = -INFINITY;
        for (int64_t i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        row = e / V;
    }
    double ref = fabs((double)((const float *)r->ref)[e]), flush = ldexp(1.0, -125);
    if (ref == 0) return flush;   /* a masked (-inf) entry, or an exp below the flush threshold */
    return (8.0 + fabs(x[e % V] - m)) * ldexp(1.0, -24) * ref + flush;
}

static op_check_result *run(int nd, const int64_t *shape, float scale, float offset, const float *data, uint64_t seed)
{
    static op_check_spec s;   /* static: the result keeps a pointer to the spec */
    s = (op_check_spec){.op = SM_OP_SOFTMAX, .n_in = 1, .seed = seed, .tol = tol_softmax};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].scale = scale;
    s.in[0].offset = offset;
    s.in[0].data = data;
    return op_check_run(&s);
}

static void check_rows_sum_to_one(const op_check_result *r)
{
    const sm_tensor_rec *o = op_check_out_rec(r);
    int64_t V = o->ne[o->ndim - 1];
    const float *y = r->y;
    for (int64_t row = 0; row < r->n_out / V; row++) {
        double s = 0;
        for (int64_t i = 0; i < V; i++) {
            cr_assert(y[row * V + i] >= 0.0f && y[row * V + i] <= 1.0f);
            s += y[row * V + i];
        }
        cr_assert(fabs(s - 1.0) < 1e-6, "row %lld sums to %.9g", (long long)row, s);
    }
}

Test(op_softmax, against_reference_and_sums)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 7}, {1, 3, 65}, {2, 3, 129}, {1, 2, 1000}, {1, 1, 50257}};
    const float scales[] = {1.0f, 10.0f, 1.0f}, offsets[] = {0.0f, 0.0f, 100.0f};
    uint64_t seed = 1;
    for (int i = 0; i < 6; i++)
        for (int v = 0; v < 3; v++) {
            op_check_result *r = run(3, shapes[i], scales[v], offsets[v], NULL, seed++);
            check_rows_sum_to_one(r);
            op_check_free(r);
        }
    op_check_free(run(1, (int64_t[]){65}, 1, 0, NULL, seed++));
}

/* -inf entries (a causal mask) get probability 0; a row of one finite entry gets 1 there. */
Test(op_softmax, masked_entries)
{
    const int64_t V = 7, shape[2] = {V, V};
    float x[49];
    for (int i = 0; i < V; i++)
        for (int j = 0; j < V; j++) x[i * V + j] = j <= i ? (float)(i - 2 * j) * 0.3f : -INFINITY;
    op_check_result *r = run(2, shape, 1, 0, x, 3);
    const float *y = r->y;
    check_rows_sum_to_one(r);
    cr_assert_eq(y[0], 1.0f);
    for (int i = 0; i < V; i++)
        for (int j = i + 1; j < V; j++) cr_assert_eq(y[i * V + j], 0.0f);
    op_check_free(r);
}

/* Equal logits give exactly-ish uniform probabilities. */
Test(op_softmax, uniform)
{
    const int64_t V = 129, shape[1] = {V};
    float x[129];
    for (int i = 0; i < V; i++) x[i] = 3.25f;
    op_check_result *r = run(1, shape, 1, 0, x, 4);
    for (int i = 0; i < V; i++) cr_assert(fabs(((const float *)r->y)[i] - 1.0 / V) < 1e-8);
    op_check_free(r);
}
