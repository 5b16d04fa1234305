/* gemm.c — C[M,N] = beta*C + op(A)[M,K] · op(B)[K,N] in f32, as a team call (see gemm.h).
 *
 * The loop nest (Goto/BLIS style, with the roles of A and B chosen so vectors run along C's rows):
 *
 *   for ic: panel of up to MP rows of op(A)           A panel  [kc x mp], packed by the whole team, L3
 *     for pc: block of up to KC of K                   (a fixed function of K: same for any team)
 *       pack the A panel (slivers split over the team), barrier
 *       for jc: this thread's columns, B blocks of NB slivers   B block [kc x nb*NR], private, L2
 *         pack the B block
 *         for ir: A sliver (MR rows)                   A sliver [kc x MR], stays in L1
 *           for jr: B sliver (NR columns)              streamed from L2
 *             micro-kernel: C[MR x NR] (+)= A sliver · B sliver
 *       barrier (the A panel is repacked next)
 *
 * Threads split the output columns (or rows, when N has fewer slivers than threads); K is never
 * split, and every element is summed as: for each K block in order, acc = FMA chain from zero over
 * the block, C = acc (first block, beta = 0) or C = C + acc. That order depends on K alone, so the
 * result is bitwise the same for any thread count.
 *
 * Sizes for a core with 32 KiB L1d and 1 MiB L2 (AMD Zen 4; the same shape as BLIS's zen4 choice):
 * an A sliver is 12*384*4 = 18 KiB of L1, a B block 384*512*4 = 768 KiB of L2. */
#include "gemm.h"

#include <omp.h>

#include "gemm_impl.h"

#include "../base/fp16.h"

#ifndef SM_GEMM_KC
#define SM_GEMM_KC 384          /* max depth of a K block */
#endif
#ifndef SM_GEMM_NB
#define SM_GEMM_NB 16           /* max B-block width, in NR slivers */
#endif
#define SM_GEMM_MP_SLIVERS 96   /* A-panel rows each thread's workspace holds, in MR slivers */
#define SM_GEMM_AGROUP 4        /* A slivers per packing work item (longer contiguous reads) */

#define SM_GEMM_BBLOCK_FLOATS ((int64_t)SM_GEMM_KC * SM_GEMM_NB * SM_GEMM_NR)
#define SM_GEMM_APART_FLOATS ((int64_t)SM_GEMM_KC * SM_GEMM_MP_SLIVERS * SM_GEMM_MR)

size_t sm_gemm_workspace(void) {
    size_t bytes = (size_t)(SM_GEMM_BBLOCK_FLOATS + SM_GEMM_APART_FLOATS) * sizeof(float);
    return (bytes + 63) & ~(size_t)63;
}

int64_t sm_gemm_kblock(int64_t K) { return K > 0 ? cdiv(K, cdiv(K, SM_GEMM_KC)) : 0; }

/* One tile at C (mr x nr valid). Full tiles go straight to C; edge tiles are computed into a
 * zero-padded scratch tile and merged with the same single add, so they round identically. */
static void tile(int mr, int nr, int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc,
                 int add) {
    if (nr == SM_GEMM_NR && sm_gemm_micro_rows(mr) == mr) {
        sm_gemm_micro(mr, kc, ap, bp, C, ldc, add);
        return;
    }
    float t[SM_GEMM_MR * SM_GEMM_NR];
    sm_gemm_micro(mr, kc, ap, bp, t, SM_GEMM_NR, 0);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            C[i * ldc + j] = add ? C[i * ldc + j] + t[i * SM_GEMM_NR + j] : t[i * SM_GEMM_NR + j];
}

/* Packing by storage type: f32 as is, f16/bf16 widened while packing (gemm_pack_half.c). */
static void pack_a(int type, int trans_a, const void *A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc,
                   float *ap) {
    if (type == SM_F32) sm_gemm_pack_a(trans_a, A, lda, i0, m, p0, kc, ap);
    else sm_gemm_pack_a_half(type, trans_a, A, lda, i0, m, p0, kc, ap);
}

static void pack_b(int type, int trans_b, const void *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n,
                   float *bp) {
    if (type == SM_F32) sm_gemm_pack_b(trans_b, B, ldb, p0, kc, j0, n, bp);
    else sm_gemm_pack_b_half(type, trans_b, B, ldb, p0, kc, j0, n, bp);
}

void sm_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc, void *work) {
    sm_gemm_f32_mixed(trans_a, trans_b, M, N, K, A, SM_F32, lda, B, SM_F32, ldb, beta, C, ldc, work);
}

void sm_gemm_f32_mixed(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                       int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc,
                       void *work) {
    const int nthr = omp_get_num_threads(), tid = omp_get_thread_num();
    if (M <= 0 || N <= 0) {
#pragma omp barrier
        return;
    }
    /* A beta other than 0 and 1 (or beta = 0 with nothing to multiply) is applied up front; the
     * product is then accumulated onto C. */
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

    /* Thread grid: tn threads across the N slivers, tm across the rows of each A panel. */
    const int64_t nsl = cdiv(N, SM_GEMM_NR);
    const int tn = nsl >= nthr ? nthr : (int)nsl, tm = nthr / tn;
    const int my_n = tid % tn, my_m = tid / tn;
    int64_t n0, n1;
    split(nsl, tn, my_n, &n0, &n1);
    const int computes = my_m < tm;

    /* The team's workspace regions are contiguous (thread t's at work + t*sm_gemm_workspace()), so
     * it is used as one buffer: nthr private B blocks, then the shared A panel in the rest, which
     * holds nthr * MP_SLIVERS slivers. Panels are of equal height (a multiple of MR), so a last
     * panel of a few rows never pays for repacking all of B. */
    float *team = (float *)work;
    float *bblock = team + (int64_t)tid * SM_GEMM_BBLOCK_FLOATS;
    float *apanel = team + (int64_t)nthr * SM_GEMM_BBLOCK_FLOATS;
    const int64_t npanels = cdiv(M, (int64_t)nthr * SM_GEMM_MP_SLIVERS * SM_GEMM_MR);
    const int64_t mp = cdiv(cdiv(M, npanels), SM_GEMM_MR) * SM_GEMM_MR;

    /* K blocks of equal depth (at most KC): depends only on K. */
    const int64_t nkb = cdiv(K, SM_GEMM_KC), kcn = sm_gemm_kblock(K);
    /* This thread's columns in B blocks of equal width (at most NB slivers). */
    const int64_t my_nsl = n1 - n0, nbb = my_nsl > 0 ? cdiv(my_nsl, SM_GEMM_NB) : 0;

    for (int64_t ic = 0; ic < M; ic += mp) {
        const int64_t mc = min64(mp, M - ic), msl = cdiv(mc, SM_GEMM_MR), ngroups = cdiv(msl, SM_GEMM_AGROUP);
        int64_t m0, m1;
        split(msl, tm, my_m, &m0, &m1);
        for (int64_t pb = 0; pb < nkb; pb++) {
            const int64_t p0 = pb * kcn, kc = min64(kcn, K - p0);
            const int add = pb > 0 || first_add;
#pragma omp for schedule(static)
            for (int64_t g = 0; g < ngroups; g++) {
                const int64_t s = g * SM_GEMM_AGROUP, i = ic + s * SM_GEMM_MR;
                pack_a(a_type, trans_a, A, lda, i, min64(SM_GEMM_AGROUP * SM_GEMM_MR, ic + mc - i), p0, kc,
                       apanel + s * SM_GEMM_MR * kc);
            }
            for (int64_t b = 0; computes && b < nbb; b++) {
                int64_t s0, s1;
                split(my_nsl, (int)nbb, (int)b, &s0, &s1);
                s0 += n0;
                s1 += n0;
                const int64_t j0 = s0 * SM_GEMM_NR;
                pack_b(b_type, trans_b, B, ldb, p0, kc, j0, min64(N, s1 * SM_GEMM_NR) - j0, bblock);
                for (int64_t s = m0; s < m1; s++) {
                    const int64_t i = ic + s * SM_GEMM_MR;
                    const int mr = (int)min64(SM_GEMM_MR, M - i);
                    for (int64_t t = s0; t < s1; t++) {
                        const int64_t j = t * SM_GEMM_NR;
                        tile(mr, (int)min64(SM_GEMM_NR, N - j), kc, apanel + s * SM_GEMM_MR * kc,
                             bblock + (t - s0) * SM_GEMM_NR * kc, C + i * ldc + j, ldc, add);
                    }
                }
            }
#pragma omp barrier
        }
    }
}

void sm_gemm_f32_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    sm_gemm_f32_mixed_ref(trans_a, trans_b, M, N, K, A, SM_F32, lda, B, SM_F32, ldb, beta, C, ldc);
}

/* element i of a matrix stored as type, as f32 */
static float load(const void *x, sm_dtype type, int64_t i) {
    if (type == SM_F32) return ((const float *)x)[i];
    const uint16_t h = ((const uint16_t *)x)[i];
    return type == SM_BF16 ? sm_bf16_to_f32(h) : sm_f16_to_f32(h);
}

void sm_gemm_f32_mixed_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                           int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                const float a = load(A, a_type, trans_a ? k * lda + i : i * lda + k);
                const float b = load(B, b_type, trans_b ? j * ldb + k : k * ldb + j);
                s += a * b;
            }
            C[i * ldc + j] = beta == 0.0f ? s : beta * C[i * ldc + j] + s;
        }
}
