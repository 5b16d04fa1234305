/* test_gemm_bf16.c — sm_gemm_bf16: against the plain reference (sm_gemm_bf16_ref), against the f32 gemm,
 * bitwise across thread counts and input types, and the vdpbf16ps kernel bitwise against the portable
 * one (both run wherever the CPU has AVX-512 BF16; sm_gemm_bf16_force_portable picks the portable one).
 *
 * Tolerances (u = 2^-24, the f32 unit roundoff):
 *  - vs the reference. Both multiply the same bf16-rounded operands, whose products are exact in f32
 *    (8 x 8 significand bits) and in double. Ours sums K of them in f32 (pairs, K blocks, then the add
 *    to C): |ours - exact| <= gamma_{K+1}(|beta*c| + sum|a*b|), gamma_n = n*u/(1-n*u). The reference
 *    sums in double and rounds once (error <= u*|result| plus ~K*2^-53*sum, far smaller). So we allow
 *    2*(K+2)*u*(|beta*c| + sum|a*b|), as test_gemm.c does for the f32 gemm. The data are in [-1, 1]
 *    with no partial sum near 2^-126, so the flush-to-zero of vdpbf16ps never acts (tested apart).
 *  - vs sm_gemm_f32 on the unrounded f32 inputs. Rounding to bf16 (8 significant bits, nearest)
 *    moves each operand by at most 2^-8 relative, so each product by at most (1+2^-8)^2 - 1 =
 *    2^-7 + 2^-16 relative; with both sums' f32 errors the bound is
 *    (2^-7 + 2^-16 + 2*(K+2)*u) * sum|a*b| (+ the beta*c term). And the results must differ
 *    somewhere, or nothing was rounded. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fp16.h"
#include "ops/gemm.h"

/* A matrix of f32 or bf16 elements in a buffer with row stride ld >= cols; the gap past cols holds a
 * NaN sentinel, so a stray read poisons results and a stray write of C shows. */
typedef struct {
    void *p;
    sm_dtype t;
    int64_t rows, cols, ld;
} mat;

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rnd(void) { return (float)((rnd_u64() >> 40) * (1.0 / 8388608.0)) - 1.0f; }   /* [-1, 1) */

static float get(mat m, int64_t i, int64_t j) {
    return m.t == SM_BF16 ? sm_bf16_to_f32(((uint16_t *)m.p)[i * m.ld + j]) : ((float *)m.p)[i * m.ld + j];
}
static void set(mat m, int64_t i, int64_t j, float v) {
    if (m.t == SM_BF16)
        ((uint16_t *)m.p)[i * m.ld + j] = sm_f32_to_bf16(v);
    else
        ((float *)m.p)[i * m.ld + j] = v;
}

static mat mat_new(sm_dtype t, int64_t rows, int64_t cols, int64_t pad) {
    mat m = {NULL, t, rows, cols, cols + pad};
    m.p = malloc((size_t)(rows * m.ld + 1) * sm_dtype_size(t));
    cr_assert_not_null(m.p);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m.ld; j++) set(m, i, j, j < cols ? rnd() : NAN);
    return m;
}

static size_t mat_bytes(mat m) { return (size_t)(m.rows * m.ld + 1) * sm_dtype_size(m.t); }

static mat mat_copy(mat a) {
    mat m = a;
    m.p = malloc(mat_bytes(a));
    cr_assert_not_null(m.p);
    memcpy(m.p, a.p, mat_bytes(a));
    return m;
}

/* The same values, rounded to bf16, in a bf16 matrix. */
static mat mat_to_bf16(mat a) {
    mat m = {NULL, SM_BF16, a.rows, a.cols, a.ld};
    m.p = malloc(mat_bytes(m));
    cr_assert_not_null(m.p);
    for (int64_t i = 0; i < a.rows; i++)
        for (int64_t j = 0; j < a.ld; j++) set(m, i, j, get(a, i, j));
    return m;
}

/* Runs sm_gemm_bf16 as a team call of `threads` threads (0: outside any parallel region), with the
 * portable kernel if portable. */
static void run(int threads, int portable, int ta, int tb, int64_t M, int64_t N, int64_t K, mat A, mat B,
                float beta, mat C) {
    const int team = threads > 0 ? threads : 1;
    void *w = aligned_alloc(64, (size_t)team * sm_gemm_bf16_workspace());
    cr_assert_not_null(w);
    sm_gemm_bf16_force_portable(portable);
    if (threads == 0) {
        sm_gemm_bf16(ta, tb, M, N, K, A.p, A.t, A.ld, B.p, B.t, B.ld, beta, C.p, C.ld, w);
    } else {
#pragma omp parallel num_threads(threads)
        sm_gemm_bf16(ta, tb, M, N, K, A.p, A.t, A.ld, B.p, B.t, B.ld, beta, C.p, C.ld, w);
    }
    sm_gemm_bf16_force_portable(0);
    free(w);
}

static float opa(mat A, int ta, int64_t i, int64_t k) { return ta ? get(A, k, i) : get(A, i, k); }
static float opb(mat B, int tb, int64_t k, int64_t j) { return tb ? get(B, j, k) : get(B, k, j); }
static double bf(float x) { return (double)sm_bf16_to_f32(sm_f32_to_bf16(x)); }

/* got against the reference within the tolerance above (and the padding of got untouched). */
static void check_ref(const char *what, int ta, int tb, int64_t M, int64_t N, int64_t K, mat A, mat B, float beta,
                      mat c0, mat got) {
    mat ref = mat_copy(c0);
    sm_gemm_bf16_ref(ta, tb, M, N, K, A.p, A.t, A.ld, B.p, B.t, B.ld, beta, ref.p, ref.ld);
    float *g = got.p, *e = ref.p, *c = c0.p;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double mag = beta != 0.0f ? fabs((double)beta * c[i * c0.ld + j]) : 0.0;
            for (int64_t k = 0; k < K; k++) mag += fabs(bf(opa(A, ta, i, k)) * bf(opb(B, tb, k, j)));
            const double tol = 2.0 * (double)(K + 2) * 0x1p-24 * mag;
            cr_assert(fabs((double)g[i * got.ld + j] - (double)e[i * ref.ld + j]) <= tol,
                      "%s: ta=%d tb=%d M=%lld N=%lld K=%lld beta=%g %s/%s: C[%lld,%lld] = %.9g, reference %.9g "
                      "(tolerance %.3g)",
                      what, ta, tb, (long long)M, (long long)N, (long long)K, beta, sm_dtype_name(A.t),
                      sm_dtype_name(B.t), (long long)i, (long long)j, g[i * got.ld + j], e[i * ref.ld + j], tol);
        }
        for (int64_t j = N; j < got.ld; j++)
            cr_assert(isnan(g[i * got.ld + j]), "%s: padding C[%lld,%lld] was written", what, (long long)i,
                      (long long)j);
    }
    free(ref.p);
}

static mat new_c(int64_t M, int64_t N, int64_t pad, float beta) {
    mat C = mat_new(SM_F32, M, N, pad);
    if (beta == 0.0f)   /* C may hold garbage for beta = 0: any element not overwritten stays NaN */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) set(C, i, j, NAN);
    return C;
}

static const int64_t odd[] = {1, 2, 3, 17, 64, 65, 129};
#define NODD (int)(sizeof odd / sizeof odd[0])

/* Every size from `odd` in each of M, N, K, both betas, rotating the input types and paddings. */
static void all_odd_sizes(int ta, int tb, int portable) {
    int n = 0;
    for (int beta = 0; beta <= 1; beta++)
        for (int a = 0; a < NODD; a++)
            for (int b = 0; b < NODD; b++)
                for (int c = 0; c < NODD; c++, n++) {
                    const int64_t M = odd[a], N = odd[b], K = odd[c], pad = n % 3 == 0 ? 0 : 5;
                    const sm_dtype at = n % 2 ? SM_BF16 : SM_F32, bt = n % 4 < 2 ? SM_F32 : SM_BF16;
                    mat A = ta ? mat_new(at, K, M, pad) : mat_new(at, M, K, pad);
                    mat B = tb ? mat_new(bt, N, K, pad + 1) : mat_new(bt, K, N, pad + 1);
                    mat C = new_c(M, N, pad + 2, (float)beta), c0 = mat_copy(C);
                    run(2, portable, ta, tb, M, N, K, A, B, (float)beta, C);
                    check_ref(portable ? "odd sizes, portable" : "odd sizes", ta, tb, M, N, K, A, B, (float)beta,
                              c0, C);
                    free(A.p);
                    free(B.p);
                    free(C.p);
                    free(c0.p);
                }
}

Test(gemm_bf16, odd_sizes_nn) { all_odd_sizes(0, 0, 0); }
Test(gemm_bf16, odd_sizes_nt) { all_odd_sizes(0, 1, 0); }
Test(gemm_bf16, odd_sizes_tn) { all_odd_sizes(1, 0, 0); }
Test(gemm_bf16, odd_sizes_tt) { all_odd_sizes(1, 1, 0); }
Test(gemm_bf16, odd_sizes_portable_nn) { all_odd_sizes(0, 0, 1); }
Test(gemm_bf16, odd_sizes_portable_tt) { all_odd_sizes(1, 1, 1); }

/* Several K blocks (K > 768, odd), several B blocks per thread (N > 512), two A panels for one thread
 * (M > 1152), a general beta; every row checked would be slow, so rows around the boundaries. */
Test(gemm_bf16, block_boundaries) {
    const int64_t M = 1163, N = 1061, K = 1601;
    const int64_t rows[] = {0, 11, 12, 581, 582, 1151, 1152, 1162};
    for (int t = 0; t < 4; t++) {
        const int ta = t >> 1, tb = t & 1;
        const float beta = t == 3 ? 0.5f : (float)(t & 1);
        mat A = ta ? mat_new(SM_F32, K, M, 3) : mat_new(SM_F32, M, K, 3);
        mat B = tb ? mat_new(SM_BF16, N, K, 7) : mat_new(SM_BF16, K, N, 7);
        mat C = new_c(M, N, 1, beta), c0 = mat_copy(C);
        run(1, 0, ta, tb, M, N, K, A, B, beta, C);
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            /* one row i of op(A)·op(B): op(A) row i starts at A + i (ta) or A + i*lda */
            const int64_t i = rows[r];
            mat Ai = A, ci = c0, gi = C;
            Ai.p = (float *)A.p + (ta ? i : i * A.ld);
            Ai.rows = ta ? K : 1;
            ci.p = (float *)c0.p + i * c0.ld;
            gi.p = (float *)C.p + i * C.ld;
            ci.rows = gi.rows = 1;   /* check_ref copies ci: one row of it */
            check_ref("block boundaries", ta, tb, 1, N, K, Ai, B, beta, ci, gi);
        }
        free(A.p);
        free(B.p);
        free(C.p);
        free(c0.p);
    }
}

/* Against the f32 gemm on the same (unrounded) f32 inputs, within the bf16 rounding bound above. */
Test(gemm_bf16, vs_f32_gemm) {
    const int64_t M = 77, N = 301, K = 769;
    for (int t = 0; t < 4; t++) {
        const int ta = t >> 1, tb = t & 1;
        mat A = ta ? mat_new(SM_F32, K, M, 1) : mat_new(SM_F32, M, K, 1);
        mat B = tb ? mat_new(SM_F32, N, K, 2) : mat_new(SM_F32, K, N, 2);
        mat C = new_c(M, N, 0, 0.0f), C32 = new_c(M, N, 0, 0.0f);
        run(2, 0, ta, tb, M, N, K, A, B, 0.0f, C);
        void *w = aligned_alloc(64, 2 * sm_gemm_workspace());
        cr_assert_not_null(w);
#pragma omp parallel num_threads(2)
        sm_gemm_f32(ta, tb, M, N, K, A.p, A.ld, B.p, B.ld, 0.0f, C32.p, C32.ld, w);
        free(w);
        double maxdiff = 0.0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double mag = 0.0;
                for (int64_t k = 0; k < K; k++) mag += fabs((double)opa(A, ta, i, k) * (double)opb(B, tb, k, j));
                const double tol = (0x1p-7 + 0x1p-16 + 2.0 * (double)(K + 2) * 0x1p-24) * mag;
                const double d = fabs((double)get(C, i, j) - (double)get(C32, i, j));
                cr_assert(d <= tol, "ta=%d tb=%d C[%lld,%lld]: bf16 %.9g, f32 %.9g (bound %.3g)", ta, tb,
                          (long long)i, (long long)j, get(C, i, j), get(C32, i, j), tol);
                if (d > maxdiff) maxdiff = d;
            }
        cr_assert(maxdiff > 0.0, "ta=%d tb=%d: bf16 result equals the f32 one: operands were not rounded", ta, tb);
        free(A.p);
        free(B.p);
        free(C.p);
        free(C32.p);
    }
}

/* Makes about a third of X's f32 elements exact ties between two bf16 values (low 16 bits 0x8000,
 * even and odd upper halves) and some round up across a power of two (low bits 0xFFFF.. below it). */
static void add_ties(mat X) {
    for (int64_t i = 0; i < X.rows; i++)
        for (int64_t j = 0; j < X.cols; j++) {
            uint32_t u = sm_f32_bits(get(X, i, j));
            const uint64_t r = rnd_u64() % 6;
            if (r < 2) u = (u & 0xFFFF0000u) | 0x8000u;
            if (r == 2) u = (u & 0xFF800000u) - 1u;   /* the largest float below a power of two */
            ((float *)X.p)[i * X.ld + j] = sm_f32_from_bits(u);
        }
}

/* f32 operands are rounded while packing (vector and scalar paths): the same as passing them
 * pre-rounded with sm_f32_to_bf16, bitwise, ties and carries into the exponent included. */
Test(gemm_bf16, f32_inputs_equal_bf16_inputs) {
    const int64_t M = 45, N = 70, K = 99;
    for (int t = 0; t < 4; t++) {
        const int ta = t >> 1, tb = t & 1;
        mat A = ta ? mat_new(SM_F32, K, M, 2) : mat_new(SM_F32, M, K, 2);
        mat B = tb ? mat_new(SM_F32, N, K, 0) : mat_new(SM_F32, K, N, 0);
        add_ties(A);
        add_ties(B);
        mat A16 = mat_to_bf16(A), B16 = mat_to_bf16(B);
        mat C0 = new_c(M, N, 1, 1.0f), C1 = mat_copy(C0), C2 = mat_copy(C0), C3 = mat_copy(C0);
        run(2, 0, ta, tb, M, N, K, A, B, 1.0f, C0);
        run(2, 0, ta, tb, M, N, K, A16, B16, 1.0f, C1);
        run(2, 0, ta, tb, M, N, K, A, B16, 1.0f, C2);
        run(2, 0, ta, tb, M, N, K, A16, B, 1.0f, C3);
        cr_assert(memcmp(C0.p, C1.p, mat_bytes(C0)) == 0, "ta=%d tb=%d: f32/f32 differs from bf16/bf16", ta, tb);
        cr_assert(memcmp(C0.p, C2.p, mat_bytes(C0)) == 0, "ta=%d tb=%d: f32/f32 differs from f32/bf16", ta, tb);
        cr_assert(memcmp(C0.p, C3.p, mat_bytes(C0)) == 0, "ta=%d tb=%d: f32/f32 differs from bf16/f32", ta, tb);
        free(A.p);
        free(B.p);
        free(A16.p);
        free(B16.p);
        free(C0.p);
        free(C1.p);
        free(C2.p);
        free(C3.p);
    }
}

/* Bitwise: 1, 2 and 3 threads and a call outside any parallel region give identical bits, with either
 * kernel. Includes N with fewer slivers than threads (the team then splits rows), several K blocks,
 * odd K. */
Test(gemm_bf16, bitwise_across_thread_counts) {
    const int64_t shapes[][3] = {{257, 515, 1539}, {64, 17, 1001}, {5, 2304, 768}, {1200, 40, 129}};
    for (int portable = 0; portable <= 1; portable++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++) {
                const int ta = t >> 1, tb = t & 1;
                const int64_t M = shapes[s][0], N = shapes[s][1], K = portable ? shapes[s][2] / 4 : shapes[s][2];
                mat A = ta ? mat_new(SM_BF16, K, M, 1) : mat_new(SM_BF16, M, K, 1);
                mat B = tb ? mat_new(SM_F32, N, K, 2) : mat_new(SM_F32, K, N, 2);
                mat C0 = new_c(M, N, 3, 1.0f), C1 = mat_copy(C0);
                run(1, portable, ta, tb, M, N, K, A, B, 1.0f, C1);
                const int threads[] = {0, 2, 3};
                for (int q = 0; q < 3; q++) {
                    mat Cq = mat_copy(C0);
                    run(threads[q], portable, ta, tb, M, N, K, A, B, 1.0f, Cq);
                    cr_assert(memcmp(C1.p, Cq.p, mat_bytes(C0)) == 0,
                              "M=%lld N=%lld K=%lld ta=%d tb=%d portable=%d: %d threads differ bitwise from 1",
                              (long long)M, (long long)N, (long long)K, ta, tb, portable, threads[q]);
                    free(Cq.p);
                }
                free(A.p);
                free(B.p);
                free(C0.p);
                free(C1.p);
            }
}

/* bf16 bits with random sign and mantissa and an exponent field in [e0, e0 + er) (0 = subnormal). */
static uint16_t rnd_bf16(int e0, int er) {
    const int e = e0 + (int)(rnd_u64() % (uint64_t)er);
    return (uint16_t)((rnd_u64() & 1) << 15 | (uint16_t)(e > 0 ? e : 0) << 7 | (rnd_u64() & 0x7F));
}

/* Fills X for corner-case mode (0 leaves the [-1, 1) data); k_is_col: X's columns run along K.
 *   1: exponents around 2^-63 (field 64), so products and partial sums are near 2^-126;
 *   2: exponent fields 0..139: subnormal (read as zero) and tiny operands among large ones;
 *   3: magnitudes in [0.5, 4) with random signs, so partial sums cancel;
 *   4: odd k: +-2^-63, even k: exponents 2^-79..2^-75, so each pair starts at +-2^-126 and then adds
 *      a product of 2^-158..2^-150: often the window just below 2^-126 that rounds up with a bounded
 *      exponent but is flushed by the instruction. */
static void fill_corner(mat X, int mode, int k_is_col) {
    for (int64_t i = 0; mode && i < X.rows; i++)
        for (int64_t j = 0; j < X.cols; j++) {
            const int64_t k = k_is_col ? j : i;
            uint16_t v = mode == 1 ? rnd_bf16(60, 8) : mode == 2 ? rnd_bf16(0, 140) : rnd_bf16(126, 3);
            if (mode == 4) v = k % 2 ? (uint16_t)((rnd_u64() & 1) << 15 | 64 << 7) : rnd_bf16(48, 5);
            ((uint16_t *)X.p)[i * X.ld + j] = v;
        }
}

/* The vdpbf16ps kernel bitwise against the portable one, on ordinary data and on data built to hit
 * the instruction's corner cases: operands near 2^-63 (products and partial sums near the smallest
 * normal 2^-126, where results are flushed), subnormal operands (read as zero), and cancellation. */
Test(gemm_bf16, native_equals_portable_bitwise) {
    if (!sm_gemm_bf16_native()) cr_skip_test("no AVX-512 BF16 (vdpbf16ps) on this CPU: nothing to compare");
    const int64_t shapes[][3] = {{29, 70, 9}, {13, 33, 64}, {40, 96, 3}, {12, 32, 801}, {50, 64, 2}};
    for (int mode = 0; mode < 5; mode++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++) {
                const int ta = t >> 1, tb = t & 1;
                const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                mat A = ta ? mat_new(SM_BF16, K, M, 0) : mat_new(SM_BF16, M, K, 0);
                mat B = tb ? mat_new(SM_BF16, N, K, 0) : mat_new(SM_BF16, K, N, 0);
                fill_corner(A, mode, !ta);
                fill_corner(B, mode, tb);
                mat Cn = new_c(M, N, 0, 0.0f), Cp = new_c(M, N, 0, 0.0f);
                run(2, 0, ta, tb, M, N, K, A, B, 0.0f, Cn);
                run(2, 1, ta, tb, M, N, K, A, B, 0.0f, Cp);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        const uint32_t bn = sm_f32_bits(get(Cn, i, j)), bp = sm_f32_bits(get(Cp, i, j));
                        cr_assert(bn == bp,
                                  "mode %d M=%lld N=%lld K=%lld ta=%d tb=%d C[%lld,%lld]: native %08x, portable %08x",
                                  mode, (long long)M, (long long)N, (long long)K, ta, tb, (long long)i, (long long)j,
                                  bn, bp);
                    }
                free(A.p);
                free(B.p);
                free(Cn.p);
                free(Cp.p);
            }
}

/* The arithmetic of gemm.h on 1x1 products worked out by hand, with both kernels:
 *  - order: K = 4, products p1 = 1, p0 = 2^-24, p3 = 2^-24, p2 = -1. Pairs add odd then even:
 *    ((1 + 2^-24) -> 1 (tie, even) + 2^-24 -> 1) - 1 = 0; even-first would give 2^-24.
 *  - flush after rounding: p1 = 2^-126, p0 = -1.5*2^-151. The exact sum 2^-126 - 1.5*2^-151 rounds
 *    (24 bits, unbounded exponent) to 2^-126 - 2^-150, below 2^-126: flushed to +0 (a plain fmaf would
 *    round it up to 2^-126, bounded exponent).
 *  - subnormal inputs read as zero: p1 = 1, p0 = (2^-133 subnormal) * 2^127 = 2^-6 unless flushed:
 *    the result is exactly 1.
 * The reference is plain arithmetic (no flush): exactly 2^-23, 2^-126 - 1.5*2^-151 rounded to 2^-126,
 * and 1 + 2^-6. */
Test(gemm_bf16, arithmetic_by_hand) {
    const float one = 1.0f;
    const uint16_t b1 = sm_f32_to_bf16(one);
    const uint16_t order_a[4] = {sm_f32_to_bf16(0x1p-12f), b1, sm_f32_to_bf16(-1.0f), sm_f32_to_bf16(0x1p-12f)};
    const uint16_t order_b[4] = {sm_f32_to_bf16(0x1p-12f), b1, b1, sm_f32_to_bf16(0x1p-12f)};
    const uint16_t ftz_a[2] = {sm_f32_to_bf16(-0x1.8p-76f), sm_f32_to_bf16(0x1p-63f)};
    const uint16_t ftz_b[2] = {sm_f32_to_bf16(0x1p-75f), sm_f32_to_bf16(0x1p-63f)};
    const uint16_t daz_a[2] = {0x0001, b1}, daz_b[2] = {sm_f32_to_bf16(0x1p127f), b1};
    cr_assert(sm_bf16_to_f32(ftz_a[0]) == -0x1.8p-76f && sm_bf16_to_f32(daz_a[0]) == 0x1p-133f);
    const struct {
        const uint16_t *a, *b;
        int64_t K;
        float want;
    } cases[] = {{order_a, order_b, 4, 0.0f}, {ftz_a, ftz_b, 2, 0.0f}, {daz_a, daz_b, 2, 1.0f}};
    for (int portable = 0; portable <= 1; portable++)
        for (int c = 0; c < 3; c++) {
            float got = NAN;
            void *w = aligned_alloc(64, sm_gemm_bf16_workspace());
            cr_assert_not_null(w);
            sm_gemm_bf16_force_portable(portable);
            sm_gemm_bf16(0, 1, 1, 1, cases[c].K, cases[c].a, SM_BF16, cases[c].K, cases[c].b, SM_BF16, cases[c].K,
                         0.0f, &got, 1, w);
            sm_gemm_bf16_force_portable(0);
            free(w);
            cr_assert(sm_f32_bits(got) == sm_f32_bits(cases[c].want), "case %d portable=%d: got %a, want %a", c,
                      portable, got, cases[c].want);
        }
    float r[3];
    sm_gemm_bf16_ref(0, 1, 1, 1, 4, order_a, SM_BF16, 4, order_b, SM_BF16, 4, 0.0f, &r[0], 1);
    sm_gemm_bf16_ref(0, 1, 1, 1, 2, ftz_a, SM_BF16, 2, ftz_b, SM_BF16, 2, 0.0f, &r[1], 1);
    sm_gemm_bf16_ref(0, 1, 1, 1, 2, daz_a, SM_BF16, 2, daz_b, SM_BF16, 2, 0.0f, &r[2], 1);
    cr_assert(r[0] == 0x1p-23f && r[1] == 0x1p-126f && r[2] == 1.0f + 0x1p-6f, "reference: %a %a %a", r[0], r[1],
              r[2]);
}

/* A product cut along K at the sm_gemm_bf16_kblock boundaries, the parts accumulated with beta = 1,
 * is bitwise the uncut product (gemm.h promises it, as for the f32 gemm's fused LM head). */
Test(gemm_bf16, k_split_at_block_boundaries) {
    const int64_t M = 37, N = 75, K = 1601, d = sm_gemm_bf16_kblock(K);
    cr_assert(d % 2 == 0 && d <= 768 && d * 3 >= K && d * 2 < K, "kblock(%lld) = %lld", (long long)K, (long long)d);
    mat A = mat_new(SM_F32, M, K, 0), B = mat_new(SM_BF16, N, K, 0);
    mat C = new_c(M, N, 0, 0.0f), P = new_c(M, N, 0, 0.0f);
    run(2, 0, 0, 1, M, N, K, A, B, 0.0f, C);
    for (int64_t p0 = 0; p0 < K; p0 += d) {
        mat Ap = A, Bp = B;
        Ap.p = (float *)A.p + p0;
        Bp.p = (uint16_t *)B.p + p0;
        run(2, 0, 0, 1, M, N, p0 + d < K ? d : K - p0, Ap, Bp, p0 ? 1.0f : 0.0f, P);
    }
    cr_assert(memcmp(C.p, P.p, mat_bytes(C)) == 0, "cut at K blocks of %lld differs from the uncut product", (long long)d);
    free(A.p);
    free(B.p);
    free(C.p);
    free(P.p);
}

/* Degenerate sizes: K = 0 leaves beta*C (zeros for beta = 0, even over NaN); M or N = 0 touch nothing. */
Test(gemm_bf16, degenerate_and_beta) {
    mat A = mat_new(SM_F32, 8, 8, 0), B = mat_new(SM_BF16, 8, 8, 0), C = new_c(8, 8, 0, 0.0f);
    float *c = C.p;
    run(2, 0, 0, 0, 8, 8, 0, A, B, 0.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(c[i] == 0.0f, "K=0, beta=0 must zero C");
    for (int i = 0; i < 64; i++) c[i] = 3.0f;
    run(2, 0, 0, 0, 8, 8, 0, A, B, 1.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(c[i] == 3.0f, "K=0, beta=1 must keep C");
    run(2, 0, 0, 0, 0, 8, 8, A, B, 0.0f, C);
    run(2, 0, 0, 0, 8, 0, 8, A, B, 0.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(c[i] == 3.0f, "M=0 or N=0 must not touch C");
    mat c0 = mat_copy(C);
    run(2, 0, 0, 1, 8, 8, 8, A, B, 0.5f, C);
    check_ref("beta 0.5", 0, 1, 8, 8, 8, A, B, 0.5f, c0, C);
    free(A.p);
    free(B.p);
    free(C.p);
    free(c0.p);
}
