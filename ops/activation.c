/* activation.c — gelu and silu, elementwise: x [N] -> y [N]. One mechanism, two rows.
 *
 * gelu is GPT-2's tanh form, 0.5·x·(1 + tanh(u)) with u = sqrt(2/π)·(x + 0.044715·x³). The forward
 * kernel uses the identity 0.5·(1 + tanh(u)) = 1 / (1 + exp(-2u)), which needs one exp (vectorised,
 * vmath.h) and has no cancellation for negative x, where 1 + tanh(u) loses every digit. The
 * reference computes the tanh form itself in double (see there for negative u).
 * silu is x·sigmoid(x) = x / (1 + exp(-x)). */
#include <math.h>

#include "rows.h"
#include "vmath.h"

#define SQRT_2_OVER_PI 0.79788456080286536f
#define GELU_C 0.044715f

/* Spans of CHUNK elements are split across threads; each element depends on its input alone, so
 * any thread count gives the same bits. */
#define CHUNK 4096

static void gelu_span(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u = SQRT_2_OVER_PI * (v + GELU_C * v * v * v);
        y[i] = v / (1.0f + sm_vexpf(-2.0f * u));
    }
}

static void silu_span(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + sm_vexpf(-x[i]));
}

/* x, y: [N] (in place allowed: y may be x) */
#define ACT_FORWARD(fn, span)                                                  \
    static void fn(const sm_kernel_args *k)                                    \
    {                                                                          \
        const float *x = k->x[0];                                              \
        float *y = k->y;                                                       \
        int64_t n = sm_rec_numel(k->out), chunks = (n + CHUNK - 1) / CHUNK;    \
        _Pragma("omp for schedule(static)")                                    \
        for (int64_t c = 0; c < chunks; c++) {                                 \
            int64_t i0 = c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;     \
            span(x + i0, y + i0, len);                                         \
        }                                                                      \
    }
ACT_FORWARD(gelu_forward, gelu_span)
ACT_FORWARD(silu_forward, silu_span)

/* The tanh form in double; for u < 0, where 1 + tanh(u) cancels even in double (all digits gone by
 * x = -7), the same value as x·e^(2u) / (1 + e^(2u)). */
static void gelu_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    for (int64_t i = 0; i < sm_rec_numel(k->out); i++) {
        double v = x[i], u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
        y[i] = (float)(u >= 0 ? 0.5 * v * (1.0 + tanh(u)) : v * exp(2 * u) / (1.0 + exp(2 * u)));
    }
}

static void silu_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    for (int64_t i = 0; i < sm_rec_numel(k->out); i++) y[i] = (float)((double)x[i] / (1.0 + exp(-(double)x[i])));
}

static sm_status shape_act(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    return s ? s : sm_shape_same_as_in0(g, n, out);
}

/* operations per element, exp counted as one: gelu 7 mul/add + exp + div; silu neg, exp, add, div */
static double flops_gelu(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 9); }
static double flops_silu(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 4); }

const sm_op_def sm_op_gelu = {
    .name = "gelu", .min_in = 1, .max_in = 1, .shape = shape_act, .flops = flops_gelu,
    .inplace = true, .forward = gelu_forward, .reference = gelu_reference,
    .backward = sm_backward_gelu,
};

const sm_op_def sm_op_silu = {
    .name = "silu", .min_in = 1, .max_in = 1, .shape = shape_act, .flops = flops_silu,
    .inplace = true, .forward = silu_forward, .reference = silu_reference,
    .backward = sm_backward_silu,
};
