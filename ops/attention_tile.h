/* attention_tile.h — internal to ops/attention_*.c: the tile sizes and the small primitives the tiled
 * attention kernels are built from (register-blocked tile multiply, exp, transpose, lane masks).
 * Each primitive has an AVX-512 body and a plain-C body. Both compute every output element in one
 * fixed order that depends only on the shapes, never on the thread running them. */
#ifndef SM_ATTENTION_TILE_H
#define SM_ATTENTION_TILE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Query rows and key columns per tile. With D = 64 one 64×64 tile is 16 KiB, so the forward's three
 * tiles (Qᵀ, Sᵀ, O) sit in L1/L2 while a key tile streams through. */
#define SM_ATT_QT 64
#define SM_ATT_KT 64

/* Floats of scratch, rounded up to a 64-byte line so every scratch array starts on its own line. */
static inline size_t sm_att_round16(size_t n) { return (n + 15) & ~(size_t)15; }

static inline int sm_att_min(int a, int b) { return a < b ? a : b; }
static inline int sm_att_max(int a, int b) { return a > b ? a : b; }

/* First key query t may see: 0 for full causal, t-span+1 for a sliding window of span keys. */
static inline int sm_att_key_lo(int t, int span) { return span > 0 ? sm_att_max(0, t - span + 1) : 0; }

#if defined(__AVX512F__)

/* Lanes lo..hi-1 of the 16 lanes (bounds clamped to 0..16). */
static inline __mmask16 sm_att_lanes(int lo, int hi)
{
    lo = sm_att_max(lo, 0);
    hi = sm_att_min(hi, 16);
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* exp(x) to ~1 ulp: Cody-Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, Cephes' degree-6 polynomial for
 * e^r, then scalef for 2^n. Inputs below ln(FLT_MIN) give ~1e-38 instead of 0 (callers mask the lanes
 * that must be exactly 0); NaN propagates. */
static inline __m512 sm_att_exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-87.336544f), x); /* x second: a NaN x is returned as is */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

/* Register block of the tile multiply: C[mr, 16·nv] (+)= A[mr, K]·B[K, 16·nv]. mr, nv are constants
 * at every call site, so the accumulators live in (up to 24) zmm registers; mk masks the columns. */
static inline __attribute__((always_inline)) void
sm_att_mm_blk(const int mr, const int nv, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
              const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc, const __mmask16 *mk)
{
    __m512 c[6][4];
    const __mmask16 zero = acc ? (__mmask16)0xFFFF : 0; /* acc = 0: a load of no lanes gives zeros */
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) c[r][v] = _mm512_maskz_loadu_ps(mk[v] & zero, C + r * ldc + 16 * v);
    /* Unrolling k only adds live registers (clang would, and then spill the accumulators). */
#if defined(__clang__)
#pragma clang loop unroll(disable)
#endif
    for (int k = 0; k < K; k++) {
        __m512 b[4];
        for (int v = 0; v < nv; v++) b[v] = _mm512_maskz_loadu_ps(mk[v], B + (ptrdiff_t)k * ldb + 16 * v);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[r * rsa + (ptrdiff_t)k * csa]);
            for (int v = 0; v < nv; v++) c[r][v] = _mm512_fmadd_ps(a, b[v], c[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(C + r * ldc + 16 * v, mk[v], c[r][v]);
}

#define SM_ATT_MM_CASE(MR, NV)                                                                      \
    case (MR) * 4 + (NV) - 1:                                                                       \
        sm_att_mm_blk(MR, NV, kk, a, rsa, csa, b, ldb, c, ldc, acc, mk);                            \
        break;
#define SM_ATT_MM_CASES(MR) SM_ATT_MM_CASE(MR, 1) SM_ATT_MM_CASE(MR, 2) SM_ATT_MM_CASE(MR, 3) SM_ATT_MM_CASE(MR, 4)

#endif /* __AVX512F__ */

/* Without FMA hardware fmaf is a slow library call; a separate multiply and add is as deterministic. */
#if defined(__FMA__) || defined(__AVX512F__)
#define SM_ATT_FMA(a, b, c) fmaf(a, b, c)
#else
#define SM_ATT_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* Which index of a tile multiply a band restricts (see sm_att_mm). */
enum { SM_ATT_BAND_NONE, SM_ATT_BAND_K, SM_ATT_BAND_N };

/* The tile multiply: C[M,N] = (acc ? C : 0) + A·B, where A(m,k) = A[m·rsa + k·csa] (so a transposed A
 * is just other strides), B(k,n) = B[k·ldb + n], C(m,n) = C[m·ldc + n]. Each C element is one chain of
 * fused multiply-adds over its k in increasing order.
 * band carries the causal/window structure of a tile: with SM_ATT_BAND_K (_N) row m needs only the
 * k (computes only the n) in [m + lo, m + hi]; the terms left out are zeros (K) or entries nobody
 * reads (N), so a diagonal tile costs about half a full one. The AVX-512 body widens the range to
 * its 6-row register blocks. */
static inline void sm_att_mm_band(int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                                  const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc, int band, int lo,
                                  int hi)
{
#if defined(__AVX512F__)
    for (int m0 = 0; m0 < M; m0 += 6) {
        const int mr = sm_att_min(6, M - m0);
        int k0 = 0, k1 = K, n0 = 0, n1 = N;
        if (band == SM_ATT_BAND_K) {
            k0 = sm_att_max(0, m0 + lo);
            k1 = sm_att_max(k0, sm_att_min(K, m0 + mr + hi));
        } else if (band == SM_ATT_BAND_N) {
            n0 = sm_att_max(0, m0 + lo);
            n1 = sm_att_min(N, m0 + mr + hi);
        }
        const int kk = k1 - k0;
        const float *a = A + m0 * rsa + k0 * csa;
        for (int nb = n0; nb < n1; nb += 64) {
            const int nn = sm_att_min(64, n1 - nb), nv = (nn + 15) / 16;
            __mmask16 mk[4];
            for (int v = 0; v < 4; v++) mk[v] = sm_att_lanes(0, nn - 16 * v);
            const float *b = B + (ptrdiff_t)k0 * ldb + nb;
            float *c = C + m0 * ldc + nb;
            switch (mr * 4 + nv - 1) {
                SM_ATT_MM_CASES(1)
                SM_ATT_MM_CASES(2)
                SM_ATT_MM_CASES(3)
                SM_ATT_MM_CASES(4)
                SM_ATT_MM_CASES(5)
                SM_ATT_MM_CASES(6)
            default:
                break;
            }
        }
    }
#else
    for (int m = 0; m < M; m++) {
        int k0 = 0, k1 = K, n0 = 0, n1 = N;
        if (band == SM_ATT_BAND_K) {
            k0 = sm_att_max(0, m + lo);
            k1 = sm_att_min(K, m + hi + 1);
        } else if (band == SM_ATT_BAND_N) {
            n0 = sm_att_max(0, m + lo);
            n1 = sm_att_min(N, m + hi + 1);
        }
        float *c = C + m * ldc;
        if (!acc)
            for (int n = n0; n < n1; n++) c[n] = 0.0f;
        for (int k = k0; k < k1; k++) {
            const float a = A[m * rsa + (ptrdiff_t)k * csa], *b = B + (ptrdiff_t)k * ldb;
            for (int n = n0; n < n1; n++) c[n] = SM_ATT_FMA(a, b[n], c[n]);
        }
    }
#endif
}

static inline void sm_att_mm(int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa, const float *B,
                             ptrdiff_t ldb, float *C, ptrdiff_t ldc, int acc)
{
    sm_att_mm_band(M, N, K, A, rsa, csa, B, ldb, C, ldc, acc, SM_ATT_BAND_NONE, 0, 0);
}

#if defined(__AVX512F__)
/* In-register transpose of a 16×16 block (the usual unpack / unpack_pd / shuffle_f32x4 ×2 network). */
static inline void sm_att_tr16x16(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd, __m512 s)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#define SM_ATT_PD(x) _mm512_castps_pd(x)
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(SM_ATT_PD(t[i]), SM_ATT_PD(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(SM_ATT_PD(t[i]), SM_ATT_PD(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(SM_ATT_PD(t[i + 1]), SM_ATT_PD(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(SM_ATT_PD(t[i + 1]), SM_ATT_PD(t[i + 3])));
    }
#undef SM_ATT_PD
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, _mm512_mul_ps(r[i], s));
}
#endif

/* dst[d·ldd + r] = s·src[r·lds + d] for r < nr, d < nd: one head's rows of q (or k, v) turned into
 * columns, so a tile multiply can broadcast along the other operand. */
static inline void sm_att_transpose(int nr, int nd, const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd,
                                    float s)
{
    int r0 = 0, d0 = 0;
#if defined(__AVX512F__)
    const __m512 vs = _mm512_set1_ps(s);
    for (; r0 + 16 <= nr; r0 += 16)
        for (int d = 0; d + 16 <= nd; d += 16) sm_att_tr16x16(src + r0 * lds + d, lds, dst + d * ldd + r0, ldd, vs);
    d0 = nd & ~15;
#endif
    /* What the 16×16 blocks left: the last nr % 16 rows (all d) and the last nd % 16 columns. */
    for (int r = 0; r < nr; r++)
        for (int d = (r < r0 ? d0 : 0); d < nd; d++) dst[d * ldd + r] = s * src[r * lds + d];
}

/* One query tile of one head (in ops/attention_kernel.c; the backward reuses it to recompute the
 * softmax statistics). q, k, v point at head h's first column of batch row 0, row stride ld (3C).
 * Queries i0..i0+nq-1 (nq ≤ SM_ATT_QT); out[r·ldo + d] gets the attention output of query i0+r, and
 * lse[r] (if not NULL) its log-sum-exp of scaled scores. w: sm_attention_tile_floats(D) floats. */
void sm_attention_tile_forward(const float *q, const float *k, const float *v, ptrdiff_t ld, int i0, int nq, int D,
                               int span, float *out, ptrdiff_t ldo, float *lse, float *w);
/* The same with the queries and the keys stored apart: q points at query i0's row (row stride ldq);
 * key (and value) j is row j - kbase of k (v), row stride ldk; the key tiles start at j_begin, which
 * must be <= the first key query i0 sees. A query's output depends only on where the key tiles
 * start (j_begin + multiples of SM_ATT_KT) and on which keys it sees, not on i0, nq or the other
 * queries: the full forward starts them at sm_att_key_lo(i0 of its query tile), and a caller that
 * does the same gets the same bits (the key cache of ops/kv_attention.c). */
void sm_attention_tile_forward_at(const float *q, ptrdiff_t ldq, const float *k, const float *v, ptrdiff_t ldk,
                                  int kbase, int i0, int nq, int D, int span, int j_begin, float *out, ptrdiff_t ldo,
                                  float *lse, float *w);
size_t sm_attention_tile_floats(int D);

#endif
