/* backward_util.c — the small builders backward rules share. */
#include <stdio.h>
#include <string.h>

#include "../base/error.h"
#include "backward.h"

sm_status sm_bwd_op(sm_graph *g, sm_op_kind op, const sm_tensor *in, int n, const sm_attrs *attrs,
                    sm_tensor *out)
{
    /* A recognisable, unique name: backward tensors show up as such in plans and errors. */
    char name[SM_NAME_MAX];
    snprintf(name, sizeof name, "bwd.%s.%d", sm_op_name(op), g->n_nodes);
    sm_tensor none = SM_NO_TENSOR;
    return sm_graph_op(g, op, n ? in : &none, n, attrs, name, out);
}

bool sm_bwd_same_shape(const sm_graph *g, sm_tensor a, sm_tensor b)
{
    const sm_tensor_rec *x = &g->t[a], *y = &g->t[b];
    if (x->ndim != y->ndim) return false;
    for (int i = 0; i < x->ndim; i++)
        if (x->ne[i] != y->ne[i]) return false;
    return true;
}

static sm_status reshape_to(sm_graph *g, sm_tensor x, int ndim, const int64_t *ne, sm_tensor *out)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_RESHAPE);
    for (int i = 0; i < SM_MAX_DIMS; i++) a.i[i] = i < ndim ? ne[i] : 0;
    return sm_bwd_op(g, SM_OP_RESHAPE, &x, 1, &a, out);
}

sm_status sm_bwd_reshape_like(sm_graph *g, sm_tensor x, sm_tensor like, sm_tensor *out)
{
    if (sm_bwd_same_shape(g, x, like)) {
        *out = x;
        return SM_OK;
    }
    int64_t ne[SM_MAX_DIMS];
    memcpy(ne, g->t[like].ne, sizeof ne);
    return reshape_to(g, x, g->t[like].ndim, ne, out);
}

sm_status sm_bwd_rows(sm_graph *g, sm_tensor x, int64_t cols, sm_tensor *out)
{
    const sm_tensor_rec *r = &g->t[x];
    if (r->ndim == 2 && r->ne[1] == cols) {
        *out = x;
        return SM_OK;
    }
    int64_t ne[2] = {sm_rec_numel(r) / cols, cols};
    return reshape_to(g, x, 2, ne, out);
}

sm_status sm_bwd_sum_to(sm_graph *g, sm_tensor gy, sm_tensor like, sm_tensor *out)
{
    if (sm_bwd_same_shape(g, gy, like)) {
        *out = gy;
        return SM_OK;
    }
    sm_attrs a = sm_op_default_attrs(SM_OP_SUM_TO);
    a.i[SM_IATTR_SUM_TO_NDIM] = g->t[like].ndim;
    return sm_bwd_op(g, SM_OP_SUM_TO, &gy, 1, &a, out);
}
