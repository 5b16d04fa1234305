/* vmath.h — a branch-free expf the compiler can vectorise. glibc's expf is only vectorised under
 * -ffast-math (libmvec), which we do not use: it would make reductions order-dependent. Softmax,
 * cross-entropy, GELU and SiLU spend most of their time in exp, so they call this one instead.
 *
 * Accuracy: within 2 ulp of exp(x) for x in [-87, 88.7] (Cephes' polynomial on |r| <= ln2/2, checked
 * against exp() in double by tests/test_op_activation.c); results below 2^-125.5 are flushed to 0,
 * exp(x > 88.72) = +inf, exp(-inf) = 0, NaN stays NaN. Only float arithmetic and bit copies: no
 * float-to-int conversion, so no undefined behaviour on NaN or huge inputs. */
#ifndef SM_VMATH_H
#define SM_VMATH_H

#include <math.h>
#include <stdint.h>

#include "../base/fp16.h"   /* sm_f32_bits, sm_f32_from_bits */

/* a·b + c: one fused instruction where the target has FMA (fewer roundings, ~25% faster exp), else
 * two operations (fmaf would be a slow library call there). */
#ifdef __FMA__
#define SM_MADD(a, b, c) fmaf(a, b, c)
#else
#define SM_MADD(a, b, c) ((a) * (b) + (c))
#endif

static inline float sm_vexpf(float x)
{
    /* exp(x) = 2^n · exp(r), n = round(x / ln2), r = x - n·ln2 split in two parts so r is exact. */
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.72283f ? 88.72283f : xc;
    const float magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer in the low bits */
    float t = SM_MADD(xc, 1.44269504088896341f, magic);
    float n = t - magic;
    uint32_t ni = sm_f32_bits(t) - sm_f32_bits(magic); /* n as a two's-complement integer */
    float r = SM_MADD(n, -0.693359375f, xc);
    r = SM_MADD(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = SM_MADD(p, r, 1.3981999507e-3f);
    p = SM_MADD(p, r, 8.3334519073e-3f);
    p = SM_MADD(p, r, 4.1665795894e-2f);
    p = SM_MADD(p, r, 1.6666665459e-1f);
    p = SM_MADD(p, r, 5.0000001201e-1f);
    p = SM_MADD(p * r, r, r + 1.0f);
    /* 2^n as two factors 2^(n-1)·2, so n = 128 (x near 88.7) does not overflow the exponent field */
    float scale = sm_f32_from_bits((ni + 126u) << 23);
    float y = p * scale * 2.0f;
    y = x < -87.0f ? 0.0f : y;
    y = x > 88.72283f ? INFINITY : y;
    return y;
}

/* Row helpers shared by softmax and cross-entropy. Lanes of 16 give vectorised loops whose summation
 * order is fixed by the row length alone (never by the thread count or the row's address). */
#define SM_VLANES 16

/* Float bits mapped to unsigned keys with the same order (the radix-sort map), so the max is an
 * integer max: exact, vectorised by gcc and clang alike, and order-independent. */
static inline uint32_t sm_f32_order_key(float f)
{
    uint32_t u = sm_f32_bits(f);
    return u ^ ((0u - (u >> 31)) | 0x80000000u);
}

/* max of x[0..n-1], n >= 1. A NaN with the sign bit clear is the max (so the row becomes NaN); one
 * with the sign bit set is below -inf and skipped (its exp is NaN anyway). */
static inline float sm_vmax_row(const float *x, int64_t n)
{
    uint32_t r = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = sm_f32_order_key(x[i]);
        r = k > r ? k : r;
    }
    return sm_f32_from_bits(r & 0x80000000u ? r ^ 0x80000000u : ~r);
}

/* e[i] = exp(x[i] - m): a plain loop, which every compiler vectorises */
static inline void sm_vexp_shifted(const float *x, float m, float *e, int64_t n)
{
    for (int64_t i = 0; i < n; i++) e[i] = sm_vexpf(x[i] - m);
}

/* acc[i % 16] += e[i]: 16 double lanes, vectorised, in an order fixed by the index alone. n must be
 * a multiple of 16 except in a row's last call. */
static inline void sm_vsum_lanes(double acc[SM_VLANES], const float *e, int64_t n)
{
    int64_t i = 0;
    for (; i + SM_VLANES <= n; i += SM_VLANES)
        for (int j = 0; j < SM_VLANES; j++) acc[j] += e[i + j];
    for (; i < n; i++) acc[i % SM_VLANES] += e[i];
}

#define SM_VEXP_CHUNK 2048   /* floats of stack scratch when exps are not kept */

/* Σ exp(x[i] - m) in 16 double lanes (so a 50k-entry row loses nothing to the sum); each exp is also
 * stored in e[i] when e is not NULL. Exps and sums are separate simple loops over chunks: fused into
 * one, gcc stops vectorising. */
static inline double sm_vexp_sum_row(const float *x, float m, float *e, int64_t n)
{
    double acc[SM_VLANES] = {0};
    float buf[SM_VEXP_CHUNK];
    for (int64_t i0 = 0; i0 < n; i0 += SM_VEXP_CHUNK) {
        int64_t len = n - i0 < SM_VEXP_CHUNK ? n - i0 : SM_VEXP_CHUNK;
        float *ei = e ? e + i0 : buf;
        sm_vexp_shifted(x + i0, m, ei, len);
        sm_vsum_lanes(acc, ei, len);
    }
    double s = 0;
    for (int j = 0; j < SM_VLANES; j++) s += acc[j];
    return s;
}

#endif
