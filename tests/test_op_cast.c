/* test_op_cast.c — cast between f32, f16, bf16 (and i32 -> f32, and same-type copies): the kernel's
 * branch-free conversions against the reference's frexp/nearbyint ones, bitwise, on random bit
 * patterns (subnormals, huge values, both signs; inf and NaN from f32); and, independently: every one
 * of the 65536 f16 values survives f16 -> f32 -> f16, known boundary values (65504, 65520 -> inf,
 * ties to even, the smallest subnormal), and the compiler's own _Float16 conversion where it has one. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(sm_dtype from, sm_dtype to, int nd, const int64_t *shape, const void *data, uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(SM_OP_CAST);
    at.i[0] = to;
    s = (op_check_spec){.op = SM_OP_CAST, .n_in = 1, .attrs = &at, .seed = seed, .exact = true};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].dtype = from;
    s.in[0].scale = 1000.0f;
    s.in[0].id_lo = -(1 << 30);
    s.in[0].id_hi = 1 << 30;
    s.in[0].data = data;
    return op_check_run(&s);
}

Test(op_cast, all_pairs_against_reference)
{
    const sm_dtype fl[3] = {SM_F32, SM_F16, SM_BF16};
    const int64_t shapes[][2] = {{1, 1}, {1, 7}, {3, 1025}, {65, 129}};
    uint64_t seed = 1;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int s = 0; s < 4; s++) op_check_free(run(fl[a], fl[b], 2, shapes[s], NULL, seed++));
    op_check_free(run(SM_I32, SM_F32, 2, shapes[3], NULL, seed++));
    op_check_free(run(SM_I32, SM_I32, 2, shapes[3], NULL, seed++));
}

/* f32 bit patterns of every kind: random bits (NaNs, infs, subnormals included) and values near the
 * f16 and bf16 rounding boundaries. */
Test(op_cast, f32_bit_patterns)
{
    enum { N = 1 << 16 };
    uint32_t *u = malloc(N * sizeof *u);
    uint64_t z = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        uint32_t r = (uint32_t)(z >> 32), sign_mant = r & 0x807fffffu;
        switch (i % 4) {
        case 0: u[i] = r; break;                                                    /* anything */
        case 1: u[i] = sign_mant | (100u + r % 14) << 23; break;                    /* f16 subnormals */
        case 2: u[i] = (sign_mant & ~0x1fffu) | 0x1000u | (140u + r % 4) << 23; break;  /* f16 ties, near 65504 */
        default: u[i] = (sign_mant & ~0xffffu) | 0x8000u | (r % 254 + 1) << 23;     /* bf16 ties */
        }
    }
    u[0] = 0x7fc00001u;   /* a NaN with payload */
    u[3] = 0xff800000u;   /* -inf */
    for (int to = 0; to < 2; to++) {
        op_check_result *r = run(SM_F32, to ? SM_BF16 : SM_F16, 1, (int64_t[]){N}, u, 1);
        op_check_free(r);
    }
    free(u);
}

Test(op_cast, f16_round_trip_is_exact)
{
    enum { N = 1 << 16 };
    uint16_t *h = malloc(N * sizeof *h);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    op_check_result *a = run(SM_F16, SM_F32, 1, (int64_t[]){N}, h, 1);
    float *f = malloc(N * sizeof *f);
    memcpy(f, a->y, N * sizeof *f);
    op_check_result *b = run(SM_F32, SM_F16, 1, (int64_t[]){N}, f, 2);
    const uint16_t *back = b->y;
    for (int i = 0; i < N; i++) {
        bool nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
        if (nan) cr_assert(isnan(f[i]) && (back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff), "f16 0x%04x", i);
        else cr_assert_eq(back[i], i, "f16 0x%04x -> %g -> 0x%04x", i, (double)f[i], back[i]);
    }
    op_check_free(b);
    op_check_free(a);
    free(f);
    free(h);
}

Test(op_cast, known_values)
{
    const float in[] = {65504.0f, 65519.99f, 65520.0f, 1e10f, ldexpf(1, -24), ldexpf(1, -25), ldexpf(3, -25),
                        1.0f + ldexpf(1, -11), 1.0f + ldexpf(3, -11), -0.0f, ldexpf(1, -14), 1.0f + ldexpf(1, -8),
                        1.0f + ldexpf(3, -8), 3.4028235e38f};
    const uint16_t f16[] = {0x7bff, 0x7bff, 0x7c00, 0x7c00, 0x0001, 0x0000, 0x0002, 0x3c00, 0x3c02, 0x8000,
                            0x0400, 0x3c04, 0x3c0c, 0x7c00};
    const uint16_t bf16[] = {0x4780, 0x4780, 0x4780, 0x5015, 0x3380, 0x3300, 0x33c0, 0x3f80, 0x3f80, 0x8000,
                             0x3880, 0x3f80, 0x3f82, 0x7f80};
    enum { N = sizeof in / sizeof *in };
    op_check_result *r = run(SM_F32, SM_F16, 1, (int64_t[]){N}, in, 1);
    for (int i = 0; i < N; i++)
        cr_assert_eq(((const uint16_t *)r->y)[i], f16[i], "f16(%a) = 0x%04x", (double)in[i], ((const uint16_t *)r->y)[i]);
    op_check_free(r);
    r = run(SM_F32, SM_BF16, 1, (int64_t[]){N}, in, 2);
    for (int i = 0; i < N; i++)
        cr_assert_eq(((const uint16_t *)r->y)[i], bf16[i], "bf16(%a) = 0x%04x", (double)in[i], ((const uint16_t *)r->y)[i]);
    op_check_free(r);
    /* i32 -> f32 rounds to nearest even: 2^24 + 1 -> 2^24, 2^24 + 3 -> 2^24 + 4 */
    const int32_t ints[] = {16777217, 16777219, -7, 0x7fffffff};
    r = run(SM_I32, SM_F32, 1, (int64_t[]){4}, ints, 3);
    const float *y = r->y;
    cr_assert(y[0] == 16777216.0f && y[1] == 16777220.0f && y[2] == -7.0f && y[3] == 2147483648.0f);
    op_check_free(r);
}

#ifdef __FLT16_MAX__
static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The compiler's _Float16 conversion (hardware or libgcc, round to nearest even) as a third opinion. */
Test(op_cast, matches_float16)
{
    enum { N = 1 << 15 };
    float *x = malloc(N * sizeof *x);
    uint64_t z = 12345;
    for (int i = 0; i < N; i++) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        uint32_t r = (uint32_t)(z >> 32);
        /* exponents around the f16 range, so normals, subnormals, overflow and underflow all occur */
        x[i] = f32_of((r & 0x807fffffu) | (uint32_t)(96 + (r >> 8) % 50) << 23);
    }
    op_check_result *r = run(SM_F32, SM_F16, 1, (int64_t[]){N}, x, 1);
    for (int i = 0; i < N; i++) {
        _Float16 h = (_Float16)x[i];
        uint16_t hb;
        memcpy(&hb, &h, 2);
        cr_assert_eq(((const uint16_t *)r->y)[i], hb, "%a: 0x%04x, _Float16 0x%04x", (double)x[i],
                     ((const uint16_t *)r->y)[i], hb);
    }
    op_check_free(r);
    free(x);
}
#endif
