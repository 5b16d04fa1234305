/* concat.c — x1..xn (n <= SM_MAX_INPUTS, same dtype, same dims but `axis`) joined along `axis`:
 *   x_j [.., N_j, ..] -> y [.., Σ N_j, ..]. Any dtype. */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_concat(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x0 = &g->t[n->in[0]];
    int64_t axis = n->attrs.i[SM_IATTR_CONCAT_AXIS];
    char s0[64], sj[64];
    if (axis < 0 || axis >= x0->ndim)
        return sm_error(SM_ERR_SHAPE, "node '%s': concat along axis %lld of '%s' %s: the axis must be 0..%d",
                        out->name, (long long)axis, x0->name, sm_shape_str(x0, s0, sizeof s0), x0->ndim - 1);
    sm_shape_same_as_in0(g, n, out);
    for (int j = 1; j < n->n_in; j++) {
        const sm_tensor_rec *x = &g->t[n->in[j]];
        bool ok = x->ndim == x0->ndim && x->dtype == x0->dtype;
        for (int d = 0; ok && d < x0->ndim; d++) ok = d == axis || x->ne[d] == x0->ne[d];
        if (!ok)
            return sm_error(SM_ERR_SHAPE, "node '%s': concat along axis %lld of '%s' %s %s and '%s' %s %s: dtypes "
                            "and every dim but the axis must match", out->name, (long long)axis, x0->name,
                            sm_shape_str(x0, s0, sizeof s0), sm_dtype_name(x0->dtype), x->name,
                            sm_shape_str(x, sj, sizeof sj), sm_dtype_name(x->dtype));
        out->ne[axis] += x->ne[axis];
    }
    return SM_OK;
}

/* everything viewed as [outer, N, inner] */
static int64_t concat_outer(const sm_kernel_args *k, int64_t *inner)
{
    int axis = (int)k->node->attrs.i[SM_IATTR_CONCAT_AXIS];
    int64_t outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) outer *= k->out->ne[d];
    for (int d = axis + 1; d < k->out->ndim; d++) *inner *= k->out->ne[d];
    return outer;
}

/* Segment (o, j) is input j's contiguous block for outer index o; (o, j) pairs are split across
 * threads, each one a memcpy. */
static void concat_forward(const sm_kernel_args *k)
{
    int64_t inner, outer = concat_outer(k, &inner), axis = k->node->attrs.i[SM_IATTR_CONCAT_AXIS];
    int64_t Ny = k->out->ne[axis];
    int nx = k->n_in;
    size_t es = sm_dtype_size(k->out->dtype);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < outer * nx; t++) {
        int64_t o = t / nx, j = t % nx, off = 0;
        for (int64_t i = 0; i < j; i++) off += k->in[i]->ne[axis];
        int64_t Nj = k->in[j]->ne[axis];
        memcpy((char *)k->y + (size_t)((o * Ny + off) * inner) * es,
               (const char *)k->x[j] + (size_t)(o * Nj * inner) * es, (size_t)(Nj * inner) * es);
    }
}

/* output element by element: find which input its axis index falls in */
static void concat_reference(const sm_kernel_args *k)
{
    int64_t inner, outer = concat_outer(k, &inner), axis = k->node->attrs.i[SM_IATTR_CONCAT_AXIS];
    int64_t Ny = k->out->ne[axis];
    size_t es = sm_dtype_size(k->out->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < Ny; a++) {
            int j = 0;
            int64_t ia = a;
            while (ia >= k->in[j]->ne[axis]) ia -= k->in[j++]->ne[axis];
            for (int64_t i = 0; i < inner; i++)
                memcpy((char *)k->y + (size_t)((o * Ny + a) * inner + i) * es,
                       (const char *)k->x[j] + (size_t)((o * k->in[j]->ne[axis] + ia) * inner + i) * es, es);
        }
}

const sm_op_def sm_op_concat = {
    .name = "concat", .min_in = 1, .max_in = SM_MAX_INPUTS, .iattr = {"axis"}, .shape = shape_concat,
    .forward = concat_forward, .reference = concat_reference,
    .backward = sm_backward_concat,
};
