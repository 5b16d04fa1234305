/* pad.c — x placed at `start` along `axis` of a zero tensor `total` long there: slice's adjoint.
 * x [.., L, ..] -> y [.., total, ..], y[.., start + j, ..] = x[.., j, ..], zeros elsewhere. */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_pad(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t axis = n->attrs.i[SM_IATTR_PAD_AXIS], start = n->attrs.i[SM_IATTR_PAD_START];
    int64_t total = n->attrs.i[SM_IATTR_PAD_TOTAL];
    char sx[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    if (axis < 0 || axis >= x->ndim)
        return sm_error(SM_ERR_SHAPE, "node '%s': pad axis %lld of '%s' %s; give 0 to %d", out->name,
                        (long long)axis, x->name, sm_shape_str(x, sx, sizeof sx), x->ndim - 1);
    if (start < 0 || total < 0 || start > total - x->ne[axis]) /* no start + len: it may overflow */
        return sm_error(SM_ERR_SHAPE, "node '%s': pad of '%s' %s at %lld along axis %lld does not fit in %lld",
                        out->name, x->name, sm_shape_str(x, sx, sizeof sx), (long long)start, (long long)axis,
                        (long long)total);
    sm_shape_same_as_in0(g, n, out);
    out->ne[axis] = total;
    return SM_OK;
}

/* Rows of the output: [O, total] of I elements each, O = dims before axis, I = dims after. */
static void pad_dims(const sm_kernel_args *k, int64_t *O, int64_t *L, int64_t *I)
{
    int axis = (int)k->node->attrs.i[SM_IATTR_PAD_AXIS];
    *O = *I = 1;
    *L = k->in[0]->ne[axis];
    for (int i = 0; i < axis; i++) *O *= k->out->ne[i];
    for (int i = axis + 1; i < k->out->ndim; i++) *I *= k->out->ne[i];
}

static void pad_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t O, L, I, start = k->node->attrs.i[SM_IATTR_PAD_START], total = k->node->attrs.i[SM_IATTR_PAD_TOTAL];
    pad_dims(k, &O, &L, &I);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < O * total; r++) {
        int64_t o = r / total, j = r % total - start;
        if (j >= 0 && j < L) memcpy(y + r * I, x + (o * L + j) * I, (size_t)I * sizeof *y);
        else memset(y + r * I, 0, (size_t)I * sizeof *y);
    }
}

static void pad_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t O, L, I, start = k->node->attrs.i[SM_IATTR_PAD_START], total = k->node->attrs.i[SM_IATTR_PAD_TOTAL];
    pad_dims(k, &O, &L, &I);
    for (int64_t o = 0; o < O; o++)
        for (int64_t j = 0; j < total; j++)
            for (int64_t i = 0; i < I; i++)
                y[(o * total + j) * I + i] = j >= start && j < start + L ? x[(o * L + j - start) * I + i] : 0.0f;
}

const sm_op_def sm_op_pad = {
    .name = "pad", .min_in = 1, .max_in = 1, .iattr = {"axis", "start", "total"},
    .shape = shape_pad, .forward = pad_forward, .reference = pad_reference,
};
