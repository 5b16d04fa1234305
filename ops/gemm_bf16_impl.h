/* gemm_bf16_impl.h — internals shared by gemm_bf16.c (driver, packing) and gemm_bf16_micro.c (the
 * micro-kernels). Not a public interface.
 *
 * Operands are packed as bf16 PAIRS along K: one uint32 holds op(X)(., 2q) in its low half and
 * op(X)(., 2q+1) in its high half, which is what vdpbf16ps multiplies lane by lane. A block of depth
 * kc has kp = ceil(kc/2) pairs; an odd kc's last pair has a zero high half.
 *   A slivers: ap[s*MR*kp + q*MR + r] = pair q of row i0 + s*MR + r of op(A), rows past m are zero;
 *   B slivers: bp[s*NR*kp + q*NR + c] = pair q of column j0 + s*NR + c of op(B), columns past n zero.
 * The register tile is 12 x 32 as in the f32 gemm (24 zmm accumulators, 2 for the B pairs, one
 * broadcast A pair): per pair, 2 loads, 12 broadcasts and 24 vdpbf16ps, each doing two k steps. The
 * portable kernel uses the same tile and layout. */
#ifndef SM_GEMM_BF16_IMPL_H
#define SM_GEMM_BF16_IMPL_H

#include <stdint.h>

#define SM_BF16_MR 12
#define SM_BF16_NR 32

/* One tile: acc[rows x NR] over the kp pairs (arithmetic in gemm.h), then C = acc (add = 0) or
 * C = C + acc (add = 1), C being sm_gemm_bf16_micro_rows(rows) x NR at stride ldc. */
typedef void sm_bf16_micro_fn(int rows, int64_t kp, const uint32_t *ap, const uint32_t *bp, float *C,
                              int64_t ldc, int add);
sm_bf16_micro_fn sm_gemm_bf16_micro_portable;
/* NULL where the compiler cannot build the AVX-512 BF16 kernel. */
extern sm_bf16_micro_fn *const sm_gemm_bf16_micro_avx512;
/* The row count of the kernel run for mr valid rows (12, 8 or 4). */
int sm_gemm_bf16_micro_rows(int mr);

#endif
