/* shape_bwd.c — backward rules of the ops that move or reduce elements without arithmetic on them:
 * reshape (reshape back), permute (inverse permutation), slice (pad with zeros), concat (slices),
 * sum and mean (expand the gradient back along the reduced axis), cast (cast back). */
#include "../base/error.h"
#include "backward.h"

SM_BACKWARD_RULE(reshape)
{
    sm_node n = g->nodes[node];
    return need[0] ? sm_bwd_reshape_like(g, gy, n.in[0], &gx[0]) : SM_OK;
}

/* y = permute(x; p): x = permute(y; p⁻¹) */
SM_BACKWARD_RULE(permute)
{
    sm_node n = g->nodes[node];
    if (!need[0]) return SM_OK;
    int nd = g->t[n.in[0]].ndim;
    sm_attrs a = n.attrs;
    for (int i = 0; i < nd; i++) a.i[n.attrs.i[i]] = i;
    return sm_bwd_op(g, SM_OP_PERMUTE, &gy, 1, &a, &gx[0]);
}

static int norm_axis(int64_t axis, int ndim) { return (int)(axis < 0 ? axis + ndim : axis); }

SM_BACKWARD_RULE(slice)
{
    sm_node n = g->nodes[node];
    if (!need[0]) return SM_OK;
    const sm_tensor_rec *x = &g->t[n.in[0]];
    int axis = norm_axis(n.attrs.i[SM_IATTR_SLICE_AXIS], x->ndim);
    sm_attrs a = sm_op_default_attrs(SM_OP_PAD);
    a.i[SM_IATTR_PAD_AXIS] = axis;
    a.i[SM_IATTR_PAD_START] = n.attrs.i[SM_IATTR_SLICE_START];
    a.i[SM_IATTR_PAD_TOTAL] = x->ne[axis];
    return sm_bwd_op(g, SM_OP_PAD, &gy, 1, &a, &gx[0]);
}

SM_BACKWARD_RULE(concat)
{
    sm_node n = g->nodes[node];
    int axis = norm_axis(n.attrs.i[SM_IATTR_CONCAT_AXIS], g->t[n.out].ndim);
    int64_t start = 0;
    for (int i = 0; i < n.n_in; i++) {
        int64_t len = g->t[n.in[i]].ne[axis];
        if (need[i]) {
            sm_attrs a = sm_op_default_attrs(SM_OP_SLICE);
            a.i[SM_IATTR_SLICE_AXIS] = axis;
            a.i[SM_IATTR_SLICE_START] = start;
            a.i[SM_IATTR_SLICE_LEN] = len;
            sm_status s = sm_bwd_op(g, SM_OP_SLICE, &gy, 1, &a, &gx[i]);
            if (s) return s;
        }
        start += len;
    }
    return SM_OK;
}

/* sum/mean over an axis (or everything, axis -1): the gradient is gy repeated along it, times
 * 1 (sum) or 1/count (mean). gy's layout is x's with that axis removed, whether or not the forward
 * keeps it as a dim of 1. */
static sm_status reduce_backward(sm_graph *g, int node, sm_tensor gy, bool mean, sm_tensor *gx)
{
    sm_node n = g->nodes[node];
    const sm_tensor_rec *x = &g->t[n.in[0]];
    int64_t axis = n.attrs.i[SM_IATTR_REDUCE_AXIS];
    if (axis < -1 || axis >= x->ndim)
        return sm_error(SM_ERR_UNSUPPORTED, "node '%s': backward of %s over axis %lld of '%s' (%d dims)",
                        g->t[n.out].name, sm_op_name(n.op), (long long)axis, x->name, x->ndim);
    sm_attrs a = sm_op_default_attrs(SM_OP_EXPAND);
    for (int i = 0; i < SM_MAX_DIMS; i++) a.i[i] = i < x->ndim ? x->ne[i] : 0;
    a.i[SM_IATTR_EXPAND_AXIS] = axis;
    double count = axis < 0 ? (double)sm_rec_numel(x) : (double)x->ne[axis];
    a.f[SM_FATTR_EXPAND_S] = mean ? (float)(1.0 / count) : 1.0f;
    return sm_bwd_op(g, SM_OP_EXPAND, &gy, 1, &a, gx);
}

SM_BACKWARD_RULE(sum) { return need[0] ? reduce_backward(g, node, gy, false, &gx[0]) : SM_OK; }
SM_BACKWARD_RULE(mean) { return need[0] ? reduce_backward(g, node, gy, true, &gx[0]) : SM_OK; }

SM_BACKWARD_RULE(cast)
{
    sm_node n = g->nodes[node];
    if (!need[0]) return SM_OK;
    sm_dtype to = g->t[n.in[0]].dtype;
    if (g->t[gy].dtype == to) {
        gx[0] = gy;
        return SM_OK;
    }
    sm_attrs a = sm_op_default_attrs(SM_OP_CAST);
    a.i[SM_IATTR_CAST_DTYPE] = to;
    return sm_bwd_op(g, SM_OP_CAST, &gy, 1, &a, &gx[0]);
}
