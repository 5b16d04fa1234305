/* Tests of the f16/bf16 <-> f32 conversions against independent references: exact arithmetic in
 * double for every f16 value and every rounding boundary, the x86 F16C instructions where the build
 * has them, and known bit patterns. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/fp16.h"

#if defined(__F16C__)
#include <immintrin.h>
#endif

static uint32_t rng_state = 0x12345678u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* The value of an f16 bit pattern, computed from the definition (non-NaN only). */
static double f16_value(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v;
    if (exp == 31) v = INFINITY;
    else if (exp == 0) v = ldexp(man, -24);
    else v = ldexp(1024 + man, exp - 25);
    return sign ? -v : v;
}

Test(fp16, known_values)
{
    struct {
        float f;
        uint16_t h;
    } k[] = {
        {1.0f, 0x3C00}, {-2.0f, 0xC000}, {65504.0f, 0x7BFF}, {0x1p-24f, 0x0001}, {0x1p-14f, 0x0400},
        {0.5f, 0x3800}, {-0.0f, 0x8000}, {0.0f, 0x0000}, {INFINITY, 0x7C00}, {-INFINITY, 0xFC00},
        {1.0f / 3.0f, 0x3555}, {0x1p-25f, 0x0000} /* tie with 0: even */, {0x1.8p-25f, 0x0001},
        {65520.0f, 0x7C00} /* tie between max and inf: even (inf) */, {65519.99f, 0x7BFF}, {1e10f, 0x7C00},
        {0x1.002p0f, 0x3C00} /* tie, even down */, {0x1.006p0f, 0x3C02} /* tie, even up */,
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        cr_expect_eq(sm_f32_to_f16(k[i].f), k[i].h, "f32 %a -> f16 0x%04X, got 0x%04X", (double)k[i].f, k[i].h,
                     sm_f32_to_f16(k[i].f));
    /* NaN: quiet, sign and top payload kept */
    cr_expect_eq(sm_f32_to_f16(sm_f32_from_bits(0x7FC00000u)), 0x7E00);
    cr_expect_eq(sm_f32_to_f16(sm_f32_from_bits(0xFF800001u)), 0xFE00); /* signalling, payload below f16 bits */
    cr_expect_eq(sm_f32_to_f16(sm_f32_from_bits(0x7FA02000u)), 0x7F01);
    cr_expect_eq(sm_f32_bits(sm_f16_to_f32(0x7C01)), 0x7FC02000u);
    cr_expect_eq(sm_f32_bits(sm_f16_to_f32(0xFE00)), 0xFFC00000u);
}

Test(fp16, f16_to_f32_exhaustive)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sm_f16_to_f32((uint16_t)h);
        bool nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (nan) {
            cr_assert(isnan(f), "0x%04X must be NaN", h);
            cr_assert_eq(sm_f32_bits(f), ((h & 0x8000u) << 16) | 0x7FC00000u | ((h & 0x3FFu) << 13), "0x%04X", h);
        } else {
            cr_assert_eq((double)f, f16_value((uint16_t)h), "0x%04X: %a vs %a", h, (double)f, f16_value((uint16_t)h));
            cr_assert_eq(signbit(f) != 0, (h >> 15) != 0, "sign of 0x%04X", h);
        }
    }
}

Test(fp16, round_trip_every_f16)
{
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 31) == 31 && (h & 1023)) continue;
        cr_assert_eq(sm_f32_to_f16(sm_f16_to_f32((uint16_t)h)), h, "0x%04X", h);
    }
}

/* For each pair of neighbouring f16 values: the exact midpoint rounds to the even one, one f32 ulp
 * either side rounds to the nearer one. Covers every rounding boundary, subnormals included. */
Test(fp16, rounding_boundaries)
{
    for (uint32_t h = 0; h < 0x7C00; h++) {
        for (int neg = 0; neg < 2; neg++) {
            uint16_t lo = (uint16_t)(h | (neg ? 0x8000u : 0)), hi = (uint16_t)((h + 1) | (neg ? 0x8000u : 0));
            /* above the largest finite value the next step is 2^16, where f16's exponent would go */
            double a = f16_value(lo), b = h + 1 == 0x7C00 ? (neg ? -65536.0 : 65536.0) : f16_value(hi);
            float mid = (float)((a + b) / 2);
            cr_assert_eq((double)mid, (a + b) / 2, "midpoint must be exact in f32");
            uint16_t even = (lo & 1) ? hi : lo;
            cr_assert_eq(sm_f32_to_f16(mid), even, "mid of 0x%04X: got 0x%04X", lo, sm_f32_to_f16(mid));
            float above = nextafterf(mid, neg ? -INFINITY : INFINITY), below = nextafterf(mid, 0.0f);
            cr_assert_eq(sm_f32_to_f16(above), hi, "above mid of 0x%04X", lo);
            cr_assert_eq(sm_f32_to_f16(below), lo, "below mid of 0x%04X", lo);
        }
    }
}

/* Reference rounding in double: scale so the f16 ulp is 1, round half to even, scale back. */
static double f16_round_ref(float x)
{
    double ax = fabs((double)x);
    if (ax >= 65520.0) return copysign(INFINITY, x);
    int e;
    frexp(ax, &e); /* ax = m * 2^e, m in [0.5, 1) */
    int ulp_exp = (e - 1 < -14 ? -14 : e - 1) - 10;
    double q = ldexp(ax, -ulp_exp);
    double r = floor(q), frac = q - r;
    if (frac > 0.5 || (frac == 0.5 && fmod(r, 2.0) == 1.0)) r += 1;
    return copysign(ldexp(r, ulp_exp), x);
}

Test(fp16, random_f32_against_references)
{
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rng();
        if (i & 1) u = (u & 0x80000000u) | (0x30000000u + (u % 0x18000000u)); /* concentrate on f16's range */
        float x = sm_f32_from_bits(u);
        if (isnan(x)) continue;
        uint16_t h = sm_f32_to_f16(x);
        cr_assert_eq((double)sm_f16_to_f32(h), f16_round_ref(x), "x=%a (0x%08X) -> 0x%04X", (double)x, u, h);
        cr_assert_eq(signbit(sm_f16_to_f32(h)) != 0, signbit(x) != 0, "sign of %a", (double)x);
#if defined(__F16C__)
        cr_assert_eq(h, (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT), "F16C differs for 0x%08X", u);
#endif
    }
}

Test(fp16, arrays_equal_scalar)
{
    enum { N = 65536 + 13 };
    static uint16_t h[N], h2[N];
    static float f[N], g[N];
    for (size_t i = 0; i < N; i++) h[i] = (uint16_t)(i * 40503u);
    for (size_t start = 0; start < 3; start++) {
        size_t n = N - start;
        sm_f16_to_f32_array(h + start, f, n);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(sm_f32_bits(f[i]), sm_f32_bits(sm_f16_to_f32(h[start + i])), "f16->f32 at %zu", i);
    }
    for (size_t i = 0; i < N; i++) f[i] = sm_f32_from_bits(rng());
    sm_f32_to_f16_array(f + 1, h2, N - 1);
    for (size_t i = 0; i < N - 1; i++) cr_assert_eq(h2[i], sm_f32_to_f16(f[i + 1]), "f32->f16 at %zu", i);
    sm_f32_to_bf16_array(f, h2, N);
    for (size_t i = 0; i < N; i++) cr_assert_eq(h2[i], sm_f32_to_bf16(f[i]), "f32->bf16 at %zu", i);
    sm_bf16_to_f32_array(h2, g, N);
    for (size_t i = 0; i < N; i++) cr_assert_eq(sm_f32_bits(g[i]), sm_f32_bits(sm_bf16_to_f32(h2[i])));
}

Test(bf16, known_values)
{
    cr_expect_eq(sm_f32_to_bf16(1.0f), 0x3F80);
    cr_expect_eq(sm_f32_to_bf16(-2.0f), 0xC000);
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x3F808000u)), 0x3F80); /* tie, even down */
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x3F818000u)), 0x3F82); /* tie, even up */
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x3F808001u)), 0x3F81);
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x7F7FFFFFu)), 0x7F80); /* FLT_MAX rounds to inf */
    cr_expect_eq(sm_f32_to_bf16(INFINITY), 0x7F80);
    cr_expect_eq(sm_f32_to_bf16(-0.0f), 0x8000);
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x00000001u)), 0x0000); /* tiny subnormal: to zero */
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x00018000u)), 0x0002); /* subnormal tie, even up */
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0x7F800001u)), 0x7FC0); /* NaN stays NaN, quiet */
    cr_expect_eq(sm_f32_to_bf16(sm_f32_from_bits(0xFFFFFFFFu)), 0xFFFF);
    cr_expect_eq(sm_f32_bits(sm_bf16_to_f32(0x3F80)), 0x3F800000u);
}

Test(bf16, exhaustive_widen_and_round_trip)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sm_bf16_to_f32((uint16_t)h);
        cr_assert_eq(sm_f32_bits(f), h << 16);
        bool nan = (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu);
        if (!nan) cr_assert_eq(sm_f32_to_bf16(f), h, "round trip 0x%04X", h);
        else cr_assert_eq(sm_f32_to_bf16(f), h | 0x40u, "NaN 0x%04X made quiet", h);
    }
}

/* Reference: round the f32 bit pattern's low 16 bits half to even, from the value's definition. */
Test(bf16, random_against_reference)
{
    for (int i = 0; i < 2000000; i++) {
        float x = sm_f32_from_bits(rng());
        if (isnan(x) || isinf(x)) continue;
        uint16_t b = sm_f32_to_bf16(x);
        double lo = (double)sm_bf16_to_f32((uint16_t)(sm_f32_bits(x) >> 16)); /* truncation, toward zero */
        uint16_t up = (uint16_t)((sm_f32_bits(x) >> 16) + 1);
        double hi = (double)sm_bf16_to_f32(up);
        if ((up & 0x7F80u) == 0x7F80u) hi = copysign(ldexp(1.0, 128), x); /* rounding past FLT_MAX */
        double dx = (double)x, want;
        double dl = fabs(dx - lo), dh = fabs(hi - dx);
        if (dl < dh) want = lo;
        else if (dh < dl) want = (up & 0x7F80u) == 0x7F80u ? copysign(INFINITY, x) : hi;
        else want = ((sm_f32_bits(x) >> 16) & 1) ? ((up & 0x7F80u) == 0x7F80u ? copysign(INFINITY, x) : hi) : lo;
        cr_assert_eq((double)sm_bf16_to_f32(b), want, "x=%a", dx);
    }
}
