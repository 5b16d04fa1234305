/* layernorm.c — layer normalisation over the last dim:
 *   x [R, C], w [C], b [C] -> y [R, C],  y = (x - mean) / sqrt(var + eps) · w + b
 * with mean and (biased) var over the C entries of each row; eps is fattr 0 (default 1e-5). */
#include <math.h>

#include "../base/error.h"
#include "norm.h"

static sm_status shape_layernorm(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    return sm_norm_shape(g, n, out, "layernorm");
}

/* One row, two passes over C floats kept in cache: the mean, then the variance around it (the
 * one-pass Σx² - mean² form cancels badly when |mean| >> std). The mean is carried as two floats,
 * hi + lo, and x - mean computed as (x - hi) - lo: the first difference is exact when x is near the
 * mean, so a large offset (|mean| >> std) costs no precision. y may be x. */
static void layernorm_row(const float *x, const float *w, const float *b, float *y, int64_t C, float eps)
{
    double mean = sm_norm_sum(x, C) / (double)C;
    float hi = (float)mean, lo = (float)(mean - hi);
    float var = (float)(sm_norm_sum_sq_dev(x, hi, lo, C) / (double)C);
    float rstd = 1.0f / sqrtf(var + eps);
    for (int64_t i = 0; i < C; i++) y[i] = ((x[i] - hi) - lo) * rstd * w[i] + b[i];
}

/* Rows are split across threads; each row is computed by one thread in a fixed order. */
static void layernorm_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0], *w = k->x[1], *b = k->x[2];
    float *y = k->y, eps = k->node->attrs.f[SM_FATTR_NORM_EPS];
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) layernorm_row(x + r * C, w, b, y + r * C, C, eps);
}

static void layernorm_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0], *w = k->x[1], *b = k->x[2];
    float *y = k->y;
    double eps = k->node->attrs.f[SM_FATTR_NORM_EPS];
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
    for (int64_t r = 0; r < R; r++, x += C, y += C) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < C; i++) mean += x[i];
        mean /= (double)C;
        for (int64_t i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= (double)C;
        for (int64_t i = 0; i < C; i++) y[i] = (float)((x[i] - mean) / sqrt(var + eps) * w[i] + b[i]);
    }
}

/* sum, sub, square, add (stats) + sub, mul, mul, add (output) per element */
static double flops_layernorm(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 8); }

const sm_op_def sm_op_layernorm = {
    .name = "layernorm", .min_in = 3, .max_in = 3, .fattr = {"eps"}, .fattr_default = {1e-5f},
    .shape = shape_layernorm, .flops = flops_layernorm, .inplace = true,
    .forward = layernorm_forward, .reference = layernorm_reference,
    .backward = sm_backward_layernorm,
};
