/* broadcast.c — the two directions of a broadcast, as backward rules need them:
 *   sum_to: x [..., S] -> [S], summed over the leading dims (the gradient of a broadcast operand:
 *           a bias [C] added to [B,T,C] gets the sum of gy over B and T);
 *   expand: x -> [d0..d3], s * x repeated along one axis (or everywhere): the gradient of sum/mean. */
#include <string.h>

#include <omp.h>

#include "../base/error.h"
#include "rows.h"

/* ---- sum_to ---- */

static sm_status shape_sum_to(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    int64_t keep = n->attrs.i[SM_IATTR_SUM_TO_NDIM];
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

/* x [R, S] -> y [S]. Each output element sums its column over the rows in row order, in double (a
 * bias gradient sums B*T rows), whoever computes it, so any split of the columns gives the same bits.
 * A thread takes a chunk of up to MAX_CHUNK columns and reads it in groups of ROWS rows; within a
 * group each BLOCK of columns keeps its sums in registers (8 zmm on AVX-512) over the ROWS rows, so
 * the sums cost one load and store per ROWS rows, and the chunk is read row after row, a stream the
 * hardware prefetchers follow (the input is usually a gradient written a few nodes earlier, often
 * no longer in cache). Chunks give every thread an even share of the usual widths (384..4C). */
#define BLOCK 64
#define ROWS 16
#define MAX_CHUNK 1024

/* acc[0..BLOCK) += rows [0, nr) of columns [0, BLOCK) of x (row stride S). The local copy and the
 * fixed trip count let the compiler keep the sums in registers; not inlined, where gcc would work on
 * acc in memory instead. */
static __attribute__((noinline)) void add_rows_block(const float *x, int64_t nr, int64_t S, double *acc)
{
    double a[BLOCK];
    memcpy(a, acc, sizeof a);
    for (int64_t r = 0; r < nr; r++)
        for (int j = 0; j < BLOCK; j++) a[j] += x[r * S + j];
    memcpy(acc, a, sizeof a);
}

/* The same for the last w < BLOCK columns. */
static void add_rows_tail(const float *x, int64_t nr, int64_t S, int64_t w, double *acc)
{
    for (int64_t r = 0; r < nr; r++)
        for (int64_t j = 0; j < w; j++) acc[j] += x[r * S + j];
}

/* y[0..w) = the sums over all R rows of columns [0, w) of x, w <= MAX_CHUNK. */
static void sum_chunk(const float *x, int64_t R, int64_t S, int64_t w, float *y)
{
    double acc[MAX_CHUNK] = {0};
    for (int64_t r0 = 0; r0 < R; r0 += ROWS) {
        const int64_t nr = R - r0 < ROWS ? R - r0 : ROWS;
        int64_t j0 = 0;
        for (; j0 + BLOCK <= w; j0 += BLOCK) add_rows_block(x + r0 * S + j0, nr, S, acc + j0);
        if (j0 < w) add_rows_tail(x + r0 * S + j0, nr, S, w - j0, acc + j0);
    }
    for (int64_t j = 0; j < w; j++) y[j] = (float)acc[j];
}

static void sum_to_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    const int64_t S = sm_rec_numel(k->out), R = sm_rec_numel(k->in[0]) / S, nthr = omp_get_num_threads();
    /* a multiple of the thread count of equal chunks, each at most MAX_CHUNK wide, in whole blocks */
    const int64_t n = nthr * ((S + nthr * MAX_CHUNK - 1) / (nthr * MAX_CHUNK));
    const int64_t W = ((S + n - 1) / n + BLOCK - 1) / BLOCK * BLOCK, tasks = (S + W - 1) / W;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t j0 = t * W;
        sum_chunk(x + j0, R, S, S - j0 < W ? S - j0 : W, y + j0);
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

static double flops_sum_to(const sm_graph *g, const sm_node *n) { return (double)sm_rec_numel(&g->t[n->in[0]]); }

const sm_op_def sm_op_sum_to = {
    .name = "sum_to", .keeps_f32 = true, .min_in = 1, .max_in = 1, .iattr = {"ndim"}, .iattr_default = {1},
    .shape = shape_sum_to, .flops = flops_sum_to, .forward = sum_to_forward,
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
    int64_t axis = n->attrs.i[SM_IATTR_EXPAND_AXIS];
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
    int64_t axis = k->node->attrs.i[SM_IATTR_EXPAND_AXIS];
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
    float *y = k->y, s = k->node->attrs.f[SM_FATTR_EXPAND_S];
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
            for (int64_t i = 0; i < I; i++) y[(o * A + a) * I + i] = k->node->attrs.f[SM_FATTR_EXPAND_S] * x[o * I + i];
}

const sm_op_def sm_op_expand = {
    .name = "expand", .min_in = 1, .max_in = 1, .iattr = {"d0", "d1", "d2", "d3", "axis"},
    .iattr_default = {0, 0, 0, 0, -1}, .fattr = {"s"}, .fattr_default = {1.0f},
    .shape = shape_expand, .forward = expand_forward, .reference = expand_reference,
};
