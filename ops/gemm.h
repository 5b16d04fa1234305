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

#endif
