/* gemm_impl.h — internals shared by the gemm files: the register tile, the packed layouts, and the
 * micro-kernel and packing routines the driver (gemm.c) strings together. Not a public interface. */
#ifndef SM_GEMM_IMPL_H
#define SM_GEMM_IMPL_H

#include <stdint.h>

/* The register tile MR x NR of C that one micro-kernel call computes, per instruction set. Vectors
 * run along N (C's contiguous dimension), so a tile is MR rows of NR/W vectors, and A values are
 * broadcast:
 *   AVX-512: 12 x 32 -> 24 zmm accumulators + 2 for the B row + 1 broadcast = 27 of 32 registers;
 *            per k: 2 vector loads, 12 broadcasts, 24 FMAs, so the FMA pipe is the only limit.
 *   AVX2:     6 x 16 -> 12 ymm accumulators + 2 + 1 = 15 of 16 registers.
 *   other:    4 x 16 plain C the compiler vectorises as it can. */
#if defined(__AVX512F__)
#define SM_GEMM_MR 12
#define SM_GEMM_NR 32
#elif defined(__AVX2__) && defined(__FMA__)
#define SM_GEMM_MR 6
#define SM_GEMM_NR 16
#else
#define SM_GEMM_MR 4
#define SM_GEMM_NR 16
#endif

/* Packed layouts (kc = depth of the current K block), one sliver after another:
 *   A slivers: ap[s*MR*kc + k*MR + r] = op(A)(i0 + s*MR + r, p0 + k), rows past i0 + m are zero;
 *   B slivers: bp[s*NR*kc + k*NR + c] = op(B)(p0 + k, j0 + s*NR + c), columns past j0 + n are zero.
 * The zero padding lets every tile run the full-size kernel; padded results are never stored.
 * Each call packs ceil(m/MR) (or ceil(n/NR)) slivers. */
void sm_gemm_pack_a(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t p0, int64_t kc,
                    float *ap);
void sm_gemm_pack_b(int trans_b, const float *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t n,
                    float *bp);
/* The same from f16 or bf16 storage (type: SM_F16 or SM_BF16, A/B as uint16_t), each element widened
 * to f32 exactly as it is packed: the packed panels hold the very values an f32 copy of the matrix
 * would give, so the product is bitwise that of casting first (no f32 copy is made). */
void sm_gemm_pack_a_half(int type, int trans_a, const uint16_t *A, int64_t lda, int64_t i0, int64_t m, int64_t p0,
                         int64_t kc, float *ap);
void sm_gemm_pack_b_half(int type, int trans_b, const uint16_t *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                         int64_t n, float *bp);

/* One tile: acc[rows x NR] = sum_k ap[k,:rows] (x) bp[k,:], summed from zero in increasing k with one
 * FMA per k, then C = acc (add = 0) or C = C + acc (add = 1). C is rows x NR at stride ldc.
 * rows <= MR picks a shorter kernel for the last rows of M (it writes sm_gemm_micro_rows(rows) rows).
 * Every element's arithmetic is the same whichever kernel or tile computes it, which is what makes
 * the result independent of how tiles are spread over threads. */
void sm_gemm_micro(int rows, int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc, int add);
/* The row count of the kernel that sm_gemm_micro runs for mr valid rows (the smallest one >= mr). */
int sm_gemm_micro_rows(int mr);

/* ---- the team drivers' arithmetic (gemm.c, gemm_bf16.c) ---- */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows [lo, hi) of n for part idx of parts: contiguous, sizes differ by at most one. */
static inline void split(int64_t n, int parts, int idx, int64_t *lo, int64_t *hi) {
    *lo = n * idx / parts;
    *hi = n * (idx + 1) / parts;
}

/* C rows [r0, r1) := beta * C, elementwise (beta = 0 writes zeros even over NaN/garbage). */
static inline void scale_rows(int64_t r0, int64_t r1, int64_t N, float beta, float *C, int64_t ldc) {
    for (int64_t i = r0; i < r1; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

#endif
