/* gemm_bf16.c — C[M,N] = beta*C + op(A)·op(B) with bf16 operands and f32 accumulation, as a team call
 * (contract and arithmetic in gemm.h); the packing into bf16 pairs, the dispatch between the
 * vdpbf16ps kernel and the portable one, and the plain reference.
 *
 * The loop nest is the f32 gemm's (gemm.c: shared A panel packed by the team, private B blocks,
 * 12x32 tiles, threads split N, K never split), with two differences:
 *   - operands are bf16 pairs, rounded from f32 (nearest-even, base/fp16.h) while packing;
 *   - K blocks hold twice the depth (up to 768) for the same bytes: a B block is 384 pairs x 512
 *     columns x 4 bytes = 768 KiB of the 1 MiB L2 (Zen 4), an A sliver 12 x 384 x 4 = 18 KiB of L1.
 * Block boundaries are even, so a pair never straddles two blocks. */
#include <omp.h>
#include <stdatomic.h>

#include "../base/fp16.h"
#include "gemm.h"
#include "gemm_bf16_impl.h"
#include "gemm_impl.h"

#define KC 768          /* max depth of a K block (even) */
#define NB 16           /* max B-block width, in NR slivers */
#define MP_SLIVERS 96   /* A-panel rows each thread's workspace holds, in MR slivers */
#define AGROUP 4        /* A slivers per packing work item */
#define MR SM_BF16_MR
#define NR SM_BF16_NR

#define BBLOCK_WORDS ((int64_t)(KC / 2) * NB * NR)
#define APART_WORDS ((int64_t)(KC / 2) * MP_SLIVERS * MR)

size_t sm_gemm_bf16_workspace(void) {
    size_t bytes = (size_t)(BBLOCK_WORDS + APART_WORDS) * sizeof(uint32_t);
    return (bytes + 63) & ~(size_t)63;
}

int64_t sm_gemm_bf16_kblock(int64_t K) {
    if (K <= 0) return 0;
    const int64_t d = cdiv(K, cdiv(K, KC));
    return d + (d & 1);
}

/* ---- dispatch ---- */

static atomic_int force_portable;

int sm_gemm_bf16_native(void) {
#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 10)
    __builtin_cpu_init();
    return sm_gemm_bf16_micro_avx512 != 0 && __builtin_cpu_supports("avx512bf16") &&
           !atomic_load_explicit(&force_portable, memory_order_relaxed);
#else
    return 0;
#endif
}

void sm_gemm_bf16_force_portable(int on) { atomic_store(&force_portable, on != 0); }

/* ---- packing ---- */

/* sm_f32_to_bf16 without branches (the NaN case is a select), so loops over it vectorise. */
static inline uint32_t round_bf16(float f) {
    const uint32_t u = sm_f32_bits(f), r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : r;
}

/* Software prefetch of element idx of X (as the f32 packing does, gemm_pack.c: the sources are often
 * cold and read in short pieces at a large stride, which the hardware prefetchers follow poorly).
 * The address is formed as an integer: it may lie past the matrix, which a prefetch may touch (it
 * never faults) but a C pointer may not point to. */
#define GATHER_AHEAD 64   /* elements ahead along each row, k-contiguous packing */
#define ROWS_AHEAD 8      /* pairs of rows ahead, r-contiguous packing */
static inline void prefetch_elem(const void *X, sm_dtype t, int64_t idx) {
    __builtin_prefetch((const void *)((uintptr_t)X + (uintptr_t)idx * (t == SM_BF16 ? 2u : 4u)), 0, 3);
}

/* The bf16 bits of element idx of X. */
static inline uint32_t elem(const void *X, sm_dtype t, int64_t idx) {
    return t == SM_BF16 ? ((const uint16_t *)X)[idx] : round_bf16(((const float *)X)[idx]);
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define PACK_SIMD 1

/* round_bf16 on 16 lanes: the bf16 bits in the low half of each 32-bit lane. */
static inline __m512i round_bf16_16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

/* Elements idx .. idx+15 of X (lanes outside m zero, not read) as bf16 bits in 32-bit lanes. */
static inline __m512i load16(const void *X, sm_dtype t, int64_t idx, __mmask16 m) {
    if (t == SM_BF16) return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)X + idx));
    return _mm512_maskz_mov_epi32(m, round_bf16_16(_mm512_maskz_loadu_ps(m, (const float *)X + idx)));
}

/* The 16 pairs of elements idx .. idx+31 of X as uint32 (low half the even element). */
static inline __m512i load_pairs16(const void *X, sm_dtype t, int64_t idx) {
    if (t == SM_BF16) return _mm512_loadu_si512((const uint16_t *)X + idx);
    const __m256i lo = _mm512_cvtepi32_epi16(round_bf16_16(_mm512_loadu_ps((const float *)X + idx)));
    const __m256i hi = _mm512_cvtepi32_epi16(round_bf16_16(_mm512_loadu_ps((const float *)X + idx + 16)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* In-register transpose of 16x16 32-bit elements: r[i] holds row i on entry, column i on exit. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        u[g + 0] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
    }
    for (int e = 0; e < 4; e++) {
        const __m512i x0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), x1 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xDD);
        const __m512i y0 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
        const __m512i y1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xDD);
        r[e] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        r[8 + e] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
        r[4 + e] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        r[12 + e] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
    }
}
#else
#define PACK_SIMD 0
#endif

/* Packs a [n x kc] block of a matrix whose element (r, k) is at X[off + r*rs + k*ks] (in elements)
 * into slivers of W rows: dst[s*W*kp + q*W + c] = pair q of row r = s*W + c. Rows past n and the high
 * half of an odd kc's last pair are zero. Either k is contiguous (ks = 1: each row's pairs are read
 * 16 at a time and transposed into place) or r is (rs = 1: rows k = 2q and 2q+1 are read 16 lanes at
 * a time and interleaved; the callers pass rs = 1 whenever ks != 1); the scalar loops do the rest,
 * and all of it in builds without AVX-512. */
static void pack(const void *X, sm_dtype t, int64_t off, int64_t rs, int64_t ks, int64_t n, int64_t kc,
                 uint32_t *dst, int W) {
    const int64_t kp = cdiv(kc, 2), nsl = cdiv(n, W);
    if (ks == 1) {
        for (int64_t s = 0; s < nsl; s++) {
            const int64_t r0 = s * W;
            const int nr = (int)min64(W, n - r0);
            uint32_t *d = dst + s * W * kp;
            int64_t q = 0;
#if PACK_SIMD
            for (const int64_t kfull = kc / 2; q + 16 <= kfull; q += 16)
                for (int g = 0; g < W; g += 16) {
                    __m512i v[16];
                    for (int i = 0; i < 16 && g + i < nr; i++)
                        prefetch_elem(X, t, off + (r0 + g + i) * rs + 2 * q + GATHER_AHEAD);
                    for (int i = 0; i < 16; i++)
                        v[i] = g + i < nr ? load_pairs16(X, t, off + (r0 + g + i) * rs + 2 * q) : _mm512_setzero_si512();
                    transpose16(v);
                    const __mmask16 m = (__mmask16)(W - g >= 16 ? 0xFFFFu : (1u << (W - g)) - 1u);
                    for (int i = 0; i < 16; i++) _mm512_mask_storeu_epi32(d + (q + i) * W + g, m, v[i]);
                }
#endif
            for (int c = 0; c < W; c++) {
                const int64_t o = off + (r0 + c) * rs;
                for (int64_t p = q; p < kp; p++) {
                    uint32_t v = 0;
                    if (c < nr) v = elem(X, t, o + 2 * p) | (2 * p + 1 < kc ? elem(X, t, o + 2 * p + 1) << 16 : 0);
                    d[p * W + c] = v;
                }
            }
        }
    } else {
        for (int64_t q = 0; q < kp; q++) {
            const int64_t o0 = off + 2 * q * ks, o1 = o0 + ks;
            const int hi = 2 * q + 1 < kc;
            if (q + ROWS_AHEAD < kp)
                for (int64_t r = 0; r < n; r += 16) {
                    prefetch_elem(X, t, o0 + 2 * ROWS_AHEAD * ks + r);
                    prefetch_elem(X, t, o1 + 2 * ROWS_AHEAD * ks + r);
                }
            for (int64_t s = 0; s < nsl; s++) {
                uint32_t *d = dst + s * W * kp + q * W;
                const int64_t r0 = s * W;
                int c = 0;
#if PACK_SIMD
                for (; c < W; c += 16) {
                    const int64_t left = n - r0 - c;
                    const int lanes = W - c < 16 ? W - c : 16;
                    const __mmask16 st = (__mmask16)(lanes == 16 ? 0xFFFFu : (1u << lanes) - 1u);
                    const __mmask16 ld = left >= lanes ? st : left <= 0 ? 0 : (__mmask16)((1u << left) - 1u);
                    __m512i v = load16(X, t, o0 + r0 + c, ld);
                    if (hi) v = _mm512_or_si512(v, _mm512_slli_epi32(load16(X, t, o1 + r0 + c, ld), 16));
                    _mm512_mask_storeu_epi32(d + c, st, v);
                }
#endif
                for (; c < W; c++) {
                    const int64_t r = r0 + c;
                    d[c] = r >= n ? 0 : elem(X, t, o0 + r) | (hi ? elem(X, t, o1 + r) << 16 : 0);
                }
            }
        }
    }
}

/* Rows [i0, i0+m) x K range [p0, p0+kc) of op(A) into A slivers. */
static void pack_a(int ta, const void *A, sm_dtype t, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc,
                   uint32_t *ap) {
    if (ta)   /* A is [K,M]: op(A)(i,k) = A[k*lda + i] */
        pack(A, t, p0 * lda + i0, 1, lda, m, kc, ap, MR);
    else      /* A is [M,K] */
        pack(A, t, i0 * lda + p0, lda, 1, m, kc, ap, MR);
}

/* Columns [j0, j0+n) x K range [p0, p0+kc) of op(B) into B slivers. */
static void pack_b(int tb, const void *B, sm_dtype t, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n,
                   uint32_t *bp) {
    if (tb)   /* B is [N,K]: op(B)(k,j) = B[j*ldb + k] */
        pack(B, t, j0 * ldb + p0, ldb, 1, n, kc, bp, NR);
    else      /* B is [K,N] */
        pack(B, t, p0 * ldb + j0, 1, ldb, n, kc, bp, NR);
}

/* ---- driver ---- */

/* One tile at C (mr x nr valid); edge tiles go through a scratch tile and the same single add. */
static void tile(sm_bf16_micro_fn *micro, int mr, int nr, int64_t kp, const uint32_t *ap, const uint32_t *bp,
                 float *C, int64_t ldc, int add) {
    if (nr == NR && sm_gemm_bf16_micro_rows(mr) == mr) {
        micro(mr, kp, ap, bp, C, ldc, add);
        return;
    }
    float t[MR * NR];
    micro(mr, kp, ap, bp, t, NR, 0);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) C[i * ldc + j] = add ? C[i * ldc + j] + t[i * NR + j] : t[i * NR + j];
}

void sm_gemm_bf16(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                  int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc,
                  void *work) {
    const int nthr = omp_get_num_threads(), tid = omp_get_thread_num();
    if (M <= 0 || N <= 0) {
#pragma omp barrier
        return;
    }
    /* Every thread decides the same (the switch is for tests and not flipped during a call). */
    sm_bf16_micro_fn *micro = sm_gemm_bf16_native() ? sm_gemm_bf16_micro_avx512 : sm_gemm_bf16_micro_portable;
    const int prescale = (beta != 0.0f && beta != 1.0f) || (K <= 0 && beta != 1.0f);
    if (prescale) {
        int64_t r0, r1;
        split(M, nthr, tid, &r0, &r1);
        scale_rows(r0, r1, N, beta, C, ldc);
#pragma omp barrier
    }
    if (K <= 0) {
        if (!prescale) {
#pragma omp barrier
        }
        return;
    }
    const int first_add = prescale || beta != 0.0f;

    const int64_t nsl = cdiv(N, NR);
    const int tn = nsl >= nthr ? nthr : (int)nsl, tm = nthr / tn;
    const int my_n = tid % tn, my_m = tid / tn;
    int64_t n0, n1;
    split(nsl, tn, my_n, &n0, &n1);
    const int computes = my_m < tm;

    uint32_t *team = (uint32_t *)work;
    uint32_t *bblock = team + (int64_t)tid * BBLOCK_WORDS;
    uint32_t *apanel = team + (int64_t)nthr * BBLOCK_WORDS;
    const int64_t npanels = cdiv(M, (int64_t)nthr * MP_SLIVERS * MR);
    const int64_t mp = cdiv(cdiv(M, npanels), MR) * MR;

    const int64_t kcn = sm_gemm_bf16_kblock(K), nkb = cdiv(K, kcn);
    const int64_t my_nsl = n1 - n0, nbb = my_nsl > 0 ? cdiv(my_nsl, NB) : 0;

    for (int64_t ic = 0; ic < M; ic += mp) {
        const int64_t mc = min64(mp, M - ic), msl = cdiv(mc, MR), ngroups = cdiv(msl, AGROUP);
        int64_t m0, m1;
        split(msl, tm, my_m, &m0, &m1);
        for (int64_t pb = 0; pb < nkb; pb++) {
            const int64_t p0 = pb * kcn, kc = min64(kcn, K - p0), kp = cdiv(kc, 2);
            const int add = pb > 0 || first_add;
#pragma omp for schedule(static)
            for (int64_t g = 0; g < ngroups; g++) {
                const int64_t s = g * AGROUP, i = ic + s * MR;
                pack_a(trans_a, A, a_type, lda, i, min64(AGROUP * MR, ic + mc - i), p0, kc, apanel + s * MR * kp);
            }
            for (int64_t b = 0; computes && b < nbb; b++) {
                int64_t s0, s1;
                split(my_nsl, (int)nbb, (int)b, &s0, &s1);
                s0 += n0;
                s1 += n0;
                const int64_t j0 = s0 * NR;
                pack_b(trans_b, B, b_type, ldb, p0, kc, j0, min64(N, s1 * NR) - j0, bblock);
                for (int64_t s = m0; s < m1; s++) {
                    const int64_t i = ic + s * MR;
                    const int mr = (int)min64(MR, M - i);
                    for (int64_t t = s0; t < s1; t++) {
                        const int64_t j = t * NR;
                        tile(micro, mr, (int)min64(NR, N - j), kp, apanel + s * MR * kp, bblock + (t - s0) * NR * kp,
                             C + i * ldc + j, ldc, add);
                    }
                }
            }
#pragma omp barrier
        }
    }
}

/* ---- reference ---- */

static double ref_elem(const void *X, sm_dtype t, int64_t idx) { return (double)sm_bf16_to_f32((uint16_t)elem(X, t, idx)); }

void sm_gemm_bf16_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                      int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += ref_elem(A, a_type, trans_a ? k * lda + i : i * lda + k) *
                     ref_elem(B, b_type, trans_b ? j * ldb + k : k * ldb + j);
            C[i * ldc + j] = beta == 0.0f ? (float)s : (float)(beta * (double)C[i * ldc + j] + s);
        }
}
