/* rmsnorm.c — RMS normalisation over the last dim (no centring, no bias):
 *   x [R, C], w [C] -> y [R, C],  y = x / sqrt(mean(x²) + eps) · w;  eps is fattr 0 (default 1e-5). */
#include <math.h>

#include "norm.h"

static sm_status shape_rmsnorm(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    return sm_norm_shape(g, n, out, "rmsnorm");
}

/* one row: one pass for Σx², one for the output (y may be x) */
static void rmsnorm_row(const float *x, const float *w, float *y, int64_t C, float eps)
{
    float ms = (float)(sm_norm_sum_sq_dev(x, 0.0f, 0.0f, C) / (double)C);
    float rrms = 1.0f / sqrtf(ms + eps);
    for (int64_t i = 0; i < C; i++) y[i] = x[i] * rrms * w[i];
}

/* Rows are split across threads; each row is computed by one thread in a fixed order. */
static void rmsnorm_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0], *w = k->x[1];
    float *y = k->y, eps = k->node->attrs.f[SM_FATTR_NORM_EPS];
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) rmsnorm_row(x + r * C, w, y + r * C, C, eps);
}

static void rmsnorm_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0], *w = k->x[1];
    float *y = k->y;
    double eps = k->node->attrs.f[SM_FATTR_NORM_EPS];
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
    for (int64_t r = 0; r < R; r++, x += C, y += C) {
        double ms = 0;
        for (int64_t i = 0; i < C; i++) ms += (double)x[i] * x[i];
        ms /= (double)C;
        for (int64_t i = 0; i < C; i++) y[i] = (float)(x[i] / sqrt(ms + eps) * w[i]);
    }
}

/* square, add (stats) + mul, mul (output) per element */
static double flops_rmsnorm(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 4); }

const sm_op_def sm_op_rmsnorm = {
    .name = "rmsnorm", .min_in = 2, .max_in = 2, .fattr = {"eps"}, .fattr_default = {1e-5f},
    .shape = shape_rmsnorm, .flops = flops_rmsnorm, .inplace = true,
    .forward = rmsnorm_forward, .reference = rmsnorm_reference,
    .backward = sm_backward_rmsnorm,
};
