/* softmax.c — softmax along the last dim: x [R, V] -> y [R, V], y = exp(x - max) / Σ exp(x - max).
 * Subtracting the row max keeps every exp in (0, 1], so nothing overflows; the sum is kept in double.
 * A row of all -inf (or containing +inf or NaN) gives NaN, as in PyTorch. */
#include <math.h>

#include "rows.h"
#include "vmath.h"

/* one row, three passes over V floats that stay in cache: max, exp + sum, scale (y may be x) */
static void softmax_row(const float *x, float *y, int64_t V)
{
    float m = sm_vmax_row(x, V);
    float inv = (float)(1.0 / sm_vexp_sum_row(x, m, y, V));
    for (int64_t i = 0; i < V; i++) y[i] *= inv;
}

/* Rows are split across threads; each row is computed by one thread in a fixed order. */
static void softmax_forward(const sm_kernel_args *k)
{
    int64_t V = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / V;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) softmax_row((const float *)k->x[0] + r * V, (float *)k->y + r * V, V);
}

static void softmax_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t V = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / V;
    for (int64_t r = 0; r < R; r++, x += V, y += V) {
        double m = -INFINITY, s = 0;
        for (int64_t i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        for (int64_t i = 0; i < V; i++) s += exp(x[i] - m);
        for (int64_t i = 0; i < V; i++) y[i] = (float)(exp(x[i] - m) / s);
    }
}

static sm_status shape_softmax(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    return s ? s : sm_shape_same_as_in0(g, n, out);
}

/* max, sub, exp, add, mul per element (exp counted as one op) */
static double flops_softmax(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 5); }

const sm_op_def sm_op_softmax = {
    .name = "softmax", .min_in = 1, .max_in = 1, .shape = shape_softmax, .flops = flops_softmax,
    .inplace = true, .forward = softmax_forward, .reference = softmax_reference,
    .backward = sm_backward_softmax,
};
