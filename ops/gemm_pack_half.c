/* gemm_pack_half.c — the gemm's packing from 16-bit storage (f16, bf16): the sliver layouts of
 * gemm_impl.h filled with each element widened to f32 on the way in, so a matmul reads a half
 * precision operand without an f32 copy of it. Widening is exact, so the packed panels are bitwise
 * those sm_gemm_pack_a/_b make from an f32 copy. Contiguous rows are widened a run at a time by
 * fp16.h's array conversions (vectorised where the machine has F16C); strided gathers widen each
 * element with the scalar conversions. */
#include "gemm_impl.h"

#include <string.h>

#include "../base/fp16.h"
#include "smallmind.h"

static inline float widen(int type, uint16_t h) { return type == SM_BF16 ? sm_bf16_to_f32(h) : sm_f16_to_f32(h); }

static void widen_run(int type, const uint16_t *src, float *dst, int64_t n)
{
    if (type == SM_BF16) sm_bf16_to_f32_array(src, dst, (size_t)n);
    else sm_f16_to_f32_array(src, dst, (size_t)n);
}

/* dst[k*W + r] = src[r*ld + k] for r < n, k < kc; r in n..W-1 zero; block by block of W rows. */
static void gather_block(int type, const uint16_t *src, int64_t ld, int64_t n, int64_t kc, float *dst, int W)
{
    for (int64_t r0 = 0; r0 < n; r0 += W) {
        int rows = (int)(n - r0 < W ? n - r0 : W);
        float *d = dst + r0 * kc;
        for (int64_t k = 0; k < kc; k++) {
            for (int r = 0; r < rows; r++) d[k * W + r] = widen(type, src[(r0 + r) * ld + k]);
            for (int r = rows; r < W; r++) d[k * W + r] = 0.0f;
        }
    }
}

/* Sliver s of dst: dst[s*W*kc + k*W + c] = src[k*ld + s*W + c] for s*W + c < n, zero beyond; each
 * source row widened once into a row buffer, then spread over the slivers. */
static void copy_block(int type, const uint16_t *src, int64_t ld, int64_t n, int64_t kc, float *dst, int W)
{
    float row[512];
    for (int64_t k = 0; k < kc; k++)
        for (int64_t c0 = 0; c0 < n; c0 += 512) {
            int64_t len = n - c0 < 512 ? n - c0 : 512;   /* a multiple of W unless it is the end */
            widen_run(type, src + k * ld + c0, row, len);
            for (int64_t c = 0; c < len; c++) {
                int64_t j = c0 + c;
                dst[(j / W) * W * kc + k * W + j % W] = row[c];
            }
        }
    int64_t rest = n % W;
    if (rest)
        for (int64_t k = 0; k < kc; k++) memset(dst + (n / W) * W * kc + k * W + rest, 0, (size_t)(W - rest) * sizeof(float));
}

void sm_gemm_pack_a_half(int type, int trans_a, const uint16_t *A, int64_t lda, int64_t i0, int64_t m, int64_t p0,
                         int64_t kc, float *ap)
{
    if (trans_a) copy_block(type, A + p0 * lda + i0, lda, m, kc, ap, SM_GEMM_MR);
    else gather_block(type, A + i0 * lda + p0, lda, m, kc, ap, SM_GEMM_MR);
}

void sm_gemm_pack_b_half(int type, int trans_b, const uint16_t *B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0,
                         int64_t n, float *bp)
{
    if (trans_b) gather_block(type, B + j0 * ldb + p0, ldb, n, kc, bp, SM_GEMM_NR);
    else copy_block(type, B + p0 * ldb + j0, ldb, n, kc, bp, SM_GEMM_NR);
}
