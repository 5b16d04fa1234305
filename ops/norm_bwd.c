/* norm_bwd.c — backward of layernorm and rmsnorm, in three rows:
 *   norm_stats  (x [R,C]; rms, eps)            -> stats [R,2]: (mean, rstd) of each row, recomputed
 *                                                 from x (rms: mean 0, rstd = 1/sqrt(mean(x²)+eps))
 *   norm_bwd_x  (x, w [C], gy [R,C], stats)    -> dx [R,C]
 *   norm_bwd_w  (x, gy, stats)                 -> dw [C] = sum over rows of gy·xhat
 * (the bias gradient is sum_to(gy)). With xhat = (x - mean)·rstd and g = gy·w:
 *   layernorm: dx = rstd·(g - mean(g) - xhat·mean(g·xhat))
 *   rmsnorm:   dx = rstd·(g - xhat·mean(g·xhat))
 * The statistics are computed exactly as the forward computes them (norm.h's row sums, same
 * rounding), so the backward normalises with the forward's own mean and rstd.
 * Rows are independent for stats and dx (split across threads); dw sums over rows, so its columns
 * are split instead and each column sums its rows in order. Sums run in double, in 16 lanes (an
 * order fixed by C alone) so they vectorise. */
#include <math.h>

#include <omp.h>

#include "../base/error.h"
#include "backward.h"
#include "norm.h"
#include "rows.h"

/* ---- shapes ---- */

static sm_status bad_shape(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i,
                           const char *want)
{
    char s[64];
    const sm_tensor_rec *r = &g->t[n->in[i]];
    return sm_error(SM_ERR_SHAPE, "node '%s': %s input %d '%s' is %s; it must be %s", out->name,
                    sm_op_name(n->op), i, r->name, sm_shape_str(r, s, sizeof s), want);
}

/* Input i has x's shape except the last dim, which is `last` (0: x's own). */
static bool like_x(const sm_graph *g, const sm_node *n, int i, int64_t last)
{
    const sm_tensor_rec *x = &g->t[n->in[0]], *r = &g->t[n->in[i]];
    if (r->ndim != x->ndim) return false;
    for (int d = 0; d < x->ndim; d++)
        if (r->ne[d] != (d == x->ndim - 1 && last ? last : x->ne[d])) return false;
    return true;
}

static sm_status check_inputs(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out)
{
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    return SM_OK;
}

static sm_status shape_stats(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = check_inputs(g, n, out);
    if (s) return s;
    sm_shape_same_as_in0(g, n, out);
    out->ne[out->ndim - 1] = 2;
    return SM_OK;
}

/* (x, w, gy, stats) for dx; (x, gy, stats) for dw */
static sm_status shape_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out, bool dx)
{
    sm_status s = check_inputs(g, n, out);
    if (s) return s;
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t C = x->ne[x->ndim - 1];
    int igy = dx ? 2 : 1;
    if (dx && (g->t[n->in[1]].ndim != 1 || g->t[n->in[1]].ne[0] != C)) return bad_shape(g, n, out, 1, "[C] of x");
    if (!like_x(g, n, igy, 0)) return bad_shape(g, n, out, igy, "x's shape");
    if (!like_x(g, n, igy + 1, 2)) return bad_shape(g, n, out, igy + 1, "x's shape with a last dim of 2");
    sm_shape_same_as_in0(g, n, out);
    if (!dx) {
        out->ndim = 1;
        out->ne[0] = C;
        for (int i = 1; i < SM_MAX_DIMS; i++) out->ne[i] = 1;
    }
    return SM_OK;
}

static sm_status shape_bwd_x(const sm_graph *g, const sm_node *n, sm_tensor_rec *out) { return shape_bwd(g, n, out, true); }
static sm_status shape_bwd_w(const sm_graph *g, const sm_node *n, sm_tensor_rec *out) { return shape_bwd(g, n, out, false); }

/* ---- kernels ---- */

/* As layernorm.c / rmsnorm.c compute them. The mean is stored as the float nearest to it. */
static void row_stats(const float *x, int64_t C, bool rms, float eps, float *st)
{
    if (rms) {
        float ms = (float)(sm_norm_sum_sq_dev(x, 0.0f, 0.0f, C) / (double)C);
        st[0] = 0.0f;
        st[1] = 1.0f / sqrtf(ms + eps);
        return;
    }
    double mean = sm_norm_sum(x, C) / (double)C;
    float hi = (float)mean, lo = (float)(mean - hi);
    float var = (float)(sm_norm_sum_sq_dev(x, hi, lo, C) / (double)C);
    st[0] = hi;
    st[1] = 1.0f / sqrtf(var + eps);
}

/* x [R,C] -> stats [R,2] */
static void stats_forward(const sm_kernel_args *k)
{
    int64_t C = k->in[0]->ne[k->in[0]->ndim - 1], R = sm_rec_numel(k->in[0]) / C;
    bool rms = k->node->attrs.i[SM_IATTR_NORM_RMS] != 0;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++)
        row_stats((const float *)k->x[0] + r * C, C, rms, k->node->attrs.f[SM_FATTR_NORM_EPS], (float *)k->y + 2 * r);
}

static void stats_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *st = k->y;
    int64_t C = k->in[0]->ne[k->in[0]->ndim - 1], R = sm_rec_numel(k->in[0]) / C;
    bool rms = k->node->attrs.i[SM_IATTR_NORM_RMS] != 0;
    for (int64_t r = 0; r < R; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < C && !rms; j++) mean += x[r * C + j] / (double)C;
        for (int64_t j = 0; j < C; j++) var += ((double)x[r * C + j] - mean) * ((double)x[r * C + j] - mean) / (double)C;
        st[2 * r] = (float)mean;
        st[2 * r + 1] = (float)(1.0 / sqrt(var + (double)k->node->attrs.f[SM_FATTR_NORM_EPS]));
    }
}

#define LANES 16

/* With g = gy·w and xhat = (x - mean)·rstd: Σ g and Σ g·xhat in 16 double lanes, then dx. */
static void bwd_x_row(const float *x, const float *w, const float *gy, const float *st, int64_t C, bool rms,
                      float *dx)
{
    float mean = st[0], rstd = st[1];
    double sg[LANES] = {0}, sgx[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float g = gy[i + j] * w[i + j], xh = (x[i + j] - mean) * rstd;
            sg[j] += g;
            sgx[j] += g * xh;
        }
    for (; i < C; i++) {
        float g = gy[i] * w[i], xh = (x[i] - mean) * rstd;
        sg[i % LANES] += g;
        sgx[i % LANES] += g * xh;
    }
    double a = 0, b = 0;
    for (int j = 0; j < LANES; j++) a += sg[j], b += sgx[j];
    float mg = rms ? 0.0f : (float)(a / (double)C), mgx = (float)(b / (double)C);
    for (i = 0; i < C; i++) {
        float g = gy[i] * w[i], xh = (x[i] - mean) * rstd;
        dx[i] = rstd * (g - mg - xh * mgx);
    }
}

/* x [R,C], w [C], gy [R,C], stats [R,2] -> dx [R,C] */
static void bwd_x_forward(const sm_kernel_args *k)
{
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
    bool rms = k->node->attrs.i[SM_IATTR_NORM_RMS] != 0;
    const float *x = k->x[0], *w = k->x[1], *gy = k->x[2], *st = k->x[3];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) bwd_x_row(x + r * C, w, gy + r * C, st + 2 * r, C, rms, (float *)k->y + r * C);
}

/* The reference differentiates the normalisation element by element (the full Jacobian row of each
 * input), a route independent of the closed form above. */
static void bwd_x_reference(const sm_kernel_args *k)
{
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
    bool rms = k->node->attrs.i[SM_IATTR_NORM_RMS] != 0;
    const float *x = k->x[0], *w = k->x[1], *gy = k->x[2], *st = k->x[3];
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C, *gr = gy + r * C;
        double mean = st[2 * r], rstd = st[2 * r + 1];
        for (int64_t i = 0; i < C; i++) {
            double acc = 0, xi = ((double)xr[i] - mean) * rstd;
            for (int64_t j = 0; j < C; j++) {
                /* d xhat_j / d x_i = rstd·([i==j] - [!rms]/C - xhat_i·xhat_j/C) */
                double xj = ((double)xr[j] - mean) * rstd;
                double d = rstd * ((i == j ? 1.0 : 0.0) - (rms ? 0.0 : 1.0 / (double)C) - xi * xj / (double)C);
                acc += (double)gr[j] * w[j] * d;
            }
            ((float *)k->y)[r * C + i] = (float)acc;
        }
    }
}

/* Columns per task: wide enough that each row's slice is a long contiguous read, narrow enough that
 * every thread gets some. Any split gives the same result: a column is always summed in row order. */
static int64_t col_chunk(int64_t C)
{
    int64_t n = omp_get_num_threads(), w = (C + n - 1) / n;
    w = (w + 15) / 16 * 16;
    return w < 16 ? 16 : w > 512 ? 512 : w;
}

/* x [R,C], gy [R,C], stats [R,2] -> dw [C] */
static void bwd_w_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0], *gy = k->x[1], *st = k->x[2];
    float *dw = k->y;
    int64_t C = k->out->ne[0], R = sm_rec_numel(k->in[0]) / C, W = col_chunk(C), tasks = (C + W - 1) / W;
    double *acc = (double *)((char *)k->work + (size_t)omp_get_thread_num() * k->work_bytes);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t j0 = t * W, n = C - j0 < W ? C - j0 : W;
        for (int64_t j = 0; j < n; j++) acc[j] = 0;
        for (int64_t r = 0; r < R; r++) {
            float mean = st[2 * r], rstd = st[2 * r + 1];
            const float *xr = x + r * C + j0, *gr = gy + r * C + j0;
            for (int64_t j = 0; j < n; j++) acc[j] += gr[j] * ((xr[j] - mean) * rstd);
        }
        for (int64_t j = 0; j < n; j++) dw[j0 + j] = (float)acc[j];
    }
}

static void bwd_w_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0], *gy = k->x[1], *st = k->x[2];
    int64_t C = k->out->ne[0], R = sm_rec_numel(k->in[0]) / C;
    for (int64_t j = 0; j < C; j++) {
        double acc = 0;
        for (int64_t r = 0; r < R; r++) acc += (double)gy[r * C + j] * (((double)x[r * C + j] - st[2 * r]) * st[2 * r + 1]);
        ((float *)k->y)[j] = (float)acc;
    }
}

static size_t work_bwd_w(const sm_graph *g, const sm_node *n)
{
    (void)g, (void)n;
    return 512 * sizeof(double);
}

static double flops_in0(const sm_graph *g, const sm_node *n, double per)
{
    return per * (double)sm_rec_numel(&g->t[n->in[0]]);
}
static double flops_stats(const sm_graph *g, const sm_node *n) { return flops_in0(g, n, 4); }
static double flops_bwd_x(const sm_graph *g, const sm_node *n) { return flops_in0(g, n, 10); }
static double flops_bwd_w(const sm_graph *g, const sm_node *n) { return flops_in0(g, n, 3); }

const sm_op_def sm_op_norm_stats = {
    .name = "norm_stats", .keeps_f32 = true, .min_in = 1, .max_in = 1, .iattr = {"rms"}, .fattr = {"eps"},
    .fattr_default = {1e-5f}, .shape = shape_stats, .flops = flops_stats,
    .forward = stats_forward, .reference = stats_reference,
};

const sm_op_def sm_op_norm_bwd_x = {
    .name = "norm_bwd_x", .min_in = 4, .max_in = 4, .iattr = {"rms"}, .shape = shape_bwd_x,
    .flops = flops_bwd_x, .forward = bwd_x_forward, .reference = bwd_x_reference,
};

const sm_op_def sm_op_norm_bwd_w = {
    .name = "norm_bwd_w", .min_in = 3, .max_in = 3, .iattr = {"rms"}, .shape = shape_bwd_w,
    .flops = flops_bwd_w, .workspace = work_bwd_w, .forward = bwd_w_forward, .reference = bwd_w_reference,
};

/* ---- rules ---- */

/* layernorm (x, w, b; eps) and rmsnorm (x, w; eps) */
static sm_status norm_backward(sm_graph *g, int node, sm_tensor gy, const bool *need, sm_tensor *gx, bool rms)
{
    sm_node n = g->nodes[node];
    sm_status s = SM_OK;
    if (need[0] || need[1]) {
        sm_attrs a = sm_op_default_attrs(SM_OP_NORM_STATS);
        a.i[SM_IATTR_NORM_RMS] = rms;
        a.f[SM_FATTR_NORM_EPS] = n.attrs.f[SM_FATTR_NORM_EPS];
        sm_tensor st;
        if ((s = sm_bwd_op(g, SM_OP_NORM_STATS, &n.in[0], 1, &a, &st))) return s;
        sm_attrs b = sm_op_default_attrs(SM_OP_NORM_BWD_X);
        b.i[SM_IATTR_NORM_RMS] = rms;
        sm_tensor inx[4] = {n.in[0], n.in[1], gy, st}, inw[3] = {n.in[0], gy, st};
        if (need[0] && (s = sm_bwd_op(g, SM_OP_NORM_BWD_X, inx, 4, &b, &gx[0]))) return s;
        if (need[1] && (s = sm_bwd_op(g, SM_OP_NORM_BWD_W, inw, 3, &b, &gx[1]))) return s;
    }
    if (!rms && need[2]) s = sm_bwd_sum_to(g, gy, n.in[2], &gx[2]);
    return s;
}

SM_BACKWARD_RULE(layernorm) { return norm_backward(g, node, gy, need, gx, false); }
SM_BACKWARD_RULE(rmsnorm) { return norm_backward(g, node, gy, need, gx, true); }
