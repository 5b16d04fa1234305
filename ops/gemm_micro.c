/* gemm_micro.c — the register-blocked micro-kernels: one tile of C from a packed A sliver and a packed
 * B sliver (layouts in gemm_impl.h). Everything else in the gemm exists to feed these at full rate.
 *
 * The accumulators are named variables (c<row>_<vector>), not an array: with an array GCC 12 keeps
 * the values in registers but also stores the whole array to the stack on every k step, which on
 * the AVX2 kernel cost 60% of the speed (47 vs 116 GFLOPS measured). Rows beyond ROWS are compiled
 * out (ROWS is a constant in each instantiation). */
#include "gemm_impl.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#define SM_ROWS_12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define SM_ROWS_6(X) X(0) X(1) X(2) X(3) X(4) X(5)

#if defined(__AVX512F__)

/* ROWS x 32 (two zmm per row). The C lines are prefetched first so their misses overlap the k loop
 * instead of stalling the final update. */
#define DECL(i) __m512 c##i##_0 = _mm512_setzero_ps(), c##i##_1 = _mm512_setzero_ps();
#define PREFETCH(i)                                                                                      \
    if (ROWS > i) {                                                                                      \
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);                                          \
        _mm_prefetch((const char *)(C + i * ldc + 31), _MM_HINT_T0);                                     \
    }
#define FMA(i)                                                                                           \
    if (ROWS > i) {                                                                                      \
        const __m512 a = _mm512_set1_ps(ap[i]);                                                          \
        c##i##_0 = _mm512_fmadd_ps(a, b0, c##i##_0);                                                     \
        c##i##_1 = _mm512_fmadd_ps(a, b1, c##i##_1);                                                     \
    }
#define STORE(i)                                                                                         \
    if (ROWS > i) {                                                                                      \
        float *c = C + i * ldc;                                                                          \
        if (add) {                                                                                       \
            c##i##_0 = _mm512_add_ps(_mm512_loadu_ps(c), c##i##_0);                                      \
            c##i##_1 = _mm512_add_ps(_mm512_loadu_ps(c + 16), c##i##_1);                                 \
        }                                                                                                \
        _mm512_storeu_ps(c, c##i##_0);                                                                   \
        _mm512_storeu_ps(c + 16, c##i##_1);                                                              \
    }
#define MICRO(NAME, R)                                                                                   \
    static __attribute__((noinline)) void NAME(int64_t kc, const float *restrict ap,                     \
                                               const float *restrict bp, float *restrict C, int64_t ldc, \
                                               int add) {                                                \
        enum { ROWS = R };                                                                               \
        SM_ROWS_12(DECL)                                                                                 \
        SM_ROWS_12(PREFETCH)                                                                             \
        for (int64_t k = 0; k < kc; k++) {                                                               \
            const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);                       \
            SM_ROWS_12(FMA)                                                                              \
            ap += SM_GEMM_MR;                                                                            \
            bp += SM_GEMM_NR;                                                                            \
        }                                                                                                \
        SM_ROWS_12(STORE)                                                                                \
    }

MICRO(micro12, 12)
MICRO(micro8, 8)
MICRO(micro4, 4)

void sm_gemm_micro(int rows, int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc, int add) {
    if (rows > 8)
        micro12(kc, ap, bp, C, ldc, add);
    else if (rows > 4)
        micro8(kc, ap, bp, C, ldc, add);
    else
        micro4(kc, ap, bp, C, ldc, add);
}

int sm_gemm_micro_rows(int mr) { return mr > 8 ? 12 : mr > 4 ? 8 : 4; }

#elif defined(__AVX2__) && defined(__FMA__)

/* ROWS x 16 (two ymm per row), ROWS <= 6: 12 accumulators next to the B row and the broadcast. */
#define DECL(i) __m256 c##i##_0 = _mm256_setzero_ps(), c##i##_1 = _mm256_setzero_ps();
#define PREFETCH(i)                                                                                      \
    if (ROWS > i) {                                                                                      \
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);                                          \
        _mm_prefetch((const char *)(C + i * ldc + 15), _MM_HINT_T0);                                     \
    }
#define FMA(i)                                                                                           \
    if (ROWS > i) {                                                                                      \
        const __m256 a = _mm256_broadcast_ss(ap + i);                                                    \
        c##i##_0 = _mm256_fmadd_ps(a, b0, c##i##_0);                                                     \
        c##i##_1 = _mm256_fmadd_ps(a, b1, c##i##_1);                                                     \
    }
#define STORE(i)                                                                                         \
    if (ROWS > i) {                                                                                      \
        float *c = C + i * ldc;                                                                          \
        if (add) {                                                                                       \
            c##i##_0 = _mm256_add_ps(_mm256_loadu_ps(c), c##i##_0);                                      \
            c##i##_1 = _mm256_add_ps(_mm256_loadu_ps(c + 8), c##i##_1);                                  \
        }                                                                                                \
        _mm256_storeu_ps(c, c##i##_0);                                                                   \
        _mm256_storeu_ps(c + 8, c##i##_1);                                                               \
    }
#define MICRO(NAME, R)                                                                                   \
    static __attribute__((noinline)) void NAME(int64_t kc, const float *restrict ap,                     \
                                               const float *restrict bp, float *restrict C, int64_t ldc, \
                                               int add) {                                                \
        enum { ROWS = R };                                                                               \
        SM_ROWS_6(DECL)                                                                                  \
        SM_ROWS_6(PREFETCH)                                                                              \
        for (int64_t k = 0; k < kc; k++) {                                                               \
            const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);                         \
            SM_ROWS_6(FMA)                                                                               \
            ap += SM_GEMM_MR;                                                                            \
            bp += SM_GEMM_NR;                                                                            \
        }                                                                                                \
        SM_ROWS_6(STORE)                                                                                 \
    }

MICRO(micro6, 6)
MICRO(micro3, 3)

void sm_gemm_micro(int rows, int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc, int add) {
    if (rows > 3)
        micro6(kc, ap, bp, C, ldc, add);
    else
        micro3(kc, ap, bp, C, ldc, add);
}

int sm_gemm_micro_rows(int mr) { return mr > 3 ? 6 : 3; }

#else

/* Portable: plain C in the same order (one multiply-add per k from zero, then the C update). Without
 * FMA hardware the multiply and add round separately; that is still one fixed order per element. */
void sm_gemm_micro(int rows, int64_t kc, const float *ap, const float *bp, float *C, int64_t ldc, int add) {
    float acc[SM_GEMM_MR][SM_GEMM_NR] = {{0}};
    for (int64_t k = 0; k < kc; k++) {
        for (int i = 0; i < SM_GEMM_MR; i++)
            for (int j = 0; j < SM_GEMM_NR; j++) acc[i][j] += ap[i] * bp[j];
        ap += SM_GEMM_MR;
        bp += SM_GEMM_NR;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < SM_GEMM_NR; j++) C[i * ldc + j] = add ? C[i * ldc + j] + acc[i][j] : acc[i][j];
}

int sm_gemm_micro_rows(int mr) {
    (void)mr;
    return SM_GEMM_MR;
}

#endif
