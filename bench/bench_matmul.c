/* bench_matmul.c — GFLOPS of sm_gemm_f32 next to OpenBLAS's cblas_sgemm, on square 1024/2048 and the
 * GPT linear-layer shapes (B*T x C)·(C x 4C), at 1 and 2 threads, with the machine's FP32 peak.
 * Prints one JSON object. Reproduce (docs/PERFORMANCE.md):
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=passive ./build/bench_matmul
 * Optional argument: seconds of timing per measurement and side (default 0.6).
 *
 * Fairness: both run on the same buffers in the same process; each measurement is the best of several
 * calls after a warm-up call; ours includes opening its OpenMP team (as a caller outside a parallel
 * region would), OpenBLAS its own thread pool. OpenBLAS's workers keep spinning for a while after a
 * call, which would steal a core from the next measurement of ours, so we pause after each OpenBLAS
 * measurement. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "ops/gemm.h"

#ifdef SM_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef struct {
    int ta, tb, threads;
    int64_t M, N, K;
    const float *A, *B;
    float *C;
    void *work;
} job;

static void run_ours(void *p) {
    job *j = p;
    const int64_t lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N;
#pragma omp parallel num_threads(j->threads)
    sm_gemm_f32(j->ta, j->tb, j->M, j->N, j->K, j->A, lda, j->B, ldb, 0.0f, j->C, j->N, j->work);
}

#ifdef SM_HAVE_OPENBLAS
static void run_openblas(void *p) {
    job *j = p;
    const int lda = (int)(j->ta ? j->M : j->K), ldb = (int)(j->tb ? j->K : j->N);
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, (int)j->M,
                (int)j->N, (int)j->K, 1.0f, j->A, lda, j->B, ldb, 0.0f, j->C, (int)j->N);
}
#endif

#ifdef SM_HAVE_OPENBLAS
static void pause_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}
#endif

/* The machine is shared, so a burst of someone else's work can fall on one side of a comparison.
 * Each side is measured in ROUNDS separate stretches, alternating with the other side, and keeps its
 * best: a quiet stretch for each is then likely. */
#define ROUNDS 3

static void fill(float *p, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((seed >> 40) * (1.0 / 8388608.0)) - 1.0f;
    }
}

typedef struct {
    const char *name;
    int64_t M, N, K;
    int ta, tb;
} shape;

int main(int argc, char **argv) {
    const double budget = argc > 1 ? atof(argv[1]) : 0.6;
    const int max_threads = 2;   /* the development machines have 2 cores */
    shape shapes[32];
    int ns = 0;
    shapes[ns++] = (shape){"square", 1024, 1024, 1024, 0, 0};
    shapes[ns++] = (shape){"square", 2048, 2048, 2048, 0, 0};
    /* GPT linear layers: x [B*T, C] times a [C, 4C] weight (nn), and the same with the weight stored
     * [4C, C] as the linear op keeps it (nt). */
    for (int tb = 0; tb <= 1; tb++)
        for (int c = 384; c <= 768; c *= 2)
            for (int m = 256; m <= 2048; m *= 2) shapes[ns++] = (shape){"gpt", m, 4 * c, c, 0, tb};

    int64_t max_a = 0, max_b = 0, max_c = 0;
    for (int s = 0; s < ns; s++) {
        if (shapes[s].M * shapes[s].K > max_a) max_a = shapes[s].M * shapes[s].K;
        if (shapes[s].K * shapes[s].N > max_b) max_b = shapes[s].K * shapes[s].N;
        if (shapes[s].M * shapes[s].N > max_c) max_c = shapes[s].M * shapes[s].N;
    }
    float *A = malloc((size_t)max_a * sizeof(float)), *B = malloc((size_t)max_b * sizeof(float));
    float *C = malloc((size_t)max_c * sizeof(float)), *R = malloc((size_t)max_c * sizeof(float));
    void *work = aligned_alloc(64, (size_t)max_threads * sm_gemm_workspace());
    if (!A || !B || !C || !R || !work) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        return 1;
    }
    fill(A, max_a, 1);
    fill(B, max_b, 2);

    /* Measure everything first (the peak probe before and after, keeping the better: a burst of
     * other work during one probe must not inflate our %-of-peak), then print. */
    enum { MAXT = 2 };
    double peak[MAXT + 1] = {0}, ours[32][MAXT + 1], theirs[32][MAXT + 1], maxdiff[32][MAXT + 1];
    for (int t = 1; t <= max_threads; t++) peak[t] = sm_bench_peak_gflops(t, 0.2);
    for (int s = 0; s < ns; s++)
        for (int t = 1; t <= max_threads; t++) {
            const shape *sh = &shapes[s];
            job jb = {sh->ta, sh->tb, t, sh->M, sh->N, sh->K, A, B, C, work};
            const double flops = 2.0 * (double)sh->M * (double)sh->N * (double)sh->K;
            double t_ours = INFINITY;
#ifdef SM_HAVE_OPENBLAS
            double t_theirs = INFINITY;
            openblas_set_num_threads(t);
            job jr = jb;
            jr.C = R;
#endif
            for (int r = 0; r < ROUNDS; r++) {
                t_ours = fmin(t_ours, sm_bench_time_best(run_ours, &jb, 3, budget / ROUNDS));
#ifdef SM_HAVE_OPENBLAS
                t_theirs = fmin(t_theirs, sm_bench_time_best(run_openblas, &jr, 3, budget / ROUNDS));
                pause_s(0.15);
#endif
            }
            ours[s][t] = flops / t_ours * 1e-9;
            theirs[s][t] = NAN;
            maxdiff[s][t] = NAN;
#ifdef SM_HAVE_OPENBLAS
            theirs[s][t] = flops / t_theirs * 1e-9;
            /* Sanity: both computed the same product (differences are rounding only). */
            maxdiff[s][t] = 0;
            for (int64_t i = 0; i < sh->M * sh->N; i++)
                maxdiff[s][t] = fmax(maxdiff[s][t], fabs((double)C[i] - (double)R[i]));
#endif
        }
    for (int t = 1; t <= max_threads; t++) peak[t] = fmax(peak[t], sm_bench_peak_gflops(t, 0.2));

    char cpu[256];
    sm_json j;
    sm_json_begin(&j, stdout);
    sm_json_str(&j, "bench", "matmul");
    sm_json_obj(&j, "machine");
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));
    sm_json_int(&j, "cpus", omp_get_num_procs());
    sm_json_int(&j, "simd_lanes", sm_bench_simd_width());
    const char *wp = getenv("OMP_WAIT_POLICY"), *ct = getenv("OPENBLAS_CORETYPE");
    sm_json_str(&j, "omp_wait_policy", wp ? wp : "(unset)");
    sm_json_str(&j, "openblas_coretype", ct ? ct : "(unset)");
#ifdef SM_HAVE_OPENBLAS
    sm_json_str(&j, "openblas_config", openblas_get_config());
#else
    sm_json_str(&j, "openblas_config", "(not built with OpenBLAS)");
#endif
    sm_json_obj_end(&j);
    sm_json_obj(&j, "peak_gflops");
    for (int t = 1; t <= max_threads; t++) {
        char key[8];
        snprintf(key, sizeof key, "%d", t);
        sm_json_num(&j, key, peak[t]);
    }
    sm_json_obj_end(&j);

    double log_ratio_sum[MAXT + 1] = {0}, min_ratio[MAXT + 1] = {INFINITY, INFINITY, INFINITY};
    int n_ratio[MAXT + 1] = {0};
    sm_json_arr(&j, "results");
    for (int s = 0; s < ns; s++)
        for (int t = 1; t <= max_threads; t++) {
            const shape *sh = &shapes[s];
            sm_json_obj(&j, NULL);
            sm_json_str(&j, "shape", sh->name);
            sm_json_int(&j, "M", sh->M);
            sm_json_int(&j, "N", sh->N);
            sm_json_int(&j, "K", sh->K);
            sm_json_str(&j, "trans", sh->tb ? "nt" : "nn");
            sm_json_int(&j, "threads", t);
            sm_json_num(&j, "ours_gflops", ours[s][t]);
            sm_json_num(&j, "ours_pct_peak", 100.0 * ours[s][t] / peak[t]);
            const double ratio = ours[s][t] / theirs[s][t];   /* NaN (null) without OpenBLAS */
            sm_json_num(&j, "openblas_gflops", theirs[s][t]);
            sm_json_num(&j, "openblas_pct_peak", 100.0 * theirs[s][t] / peak[t]);
            sm_json_num(&j, "ratio", ratio);
            sm_json_num(&j, "max_abs_diff", maxdiff[s][t]);
            if (isfinite(ratio)) {
                log_ratio_sum[t] += log(ratio);
                min_ratio[t] = fmin(min_ratio[t], ratio);
                n_ratio[t]++;
            }
            sm_json_obj_end(&j);
        }
    sm_json_arr_end(&j);

    sm_json_obj(&j, "summary");
    for (int t = 1; t <= max_threads; t++) {
        char key[32];
        snprintf(key, sizeof key, "geomean_ratio_%dt", t);
        sm_json_num(&j, key, n_ratio[t] ? exp(log_ratio_sum[t] / n_ratio[t]) : NAN);
        snprintf(key, sizeof key, "min_ratio_%dt", t);
        sm_json_num(&j, key, n_ratio[t] ? min_ratio[t] : NAN);
    }
    sm_json_int(&j, "peak_rss_bytes", (int64_t)sm_bench_peak_rss());
    sm_json_obj_end(&j);
    sm_json_end(&j);
    free(A);
    free(B);
    free(C);
    free(R);
    free(work);
    return 0;
}
