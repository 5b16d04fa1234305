/* fp16.h — IEEE binary16 (f16) and bfloat16 (bf16) <-> binary32 (f32) conversions.
 *
 * Narrowing rounds to nearest, ties to even; overflow gives ±inf; f16 subnormals are produced and read
 * exactly; NaN stays NaN with its sign, is made quiet, and keeps the top payload bits. These are the
 * exact results of x86 F16C (vcvtps2ph with round-to-nearest, vcvtph2ps), so the array helpers may use
 * those instructions and stay bitwise identical to the scalar functions. Widening is exact.
 * Scalar functions are inline because kernels convert on every load/store of half storage. */
#ifndef SM_FP16_H
#define SM_FP16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t sm_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float sm_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f16 layout: sign 1 | exponent 5 (bias 15) | mantissa 10. */
static inline float sm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) /* inf, or NaN made quiet */
        return sm_f32_from_bits(sign | 0x7F800000u | (man ? 0x00400000u | (man << 13) : 0));
    if (exp != 0) return sm_f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0) return sm_f32_from_bits(sign);
    /* subnormal: man * 2^-24, exact in f32 */
    int shift = 0;
    while (!(man & 0x400u)) {
        man <<= 1;
        shift++;
    }
    return sm_f32_from_bits(sign | ((uint32_t)(113 - shift) << 23) | ((man & 0x3FFu) << 13));
}

static inline uint16_t sm_f32_to_f16(float f)
{
    uint32_t u = sm_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) /* inf, or NaN: quiet, top 10 payload bits */
        return (uint16_t)(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u | ((abs >> 13) & 0x3FFu) : 0));
    if (abs >= 0x477FF000u) /* >= 65520 = max f16 + half an ulp: rounds to inf */
        return (uint16_t)(sign | 0x7C00u);
    if (abs >= 0x38800000u) { /* >= 2^-14: normal f16 */
        uint32_t r = abs + 0x0FFFu + ((abs >> 13) & 1u); /* round to nearest even on bit 13 */
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    if (abs < 0x33000000u) /* < 2^-25: rounds to zero (2^-25 itself is a tie with zero, even) */
        return sign;
    /* subnormal f16: value = m * 2^-24 with m in [0.5, 1024); shift the 24-bit significand */
    uint32_t e = abs >> 23;              /* 102..112 */
    uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;           /* 14..24 */
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

/* bf16 is the top half of an f32: same exponent range, 7 mantissa bits. */
static inline float sm_bf16_to_f32(uint16_t h) { return sm_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t sm_f32_to_bf16(float f)
{
    uint32_t u = sm_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: quiet */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* Array conversions, n elements; src and dst must not overlap. Bitwise equal to the scalar ones. */
void sm_f16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void sm_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);
void sm_bf16_to_f32_array(const uint16_t *src, float *dst, size_t n);
void sm_f32_to_bf16_array(const float *src, uint16_t *dst, size_t n);

#endif
