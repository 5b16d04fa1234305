/* activation_bwd.c — backward of gelu and silu, elementwise: (x [N], gy [N]) -> dx [N].
 *   gelu (tanh form): y = 0.5·x·(1 + tanh u), u = √(2/π)·(x + 0.044715·x³)
 *                     y' = 0.5·(1 + tanh u) + 0.5·x·(1 - tanh²u)·u'
 *   silu:             y = x·σ(x),  y' = σ(x)·(1 + x·(1 - σ(x)))
 * The team kernels write gelu's 0.5·(1 + tanh u) as σ(2u) = 1/(1 + exp(-2u)), as the forward does,
 * so 0.5·(1 - tanh²u) = 2·σ(2u)·(1 - σ(2u)): one exp (vmath.h's, which vectorises) and no
 * cancellation for negative x. The references compute the tanh forms in double. */
#include <math.h>

#include "../base/error.h"
#include "backward.h"
#include "rows.h"
#include "vmath.h"

#define SQRT_2_OVER_PI 0.79788456080286536
#define GELU_C 0.044715
#define CHUNK 4096

static inline float gelu_grad(float x)
{
    float a = (float)SQRT_2_OVER_PI, u = a * (x + (float)GELU_C * x * x * x);
    float s = 1.0f / (1.0f + sm_vexpf(-2.0f * u));
    return s + 2.0f * x * s * (1.0f - s) * a * (1.0f + 3.0f * (float)GELU_C * x * x);
}

static inline float silu_grad(float x)
{
    float s = 1.0f / (1.0f + sm_vexpf(-x));
    return s * (1.0f + x * (1.0f - s));
}

static double gelu_grad_ref(double x)
{
    double u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x), t = tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
}

static double silu_grad_ref(double x)
{
    double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

/* x, gy, dx: [N]; chunks of CHUNK elements split across threads. x may be stored f16 or bf16 (a
 * saved activation: precision.c); each chunk of it is widened into a buffer first. */
#define ACT_BWD(fwd, ref, grad, grad_ref)                                                      \
    static void fwd(const sm_kernel_args *k)                                                   \
    {                                                                                          \
        const float *gy = k->x[1];                                                             \
        float *dx = k->y, xb[CHUNK];                                                           \
        int64_t n = sm_rec_numel(k->out), chunks = (n + CHUNK - 1) / CHUNK;                    \
        _Pragma("omp for schedule(static)")                                                    \
        for (int64_t c = 0; c < chunks; c++) {                                                 \
            int64_t i0 = c * CHUNK, end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;           \
            sm_load_f32(k->x[0], k->in[0]->dtype, i0, end - i0, xb);                           \
            for (int64_t i = i0; i < end; i++) dx[i] = gy[i] * grad(xb[i - i0]);               \
        }                                                                                      \
    }                                                                                          \
    static void ref(const sm_kernel_args *k)                                                   \
    {                                                                                          \
        const float *gy = k->x[1];                                                             \
        for (int64_t i = 0; i < sm_rec_numel(k->out); i++) {                                   \
            float x;                                                                           \
            sm_load_f32(k->x[0], k->in[0]->dtype, i, 1, &x);                                   \
            ((float *)k->y)[i] = (float)((double)gy[i] * grad_ref(x));                         \
        }                                                                                      \
    }
ACT_BWD(gelu_bwd_forward, gelu_bwd_reference, gelu_grad, gelu_grad_ref)
ACT_BWD(silu_bwd_forward, silu_bwd_reference, silu_grad, silu_grad_ref)

/* (x, gy): one shape; gy f32, x f32, f16 or bf16 */
static sm_status shape_act_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = sm_shape_check_float(g, n, out, 0);
    if (!s) s = sm_shape_check_f32(g, n, out, 1);
    if (s) return s;
    if (sm_rec_numel(&g->t[n->in[0]]) != sm_rec_numel(&g->t[n->in[1]])) {
        char a[64], b[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': %s of '%s' %s and gradient '%s' %s: sizes differ", out->name,
                        sm_op_name(n->op), g->t[n->in[0]].name, sm_shape_str(&g->t[n->in[0]], a, sizeof a),
                        g->t[n->in[1]].name, sm_shape_str(&g->t[n->in[1]], b, sizeof b));
    }
    sm_shape_same_as_in0(g, n, out);
    out->dtype = SM_F32;
    return SM_OK;
}

static double flops_gelu_bwd(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 20); }
static double flops_silu_bwd(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 16); }

const sm_op_def sm_op_gelu_bwd = {
    .name = "gelu_bwd", .min_in = 2, .max_in = 2, .shape = shape_act_bwd, .flops = flops_gelu_bwd, .half_inputs = 1u,
    .forward = gelu_bwd_forward, .reference = gelu_bwd_reference,
};

const sm_op_def sm_op_silu_bwd = {
    .name = "silu_bwd", .min_in = 2, .max_in = 2, .shape = shape_act_bwd, .flops = flops_silu_bwd, .half_inputs = 1u,
    .forward = silu_bwd_forward, .reference = silu_bwd_reference,
};

static sm_status act_backward(sm_graph *g, int node, sm_tensor gy, sm_op_kind bwd, sm_tensor *gx)
{
    sm_tensor in[2] = {g->nodes[node].in[0], gy};
    return sm_bwd_op(g, bwd, in, 2, NULL, gx);
}

SM_BACKWARD_RULE(gelu) { return need[0] ? act_backward(g, node, gy, SM_OP_GELU_BWD, &gx[0]) : SM_OK; }
SM_BACKWARD_RULE(silu) { return need[0] ? act_backward(g, node, gy, SM_OP_SILU_BWD, &gx[0]) : SM_OK; }
