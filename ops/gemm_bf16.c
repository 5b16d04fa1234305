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

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

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

/* The bf16 bits of element idx of X. */
static inline uint32_t elem(const void *X, sm_dtype t, int64_t idx) {
    return t == SM_BF16 ? ((const uint16_t *)X)[idx] : sm_f32_to_bf16(((const float *)X)[idx]);
}

/* Packs a [n x kc] block of a matrix whose element (r, k) is at X[off + r*rs + k*ks] (in elements)
 * into slivers of W pairs-by-row: dst[s*W*kp + q*W + c] for row r = s*W + c, pair q. Rows past n and
 * the high half of an odd kc's last pair are zero. Loops run along whichever of r, k is contiguous
 * in the source. */
static void pack(const void *X, sm_dtype t, int64_t off, int64_t rs, int64_t ks, int64_t n, int64_t kc,
                 uint32_t *dst, int W) {
    const int64_t kp = cdiv(kc, 2), nsl = cdiv(n, W), kfull = kc / 2;
    if (ks == 1) {   /* k contiguous: one row at a time */
        for (int64_t r = 0; r < nsl * W; r++) {
            uint32_t *d = dst + (r / W) * W * kp + (r % W);
            if (r >= n) {
                for (int64_t q = 0; q < kp; q++) d[q * W] = 0;
                continue;
            }
            const int64_t o = off + r * rs;
            for (int64_t q = 0; q < kfull; q++) d[q * W] = elem(X, t, o + 2 * q) | elem(X, t, o + 2 * q + 1) << 16;
            if (kc & 1) d[kfull * W] = elem(X, t, o + kc - 1);
        }
    } else {         /* r contiguous: two source rows (k, k+1) at a time */
        for (int64_t q = 0; q < kp; q++) {
            const int64_t o = off + 2 * q * ks;
            const int hi = 2 * q + 1 < kc;
            for (int64_t s = 0; s < nsl; s++) {
                uint32_t *d = dst + s * W * kp + q * W;
                for (int c = 0; c < W; c++) {
                    const int64_t r = s * W + c;
                    d[c] = r >= n ? 0 : elem(X, t, o + r * rs) | (hi ? elem(X, t, o + r * rs + ks) << 16 : 0);
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

static void split(int64_t n, int parts, int idx, int64_t *lo, int64_t *hi) {
    *lo = n * idx / parts;
    *hi = n * (idx + 1) / parts;
}

static void scale_rows(int64_t r0, int64_t r1, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = r0; i < r1; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

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
