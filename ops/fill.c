/* fill.c — a tensor of one constant value, with no inputs: the seed dloss/dloss = 1 of autodiff.
 * Attributes d0..d3 give the shape (trailing zeros: no such dim), `value` the value. */
#include "../base/error.h"
#include "rows.h"

static sm_status shape_fill(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    (void)g;
    int ndim = 0;
    while (ndim < SM_MAX_DIMS && n->attrs.i[ndim] != 0) ndim++;
    if (ndim == 0) return sm_error(SM_ERR_SHAPE, "node '%s': fill needs at least d0", out->name);
    for (int i = 0; i < SM_MAX_DIMS; i++) {
        if (i < ndim && n->attrs.i[i] < 1)
            return sm_error(SM_ERR_SHAPE, "node '%s': fill dim d%d is %lld; dims are >= 1", out->name, i,
                            (long long)n->attrs.i[i]);
        out->ne[i] = i < ndim ? n->attrs.i[i] : 1;
    }
    out->ndim = ndim;
    out->dtype = SM_F32;
    return SM_OK;
}

/* y: [N] */
static void fill_forward(const sm_kernel_args *k)
{
    float *y = k->y, v = k->node->attrs.f[SM_FATTR_FILL_VALUE];
    int64_t n = sm_rec_numel(k->out);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = v;
}

static void fill_reference(const sm_kernel_args *k)
{
    for (int64_t i = 0; i < sm_rec_numel(k->out); i++) ((float *)k->y)[i] = k->node->attrs.f[SM_FATTR_FILL_VALUE];
}

const sm_op_def sm_op_fill = {
    .name = "fill", .min_in = 0, .max_in = 0, .iattr = {"d0", "d1", "d2", "d3"}, .fattr = {"value"},
    .shape = shape_fill, .forward = fill_forward, .reference = fill_reference,
};
