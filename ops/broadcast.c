/* broadcast.c — the two directions of a broadcast, as backward rules need them:
 *   sum_to: x [..., S] -> [S], summed over the leading dims (the gradient of a broadcast operand:
 *           a bias [C] added to [B,T,C] gets the sum of gy over B and T);
 *   expand: x -> [d0..d3], s * x repeated along one axis (or everywhere): the gradient of sum/mean. */
#include <omp.h>

#include "../graph/error.h"
#include "rows.h"

/* ---- sum_to ---- */

static sm_status shape_sum_to(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    int64_t keep = n->attrs.i[0];
    if (keep < 1 || keep > x->ndim) {
        char sx[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': sum_to keeps the last %lld dims of '%s' %s; give 1 to %d",
                        out->name, (long long)keep, x->name, sm_shape_str(x, sx, sizeof sx), x->ndim);
    }
    out->ndim = (int)keep;
    for (int i = 0; i < SM_MAX_DIMS; i++) out->ne[i] = i < keep ? x->ne[x->ndim - keep + i] : 1;
    out->dtype = SM_F32;
    return SM_OK;
}

/* Columns are split in chunks, wide enough that each row's slice is a long contiguous read, narrow
 * enough that every thread gets some; each output element sums its column over the rows in row
 * order, whoever owns it, so any split gives the same bits. */
#define MAX_COLS 512

static int64_t col_chunk(int64_t S)
{
    int64_t n = omp_get_num_threads(), w = (S + n - 1) / n;
    w = (w + 15) / 16 * 16;
    return w < 16 ? 16 : w > MAX_COLS ? MAX_COLS : w;
}

/* x [R, S] -> y [S] */
static void sum_to_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t S = sm_rec_numel(k->out), R = sm_rec_numel(k->in[0]) / S, W = col_chunk(S), tasks = (S + W - 1) / W;
    double *acc = (double *)((char *)k->work + (size_t)omp_get_thread_num() * k->work_bytes);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t j0 = t * W, w = S - j0 < W ? S - j0 : W;
        for (int64_t j = 0; j < w; j++) acc[j] = 0;   /* double: a bias gradient sums B*T rows */
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < w; j++) acc[j] += x[r * S + j0 + j];
        for (int64_t j = 0; j < w; j++) y[j0 + j] = (float)acc[j];
    }
}

static void sum_to_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t S = sm_rec_numel(k->out), R = sm_rec_numel(k->in[0]) / S;
    for (int64_t j = 0; j < S; j++) {
        double acc = 0;
        for (int64_t r = 0; r < R; r++) acc += x[r * S + j];
        y[j] = (float)acc;
    }
}

static size_t work_sum_to(const sm_graph *g, const sm_node *n)
{
    (void)g, (void)n;
    return MAX_COLS * sizeof(double);
}

static double flops_sum_to(const sm_graph *g, const sm_node *n) { return (double)sm_rec_numel(&g->t[n->in[0]]); }

const sm_op_def sm_op_sum_to = {
    .name = "sum_to", .min_in = 1, .max_in = 1, .iattr = {"ndim"}, .iattr_default = {1},
    .shape = shape_sum_to, .flops = flops_sum_to, .workspace = work_sum_to, .forward = sum_to_forward,
    .reference = sum_to_reference,
};

/* ---- expand ---- */

static sm_status shape_expand(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    char sx[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    int ndim = 0;
    while (ndim < SM_MAX_DIMS && n->attrs.i[ndim] != 0) ndim++;
    if (ndim == 0) return sm_error(SM_ERR_SHAPE, "node '%s': expand needs at least d0", out->name);
    int64_t total = 1;
    for (int i = 0; i < SM_MAX_DIMS; i++) {
        if (i < ndim && n->attrs.i[i] < 1)
            return sm_error(SM_ERR_SHAPE, "node '%s': expand dim d%d is %lld; dims are >= 1", out->name, i,
                            (long long)n->attrs.i[i]);
        out->ne[i] = i < ndim ? n->attrs.i[i] : 1;
        if (__builtin_mul_overflow(total, out->ne[i], &total))
            return sm_error(SM_ERR_SHAPE, "node '%s': expand to more elements than int64 holds", out->name);
    }
    int64_t axis = n->attrs.i[4];
    int64_t want = axis == -1 ? 1 : axis >= 0 && axis < ndim ? total / out->ne[axis] : -1;
    if (want < 0)
        return sm_error(SM_ERR_SHAPE, "node '%s': expand axis %lld; give -1 or 0 to %d", out->name,
                        (long long)axis, ndim - 1);
    if (sm_rec_numel(x) != want)
        return sm_error(SM_ERR_SHAPE, "node '%s': expand of '%s' %s along axis %lld needs %lld elements (the "
                        "output's with that axis removed)", out->name, x->name, sm_shape_str(x, sx, sizeof sx),
                        (long long)axis, (long long)want);
    out->ndim = ndim;
    out->dtype = SM_F32;
    return SM_OK;
}

/* y [O, A, I] = s * x [O, I] repeated along A (axis -1: O = I = 1, A = all). */
static void expand_dims(const sm_kernel_args *k, int64_t *O, int64_t *A, int64_t *I)
{
    int64_t axis = k->node->attrs.i[4];
    *O = *I = 1;
    *A = sm_rec_numel(k->out);
    if (axis < 0) return;
    *A = k->out->ne[axis];
    for (int i = 0; i < axis; i++) *O *= k->out->ne[i];
    for (int i = (int)axis + 1; i < k->out->ndim; i++) *I *= k->out->ne[i];
}

static void expand_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y, s = k->node->attrs.f[0];
    int64_t O, A, I;
    expand_dims(k, &O, &A, &I);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < O * A; r++) {
        const float *xr = x + (r / A) * I;
        for (int64_t i = 0; i < I; i++) y[r * I + i] = s * xr[i];
    }
}

static void expand_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t O, A, I;
    expand_dims(k, &O, &A, &I);
    for (int64_t o = 0; o < O; o++)
        for (int64_t a = 0; a < A; a++)
            for (int64_t i = 0; i < I; i++) y[(o * A + a) * I + i] = k->node->attrs.f[0] * x[o * I + i];
}

const sm_op_def sm_op_expand = {
    .name = "expand", .min_in = 1, .max_in = 1, .iattr = {"d0", "d1", "d2", "d3", "axis"},
    .iattr_default = {0, 0, 0, 0, -1}, .fattr = {"s"}, .fattr_default = {1.0f},
    .shape = shape_expand, .forward = expand_forward, .reference = expand_reference,
};
