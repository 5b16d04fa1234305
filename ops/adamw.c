/* adamw.c — one AdamW update of one parameter, in place:
 *   (param, grad, m, v, hparams [8], sumsq [1]?, scale [1]?, found_inf [1]?; decay, scaled) -> token [1]
 * With the step's values from hparams (sm_adamw_hparam order) and c the clipping factor
 * min(1, clip / (sqrt(sumsq) + 1e-6)) (1 without sumsq or with clip <= 0; the grad is not modified):
 *   g = c·grad;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
 *   param -= lr·( m·bc1 / (sqrt(v·bc2) + eps) + wd·param )      (wd only with decay = 1)
 * which is decoupled weight decay (Loshchilov & Hutter) with bias-corrected moments. The node
 * writes param, m and v (mutates_inputs); its token output holds 0 and exists only because every
 * node has an output. Elements are independent: split across threads.
 *
 * Loss scaling (scaled = 1; the last two inputs are the loss scale S the gradients were multiplied by
 * and the found_inf flag of all gradients, sm_graph_adamw): with found_inf set the node changes
 * nothing (the step is skipped, as PyTorch's GradScaler skips optimizer.step()); otherwise the
 * gradient is unscaled by folding 1/S into c: the norm is sqrt(sumsq)·(1/S) and g = (c/S)·grad. With
 * S = 1 every value is bitwise what the unscaled node computes, and with S a power of two the
 * multiplications by 1/S are exact, so the update is bitwise the unscaled one unless a gradient
 * underflowed or overflowed. A scale that is not a positive finite number updates nothing either. */
#include <math.h>

#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "../base/error.h"
#include "rows.h"

#define CHUNK 4096

static sm_status shape_adamw(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    const sm_tensor_rec *p = &g->t[n->in[0]];
    for (int i = 1; i < 4; i++) {
        const sm_tensor_rec *r = &g->t[n->in[i]];
        bool ok = r->ndim == p->ndim;
        for (int d = 0; ok && d < p->ndim; d++) ok = r->ne[d] == p->ne[d];
        if (!ok) {
            char a[64], b[64];
            return sm_error(SM_ERR_SHAPE, "node '%s': adamw input %d '%s' %s must have the parameter '%s''s shape %s",
                            out->name, i, r->name, sm_shape_str(r, a, sizeof a), p->name, sm_shape_str(p, b, sizeof b));
        }
    }
    if (sm_rec_numel(&g->t[n->in[4]]) < SM_ADAMW_HPARAMS)
        return sm_error(SM_ERR_SHAPE, "node '%s': adamw hyperparameters '%s' must hold %d values", out->name,
                        g->t[n->in[4]].name, SM_ADAMW_HPARAMS);
    bool scaled = n->attrs.i[SM_IATTR_ADAMW_SCALED] != 0;
    int base = n->n_in - (scaled ? 2 : 0);   /* inputs before the scale and found_inf */
    if (base != 5 && base != 6)
        return sm_error(SM_ERR_SHAPE, "node '%s': adamw takes param, grad, m, v, hparams, an optional sum of squares%s "
                        "(%d inputs given)", out->name, scaled ? ", then the loss scale and found_inf (scaled = 1)" : "",
                        n->n_in);
    for (int i = 5; i < n->n_in; i++)
        if (sm_rec_numel(&g->t[n->in[i]]) != 1)
            return sm_error(SM_ERR_SHAPE, "node '%s': adamw %s '%s' must be one value", out->name,
                            i < base ? "gradient sum of squares" : i == base ? "loss scale" : "found_inf flag",
                            g->t[n->in[i]].name);
    out->ndim = 1;
    out->dtype = SM_F32;
    return SM_OK;
}

static bool is_scaled(const sm_kernel_args *k) { return k->node->attrs.i[SM_IATTR_ADAMW_SCALED] != 0; }

/* 1/S, 1 without loss scaling. */
static double inv_scale(const sm_kernel_args *k)
{
    return is_scaled(k) ? 1.0 / (double)*(const float *)k->x[k->n_in - 2] : 1.0;
}

/* True when this step must change nothing: some gradient overflowed, or the scale is unusable. */
static bool skip_step(const sm_kernel_args *k)
{
    if (!is_scaled(k)) return false;
    float scale = *(const float *)k->x[k->n_in - 2], found = *(const float *)k->x[k->n_in - 1];
    return found != 0.0f || !(scale > 0.0f) || !isfinite(scale);
}

/* The factor applied to the stored gradient: the clipping factor of the unscaled norm, times 1/S. */
static double grad_factor(const sm_kernel_args *k)
{
    const float *hp = k->x[4];
    double inv = inv_scale(k);
    bool has_sumsq = k->n_in - (is_scaled(k) ? 2 : 0) == 6;
    if (!has_sumsq || hp[SM_ADAMW_CLIP] <= 0.0f) return inv;
    double c = hp[SM_ADAMW_CLIP] / (sqrt((double)*(const float *)k->x[5]) * inv + 1e-6);
    return (c < 1.0 ? c : 1.0) * inv;
}

/* One update, one rounding per operation in this order:
 *   g = c·grad;  m = β1·m + (1-β1)·g;  v = β2·v + ((1-β2)·g)·g;
 *   p = p - lr·((m·bc1) / (sqrt(v·bc2) + eps) + wd·p)
 * The scalar path is written as separate statements, so no compiler fuses a multiply and an add (C
 * contracts only within one expression); the vector path does the same operations lane by lane (sqrt
 * and division are correctly rounded in both). An element gets the same bits whichever path, and so
 * whichever thread, handles it. Vectorised by hand: gcc keeps sqrtf scalar (errno), and a scalar
 * sqrt and division per element cost more than the 7 floats of memory traffic. */
typedef struct adamw_k {
    float c, b1, nb1, b2, nb2, bc1, bc2, eps, lr, wd;   /* nb = 1 - b */
} adamw_k;

static inline float adamw_scalar(float *p, float grad, float *m, float *v, const adamw_k *k)
{
    float gi = k->c * grad;
    float m1 = k->b1 * *m;
    float m2 = k->nb1 * gi;
    float mi = m1 + m2;
    float v1 = k->b2 * *v;
    float v2 = k->nb2 * gi;
    v2 = v2 * gi;
    float vi = v1 + v2;
    float num = mi * k->bc1;
    float den = sqrtf(vi * k->bc2);
    den = den + k->eps;
    float u = num / den;
    float dec = k->wd * *p;
    u = u + dec;
    u = k->lr * u;
    *m = mi;
    *v = vi;
    return *p - u;
}

#if defined(__AVX512F__)
#define VW 16
#define VF __m512
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VMUL _mm512_mul_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VDIV _mm512_div_ps
#define VSQRT _mm512_sqrt_ps
#elif defined(__AVX__)
#define VW 8
#define VF __m256
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSET1 _mm256_set1_ps
#define VMUL _mm256_mul_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VDIV _mm256_div_ps
#define VSQRT _mm256_sqrt_ps
#endif

static void adamw_span(float *restrict p, const float *restrict grad, float *restrict m, float *restrict v,
                       int64_t n, const adamw_k *k)
{
    int64_t i = 0;
#ifdef VW
    const VF c = VSET1(k->c), b1 = VSET1(k->b1), nb1 = VSET1(k->nb1), b2 = VSET1(k->b2), nb2 = VSET1(k->nb2);
    const VF bc1 = VSET1(k->bc1), bc2 = VSET1(k->bc2), eps = VSET1(k->eps), lr = VSET1(k->lr), wd = VSET1(k->wd);
    for (; i + VW <= n; i += VW) {
        VF gi = VMUL(c, VLOAD(grad + i)), pi = VLOAD(p + i);
        VF mi = VADD(VMUL(b1, VLOAD(m + i)), VMUL(nb1, gi));
        VF vi = VADD(VMUL(b2, VLOAD(v + i)), VMUL(VMUL(nb2, gi), gi));
        VF u = VDIV(VMUL(mi, bc1), VADD(VSQRT(VMUL(vi, bc2)), eps));
        u = VMUL(lr, VADD(u, VMUL(wd, pi)));
        VSTORE(m + i, mi);
        VSTORE(v + i, vi);
        VSTORE(p + i, VSUB(pi, u));
    }
#endif
    for (; i < n; i++) p[i] = adamw_scalar(&p[i], grad[i], &m[i], &v[i], k);
}

/* param, grad, m, v: [N], in chunks split across threads */
static void adamw_forward(const sm_kernel_args *k)
{
    /* The storage is the arenas', writable: the inputs are const only in the kernel signature. */
    float *p = (float *)k->x[0], *m = (float *)k->x[2], *v = (float *)k->x[3];
    const float *hp = k->x[4];
    if (skip_step(k)) {
        if (omp_get_thread_num() == 0) *(float *)k->y = 0.0f;
        return;
    }
    const adamw_k ks = {
        .c = (float)grad_factor(k), .b1 = hp[SM_ADAMW_BETA1], .nb1 = 1.0f - hp[SM_ADAMW_BETA1],
        .b2 = hp[SM_ADAMW_BETA2], .nb2 = 1.0f - hp[SM_ADAMW_BETA2], .bc1 = hp[SM_ADAMW_BC1],
        .bc2 = hp[SM_ADAMW_BC2], .eps = hp[SM_ADAMW_EPS], .lr = hp[SM_ADAMW_LR],
        .wd = k->node->attrs.i[SM_IATTR_ADAMW_DECAY] ? hp[SM_ADAMW_WD] : 0.0f,
    };
    int64_t n = sm_rec_numel(k->in[0]), chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp for schedule(static)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t i0 = ch * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        adamw_span(p + i0, (const float *)k->x[1] + i0, m + i0, v + i0, len, &ks);
    }
    if (omp_get_thread_num() == 0) *(float *)k->y = 0.0f;
}

static void adamw_reference(const sm_kernel_args *k)
{
    const float *hp = k->x[4], *grad = k->x[1];
    float *p = (float *)k->x[0], *m = (float *)k->x[2], *v = (float *)k->x[3];
    *(float *)k->y = 0.0f;
    if (skip_step(k)) return;
    double wd = k->node->attrs.i[SM_IATTR_ADAMW_DECAY] ? hp[SM_ADAMW_WD] : 0.0, c = grad_factor(k);
    for (int64_t i = 0; i < sm_rec_numel(k->in[0]); i++) {
        double gi = c * grad[i];
        double mi = hp[SM_ADAMW_BETA1] * (double)m[i] + (1.0 - hp[SM_ADAMW_BETA1]) * gi;
        double vi = hp[SM_ADAMW_BETA2] * (double)v[i] + (1.0 - hp[SM_ADAMW_BETA2]) * gi * gi;
        double upd = mi * hp[SM_ADAMW_BC1] / (sqrt(vi * hp[SM_ADAMW_BC2]) + hp[SM_ADAMW_EPS]) + wd * p[i];
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)(p[i] - hp[SM_ADAMW_LR] * upd);
    }
}

static double flops_adamw(const sm_graph *g, const sm_node *n) { return 14.0 * (double)sm_rec_numel(&g->t[n->in[0]]); }

const sm_op_def sm_op_adamw = {
    .name = "adamw", .min_in = 5, .max_in = 8, .iattr = {"decay", "scaled"}, .shape = shape_adamw, .flops = flops_adamw,
    .mutates_inputs = true, .forward = adamw_forward, .reference = adamw_reference,
};
