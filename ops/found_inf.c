/* found_inf.c — whether any element of its inputs is not finite: the overflow check of dynamic loss
 * scaling (PyTorch GradScaler's found_inf). (x1..xn; acc) -> [1] holding 1 if some element of some x
 * is +Inf, -Inf or NaN, else 0; with acc = 1, input 0 is a running flag [1] (a nonzero flag counts
 * as found), so a chain of nodes covers any number of gradients. Large finite values, zeros and
 * denormals are finite: an overflow is only what a float cannot hold.
 *
 * An element is not finite exactly when its exponent bits are all ones, i.e. when its magnitude
 * bits (sign cleared) are >= 0x7f800000; the kernel keeps the largest magnitude pattern seen (an
 * unsigned max the compiler vectorises, no branch per element) and compares once at the end. The
 * answer is a yes/no, so it is the same whichever thread saw which elements. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "../base/error.h"
#include "rows.h"

#define CHUNK 16384
#define EXP_ALL_ONES 0x7f800000u

static sm_status shape_found_inf(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    if (n->attrs.i[SM_IATTR_FOUND_INF_ACC] && sm_rec_numel(&g->t[n->in[0]]) != 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': found_inf's running flag '%s' must be one value", out->name,
                        g->t[n->in[0]].name);
    out->ndim = 1;
    out->dtype = SM_F32;
    return SM_OK;
}

/* The largest magnitude bit pattern of x[0..n). */
static uint32_t max_magnitude(const float *x, int64_t n)
{
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    return m;
}

static bool flag_set(const sm_kernel_args *k) { return *(const float *)k->x[0] != 0.0f; }

static void found_inf_forward(const sm_kernel_args *k)
{
    int first = k->node->attrs.i[SM_IATTR_FOUND_INF_ACC] ? 1 : 0;
    uint32_t m = 0;
    for (int i = first; i < k->n_in; i++) {
        const float *x = k->x[i];
        int64_t n = sm_rec_numel(k->in[i]), chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp for schedule(static) nowait
        for (int64_t c = 0; c < chunks; c++) {
            int64_t i0 = c * CHUNK;
            uint32_t mc = max_magnitude(x + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
            m = mc > m ? mc : m;
        }
    }
    int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    *(uint32_t *)((char *)k->work + (size_t)tid * k->work_bytes) = m;
#pragma omp barrier
#pragma omp single
    {
        bool found = first && flag_set(k);
        for (int t = 0; t < nth; t++) found |= *(const uint32_t *)((const char *)k->work + (size_t)t * k->work_bytes) >= EXP_ALL_ONES;
        *(float *)k->y = found ? 1.0f : 0.0f;
    }
}

/* Independent of the bit trick: isfinite on every element. */
static void found_inf_reference(const sm_kernel_args *k)
{
    int first = k->node->attrs.i[SM_IATTR_FOUND_INF_ACC] ? 1 : 0;
    bool found = first && flag_set(k);
    for (int i = first; i < k->n_in; i++)
        for (int64_t j = 0; j < sm_rec_numel(k->in[i]); j++) found |= !isfinite(((const float *)k->x[i])[j]);
    *(float *)k->y = found ? 1.0f : 0.0f;
}

static size_t work_found_inf(const sm_graph *g, const sm_node *n)
{
    (void)g;
    (void)n;
    return sizeof(uint32_t);
}

static double flops_found_inf(const sm_graph *g, const sm_node *n)
{
    double f = 0;
    for (int i = 0; i < n->n_in; i++) f += (double)sm_rec_numel(&g->t[n->in[i]]);
    return f;
}

const sm_op_def sm_op_found_inf = {
    .name = "found_inf", .min_in = 1, .max_in = SM_MAX_INPUTS, .iattr = {"acc"}, .shape = shape_found_inf,
    .flops = flops_found_inf, .workspace = work_found_inf, .forward = found_inf_forward,
    .reference = found_inf_reference,
};
