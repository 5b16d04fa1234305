/* gemm_pack.c — copies blocks of A and B into the sliver layouts of gemm_impl.h, so the micro-kernel
 * reads both operands with unit stride whatever the transposes and leading dimensions are.
 * The two transposing cases (A not transposed, B transposed) gather along strided rows; on AVX-512
 * they go through 16x16 register transposes, since a scalar gather would cost a sizeable fraction
 * of the multiply itself for the smaller M of our shapes. */
#include "gemm_impl.h"

#include <stdint.h>
#include <string.h>

/* Software prefetch ahead of the packing reads. The sources are often cold (activations written
 * several nodes earlier) and read in short pieces at a large stride (a 48-float group of a
 * transposed gradient with a row of 1536..50257 floats), which the hardware prefetchers follow
 * poorly: prefetching SM_PACK_AHEAD rows ahead cut the packing time of the transposed-A products of
 * the backward pass (dW = gyᵀ·x) enough to make them 4-8% faster (measured on Zen 4, 1 thread). The
 * address is formed as an integer: the line ahead may lie past the matrix, which a prefetch may
 * touch (it never faults) but a C pointer may not point to. Data movement only: results unchanged. */
#define SM_PACK_AHEAD 8     /* rows ahead, contiguous copies */
#define SM_GATHER_AHEAD 64  /* floats ahead along each row, transposing gathers */
static inline void prefetch_at(const float *p, int64_t offset) {
    __builtin_prefetch((const void *)((uintptr_t)p + (uintptr_t)offset * sizeof(float)), 0, 3);
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* In-register transpose of a 16x16 block: r[i] holds row i on entry, column i on exit. Three rounds:
 * interleave pairs of floats, then pairs of doubles, then 128-bit lanes (twice). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {   /* u[g+e] lane L: element 4L+e of rows g..g+3 */
        u[g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g]), _mm512_castps_pd(t[g + 2])));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g]), _mm512_castps_pd(t[g + 2])));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[g + 1]), _mm512_castps_pd(t[g + 3])));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[g + 1]), _mm512_castps_pd(t[g + 3])));
    }
    for (int e = 0; e < 4; e++) {
        const __m512 x0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), x1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);
        const __m512 y0 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
        const __m512 y1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
        r[e] = _mm512_shuffle_f32x4(x0, y0, 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
        r[4 + e] = _mm512_shuffle_f32x4(x1, y1, 0x88);
        r[12 + e] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
    }
}

/* dst[k*dst_stride + r] = src[r*ld + k] for r < rows (<= 16), k < 16; lanes r >= rows not written. */
static inline void transpose_block16(const float *src, int64_t ld, int rows, float *dst, int64_t dst_stride) {
    __m512 r[16];
    for (int i = 0; i < rows; i++) prefetch_at(src, i * ld + SM_GATHER_AHEAD);
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * ld) : _mm512_setzero_ps();
    transpose16(r);
    const __mmask16 m = (__mmask16)((1u << rows) - 1u);
    for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + k * dst_stride, m, r[k]);
}
#endif

/* Strided gather: dst[k*W + r] = src[r*ld + k] for r < n, k < kc; r in n..W-1 zero. The
 * vector path takes 16 k at a time; the tail and other builds go element by element. */
static void pack_gather(const float *src, int64_t ld, int n, int64_t kc, float *dst, int W) {
    int64_t k = 0;
#if defined(__AVX512F__)
    if (n == W)
        for (; k + 16 <= kc; k += 16)
            for (int r0 = 0; r0 < W; r0 += 16)
                transpose_block16(src + r0 * ld + k, ld, W - r0 < 16 ? W - r0 : 16, dst + k * W + r0, W);
#endif
    for (; k < kc; k++) {
        float *d = dst + k * W;
        for (int r = 0; r < n; r++) d[r] = src[r * ld + k];
        for (int r = n; r < W; r++) d[r] = 0.0f;
    }
}

/* Contiguous source: sliver s of dst gets dst[s*W*kc + k*W + c] = src[k*ld + s*W + c] for
 * s*W + c < n, zero beyond. Walking k outermost reads each source row across all slivers in one
 * sweep: per sliver instead, a B block with a large ld would read 128 bytes per row at a 12 KiB
 * stride, which the hardware prefetchers follow poorly (measured ~4x slower). */
static inline __attribute__((always_inline)) void pack_copy(const float *src, int64_t ld, int64_t n, int64_t kc,
                                                            float *dst, const int W) {
    const int64_t full = n / W, rest = n - full * W;
    for (int64_t k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        if (k + SM_PACK_AHEAD < kc)
            for (int64_t c = 0; c < n; c += 16) prefetch_at(s, SM_PACK_AHEAD * ld + c);
        for (int64_t sl = 0; sl < full; sl++)
            for (int c = 0; c < W; c++) dst[sl * W * kc + k * W + c] = s[sl * W + c];
        if (rest) {
            float *d = dst + full * W * kc + k * W;
            memcpy(d, s + full * W, (size_t)rest * sizeof(float));
            memset(d + rest, 0, (size_t)(W - rest) * sizeof(float));
        }
    }
}

/* Strided source, sliver by sliver (each reads W rows of the source with unit stride). */
static void pack_gather_block(const float *src, int64_t ld, int64_t n, int64_t kc, float *dst, int W) {
    for (int64_t r0 = 0; r0 < n; r0 += W)
        pack_gather(src + r0 * ld, ld, (int)(n - r0 < W ? n - r0 : W), kc, dst + r0 * kc, W);
}

void sm_gemm_pack_a(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc,
                    float *ap) {
    if (trans_a)   /* A is [K,M]: op(A)(i,k) = A[k*lda + i], rows of the sliver are contiguous */
        pack_copy(A + p0 * lda + i0, lda, m, kc, ap, SM_GEMM_MR);
    else           /* A is [M,K]: op(A)(i,k) = A[i*lda + k] */
        pack_gather_block(A + i0 * lda + p0, lda, m, kc, ap, SM_GEMM_MR);
}

void sm_gemm_pack_b(int trans_b, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n,
                    float *bp) {
    if (trans_b)   /* B is [N,K]: op(B)(k,j) = B[j*ldb + k] */
        pack_gather_block(B + j0 * ldb + p0, ldb, n, kc, bp, SM_GEMM_NR);
    else           /* B is [K,N]: op(B)(k,j) = B[k*ldb + j] */
        pack_copy(B + p0 * ldb + j0, ldb, n, kc, bp, SM_GEMM_NR);
}
