/* cast.c — storage type conversion, elementwise: x [N] of one dtype -> y [N] of dtype `dtype` (iattr 0).
 * Supported: f32, f16 and bf16 to one another, i32 -> f32, and any dtype to itself (a bitwise copy).
 * Rounding is to nearest, ties to even; values too large for f16 become ±inf; NaN stays NaN (the
 * quiet NaN 0x7e00 / 0x7fc0 with the sign kept; f16 -> f32 keeps the payload and sets the quiet bit,
 * as F16C hardware does; bf16 -> f32 is a plain widening). f16 <-> bf16 goes
 * through f32, which is exact, so it rounds once.
 *
 * The conversions are static functions here until ops/fp16.{c,h} (written on another branch) is
 * merged; then the forward's helpers can be replaced by its sm_f32_to_f16 & co. The forward's are
 * branch-free bit manipulation (after Maratyszcza's FP16 library) so they vectorise; the reference's
 * are written from the definition with frexp/nearbyint in double. */
#include <math.h>
#include <string.h>

#include "../graph/error.h"
#include "rows.h"
#include "vmath.h"

static bool cast_supported(sm_dtype from, sm_dtype to)
{
    if (from == to) return true;
    if (from == SM_I32) return to == SM_F32;
    return to != SM_I32;
}

static sm_status shape_cast(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t to = n->attrs.i[0];
    if (to < 0 || to >= SM_DTYPE_COUNT || !cast_supported(x->dtype, (sm_dtype)to)) {
        char sx[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': cast of '%s' %s %s to %s (dtype %lld) is not supported: f32, f16 "
                        "and bf16 convert to one another, i32 to f32", out->name, x->name,
                        sm_shape_str(x, sx, sizeof sx), sm_dtype_name(x->dtype),
                        to >= 0 && to < SM_DTYPE_COUNT ? sm_dtype_name((sm_dtype)to) : "?", (long long)to);
    }
    sm_shape_same_as_in0(g, n, out);
    out->dtype = (sm_dtype)to;
    return SM_OK;
}

/* ---- forward conversions: branch-free ---- */

static inline float f16_to_f32(uint16_t h)
{
    uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    /* normal (and inf/NaN): move the exponent and mantissa into place, then rebias by a multiply */
    float normal = sm_f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    /* subnormal: mantissa as the low bits of 0.5's significand, minus 0.5 */
    float sub = sm_f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    return sm_f32_from_bits(sign | (two_w < (1u << 27) ? sm_f32_bits(sub) : sm_f32_bits(normal)));
}

static inline uint16_t f32_to_f16(float f)
{
    uint32_t w = sm_f32_bits(f), shl1 = w + w, sign = w & 0x80000000u;
    /* overflow to inf and round to nearest even are done by two float multiplies and an add whose
     * exponent places the f16 mantissa's last bit at the float's */
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t bias = shl1 & 0xFF000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;
    base = sm_f32_from_bits((bias >> 1) + 0x07800000u) + base;
    uint32_t b = sm_f32_bits(base), nonsign = ((b >> 13) & 0x7C00u) + (b & 0x0FFFu);
    return (uint16_t)((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float bf16_to_f32(uint16_t h) { return sm_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u = sm_f32_bits(f);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(isnan(f) ? ((u >> 16) & 0x8000u) | 0x7FC0u : r);
}

/* ---- reference conversions: from the definition ---- */

/* |a| rounded to a float format with `digits` significant bits and smallest normal exponent emin
 * (value range [2^emin, ...)): nearest multiple of the ulp, ties to even (nearbyint's default). */
static double round_to_format(double a, int digits, int emin)
{
    if (a == 0) return 0;
    int e;
    frexp(a, &e);   /* a in [2^(e-1), 2^e) */
    int lead = e - 1 < emin ? emin : e - 1;
    double ulp = ldexp(1.0, lead - (digits - 1));
    return nearbyint(a / ulp) * ulp;
}

static uint16_t ref_f32_to_f16(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return sign | 0x7E00;
    double q = round_to_format(fabs((double)f), 11, -14);
    if (q > 65504.0) return sign | 0x7C00;
    if (q < 0x1.0p-14) return sign | (uint16_t)(q / 0x1.0p-24);
    int E = ilogb(q);
    return sign | (uint16_t)((E + 15) << 10) | (uint16_t)((q / ldexp(1.0, E) - 1.0) * 1024.0);
}

static float ref_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double sign = h & 0x8000 ? -1.0 : 1.0;
    if (e == 31) {
        if (!m) return (float)(sign * INFINITY);
        return sm_f32_from_bits((uint32_t)(h & 0x8000) << 16 | 0x7FC00000u | (uint32_t)m << 13);   /* quieted */
    }
    if (e == 0) return (float)(sign * m * 0x1.0p-24);
    return (float)(sign * ldexp(1.0 + m / 1024.0, e - 15));
}

static uint16_t ref_f32_to_bf16(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return sign | 0x7FC0;
    double q = round_to_format(fabs((double)f), 8, -126);
    float r = (float)q;   /* exact, or inf when q = 2^128 */
    return sign | (uint16_t)(sm_f32_bits(r) >> 16);
}

/* ---- kernels ---- */

/* Elements of x as f32 (exact for f16, bf16; i32 rounds to nearest) into buf. */
static void load_f32(const void *x, sm_dtype t, int64_t i0, int64_t n, float *buf, bool ref)
{
    for (int64_t i = 0; i < n; i++)
        switch (t) {
        case SM_F32: buf[i] = ((const float *)x)[i0 + i]; break;
        case SM_F16:
            buf[i] = ref ? ref_f16_to_f32(((const uint16_t *)x)[i0 + i]) : f16_to_f32(((const uint16_t *)x)[i0 + i]);
            break;
        case SM_BF16: buf[i] = bf16_to_f32(((const uint16_t *)x)[i0 + i]); break;
        default: buf[i] = ref ? (float)(double)((const int32_t *)x)[i0 + i] : (float)((const int32_t *)x)[i0 + i];
        }
}

#define SPAN 1024

/* y[i0 .. i0+n) = x[i0 .. i0+n) converted; n <= SPAN */
static void cast_span(const sm_kernel_args *k, int64_t i0, int64_t n)
{
    sm_dtype from = k->in[0]->dtype, to = k->out->dtype;
    if (from == to) {
        size_t es = sm_dtype_size(to);
        memcpy((char *)k->y + (size_t)i0 * es, (const char *)k->x[0] + (size_t)i0 * es, (size_t)n * es);
        return;
    }
    float buf[SPAN];
    const void *x = k->x[0];
    if (from == SM_F16) {   /* loops without a switch inside, so they vectorise */
        const uint16_t *h = (const uint16_t *)x + i0;
        for (int64_t i = 0; i < n; i++) buf[i] = f16_to_f32(h[i]);
    } else {
        load_f32(x, from, i0, n, buf, false);
    }
    if (to == SM_F32) {
        memcpy((float *)k->y + i0, buf, (size_t)n * sizeof *buf);
    } else if (to == SM_F16) {
        uint16_t *y = (uint16_t *)k->y + i0;
        for (int64_t i = 0; i < n; i++) y[i] = f32_to_f16(buf[i]);
    } else {
        uint16_t *y = (uint16_t *)k->y + i0;
        for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16(buf[i]);
    }
}

/* Spans of elements are split across threads; each element is converted once. */
static void cast_forward(const sm_kernel_args *k)
{
    int64_t n = sm_rec_numel(k->out), spans = (n + SPAN - 1) / SPAN;
#pragma omp for schedule(static)
    for (int64_t s = 0; s < spans; s++) cast_span(k, s * SPAN, n - s * SPAN < SPAN ? n - s * SPAN : SPAN);
}

static void cast_reference(const sm_kernel_args *k)
{
    sm_dtype from = k->in[0]->dtype, to = k->out->dtype;
    size_t es = sm_dtype_size(to);
    for (int64_t i = 0; i < sm_rec_numel(k->out); i++) {
        if (from == to) {
            memcpy((char *)k->y + (size_t)i * es, (const char *)k->x[0] + (size_t)i * es, es);
            continue;
        }
        float v;
        load_f32(k->x[0], from, i, 1, &v, true);
        if (to == SM_F32) ((float *)k->y)[i] = v;
        else if (to == SM_F16) ((uint16_t *)k->y)[i] = ref_f32_to_f16(v);
        else ((uint16_t *)k->y)[i] = ref_f32_to_bf16(v);
    }
}

const sm_op_def sm_op_cast = {
    .name = "cast", .min_in = 1, .max_in = 1, .iattr = {"dtype"}, .iattr_default = {SM_F32},
    .shape = shape_cast, .forward = cast_forward, .reference = cast_reference,
    .backward = sm_backward_cast,
};
