/* rows_view.c — rows [start, start + len) of x along its first dim, as a view: no copy, the output is
 * those bytes of x's storage. x [N, ..] -> y [len, ..]. (slice copies a range along any axis; along the
 * first, a range is already contiguous.) The fused LM head's backward uses it to hand out dw and dx
 * from the one tensor its node writes. */
#include "../base/error.h"
#include "rows.h"

static sm_status shape_rows(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t start = n->attrs.i[SM_IATTR_ROWS_START], len = n->attrs.i[SM_IATTR_ROWS_LEN];
    char sx[64];
    if (start < 0 || len < 1 || start > x->ne[0] - len)   /* no start + len: it may overflow */
        return sm_error(SM_ERR_SHAPE, "node '%s': rows %lld.. (%lld of them) of '%s' %s: the range must lie in "
                        "[0, %lld) and hold at least one row", out->name, (long long)start, (long long)len, x->name,
                        sm_shape_str(x, sx, sizeof sx), (long long)x->ne[0]);
    sm_shape_same_as_in0(g, n, out);
    out->ne[0] = len;
    return SM_OK;
}

/* bytes from the start of x's storage */
static uint64_t offset_rows(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    return (uint64_t)n->attrs.i[SM_IATTR_ROWS_START] * (sm_rec_bytes(x) / (uint64_t)x->ne[0]);
}

/* the adjoint: the gradient placed at `start` of zeros as long as x */
SM_BACKWARD_RULE(rows)
{
    if (!need[0]) return SM_OK;
    sm_node n = g->nodes[node];
    sm_attrs at = sm_op_default_attrs(SM_OP_PAD);
    at.i[SM_IATTR_PAD_AXIS] = 0;
    at.i[SM_IATTR_PAD_START] = n.attrs.i[SM_IATTR_ROWS_START];
    at.i[SM_IATTR_PAD_TOTAL] = g->t[n.in[0]].ne[0];
    return sm_bwd_op(g, SM_OP_PAD, &gy, 1, &at, &gx[0]);
}

const sm_op_def sm_op_rows = {
    .name = "rows", .min_in = 1, .max_in = 1, .iattr = {"start", "len"}, .iattr_default = {0, 1},
    .shape = shape_rows, .is_view = true, .view_offset = offset_rows, .backward = sm_backward_rows,
};
