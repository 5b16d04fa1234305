/* reduce.c — sum and mean of f32 x along one axis, or of every element. One mechanism, two rows.
 *   axis = -1: x [...] -> y [1]
 *   axis = a : x [.., N, ..] (N at a) -> y with dim a removed ([1] if x is 1-D)
 * Sums are accumulated in double, in an order fixed by the shape alone:
 *   - along an axis, each output element is summed by one thread over N in index order (16 double
 *     lanes when the axis is the last dim, so the loop vectorises);
 *   - over everything, the elements are cut into NBLOCKS fixed blocks (independent of the thread
 *     count); threads sum whole blocks into a shared table in the workspace, then one thread adds the
 *     NBLOCKS partial sums in block order. */
#include "../base/error.h"
#include "rows.h"

#define NBLOCKS 256
#define LANES 16

static sm_status shape_reduce(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t axis = n->attrs.i[SM_IATTR_REDUCE_AXIS];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    out->dtype = SM_F32;
    if (axis == -1) {
        out->ndim = 1;
        out->ne[0] = 1;
        return SM_OK;
    }
    if (axis < 0 || axis >= x->ndim) {
        char sx[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': %s of '%s' %s along axis %lld: the axis must be 0..%d, or -1 for "
                        "every element", out->name, sm_op_def_get(n->op)->name, x->name, sm_shape_str(x, sx, sizeof sx),
                        (long long)axis, x->ndim - 1);
    }
    out->ndim = x->ndim > 1 ? x->ndim - 1 : 1;
    for (int d = 0; d < SM_MAX_DIMS; d++) out->ne[d] = 1;
    for (int d = 0, o = 0; d < x->ndim; d++)
        if (d != axis) out->ne[o++] = x->ne[d];
    return SM_OK;
}

/* Σ x[0..n-1] in 16 double lanes (vectorised; order fixed by n) */
static double sum_lanes(const float *x, int64_t n)
{
    double acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    for (; i < n; i++) acc[i % LANES] += x[i];
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

/* x as [outer, N, inner] */
static void reduce_dims(const sm_kernel_args *k, int64_t *outer, int64_t *N, int64_t *inner)
{
    const sm_tensor_rec *x = k->in[0];
    int64_t axis = k->node->attrs.i[SM_IATTR_REDUCE_AXIS];
    *outer = *inner = 1;
    if (axis == -1) {
        *N = sm_rec_numel(x);
        return;
    }
    for (int d = 0; d < axis; d++) *outer *= x->ne[d];
    for (int d = (int)axis + 1; d < x->ndim; d++) *inner *= x->ne[d];
    *N = x->ne[axis];
}

#define ICHUNK 256

static void reduce_forward(const sm_kernel_args *k, bool mean)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t outer, N, inner;
    reduce_dims(k, &outer, &N, &inner);
    double scale = mean ? 1.0 / (double)N : 1.0;
    if (k->node->attrs.i[SM_IATTR_REDUCE_AXIS] == -1) {
        double *part = k->work;   /* NBLOCKS doubles, shared: every thread writes its own blocks */
#pragma omp for schedule(static)
        for (int64_t b = 0; b < NBLOCKS; b++) {
            int64_t i0 = N * b / NBLOCKS, i1 = N * (b + 1) / NBLOCKS;
            part[b] = sum_lanes(x + i0, i1 - i0);
        }
#pragma omp single
        {
            double s = 0;
            for (int b = 0; b < NBLOCKS; b++) s += part[b];
            y[0] = (float)(s * scale);
        }
        return;
    }
    if (inner == 1) {
#pragma omp for schedule(static)
        for (int64_t o = 0; o < outer; o++) y[o] = (float)(sum_lanes(x + o * N, N) * scale);
        return;
    }
    /* inner > 1: (outer, chunk of inner) pairs; each adds N rows of the chunk, in order */
    int64_t per = (inner + ICHUNK - 1) / ICHUNK;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < outer * per; t++) {
        int64_t o = t / per, j0 = (t % per) * ICHUNK, len = inner - j0 < ICHUNK ? inner - j0 : ICHUNK;
        double acc[ICHUNK] = {0};
        for (int64_t i = 0; i < N; i++) {
            const float *xr = x + (o * N + i) * inner + j0;
            for (int64_t j = 0; j < len; j++) acc[j] += xr[j];
        }
        for (int64_t j = 0; j < len; j++) y[o * inner + j0 + j] = (float)(acc[j] * scale);
    }
}

/* Plain serial sums in index order. */
static void reduce_reference(const sm_kernel_args *k, bool mean)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t outer, N, inner;
    reduce_dims(k, &outer, &N, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double s = 0;
            for (int64_t i = 0; i < N; i++) s += x[(o * N + i) * inner + j];
            y[o * inner + j] = (float)(mean ? s / (double)N : s);
        }
}

static void sum_forward(const sm_kernel_args *k) { reduce_forward(k, false); }
static void mean_forward(const sm_kernel_args *k) { reduce_forward(k, true); }
static void sum_reference(const sm_kernel_args *k) { reduce_reference(k, false); }
static void mean_reference(const sm_kernel_args *k) { reduce_reference(k, true); }

static size_t work_reduce(const sm_graph *g, const sm_node *n)
{
    (void)g;
    return n->attrs.i[SM_IATTR_REDUCE_AXIS] == -1 ? NBLOCKS * sizeof(double) : 0;
}

static double flops_reduce(const sm_graph *g, const sm_node *n) { return (double)sm_rec_numel(&g->t[n->in[0]]); }

const sm_op_def sm_op_sum = {
    .name = "sum", .keeps_f32 = true, .min_in = 1, .max_in = 1, .iattr = {"axis"}, .iattr_default = {-1},
    .shape = shape_reduce, .flops = flops_reduce, .workspace = work_reduce,
    .forward = sum_forward, .reference = sum_reference,
    .backward = sm_backward_sum,
};

const sm_op_def sm_op_mean = {
    .name = "mean", .keeps_f32 = true, .min_in = 1, .max_in = 1, .iattr = {"axis"}, .iattr_default = {-1},
    .shape = shape_reduce, .flops = flops_reduce, .workspace = work_reduce,
    .forward = mean_forward, .reference = mean_reference,
    .backward = sm_backward_mean,
};
