/* softmax_bwd.c — backward of softmax along the last dim, from its output:
 *   (y [R,C], gy [R,C]) -> dx [R,C],  dx = y·(gy - Σ_j gy_j·y_j)  per row. */
#include "../base/error.h"
#include "backward.h"
#include "rows.h"

static sm_status shape_softmax_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (!s) s = sm_shape_check_f32(g, n, out, 1);
    if (s) return s;
    const sm_tensor_rec *y = &g->t[n->in[0]], *gy = &g->t[n->in[1]];
    bool ok = y->ndim == gy->ndim;
    for (int i = 0; ok && i < y->ndim; i++) ok = y->ne[i] == gy->ne[i];
    if (!ok) {
        char a[64], b[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': softmax_bwd of '%s' %s and gradient '%s' %s: shapes differ",
                        out->name, y->name, sm_shape_str(y, a, sizeof a), gy->name, sm_shape_str(gy, b, sizeof b));
    }
    return sm_shape_same_as_in0(g, n, out);
}

static void softmax_bwd_row(const float *y, const float *gy, int64_t C, float *dx)
{
    double dot = 0;
    for (int64_t j = 0; j < C; j++) dot += (double)gy[j] * y[j];
    float d = (float)dot;
    for (int64_t j = 0; j < C; j++) dx[j] = y[j] * (gy[j] - d);
}

static void softmax_bwd_forward(const sm_kernel_args *k)
{
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++)
        softmax_bwd_row((const float *)k->x[0] + r * C, (const float *)k->x[1] + r * C, C, (float *)k->y + r * C);
}

/* The reference applies the softmax Jacobian dy_j/dx_i = y_j·([i==j] - y_i) in full. */
static void softmax_bwd_reference(const sm_kernel_args *k)
{
    const float *y = k->x[0], *gy = k->x[1];
    int64_t C = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / C;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < C; i++) {
            double acc = 0;
            for (int64_t j = 0; j < C; j++)
                acc += (double)gy[r * C + j] * y[r * C + j] * ((i == j ? 1.0 : 0.0) - y[r * C + i]);
            ((float *)k->y)[r * C + i] = (float)acc;
        }
}

static double flops_softmax_bwd(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 4); }

const sm_op_def sm_op_softmax_bwd = {
    .name = "softmax_bwd", .min_in = 2, .max_in = 2, .shape = shape_softmax_bwd, .flops = flops_softmax_bwd,
    .forward = softmax_bwd_forward, .reference = softmax_bwd_reference,
};

/* y = softmax(x): the rule reads the node's own output y. */
SM_BACKWARD_RULE(softmax)
{
    if (!need[0]) return SM_OK;
    sm_tensor in[2] = {g->nodes[node].out, gy};
    return sm_bwd_op(g, SM_OP_SOFTMAX_BWD, in, 2, NULL, &gx[0]);
}
