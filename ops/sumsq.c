/* sumsq.c — sum of the squares of every element of its inputs: the global gradient norm² that
 * clipping needs. (x1..xn; acc) -> [1]; with acc = 1, input 0 is a running total [1] added as is, so
 * a chain of nodes covers any number of tensors.
 *
 * Determinism: the elements are cut into fixed blocks of BLOCK (independent of the thread count);
 * each block is summed in order in double, and the block sums are added in block order. Thread t of
 * n takes the contiguous blocks [t·nb/n, (t+1)·nb/n) and keeps their sums in its own workspace, so
 * walking the threads' workspaces in thread order visits the blocks in block order. */
#include <omp.h>

#include "../base/error.h"
#include "rows.h"

#define BLOCK 16384
#define LANES 16

static sm_status shape_sumsq(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    if (n->attrs.i[SM_IATTR_SUMSQ_ACC] && sm_rec_numel(&g->t[n->in[0]]) != 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': sumsq's running total '%s' must be one value", out->name,
                        g->t[n->in[0]].name);
    out->ndim = 1;
    out->dtype = SM_F32;
    return SM_OK;
}

static int64_t blocks_of(int64_t n) { return (n + BLOCK - 1) / BLOCK; }

static int64_t count_blocks(const sm_tensor_rec *const *in, int first, int n_in)
{
    int64_t nb = 0;
    for (int i = first; i < n_in; i++) nb += blocks_of(sm_rec_numel(in[i]));
    return nb;
}

/* Sum of squares of global block b (blocks numbered through the inputs in order). */
static double block_sum(const sm_kernel_args *k, int first, int64_t b)
{
    int i = first;
    int64_t nbi;
    while (b >= (nbi = blocks_of(sm_rec_numel(k->in[i])))) b -= nbi, i++;
    const float *x = (const float *)k->x[i] + b * BLOCK;
    int64_t n = sm_rec_numel(k->in[i]) - b * BLOCK;
    if (n > BLOCK) n = BLOCK;
    double acc[LANES] = {0}, s = 0;   /* 16 lanes: vectorised, in an order fixed by the block */
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += (double)x[j + l] * x[j + l];
    for (; j < n; j++) acc[j % LANES] += (double)x[j] * x[j];
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

static void sumsq_forward(const sm_kernel_args *k)
{
    int first = k->node->attrs.i[SM_IATTR_SUMSQ_ACC] ? 1 : 0;
    int64_t nb = count_blocks(k->in, first, k->n_in);
    int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    double *mine = (double *)((char *)k->work + (size_t)tid * k->work_bytes);
    for (int64_t b = nb * tid / nth; b < nb * (tid + 1) / nth; b++) mine[b - nb * tid / nth] = block_sum(k, first, b);
#pragma omp barrier
#pragma omp single
    {
        double total = 0;
        for (int t = 0; t < nth; t++) {
            const double *part = (const double *)((const char *)k->work + (size_t)t * k->work_bytes);
            for (int64_t b = nb * t / nth; b < nb * (t + 1) / nth; b++) total += part[b - nb * t / nth];
        }
        if (first) total += *(const float *)k->x[0];
        *(float *)k->y = (float)total;
    }
}

static void sumsq_reference(const sm_kernel_args *k)
{
    int first = k->node->attrs.i[SM_IATTR_SUMSQ_ACC] ? 1 : 0;
    double total = 0;
    for (int i = first; i < k->n_in; i++)
        for (int64_t j = 0; j < sm_rec_numel(k->in[i]); j++) total += (double)((const float *)k->x[i])[j] * ((const float *)k->x[i])[j];
    if (first) total += *(const float *)k->x[0];
    *(float *)k->y = (float)total;
}

/* Each thread keeps at most all the block sums. */
static size_t work_sumsq(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *in[SM_MAX_INPUTS];
    for (int i = 0; i < n->n_in; i++) in[i] = &g->t[n->in[i]];
    return (size_t)count_blocks(in, n->attrs.i[SM_IATTR_SUMSQ_ACC] ? 1 : 0, n->n_in) * sizeof(double);
}

static double flops_sumsq(const sm_graph *g, const sm_node *n)
{
    double f = 0;
    for (int i = 0; i < n->n_in; i++) f += 2.0 * (double)sm_rec_numel(&g->t[n->in[i]]);
    return f;
}

const sm_op_def sm_op_sumsq = {
    .name = "sumsq", .keeps_f32 = true, .min_in = 1, .max_in = SM_MAX_INPUTS, .iattr = {"acc"}, .shape = shape_sumsq,
    .flops = flops_sumsq, .workspace = work_sumsq, .forward = sumsq_forward, .reference = sumsq_reference,
};
