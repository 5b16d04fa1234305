/* gemm.h — the blocked, vectorised f32 matrix multiply behind matmul and linear. */
#ifndef SM_GEMM_H
#define SM_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

/* C[M,N] = beta*C + op(A)·op(B), row-major, op(A) is [M,K], op(B) is [K,N].
 *   trans_a = 0: A is [M,K] with row stride lda;  trans_a = 1: A is [K,M] (we use its transpose).
 *   trans_b = 0: B is [K,N] with row stride ldb;  trans_b = 1: B is [N,K].
 *   beta is 0 (overwrite C; C may hold garbage/NaN) or 1 (accumulate into C).
 * Team call: must be called by every thread of the current OpenMP team (or outside any parallel
 * region, when it runs on the calling thread alone); it splits the output with static partitioning
 * and ends with a barrier. Each output element is summed in one fixed order, so the result is
 * bitwise the same for every thread count. work: per-thread scratch of sm_gemm_workspace() bytes,
 * thread i uses work + i*sm_gemm_workspace(). */
void sm_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc, void *work);
/* The same with A and B each stored as f32, f16 or bf16 (a_type, b_type; lda/ldb in elements): the
 * 16-bit ones are widened to f32 while the gemm packs them, so the result is bitwise sm_gemm_f32 on
 * f32 copies of them, without the copies. f32 compute throughout. */
void sm_gemm_f32_mixed(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                       int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc,
                       void *work);
size_t sm_gemm_workspace(void);
/* The depth of the K blocks a product of depth K is summed in (equal blocks of at most KC): block b
 * covers [b*d, min((b+1)*d, K)). A product cut along K at these boundaries and accumulated with
 * beta = 1 (first part beta = 0) is bitwise the uncut product: the fused LM head relies on it. */
int64_t sm_gemm_kblock(int64_t K);

/* The plain triple loop the tests compare against (serial, any strides). */
void sm_gemm_f32_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void sm_gemm_f32_mixed_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                           int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc);

/* ---- BF16 GEMM (ops/gemm_bf16.c, gemm_bf16_micro.c) ----
 * C[M,N] = beta*C + op(A)·op(B) with bf16 operands: A and B elements are SM_F32 (rounded to bf16,
 * nearest-even, while packing) or SM_BF16 (uint16 bit patterns as in base/fp16.h); products exact,
 * accumulated in f32 in a fixed order (same transposition/stride/beta/team-call/workspace contract as
 * sm_gemm_f32, with sm_gemm_bf16_workspace() bytes per thread).
 *
 * The arithmetic is that of AVX-512 BF16's vdpbf16ps wherever it runs: per output element and K block
 * (K split as sm_gemm_bf16_kblock says), from acc = +0 over the pairs (k, k+1) of the block in order
 * (a last odd k is paired with a zero), acc = fma(a[k+1], b[k+1], acc) then acc = fma(a[k], b[k], acc),
 * each rounded to nearest-even, with bf16 subnormal inputs (and a subnormal acc) read as zero and a
 * result of magnitude below 2^-126 after rounding (to 24 bits, exponent unbounded) flushed to a zero of
 * its sign; then C = acc (first block, beta = 0) or C = C + acc (an ordinary f32 add). On CPUs without
 * vdpbf16ps the portable kernel computes exactly this, so results are bitwise the same on every CPU
 * (NaN payloads aside), and for every thread count. */
#include "smallmind.h"

void sm_gemm_bf16(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                  int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc,
                  void *work);
size_t sm_gemm_bf16_workspace(void);
/* 1 when this CPU runs vdpbf16ps (runtime check) and it is used; 0 = the portable kernel. */
int sm_gemm_bf16_native(void);
/* The depth of the K blocks (even, at most 768) that sm_gemm_bf16 sums a product of depth K in; as
 * with sm_gemm_kblock, a product cut along K at these boundaries and accumulated with beta = 1 (first
 * part beta = 0) is bitwise the uncut product. */
int64_t sm_gemm_bf16_kblock(int64_t K);
/* Tests only: force the portable kernel (on != 0) even where vdpbf16ps exists, or restore dispatch.
 * Not to be called while an sm_gemm_bf16 runs. */
void sm_gemm_bf16_force_portable(int on);

/* Plain triple loop the tests compare against (serial, any strides): the bf16-rounded operands'
 * products summed exactly enough (in double), then C = (float)(s) or (float)(beta*C + s). It does not
 * flush subnormals. */
void sm_gemm_bf16_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype a_type,
                      int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta, float *C, int64_t ldc);

/* The team product of a gemm-based kernel (matmul, linear, lm_head_ce) under the plan's precision
 * policy: bf16 products (sm_gemm_bf16) when bf16 is set, else the f32 gemm, which widens 16-bit
 * operands while packing. */
static inline void sm_gemm_policy(int bf16, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const void *A,
                                  sm_dtype a_type, int64_t lda, const void *B, sm_dtype b_type, int64_t ldb, float beta,
                                  float *C, int64_t ldc, void *work)
{
    if (bf16) sm_gemm_bf16(trans_a, trans_b, M, N, K, A, a_type, lda, B, b_type, ldb, beta, C, ldc, work);
    else sm_gemm_f32_mixed(trans_a, trans_b, M, N, K, A, a_type, lda, B, b_type, ldb, beta, C, ldc, work);
}

/* Per-thread scratch for a kernel that runs either gemm (the plan's precision policy picks). */
static inline size_t sm_gemm_any_workspace(void)
{
    return sm_gemm_workspace() > sm_gemm_bf16_workspace() ? sm_gemm_workspace() : sm_gemm_bf16_workspace();
}

#endif
