/* gemm_bf16_micro.c — the bf16 micro-kernels: one 12x32 tile of C from a packed A sliver and a packed B
 * sliver of bf16 pairs (layout in gemm_bf16_impl.h).
 *
 * avx512: vdpbf16ps, compiled for that instruction set whatever the build flags are (target
 *   attribute), and only called when the CPU reports it (gemm_bf16.c checks at run time).
 * portable: plain C that computes exactly what vdpbf16ps computes, so the two are bitwise equal
 *   (tests/test_gemm_bf16.c checks it on the CPU at hand). The instruction's semantics, from the Intel
 *   SDM (VDPBF16PS: "round to nearest even", "output denormals are always flushed to zero and input
 *   denormals are always treated as zero", MXCSR neither consulted nor updated; the pseudocode adds
 *   the odd product then the even one) and measured on AMD Zen 5 (family 26) over 12.8M random lanes,
 *   a quarter of them built to land near the smallest normal, with no mismatch: per lane
 *     acc = step(acc, a[2i+1], b[2i+1]);  acc = step(acc, a[2i], b[2i]);
 *   step(c, a, b) = fma(a, b, c) rounded once (the bf16 product is exact in f32: 8x8 significand
 *   bits), with subnormal a, b, c read as zero of their sign, and a result whose magnitude is below
 *   2^-126 AFTER rounding to 24 bits with an unbounded exponent flushed to zero of its sign. That last
 *   point is where a plain "fmaf, then flush subnormals" differs: an exact result in
 *   [2^-126 - 2^-150, 2^-126 - 2^-151) is rounded up to 2^-126 by fmaf (bounded exponent) but is
 *   tiny, and flushed, for the instruction (0.5% of the near-2^-126 lanes differed before this rule).
 *   The portable kernel assumes the default floating-point environment (round to nearest, no
 *   FTZ/DAZ in MXCSR), as the rest of the library does; the instruction ignores MXCSR. */
#include "gemm_bf16_impl.h"

#include <math.h>
#include <string.h>

/* ---- portable ---- */

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A subnormal (exponent field 0) becomes a zero of its sign; anything else is unchanged. */
static inline float daz(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7F800000u) ? x : bits_f32(u & 0x80000000u);
}

/* One accumulation step of vdpbf16ps (a, b already read with DAZ). fmaf's result differs from the
 * instruction's only when it is subnormal (flush) or exactly ±2^-126: then the exact value may lie
 * just below 2^-126, which rounding with an unbounded exponent keeps below 2^-126 (tiny: flushed).
 * Scaling by 2^64 moves the sum into the normal range where fmaf rounds exactly that way (g). With a
 * or b zero, f = c exactly (normal, nothing to do). Otherwise the scaling is exact and cannot
 * overflow: a nonzero result this small is a multiple of the finer of the last-bit weights of c and
 * a*b, so |c| and |a*b| are below 2^-100, and |a|, |b| below 2^26 (the other factor is at least
 * 2^-126). g is computed always and selected (it may be inf or NaN where it is not used), so the
 * loops over step have no branches and vectorise. */
static inline float step(float c, float a, float b) {
    const float cz = daz(c), f = fmaf(a, b, cz), g = fmaf(a * 0x1p64f, b, cz * 0x1p64f), af = fabsf(f);
    const int tiny = af < 0x1p-126f || (af == 0x1p-126f && a != 0.0f && b != 0.0f && fabsf(g) < 0x1p-62f);
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return bits_f32(tiny ? u & 0x80000000u : u);
}

void sm_gemm_bf16_micro_portable(int rows, int64_t kp, const uint32_t *ap, const uint32_t *bp, float *C,
                                 int64_t ldc, int add) {
    float acc[SM_BF16_MR][SM_BF16_NR] = {{0}};
    const int kr = sm_gemm_bf16_micro_rows(rows);
    for (int64_t q = 0; q < kp; q++) {
        float blo[SM_BF16_NR], bhi[SM_BF16_NR];
        for (int j = 0; j < SM_BF16_NR; j++) {
            blo[j] = daz(bits_f32(bp[j] << 16));
            bhi[j] = daz(bits_f32(bp[j] & 0xFFFF0000u));
        }
        for (int i = 0; i < kr; i++) {
            const float alo = daz(bits_f32(ap[i] << 16)), ahi = daz(bits_f32(ap[i] & 0xFFFF0000u));
            for (int j = 0; j < SM_BF16_NR; j++) acc[i][j] = step(step(acc[i][j], ahi, bhi[j]), alo, blo[j]);
        }
        ap += SM_BF16_MR;
        bp += SM_BF16_NR;
    }
    for (int i = 0; i < kr; i++)
        for (int j = 0; j < SM_BF16_NR; j++) C[i * ldc + j] = add ? C[i * ldc + j] + acc[i][j] : acc[i][j];
}

int sm_gemm_bf16_micro_rows(int mr) { return mr > 8 ? 12 : mr > 4 ? 8 : 4; }

/* ---- AVX-512 BF16 ---- */

#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 10)
#include <immintrin.h>

#define SM_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))
#define SM_ROWS_12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Named accumulators, not an array (see gemm_micro.c: GCC 12 would spill an array every step). */
#define DECL(i) __m512 c##i##_0 = _mm512_setzero_ps(), c##i##_1 = _mm512_setzero_ps();
#define PREFETCH(i)                                                                                      \
    if (ROWS > i) {                                                                                      \
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);                                          \
        _mm_prefetch((const char *)(C + i * ldc + 31), _MM_HINT_T0);                                     \
    }
#define DOT(i)                                                                                           \
    if (ROWS > i) {                                                                                      \
        const __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[i]);                                      \
        c##i##_0 = _mm512_dpbf16_ps(c##i##_0, a, b0);                                                    \
        c##i##_1 = _mm512_dpbf16_ps(c##i##_1, a, b1);                                                    \
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
    static SM_BF16_TARGET __attribute__((noinline)) void NAME(int64_t kp, const uint32_t *restrict ap,   \
                                                              const uint32_t *restrict bp,               \
                                                              float *restrict C, int64_t ldc, int add) { \
        enum { ROWS = R };                                                                               \
        SM_ROWS_12(DECL)                                                                                 \
        SM_ROWS_12(PREFETCH)                                                                             \
        for (int64_t q = 0; q < kp; q++) {                                                               \
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp);                                        \
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bp + 16);                                   \
            SM_ROWS_12(DOT)                                                                              \
            ap += SM_BF16_MR;                                                                            \
            bp += SM_BF16_NR;                                                                            \
        }                                                                                                \
        SM_ROWS_12(STORE)                                                                                \
    }

MICRO(micro12, 12)
MICRO(micro8, 8)
MICRO(micro4, 4)

static void micro_avx512(int rows, int64_t kp, const uint32_t *ap, const uint32_t *bp, float *C, int64_t ldc,
                         int add) {
    if (rows > 8)
        micro12(kp, ap, bp, C, ldc, add);
    else if (rows > 4)
        micro8(kp, ap, bp, C, ldc, add);
    else
        micro4(kp, ap, bp, C, ldc, add);
}

sm_bf16_micro_fn *const sm_gemm_bf16_micro_avx512 = micro_avx512;
#else
sm_bf16_micro_fn *const sm_gemm_bf16_micro_avx512 = 0;
#endif
