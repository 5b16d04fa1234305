/* bench_gemm_bf16.c — GFLOPS of the bf16 gemm (sm_gemm_bf16) next to our f32 gemm (sm_gemm_f32),
 * OpenBLAS's cblas_sgemm and, where the OpenBLAS in use exports it, cblas_sbgemm, on the GPT-2 124M
 * linear-layer shapes at B*T = 4096 rows, at 1 and 2 threads, all in one run. Prints one JSON object.
 * Reproduce (docs/PERFORMANCE.md):
 *   env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=passive ./build/bench_gemm_bf16
 * Optional argument: seconds of timing per measurement and contender (default 0.6).
 *
 * Contenders, on the same f32 data:
 *   f32          sm_gemm_f32 on f32 operands;
 *   bf16         sm_gemm_bf16 on the same f32 operands, rounded to bf16 while packing (what matmul
 *                and linear do when the precision policy is bf16 and the tensors are f32);
 *   bf16_in      sm_gemm_bf16 on operands already stored as bf16;
 *   sgemm        OpenBLAS cblas_sgemm (f32);
 *   sbgemm       OpenBLAS cblas_sbgemm on the bf16 operands. Looked up at run time: Debian 12's
 *                OpenBLAS 0.3.21 declares it in cblas.h but is built without BUILD_BFLOAT16, so the
 *                library does not export it; it is then reported as null. SM_SBGEMM_LIB=path names
 *                another OpenBLAS (built with BUILD_BFLOAT16=1) to take cblas_sbgemm from: it is
 *                dlopen'ed next to the linked one and its thread count set like the linked one's.
 * Each contender is measured in ROUNDS stretches interleaved with the others, keeping its best (a
 * quiet stretch on a shared machine); ours include opening the OpenMP team each call, OpenBLAS uses
 * its own thread pool, and we pause after OpenBLAS so its spinning workers do not steal a core from
 * the next measurement. At 1 thread each contender is also timed by the calling thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID; our team of 1 and OpenBLAS at 1 thread both run on the calling thread):
 * on a loaded shared machine that figure is not diluted by time the thread spends descheduled,
 * which the wall-clock one is (cpu_gflops_1t). Sanity: the largest |difference| of each bf16 result from the f32 one,
 * relative to the largest |f32 element|, is reported (bf16 rounding: around 1e-3). */
#include <dlfcn.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fp16.h"
#include "bench/bench_util.h"
#include "ops/gemm.h"

#ifdef SM_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define ROUNDS 3
enum { F32, BF16, BF16_IN, SGEMM, SBGEMM, NCONT };
static const char *const cont_name[NCONT] = {"f32", "bf16", "bf16_in", "sgemm", "sbgemm"};

typedef void sbgemm_fn(int order, int ta, int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda,
                       const uint16_t *B, int ldb, float beta, float *C, int ldc);

typedef struct {
    int which, ta, tb, threads;
    int64_t M, N, K;
    const float *A, *B;
    const uint16_t *A16, *B16;
    float *C;
    void *work;
    sbgemm_fn *sbgemm;
} job;

static void run(void *p) {
    const job *j = p;
    const int64_t lda = j->ta ? j->M : j->K, ldb = j->tb ? j->K : j->N;
    switch (j->which) {
    case F32:
#pragma omp parallel num_threads(j->threads)
        sm_gemm_f32(j->ta, j->tb, j->M, j->N, j->K, j->A, lda, j->B, ldb, 0.0f, j->C, j->N, j->work);
        break;
    case BF16:
#pragma omp parallel num_threads(j->threads)
        sm_gemm_bf16(j->ta, j->tb, j->M, j->N, j->K, j->A, SM_F32, lda, j->B, SM_F32, ldb, 0.0f, j->C, j->N,
                     j->work);
        break;
    case BF16_IN:
#pragma omp parallel num_threads(j->threads)
        sm_gemm_bf16(j->ta, j->tb, j->M, j->N, j->K, j->A16, SM_BF16, lda, j->B16, SM_BF16, ldb, 0.0f, j->C, j->N,
                     j->work);
        break;
#ifdef SM_HAVE_OPENBLAS
    case SGEMM:
        cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, (int)j->M,
                    (int)j->N, (int)j->K, 1.0f, j->A, (int)lda, j->B, (int)ldb, 0.0f, j->C, (int)j->N);
        break;
    case SBGEMM:
        j->sbgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, (int)j->M,
                  (int)j->N, (int)j->K, 1.0f, j->A16, (int)lda, j->B16, (int)ldb, 0.0f, j->C, (int)j->N);
        break;
#endif
    default:
        break;
    }
}

/* Best thread-CPU seconds per call of fn(ctx) over reps calls (after one warm-up call). */
static double cpu_best(void (*fn)(void *), void *ctx, int reps) {
    fn(ctx);
    double best = INFINITY;
    for (int i = 0; i < reps; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        fn(ctx);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        best = fmin(best, (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec));
    }
    return best;
}

static void pause_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

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
    enum { MAXT = 2 };   /* the development machines have 2 cores */
    /* GPT-2 124M (C = 768, V = 50257) at B*T = 4096 rows. Forward linears are x [4096, in] times the
     * weight stored [out, in] (nt); the LM head runs on a chunk of 256 rows at a time over the whole
     * vocabulary; the backward weight gradient dW = dyᵀ·x (tn) and input gradient dx = dy·W (nn). */
    const shape shapes[] = {
        {"attn_qkv", 4096, 2304, 768, 0, 1},  {"attn_proj", 4096, 768, 768, 0, 1},
        {"mlp_fc", 4096, 3072, 768, 0, 1},    {"mlp_proj", 4096, 768, 3072, 0, 1},
        {"lm_head_chunk", 256, 50257, 768, 0, 1}, {"mlp_fc_dx", 4096, 768, 3072, 0, 0},
        {"mlp_fc_dw", 3072, 768, 4096, 1, 0},
    };
    enum { NS = sizeof shapes / sizeof shapes[0] };

    int64_t max_a = 0, max_b = 0, max_c = 0;
    for (int s = 0; s < NS; s++) {
        if (shapes[s].M * shapes[s].K > max_a) max_a = shapes[s].M * shapes[s].K;
        if (shapes[s].K * shapes[s].N > max_b) max_b = shapes[s].K * shapes[s].N;
        if (shapes[s].M * shapes[s].N > max_c) max_c = shapes[s].M * shapes[s].N;
    }
    float *A = malloc((size_t)max_a * sizeof(float)), *B = malloc((size_t)max_b * sizeof(float));
    uint16_t *A16 = malloc((size_t)max_a * sizeof(uint16_t)), *B16 = malloc((size_t)max_b * sizeof(uint16_t));
    float *C[NCONT];
    for (int c = 0; c < NCONT; c++) C[c] = malloc((size_t)max_c * sizeof(float));
    size_t ws = sm_gemm_workspace() > sm_gemm_bf16_workspace() ? sm_gemm_workspace() : sm_gemm_bf16_workspace();
    void *work = aligned_alloc(64, (size_t)MAXT * ws);
    if (!A || !B || !A16 || !B16 || !work || !C[0] || !C[1] || !C[2] || !C[3] || !C[4]) {
        fprintf(stderr, "bench_gemm_bf16: out of memory\n");
        return 1;
    }
    fill(A, max_a, 1);
    fill(B, max_b, 2);
    sm_f32_to_bf16_array(A, A16, (size_t)max_a);
    sm_f32_to_bf16_array(B, B16, (size_t)max_b);

    /* cblas_sbgemm where the OpenBLAS linked in exports it (dlopen(NULL): this program and its
     * libraries). */
    sbgemm_fn *sbgemm = NULL;
    void (*sb_threads)(int) = NULL;
    const char *sblib = getenv("SM_SBGEMM_LIB");
#ifdef SM_HAVE_OPENBLAS
    void *self = sblib && *sblib ? dlopen(sblib, RTLD_NOW | RTLD_LOCAL) : dlopen(NULL, RTLD_LAZY);
    if (sblib && *sblib && !self) fprintf(stderr, "bench_gemm_bf16: %s: %s\n", sblib, dlerror());
    if (self) {
        *(void **)&sbgemm = dlsym(self, "cblas_sbgemm");
        *(void **)&sb_threads = dlsym(self, "openblas_set_num_threads");
    }
    const int have[NCONT] = {1, 1, 1, 1, sbgemm != NULL};
#else
    (void)sb_threads, (void)sblib;   /* no OpenBLAS: the sbgemm column stays empty */
    const int have[NCONT] = {1, 1, 1, 0, 0};
#endif

    double gf[NS][MAXT + 1][NCONT], reldiff[NS][MAXT + 1][NCONT], cpugf[NS][NCONT];
    double peak[MAXT + 1] = {0};
    for (int t = 1; t <= MAXT; t++) peak[t] = sm_bench_peak_gflops(t, 0.2);
    for (int s = 0; s < NS; s++)
        for (int t = 1; t <= MAXT; t++) {
            const shape *sh = &shapes[s];
            const double flops = 2.0 * (double)sh->M * (double)sh->N * (double)sh->K;
            double best[NCONT], cbest[NCONT];
            job jb[NCONT];
            for (int c = 0; c < NCONT; c++) {
                best[c] = cbest[c] = INFINITY;
                jb[c] = (job){c, sh->ta, sh->tb, t, sh->M, sh->N, sh->K, A, B, A16, B16, C[c], work, sbgemm};
            }
#ifdef SM_HAVE_OPENBLAS
            openblas_set_num_threads(t);
            if (sb_threads) sb_threads(t);
#endif
            for (int r = 0; r < ROUNDS; r++)
                for (int c = 0; c < NCONT; c++) {
                    if (!have[c]) continue;
                    best[c] = fmin(best[c], sm_bench_time_best(run, &jb[c], 2, budget / ROUNDS));
                    if (t == 1) cbest[c] = fmin(cbest[c], cpu_best(run, &jb[c], 2));
                    if (c >= SGEMM) pause_s(0.15);
                }
            double cmax = 0.0;
            for (int64_t i = 0; i < sh->M * sh->N; i++) cmax = fmax(cmax, fabs((double)C[F32][i]));
            for (int c = 0; c < NCONT; c++) {
                gf[s][t][c] = have[c] ? flops / best[c] * 1e-9 : NAN;
                if (t == 1) cpugf[s][c] = have[c] ? flops / cbest[c] * 1e-9 : NAN;
                double d = 0.0;
                for (int64_t i = 0; have[c] && i < sh->M * sh->N; i++)
                    d = fmax(d, fabs((double)C[c][i] - (double)C[F32][i]));
                reldiff[s][t][c] = have[c] ? d / cmax : NAN;
            }
        }
    for (int t = 1; t <= MAXT; t++) peak[t] = fmax(peak[t], sm_bench_peak_gflops(t, 0.2));

    char cpu[256];
    sm_json j;
    sm_json_begin(&j, stdout);
    sm_json_str(&j, "bench", "gemm_bf16");
    sm_json_obj(&j, "machine");
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));
    sm_json_int(&j, "cpus", omp_get_num_procs());
    sm_json_bool(&j, "avx512_bf16", sm_gemm_bf16_native());
    const char *wp = getenv("OMP_WAIT_POLICY");
    sm_json_str(&j, "omp_wait_policy", wp ? wp : "(unset)");
#ifdef SM_HAVE_OPENBLAS
    sm_json_str(&j, "openblas_config", openblas_get_config());
#else
    sm_json_str(&j, "openblas_config", "(not built with OpenBLAS)");
#endif
    sm_json_bool(&j, "openblas_sbgemm", sbgemm != NULL);
    sm_json_str(&j, "sbgemm_lib", sblib && *sblib ? sblib : "(the linked OpenBLAS)");
    sm_json_obj_end(&j);
    sm_json_obj(&j, "fp32_peak_gflops");
    for (int t = 1; t <= MAXT; t++) {
        char key[8];
        snprintf(key, sizeof key, "%d", t);
        sm_json_num(&j, key, peak[t]);
    }
    sm_json_obj_end(&j);

    double cpu_logsum = 0.0, logsum[MAXT + 1] = {0}, minr[MAXT + 1] = {INFINITY, INFINITY, INFINITY};
    sm_json_arr(&j, "results");
    for (int s = 0; s < NS; s++)
        for (int t = 1; t <= MAXT; t++) {
            const shape *sh = &shapes[s];
            sm_json_obj(&j, NULL);
            sm_json_str(&j, "shape", sh->name);
            sm_json_int(&j, "M", sh->M);
            sm_json_int(&j, "N", sh->N);
            sm_json_int(&j, "K", sh->K);
            sm_json_str(&j, "trans", sh->ta ? (sh->tb ? "tt" : "tn") : (sh->tb ? "nt" : "nn"));
            sm_json_int(&j, "threads", t);
            for (int c = 0; c < NCONT; c++) {
                char key[32];
                snprintf(key, sizeof key, "%s_gflops", cont_name[c]);
                sm_json_num(&j, key, gf[s][t][c]);
            }
            if (t == 1) {
                sm_json_obj(&j, "cpu_gflops_1t");
                for (int c = 0; c < NCONT; c++) sm_json_num(&j, cont_name[c], cpugf[s][c]);
                sm_json_num(&j, "bf16_over_f32", cpugf[s][BF16] / cpugf[s][F32]);
                sm_json_obj_end(&j);
                cpu_logsum += log(cpugf[s][BF16] / cpugf[s][F32]);
            }
            const double r = gf[s][t][BF16] / gf[s][t][F32];
            sm_json_num(&j, "bf16_over_f32", r);
            sm_json_num(&j, "bf16_in_over_f32", gf[s][t][BF16_IN] / gf[s][t][F32]);
            sm_json_num(&j, "bf16_over_sgemm", gf[s][t][BF16] / gf[s][t][SGEMM]);
            sm_json_num(&j, "bf16_over_sbgemm", gf[s][t][BF16] / gf[s][t][SBGEMM]);
            sm_json_num(&j, "bf16_rel_diff", reldiff[s][t][BF16]);
            sm_json_num(&j, "sbgemm_rel_diff", reldiff[s][t][SBGEMM]);
            logsum[t] += log(r);
            minr[t] = fmin(minr[t], r);
            sm_json_obj_end(&j);
        }
    sm_json_arr_end(&j);
    sm_json_obj(&j, "summary");
    for (int t = 1; t <= MAXT; t++) {
        char key[40];
        snprintf(key, sizeof key, "geomean_bf16_over_f32_%dt", t);
        sm_json_num(&j, key, exp(logsum[t] / NS));
        snprintf(key, sizeof key, "min_bf16_over_f32_%dt", t);
        sm_json_num(&j, key, minr[t]);
    }
    sm_json_num(&j, "cpu_time_geomean_bf16_over_f32_1t", exp(cpu_logsum / NS));
    sm_json_int(&j, "peak_rss_bytes", (int64_t)sm_bench_peak_rss());
    sm_json_obj_end(&j);
    sm_json_end(&j);
    free(A);
    free(B);
    free(A16);
    free(B16);
    for (int c = 0; c < NCONT; c++) free(C[c]);
    free(work);
    return 0;
}
