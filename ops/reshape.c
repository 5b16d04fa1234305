/* reshape.c — a view of x with another shape of the same element count. Attributes d0..d3 give the
 * new shape; trailing zeros mean "no such dim", and one dim may be -1 (inferred). No kernel runs:
 * the planner gives the output the input's storage. */
#include "../base/error.h"
#include "rows.h"

static sm_status shape_reshape(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    const int64_t *dims = &n->attrs.i[SM_IATTR_RESHAPE_D0];   /* d0..d3 */
    int64_t known = 1, infer = -1, ndim = 0;
    for (int i = 0; i < SM_MAX_DIMS && dims[i] != 0; i++, ndim++) {
        int64_t d = dims[i];
        if (d == -1 && infer < 0) infer = i;
        else if (d < 1) return sm_error(SM_ERR_SHAPE, "node '%s': reshape dim d%d is %lld; dims are >= 1, "
                                        "or one -1 to infer", out->name, i, (long long)d);
        else if (__builtin_mul_overflow(known, d, &known)) known = INT64_MAX; /* cannot match: an error below */
        out->ne[i] = d;
    }
    if (ndim == 0) return sm_error(SM_ERR_SHAPE, "node '%s': reshape needs at least d0", out->name);
    int64_t total = sm_rec_numel(x);
    if (infer >= 0) {
        if (total % known) goto mismatch;
        out->ne[infer] = total / known;
    } else if (known != total) {
        goto mismatch;
    }
    out->ndim = (int)ndim;
    out->dtype = x->dtype;
    return SM_OK;
mismatch:;
    char sx[64];
    return sm_error(SM_ERR_SHAPE, "node '%s': cannot reshape '%s' %s (%lld elements) to dims %lld,%lld,%lld,%lld",
                    out->name, x->name, sm_shape_str(x, sx, sizeof sx), (long long)total,
                    (long long)dims[0], (long long)dims[1], (long long)dims[2], (long long)dims[3]);
}

const sm_op_def sm_op_reshape = {
    .name = "reshape", .min_in = 1, .max_in = 1, .iattr = {"d0", "d1", "d2", "d3"},
    .shape = shape_reshape, .is_view = true, .backward = sm_backward_reshape,
};
