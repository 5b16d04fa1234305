/* slice.c — a copy of the range [start, start + len) of x along one axis. Any dtype.
 *   x [.., N, ..] (N at `axis`) -> y [.., len, ..]. Attributes: axis, start, len (iattrs 0..2). */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_slice(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t axis = n->attrs.i[SM_IATTR_SLICE_AXIS], start = n->attrs.i[SM_IATTR_SLICE_START];
    int64_t len = n->attrs.i[SM_IATTR_SLICE_LEN];
    char sx[64];
    if (axis < 0 || axis >= x->ndim)
        return sm_error(SM_ERR_SHAPE, "node '%s': slice of '%s' %s along axis %lld: the axis must be 0..%d", out->name,
                        x->name, sm_shape_str(x, sx, sizeof sx), (long long)axis, x->ndim - 1);
    if (start < 0 || len < 1 || start > x->ne[axis] - len)
        return sm_error(SM_ERR_SHAPE, "node '%s': slice of '%s' %s: range [%lld, %lld) along axis %lld is out of "
                        "[0, %lld) or empty", out->name, x->name, sm_shape_str(x, sx, sizeof sx), (long long)start,
                        (long long)(start > INT64_MAX - len ? INT64_MAX : start + len), (long long)axis, (long long)x->ne[axis]);
    sm_shape_same_as_in0(g, n, out);
    out->ne[axis] = len;
    return SM_OK;
}

/* x viewed as [outer, N, inner], y as [outer, len, inner] */
static void slice_dims(const sm_kernel_args *k, int64_t *outer, int64_t *N, int64_t *inner)
{
    const sm_tensor_rec *x = k->in[0];
    int axis = (int)k->node->attrs.i[SM_IATTR_SLICE_AXIS];
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->ne[d];
    for (int d = axis + 1; d < x->ndim; d++) *inner *= x->ne[d];
    *N = x->ne[axis];
}

#define CHUNK_BYTES 65536

/* Each output row (len·inner elements, contiguous in x too) is cut in chunks; (row, chunk) pairs are
 * split across threads. */
static void slice_forward(const sm_kernel_args *k)
{
    int64_t outer, N, inner, start = k->node->attrs.i[SM_IATTR_SLICE_START], len = k->node->attrs.i[SM_IATTR_SLICE_LEN];
    slice_dims(k, &outer, &N, &inner);
    size_t es = sm_dtype_size(k->out->dtype), row = (size_t)(len * inner) * es;
    int64_t per_row = (int64_t)((row + CHUNK_BYTES - 1) / CHUNK_BYTES);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < outer * per_row; t++) {
        int64_t o = t / per_row;
        size_t c0 = (size_t)(t % per_row) * CHUNK_BYTES, c1 = c0 + CHUNK_BYTES < row ? c0 + CHUNK_BYTES : row;
        const char *src = (const char *)k->x[0] + (size_t)(o * N + start) * (size_t)inner * es;
        memcpy((char *)k->y + (size_t)o * row + c0, src + c0, c1 - c0);
    }
}

/* element by element */
static void slice_reference(const sm_kernel_args *k)
{
    int64_t outer, N, inner, start = k->node->attrs.i[SM_IATTR_SLICE_START], len = k->node->attrs.i[SM_IATTR_SLICE_LEN];
    slice_dims(k, &outer, &N, &inner);
    size_t es = sm_dtype_size(k->out->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            for (int64_t j = 0; j < inner; j++)
                memcpy((char *)k->y + (size_t)((o * len + i) * inner + j) * es,
                       (const char *)k->x[0] + (size_t)((o * N + start + i) * inner + j) * es, es);
}

const sm_op_def sm_op_slice = {
    .name = "slice", .min_in = 1, .max_in = 1, .iattr = {"axis", "start", "len"}, .iattr_default = {0, 0, 1},
    .shape = shape_slice, .forward = slice_forward, .reference = slice_reference,
    .backward = sm_backward_slice,
};
