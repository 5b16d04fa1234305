/* test_attention_kernel.c — the tiled attention kernels against their plain references, the backward
 * reference against finite differences in double, and bitwise equality across thread counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/attention_kernel.h"

typedef struct shape {
    int B, T, C, H, span;
} shape;

/* Odd T (1, 7, 33, 129 and others around the 64-wide tiles), several H, head dims that are and are
 * not multiples of 16 (and one above 64), span 0 and windows shorter and longer than T. */
static const shape SHAPES[] = {
    {1, 1, 16, 1, 0},     {2, 7, 32, 2, 0},     {1, 7, 24, 3, 3},     {2, 33, 48, 3, 0},   {1, 33, 64, 2, 5},
    {1, 64, 64, 1, 0},    {2, 65, 40, 2, 17},   {1, 129, 128, 2, 0},  {2, 129, 96, 3, 40}, {1, 129, 64, 4, 200},
    {1, 129, 60, 3, 1},   {1, 150, 160, 1, 64}, {1, 200, 128, 4, 0},  {3, 70, 36, 6, 65},
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static uint64_t rng_state;
static float rnd(float a) /* uniform in [-a, a), deterministic */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return a * ((float)(rng_state >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
}
static float *rand_buf(size_t n, float a)
{
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = rnd(a);
    return x;
}
static float *nan_buf(size_t n) /* outputs start as NaN so an element the kernel skips shows */
{
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}
static int n_slots(void) { return omp_get_max_threads() > 2 ? omp_get_max_threads() : 2; }

/* max |a - b| over n elements, relative to max(1, max |b|); NaN counts as infinitely wrong. */
static double rel_err(const float *a, const float *b, size_t n, size_t stride, size_t off, size_t len)
{
    double e = 0.0, mb = 1.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < len; j++) {
            const double x = a[i * stride + off + j], y = b[i * stride + off + j];
            if (isnan(x) || isnan(y)) return INFINITY;
            e = fmax(e, fabs(x - y));
            mb = fmax(mb, fabs(y));
        }
    return e / mb;
}

static void run_forward(const shape *s, const float *qkv, float *out)
{
    void *w = malloc(sm_attention_workspace(s->T, s->C, s->H) * n_slots());
    cr_assert(w);
    sm_attention_forward(qkv, out, s->B, s->T, s->C, s->H, s->span, w);
    free(w);
}
static void run_backward(const shape *s, const float *qkv, const float *dout, float *dqkv)
{
    void *w = malloc(sm_attention_backward_workspace(s->T, s->C, s->H) * n_slots());
    cr_assert(w);
    sm_attention_backward(qkv, dout, dqkv, s->B, s->T, s->C, s->H, s->span, w);
    free(w);
}

/* Tolerances kernel vs reference. Both work in f32 with f32 inputs; the reference sums scores in
 * double, the kernel in f32 FMA chains of D terms (|error| ≲ D·2⁻²⁴·|q||k| ≈ 1e-5 for the score
 * magnitudes here, amplitude 3 → scores up to ~10), and its exp is ~1 ulp. An error δ in a score moves
 * the output by ~δ·max|v| and the gradients by a similar relative amount; f32 accumulation over up
 * to T = 200 terms adds ~√T·2⁻²⁴. Observed on these shapes: ≤ 2.1e-6 (forward) and ≤ 1.4e-6
 * (backward) relative to the largest element (2.6e-6 at T = 1024, C = 768); 5e-5 leaves a 20× margin,
 * while a wrong mask, a missed rescale or a dropped tile gives errors of order 1e-2 .. 1, and even
 * scaling Δ = dO·out by 1 + 1e-4 in the backward fails it. */
#define TOL_FWD 5e-5
#define TOL_BWD 5e-5

Test(attention_kernel, forward_matches_reference)
{
    rng_state = 1;
    for (size_t i = 0; i < N_SHAPES; i++) {
        const shape *s = &SHAPES[i];
        const size_t n_in = (size_t)s->B * s->T * 3 * s->C, n_out = (size_t)s->B * s->T * s->C;
        float *qkv = rand_buf(n_in, 3.0f), *out = nan_buf(n_out), *ref = nan_buf(n_out);
        run_forward(s, qkv, out);
        sm_attention_forward_ref(qkv, ref, s->B, s->T, s->C, s->H, s->span);
        const double e = rel_err(out, ref, n_out, 1, 0, 1);
        cr_expect(e <= TOL_FWD, "B=%d T=%d C=%d H=%d span=%d: forward error %g > %g", s->B, s->T, s->C, s->H, s->span,
                  e, TOL_FWD);
        free(qkv), free(out), free(ref);
    }
}

Test(attention_kernel, backward_matches_reference)
{
    rng_state = 2;
    for (size_t i = 0; i < N_SHAPES; i++) {
        const shape *s = &SHAPES[i];
        const size_t rows = (size_t)s->B * s->T, n_in = rows * 3 * s->C, n_out = rows * s->C;
        float *qkv = rand_buf(n_in, 3.0f), *dout = rand_buf(n_out, 1.0f);
        float *dqkv = nan_buf(n_in), *ref = nan_buf(n_in);
        run_backward(s, qkv, dout, dqkv);
        sm_attention_backward_ref(qkv, dout, ref, s->B, s->T, s->C, s->H, s->span);
        static const char *part[3] = {"dq", "dk", "dv"};
        for (int p = 0; p < 3; p++) { /* each part on its own scale: dv is O(|dout|), dq, dk O(|v||k|) */
            const double e = rel_err(dqkv, ref, rows, 3 * (size_t)s->C, (size_t)p * s->C, s->C);
            cr_expect(e <= TOL_BWD, "B=%d T=%d C=%d H=%d span=%d: %s error %g > %g", s->B, s->T, s->C, s->H, s->span,
                      part[p], e, TOL_BWD);
        }
        free(qkv), free(dout), free(dqkv), free(ref);
    }
}

/* ---- the references against double precision -------------------------------------------------- */

/* Σ_t,c dout·out in double, out from the definition (softmax of masked scaled scores times v). */
static double loss_f64(const double *qkv, const double *dout, int B, int T, int C, int H, int span)
{
    const int D = C / H;
    double loss = 0.0, sc[64];
    cr_assert(T <= 64);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + ((size_t)b * T + t) * 3 * C + h * D;
                const int lo = span > 0 && t - span + 1 > 0 ? t - span + 1 : 0;
                double mx = -INFINITY, sum = 0.0;
                for (int s = lo; s <= t; s++) {
                    const double *k = qkv + ((size_t)b * T + s) * 3 * C + C + h * D;
                    sc[s] = 0.0;
                    for (int d = 0; d < D; d++) sc[s] += q[d] * k[d];
                    sc[s] /= sqrt((double)D);
                    mx = fmax(mx, sc[s]);
                }
                for (int s = lo; s <= t; s++) sum += exp(sc[s] - mx);
                for (int d = 0; d < D; d++) {
                    double o = 0.0;
                    for (int s = lo; s <= t; s++) o += exp(sc[s] - mx) / sum * qkv[((size_t)b * T + s) * 3 * C + 2 * C + h * D + d];
                    loss += dout[((size_t)b * T + t) * C + h * D + d] * o;
                }
            }
    return loss;
}

/* Forward reference ≈ the double definition: out = ∂loss/∂dout, so perturbing is not needed — compare
 * each output through a one-hot dout. f32 rounding of the result alone is 2⁻²⁴·|out| ≈ 1e-7; 1e-5
 * allows the reference's f32 accumulation of p·v. */
Test(attention_kernel, forward_reference_matches_f64)
{
    static const shape sh[] = {{2, 7, 8, 2, 0}, {1, 9, 12, 3, 3}};
    rng_state = 3;
    for (size_t i = 0; i < 2; i++) {
        const shape *s = &sh[i];
        const size_t n_in = (size_t)s->B * s->T * 3 * s->C, n_out = (size_t)s->B * s->T * s->C;
        float *qkv = rand_buf(n_in, 2.0f), *ref = nan_buf(n_out);
        double *qd = malloc(n_in * sizeof *qd), *onehot = calloc(n_out, sizeof *onehot);
        cr_assert(qd && onehot);
        for (size_t j = 0; j < n_in; j++) qd[j] = qkv[j];
        sm_attention_forward_ref(qkv, ref, s->B, s->T, s->C, s->H, s->span);
        for (size_t j = 0; j < n_out; j++) {
            onehot[j] = 1.0;
            const double want = loss_f64(qd, onehot, s->B, s->T, s->C, s->H, s->span);
            onehot[j] = 0.0;
            cr_expect(fabs(ref[j] - want) <= 1e-5 * (1.0 + fabs(want)), "shape %zu out[%zu]: ref %.9g, f64 %.9g", i, j,
                      ref[j], want);
        }
        free(qkv), free(ref), free(qd), free(onehot);
    }
}

/* Backward reference ≈ central differences of the f64 loss, h = 1e-4: truncation error h²/6·|f'''|
 * ≈ 1e-8·O(10) and cancellation 2⁻⁵³/h ≈ 1e-12, so the difference quotient is good to ~1e-7. The
 * reference computes in f32 (scores in double): ~1e-6 relative error. Tolerance 1e-4·(1 + |g|):
 * a sign or mask error in any term is off by ≥ 1e-2. */
Test(attention_kernel, backward_reference_matches_finite_differences)
{
    static const shape sh[] = {{1, 7, 8, 2, 0}, {2, 6, 12, 2, 3}, {1, 5, 6, 1, 1}};
    rng_state = 4;
    for (size_t i = 0; i < 3; i++) {
        const shape *s = &sh[i];
        const size_t n_in = (size_t)s->B * s->T * 3 * s->C, n_out = (size_t)s->B * s->T * s->C;
        float *qkv = rand_buf(n_in, 2.0f), *dout = rand_buf(n_out, 1.0f), *g = nan_buf(n_in);
        double *qd = malloc(n_in * sizeof *qd), *dd = malloc(n_out * sizeof *dd);
        cr_assert(qd && dd);
        for (size_t j = 0; j < n_in; j++) qd[j] = qkv[j];
        for (size_t j = 0; j < n_out; j++) dd[j] = dout[j];
        sm_attention_backward_ref(qkv, dout, g, s->B, s->T, s->C, s->H, s->span);
        const double h = 1e-4;
        for (size_t j = 0; j < n_in; j++) {
            const double x = qd[j];
            qd[j] = x + h;
            const double lp = loss_f64(qd, dd, s->B, s->T, s->C, s->H, s->span);
            qd[j] = x - h;
            const double lm = loss_f64(qd, dd, s->B, s->T, s->C, s->H, s->span);
            qd[j] = x;
            const double fd = (lp - lm) / (2 * h);
            cr_expect(fabs(g[j] - fd) <= 1e-4 * (1.0 + fabs(fd)), "shape %zu dqkv[%zu]: ref %.9g, fd %.9g", i, j, g[j], fd);
        }
        free(qkv), free(dout), free(g), free(qd), free(dd);
    }
}

/* ---- threads and memory ------------------------------------------------------------------------ */

/* The kernels called by a team of n threads (n = 0: outside any region, the kernel opens one). */
static void run_team(int n, int fwd, const shape *s, const float *qkv, const float *dout, float *y, void *w)
{
    if (n == 0) {
        if (fwd) sm_attention_forward(qkv, y, s->B, s->T, s->C, s->H, s->span, w);
        else sm_attention_backward(qkv, dout, y, s->B, s->T, s->C, s->H, s->span, w);
        return;
    }
#pragma omp parallel num_threads(n)
    {
        if (fwd) sm_attention_forward(qkv, y, s->B, s->T, s->C, s->H, s->span, w);
        else sm_attention_backward(qkv, dout, y, s->B, s->T, s->C, s->H, s->span, w);
    }
}

Test(attention_kernel, bitwise_same_for_one_and_two_threads)
{
    static const shape sh[] = {{2, 129, 128, 4, 0}, {1, 200, 64, 3, 50}, {3, 33, 48, 1, 0}};
    rng_state = 5;
    for (size_t i = 0; i < 3; i++) {
        const shape *s = &sh[i];
        const size_t n_in = (size_t)s->B * s->T * 3 * s->C, n_out = (size_t)s->B * s->T * s->C;
        float *qkv = rand_buf(n_in, 3.0f), *dout = rand_buf(n_out, 1.0f);
        const size_t ws = sm_attention_backward_workspace(s->T, s->C, s->H) > sm_attention_workspace(s->T, s->C, s->H)
                              ? sm_attention_backward_workspace(s->T, s->C, s->H)
                              : sm_attention_workspace(s->T, s->C, s->H);
        void *w = malloc(ws * n_slots());
        cr_assert(w);
        for (int fwd = 0; fwd < 2; fwd++) {
            const size_t n = fwd ? n_out : n_in;
            float *y1 = nan_buf(n), *y2 = nan_buf(n), *y0 = nan_buf(n);
            run_team(1, fwd, s, qkv, dout, y1, w);
            run_team(2, fwd, s, qkv, dout, y2, w);
            run_team(0, fwd, s, qkv, dout, y0, w);
            cr_expect(memcmp(y1, y2, n * sizeof *y1) == 0, "shape %zu %s: 1 and 2 threads differ", i,
                      fwd ? "forward" : "backward");
            cr_expect(memcmp(y1, y0, n * sizeof *y1) == 0, "shape %zu %s: team of 1 and own region differ", i,
                      fwd ? "forward" : "backward");
            free(y1), free(y2), free(y0);
        }
        free(qkv), free(dout), free(w);
    }
}

/* No T×T anywhere: the forward's scratch does not grow with T, the backward's grows by 2 floats per
 * query (log-sum-exp and dO·out). */
Test(attention_kernel, workspace_is_linear_in_T)
{
    cr_expect_eq(sm_attention_workspace(16, 768, 12), sm_attention_workspace(1 << 20, 768, 12));
    const size_t a = sm_attention_backward_workspace(1 << 12, 768, 12);
    const size_t b = sm_attention_backward_workspace(1 << 13, 768, 12);
    const size_t c = sm_attention_backward_workspace(1 << 14, 768, 12);
    cr_expect_eq(b - a, (size_t)2 * (1 << 12) * sizeof(float));
    cr_expect_eq(c - b, (size_t)2 * (1 << 13) * sizeof(float));
}
