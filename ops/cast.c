/* cast.c — storage type conversion, elementwise: x [N] of one dtype -> y [N] of dtype `dtype` (iattr 0).
 * Supported: f32, f16 and bf16 to one another, i32 -> f32, and any dtype to itself (a bitwise copy).
 * The forward kernel uses fp16.h's conversions (round to nearest even; ±inf on f16 overflow; NaN
 * stays NaN, quiet, sign and top payload bits kept). f16 <-> bf16 goes through f32, which is exact,
 * so it rounds once; i32 -> f32 rounds to nearest even.
 * The reference converts from the definition instead (frexp/nearbyint in double), so the tests
 * check fp16.h's bit tricks (and F16C, where it is used) against an independent implementation. */
#include <math.h>
#include <string.h>

#include "../base/error.h"
#include "../base/fp16.h"
#include "rows.h"

static bool cast_supported(sm_dtype from, sm_dtype to)
{
    if (from == to) return true;
    if (from == SM_I32) return to == SM_F32;
    return to != SM_I32;
}

static sm_status shape_cast(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    int64_t to = n->attrs.i[SM_IATTR_CAST_DTYPE];
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
    if (isnan(f)) return sign | 0x7E00 | (uint16_t)((sm_f32_bits(f) >> 13) & 0x3FF);   /* quiet, top payload */
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

static float ref_bf16_to_f32(uint16_t h)
{
    int e = (h >> 7) & 0xFF, m = h & 0x7F;
    double sign = h & 0x8000 ? -1.0 : 1.0;
    if (e == 255) return m ? sm_f32_from_bits((uint32_t)h << 16) : (float)(sign * INFINITY);   /* NaN as is */
    if (e == 0) return (float)(sign * ldexp(m, -133));
    return (float)(sign * ldexp(1.0 + m / 128.0, e - 127));
}

static uint16_t ref_f32_to_bf16(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (isnan(f)) return (uint16_t)(sm_f32_bits(f) >> 16) | 0x40;   /* quiet, payload kept */
    double q = round_to_format(fabs((double)f), 8, -126);
    float r = (float)q;   /* exact, or inf when q = 2^128 */
    return sign | (uint16_t)(sm_f32_bits(r) >> 16);
}

/* ---- kernels ---- */

/* One element of x as f32, from the definition (exact for f16, bf16; i32 rounds to nearest). */
static float ref_load(const void *x, sm_dtype t, int64_t i)
{
    switch (t) {
    case SM_F32: return ((const float *)x)[i];
    case SM_F16: return ref_f16_to_f32(((const uint16_t *)x)[i]);
    case SM_BF16: return ref_bf16_to_f32(((const uint16_t *)x)[i]);
    default: return (float)(double)((const int32_t *)x)[i];
    }
}

#define SPAN 1024

/* y[i0 .. i0+n) = x[i0 .. i0+n) converted, through an f32 buffer; n <= SPAN */
static void cast_span(const sm_kernel_args *k, int64_t i0, int64_t n)
{
    sm_dtype from = k->in[0]->dtype, to = k->out->dtype;
    size_t es = sm_dtype_size(to);
    if (from == to) {
        memcpy((char *)k->y + (size_t)i0 * es, (const char *)k->x[0] + (size_t)i0 * es, (size_t)n * es);
        return;
    }
    float buf[SPAN];
    const void *x = k->x[0];
    float *f = to == SM_F32 ? (float *)k->y + i0 : buf;
    if (from == SM_F16) sm_f16_to_f32_array((const uint16_t *)x + i0, f, (size_t)n);
    else if (from == SM_BF16) sm_bf16_to_f32_array((const uint16_t *)x + i0, f, (size_t)n);
    else if (from == SM_I32)
        for (int64_t i = 0; i < n; i++) f[i] = (float)((const int32_t *)x)[i0 + i];
    else memcpy(f, (const float *)x + i0, (size_t)n * sizeof *f);
    if (to == SM_F16) sm_f32_to_f16_array(f, (uint16_t *)k->y + i0, (size_t)n);
    else if (to == SM_BF16) sm_f32_to_bf16_array(f, (uint16_t *)k->y + i0, (size_t)n);
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
        float v = ref_load(k->x[0], from, i);
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
