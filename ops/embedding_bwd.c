/* embedding_bwd.c — the gradient of an embedding table: a scatter-add of the output gradient's rows
 *   gtab [V,C] = 0;  gtab[ids[r], :] += gy[r, :]  for every row r in order.
 * Several rows may carry the same id, so rows cannot be split across threads without races or an
 * order that depends on the thread count; the columns are split instead: each thread owns a chunk
 * of columns of the whole table and walks every row in order, so each element sums its rows in row
 * order whatever the split. Out-of-range ids (a zero row in the forward) contribute nothing. */
#include <string.h>

#include <omp.h>

#include "../base/error.h"
#include "backward.h"
#include "rows.h"

static sm_status shape_embedding_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *ids = &g->t[n->in[0]], *gy = &g->t[n->in[1]];
    char si[64], sg[64];
    if (ids->dtype != SM_I32)
        return sm_error(SM_ERR_SHAPE, "node '%s': embedding_bwd ids '%s' must be i32, not %s", out->name,
                        ids->name, sm_dtype_name(ids->dtype));
    sm_status s = sm_shape_check_f32(g, n, out, 1);
    if (s) return s;
    bool ok = gy->ndim == ids->ndim + 1;
    for (int i = 0; ok && i < ids->ndim; i++) ok = gy->ne[i] == ids->ne[i];
    if (!ok)
        return sm_error(SM_ERR_SHAPE, "node '%s': embedding_bwd gradient '%s' %s must be the ids' shape %s plus "
                        "one dim", out->name, gy->name, sm_shape_str(gy, sg, sizeof sg), sm_shape_str(ids, si, sizeof si));
    if (n->attrs.i[SM_IATTR_EMBEDDING_BWD_VOCAB] < 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': embedding_bwd vocab is %lld; it must be >= 1", out->name,
                        (long long)n->attrs.i[SM_IATTR_EMBEDDING_BWD_VOCAB]);
    out->ndim = 2;
    out->ne[0] = n->attrs.i[SM_IATTR_EMBEDDING_BWD_VOCAB];
    out->ne[1] = gy->ne[gy->ndim - 1];
    out->dtype = SM_F32;
    return SM_OK;
}

/* Columns per task: long contiguous row slices, and some for every thread. */
static int64_t col_chunk(int64_t C)
{
    int64_t n = omp_get_num_threads(), w = (C + n - 1) / n;
    w = (w + 15) / 16 * 16;
    return w < 16 ? 16 : w > 1024 ? 1024 : w;
}

/* ids [N], gy [N, C] -> gtab [V, C]. The table is zeroed by whole rows first (each thread one
 * contiguous range: a plain streaming write, where zeroing column chunks would make both threads
 * write every row of a 50257-row table at a stride); the scatter-add then splits the columns. */
static void embedding_bwd_forward(const sm_kernel_args *k)
{
    const int32_t *ids = k->x[0];
    const float *gy = k->x[1];
    float *gt = k->y;
    int64_t V = k->out->ne[0], C = k->out->ne[1], N = sm_rec_numel(k->in[0]), W = col_chunk(C);
    int64_t tasks = (C + W - 1) / W;
#pragma omp for schedule(static)
    for (int64_t v = 0; v < V; v++) memset(gt + v * C, 0, (size_t)C * sizeof *gt);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t j0 = t * W, w = C - j0 < W ? C - j0 : W;
        for (int64_t r = 0; r < N; r++) {
            int32_t id = ids[r];
            if (id < 0 || id >= V) continue;
            float *dst = gt + (int64_t)id * C + j0;
            const float *src = gy + r * C + j0;
            for (int64_t j = 0; j < w; j++) dst[j] += src[j];
        }
    }
}

static void embedding_bwd_reference(const sm_kernel_args *k)
{
    const int32_t *ids = k->x[0];
    const float *gy = k->x[1];
    float *gt = k->y;
    int64_t V = k->out->ne[0], C = k->out->ne[1], N = sm_rec_numel(k->in[0]);
    for (int64_t v = 0; v < V; v++)
        for (int64_t j = 0; j < C; j++) {
            float acc = 0;
            for (int64_t r = 0; r < N; r++)
                if (ids[r] == v) acc += gy[r * C + j];
            gt[v * C + j] = acc;
        }
}

static double flops_embedding_bwd(const sm_graph *g, const sm_node *n)
{
    return (double)sm_rec_numel(&g->t[n->in[1]]);
}

const sm_op_def sm_op_embedding_bwd = {
    .name = "embedding_bwd", .min_in = 2, .max_in = 2, .iattr = {"vocab"}, .shape = shape_embedding_bwd,
    .flops = flops_embedding_bwd, .forward = embedding_bwd_forward, .reference = embedding_bwd_reference,
};

/* (ids, table) -> y: only the table has a gradient. */
SM_BACKWARD_RULE(embedding)
{
    sm_node n = g->nodes[node];
    sm_attrs a = sm_op_default_attrs(SM_OP_EMBEDDING_BWD);
    a.i[SM_IATTR_EMBEDDING_BWD_VOCAB] = g->t[n.in[1]].ne[0];
    sm_tensor in[2] = {n.in[0], gy};
    return need[1] ? sm_bwd_op(g, SM_OP_EMBEDDING_BWD, in, 2, &a, &gx[1]) : SM_OK;
}
