/* test_gemm.c — sm_gemm_f32 against the plain triple loop (sm_gemm_f32_ref), and bitwise against
 * itself across thread counts.
 *
 * Tolerance. Both implementations sum the same K products in float, in different orders and blockings
 * (ours: K blocks, each an FMA chain from zero, then added to C; the reference: one running sum). The
 * standard bound for a float dot product of length K plus one more term (beta*C) is
 *   |computed - exact| <= gamma_{K+1} * (|beta*c| + sum_k |a_ik * b_kj|),  gamma_n = n*u/(1 - n*u),
 * with u = 2^-24, whether or not multiplies are fused. Two results within that of the exact value are
 * within twice it of each other, so we allow 2*(K+2)*u*(|beta*c| + sum|a*b|) (the +2 covers the
 * 1/(1-n*u) factor for our K), computed in double. A wrong index, a missed or doubled block, or a lost
 * edge tile breaks this by orders of magnitude; rounding differences never reach it. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"

/* A matrix in a buffer with row stride ld >= cols; the gap past cols holds a sentinel so we see
 * stray reads (they would poison results with NaN) and stray writes (the sentinel changes). */
typedef struct {
    float *p;
    int64_t rows, cols, ld;
} mat;

static uint64_t rng_state = 88172645463325252ull;
static float rnd(void) {   /* uniform in [-1, 1), fixed sequence */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static mat mat_new(int64_t rows, int64_t cols, int64_t pad) {
    mat m = {NULL, rows, cols, cols + pad};
    size_t n = (size_t)(rows * m.ld) + 1;
    m.p = malloc(n * sizeof(float));
    cr_assert_not_null(m.p);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < m.ld; j++) m.p[i * m.ld + j] = j < cols ? rnd() : NAN;
    return m;
}

static mat mat_copy(mat a) {
    mat m = a;
    size_t n = (size_t)(a.rows * a.ld) + 1;
    m.p = malloc(n * sizeof(float));
    cr_assert_not_null(m.p);
    memcpy(m.p, a.p, n * sizeof(float));
    return m;
}

static void *workspace(int threads) {
    size_t bytes = (size_t)threads * sm_gemm_workspace();
    void *w = aligned_alloc(64, bytes);
    cr_assert_not_null(w);
    return w;
}

/* Runs sm_gemm_f32 as a team call of `threads` threads (0: outside any parallel region). */
static void run_gemm(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K, mat A, mat B, float beta,
                     mat C) {
    void *w = workspace(threads > 0 ? threads : 1);
    if (threads == 0) {
        sm_gemm_f32(ta, tb, M, N, K, A.p, A.ld, B.p, B.ld, beta, C.p, C.ld, w);
    } else {
#pragma omp parallel num_threads(threads)
        sm_gemm_f32(ta, tb, M, N, K, A.p, A.ld, B.p, B.ld, beta, C.p, C.ld, w);
    }
    free(w);
}

/* op(A)(i,k) and op(B)(k,j) as the header defines them. */
static float opa(mat A, int ta, int64_t i, int64_t k) { return ta ? A.p[k * A.ld + i] : A.p[i * A.ld + k]; }
static float opb(mat B, int tb, int64_t k, int64_t j) { return tb ? B.p[j * B.ld + k] : B.p[k * B.ld + j]; }

/* Checks rows `rows` (all rows if NULL) of got against the reference, and that the padding of got is
 * still the sentinel. c0 is C before the call. */
static void check(const char *what, int ta, int tb, int64_t M, int64_t N, int64_t K, mat A, mat B, float beta,
                  mat c0, mat got, const int64_t *rows, int nrows) {
    mat ref = mat_copy(c0);
    int n = rows ? nrows : (int)M;
    for (int r = 0; r < n; r++) {
        int64_t i = rows ? rows[r] : r;
        /* One row of the reference: op(A) row i is A + i*lda (ta = 0) or A + i (ta = 1). */
        const float *ai = ta ? A.p + i : A.p + i * A.ld;
        sm_gemm_f32_ref(ta, tb, 1, N, K, ai, A.ld, B.p, B.ld, beta, ref.p + i * ref.ld, ref.ld);
        for (int64_t j = 0; j < N; j++) {
            double mag = beta != 0.0f ? fabs((double)c0.p[i * c0.ld + j]) : 0.0;
            for (int64_t k = 0; k < K; k++) mag += fabs((double)opa(A, ta, i, k) * (double)opb(B, tb, k, j));
            const double tol = 2.0 * (double)(K + 2) * 0x1p-24 * mag;
            const float g = got.p[i * got.ld + j], e = ref.p[i * ref.ld + j];
            cr_assert(fabs((double)g - (double)e) <= tol,
                      "%s: ta=%d tb=%d M=%lld N=%lld K=%lld beta=%g: C[%lld,%lld] = %.9g, reference %.9g "
                      "(tolerance %.3g)",
                      what, ta, tb, (long long)M, (long long)N, (long long)K, beta, (long long)i, (long long)j,
                      g, e, tol);
        }
        for (int64_t j = N; j < got.ld; j++)
            cr_assert(isnan(got.p[i * got.ld + j]), "%s: padding C[%lld,%lld] was written", what, (long long)i,
                      (long long)j);
    }
    free(ref.p);
}

/* One full case: random A, B, C with the given row paddings; beta = 0 starts C as NaN so any element
 * we fail to overwrite shows up. */
static void one_case(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K, float beta, int64_t pad) {
    mat A = ta ? mat_new(K, M, pad) : mat_new(M, K, pad);
    mat B = tb ? mat_new(N, K, pad + 1) : mat_new(K, N, pad + 1);
    mat C = mat_new(M, N, pad + 2);
    if (beta == 0.0f)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) C.p[i * C.ld + j] = NAN;
    mat c0 = mat_copy(C);
    run_gemm(threads, ta, tb, M, N, K, A, B, beta, C);
    check("odd sizes", ta, tb, M, N, K, A, B, beta, c0, C, NULL, 0);
    free(A.p);
    free(B.p);
    free(C.p);
    free(c0.p);
}

static const int64_t odd[] = {1, 3, 17, 63, 65, 129};
#define NODD (int)(sizeof odd / sizeof odd[0])

/* Every size from `odd` in each of M, N, K, for one (trans_a, trans_b). */
static void all_odd_sizes(int ta, int tb) {
    for (int beta = 0; beta <= 1; beta++)
        for (int a = 0; a < NODD; a++)
            for (int b = 0; b < NODD; b++)
                for (int c = 0; c < NODD; c++)
                    one_case(2, ta, tb, odd[a], odd[b], odd[c], (float)beta, (a + b + c) % 3 == 0 ? 0 : 5);
}

Test(gemm, odd_sizes_nn) { all_odd_sizes(0, 0); }
Test(gemm, odd_sizes_nt) { all_odd_sizes(0, 1); }
Test(gemm, odd_sizes_tn) { all_odd_sizes(1, 0); }
Test(gemm, odd_sizes_tt) { all_odd_sizes(1, 1); }

/* Shapes that cross every blocking boundary: several K blocks (K > 384), several B blocks per thread
 * (N > 512), two A panels (M > 1152 rows for one thread; they split at row 588). Checking rows
 * around each boundary, and every column, keeps the reference cheap. */
Test(gemm, block_boundaries) {
    const int64_t M = 1163, N = 1061, K = 801;
    const int64_t rows[] = {0, 1, 11, 12, 575, 576, 587, 588, 589, 1151, 1152, 1153, 1162};
    for (int t = 0; t < 4; t++) {
        const int ta = t >> 1, tb = t & 1;
        for (int beta = 0; beta <= 1; beta++) {
            mat A = ta ? mat_new(K, M, 3) : mat_new(M, K, 3);
            mat B = tb ? mat_new(N, K, 7) : mat_new(K, N, 7);
            mat C = mat_new(M, N, 1);
            mat c0 = mat_copy(C);
            run_gemm(1, ta, tb, M, N, K, A, B, (float)beta, C);
            check("block boundaries", ta, tb, M, N, K, A, B, (float)beta, c0, C, rows,
                  (int)(sizeof rows / sizeof rows[0]));
            free(A.p);
            free(B.p);
            free(C.p);
            free(c0.p);
        }
    }
}

/* The GPT linear layer shape (B*T x C)·(C x 4C) at C = 384, as the model runs it. */
Test(gemm, gpt_shape) {
    const int64_t M = 256, K = 384, N = 1536;
    const int64_t rows[] = {0, 100, 255};
    mat A = mat_new(M, K, 0), B = mat_new(K, N, 0), C = mat_new(M, N, 0);
    mat c0 = mat_copy(C);
    run_gemm(2, 0, 0, M, N, K, A, B, 0.0f, C);
    check("gpt shape", 0, 0, M, N, K, A, B, 0.0f, c0, C, rows, 3);
    free(A.p);
    free(B.p);
    free(C.p);
    free(c0.p);
}

/* Bitwise: 1, 2 and 3 threads and a call outside any parallel region give identical bits. Includes
 * N with fewer slivers than threads (the team then splits rows) and several K blocks. */
Test(gemm, bitwise_across_thread_counts) {
    const int64_t shapes[][3] = {{257, 515, 770}, {64, 17, 1000}, {5, 3072, 384}, {1200, 40, 129}, {129, 129, 129}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int ta = t >> 1, tb = t & 1;
            const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            mat A = ta ? mat_new(K, M, 1) : mat_new(M, K, 1);
            mat B = tb ? mat_new(N, K, 2) : mat_new(K, N, 2);
            mat C0 = mat_new(M, N, 3);
            mat C1 = mat_copy(C0);
            run_gemm(1, ta, tb, M, N, K, A, B, 1.0f, C1);
            const int threads[] = {0, 2, 3};
            for (int q = 0; q < 3; q++) {
                mat Cq = mat_copy(C0);
                run_gemm(threads[q], ta, tb, M, N, K, A, B, 1.0f, Cq);
                cr_assert(memcmp(C1.p, Cq.p, (size_t)(M * C0.ld) * sizeof(float)) == 0,
                          "M=%lld N=%lld K=%lld ta=%d tb=%d: %d threads differ bitwise from 1", (long long)M,
                          (long long)N, (long long)K, ta, tb, threads[q]);
                free(Cq.p);
            }
            free(A.p);
            free(B.p);
            free(C0.p);
            free(C1.p);
        }
}

/* Degenerate sizes: K = 0 leaves beta*C (zeros for beta = 0, even over NaN); M or N = 0 touch
 * nothing. A general beta scales C first. */
Test(gemm, degenerate_and_beta) {
    mat A = mat_new(8, 8, 0), B = mat_new(8, 8, 0), C = mat_new(8, 8, 0);
    for (int i = 0; i < 64; i++) C.p[i] = NAN;
    run_gemm(2, 0, 0, 8, 8, 0, A, B, 0.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(C.p[i] == 0.0f, "K=0, beta=0 must zero C");
    for (int i = 0; i < 64; i++) C.p[i] = 3.0f;
    run_gemm(2, 0, 0, 8, 8, 0, A, B, 1.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(C.p[i] == 3.0f, "K=0, beta=1 must keep C");
    run_gemm(2, 0, 0, 0, 8, 8, A, B, 0.0f, C);
    run_gemm(2, 0, 0, 8, 0, 8, A, B, 0.0f, C);
    for (int i = 0; i < 64; i++) cr_assert(C.p[i] == 3.0f, "M=0 or N=0 must not touch C");
    mat c0 = mat_copy(C);
    run_gemm(2, 0, 1, 8, 8, 8, A, B, 0.5f, C);
    check("beta 0.5", 0, 1, 8, 8, 8, A, B, 0.5f, c0, C, NULL, 0);
    free(A.p);
    free(B.p);
    free(C.p);
    free(c0.p);
}

/* The reference itself, on a case small enough to do by hand: [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50],
 * and with A transposed (A = [1 3; 2 4] read as its transpose) the same. */
Test(gemm, reference_by_hand) {
    const float a[4] = {1, 2, 3, 4}, at[4] = {1, 3, 2, 4}, b[4] = {5, 6, 7, 8}, bt[4] = {5, 7, 6, 8};
    const float want[4] = {19, 22, 43, 50};
    float c[4];
    sm_gemm_f32_ref(0, 0, 2, 2, 2, a, 2, b, 2, 0.0f, c, 2);
    cr_assert(memcmp(c, want, sizeof c) == 0);
    sm_gemm_f32_ref(1, 1, 2, 2, 2, at, 2, bt, 2, 0.0f, c, 2);
    cr_assert(memcmp(c, want, sizeof c) == 0);
    sm_gemm_f32_ref(0, 1, 2, 2, 2, a, 2, bt, 2, 1.0f, c, 2);
    for (int i = 0; i < 4; i++) cr_assert(c[i] == 2 * want[i]);
}
