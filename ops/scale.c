/* scale.c — y = s * x. */
#include "rows.h"

static sm_status shape_scale(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    return s ? s : sm_shape_same_as_in0(g, n, out);
}

/* x, y: [N] */
static void scale_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y, s = k->node->attrs.f[SM_FATTR_SCALE_S];
    int64_t n = sm_rec_numel(k->out);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = s * x[i];
}

static void scale_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    for (int64_t i = 0; i < sm_rec_numel(k->out); i++) ((float *)k->y)[i] = k->node->attrs.f[SM_FATTR_SCALE_S] * x[i];
}

static double flops_scale(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 1); }

const sm_op_def sm_op_scale = {
    .name = "scale", .min_in = 1, .max_in = 1, .fattr = {"s"}, .fattr_default = {1.0f},
    .shape = shape_scale, .flops = flops_scale, .inplace = true,
    .forward = scale_forward, .reference = scale_reference, .backward = sm_backward_scale,
};
