/* bench_util.c — shared benchmark helpers (see bench_util.h). */
#include "bench_util.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

double sm_bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- FP32 peak probe --------------------------------------------------------------------------- */

/* Independent chains: at least latency (4) x FMA pipes (2) on current x86 cores, so the loop is
 * throughput-bound, and few enough to stay in registers next to the two constants (16 of 32 zmm;
 * 12 of 16 ymm: 16 ymm chains would spill and under-report the peak by ~2x). acc = acc*x + y with x
 * just below 1 keeps every value normal and bounded, so no denormal slow path distorts the number. */
#if defined(__AVX512F__)
#define SM_PROBE_CHAINS 16
#else
#define SM_PROBE_CHAINS 12
#endif

int sm_bench_simd_width(void) {
#if defined(__AVX512F__)
    return 16;
#elif defined(__AVX2__) && defined(__FMA__)
    return 8;
#else
    return 1;
#endif
}

/* Runs `iters` iterations of SM_PROBE_CHAINS FMAs; returns a value that depends on all of them so the
 * compiler cannot drop the loop. */
static float probe_kernel(int64_t iters) {
#if defined(__AVX512F__)
    __m512 acc[SM_PROBE_CHAINS];
    const __m512 x = _mm512_set1_ps(0.9999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], x, y);
    __m512 s = acc[0];
    for (int c = 1; c < SM_PROBE_CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc[SM_PROBE_CHAINS];
    const __m256 x = _mm256_set1_ps(0.9999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], x, y);
    float out[8], s = 0;
    __m256 t = acc[0];
    for (int c = 1; c < SM_PROBE_CHAINS; c++) t = _mm256_add_ps(t, acc[c]);
    _mm256_storeu_ps(out, t);
    for (int l = 0; l < 8; l++) s += out[l];
    return s;
#else
    float acc[SM_PROBE_CHAINS];
    for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = (float)c;
    for (int64_t i = 0; i < iters; i++)
        for (int c = 0; c < SM_PROBE_CHAINS; c++) acc[c] = fmaf(acc[c], 0.9999999f, 1e-7f);
    float s = 0;
    for (int c = 0; c < SM_PROBE_CHAINS; c++) s += acc[c];
    return s;
#endif
}

static volatile float probe_sink;

/* Wall seconds for every thread of a `threads` team to run `iters` iterations. */
static double probe_run(int threads, int64_t iters) {
    double t0 = 0, t1 = 0;
#pragma omp parallel num_threads(threads)
    {
#pragma omp barrier
#pragma omp master
        t0 = sm_bench_now();
        float r = probe_kernel(iters);
#pragma omp barrier
#pragma omp master
        t1 = sm_bench_now();
        if (r == 12345.0f) probe_sink = r;   /* practically never; only keeps r alive */
    }
    return t1 - t0;
}

double sm_bench_peak_gflops(int threads, double seconds) {
    if (threads < 1) threads = 1;
    /* Calibrate on one short run, then size the runs to about `seconds`. */
    int64_t iters = 1 << 16;
    double t = probe_run(threads, iters);
    while (t < 0.01) {
        iters *= 4;
        t = probe_run(threads, iters);
    }
    iters = (int64_t)((double)iters * seconds / t) + 1;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        t = probe_run(threads, iters);
        double flops = 2.0 * (double)sm_bench_simd_width() * SM_PROBE_CHAINS * (double)iters * threads;
        double g = flops / t * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

/* ---- memory ------------------------------------------------------------------------------------ */

static size_t status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = (size_t)strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

size_t sm_bench_peak_rss(void) { return status_kb("VmHWM"); }
size_t sm_bench_rss(void) { return status_kb("VmRSS"); }

const char *sm_bench_cpu_name(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, n, "%s", p);
        break;
    }
    fclose(f);
    return buf;
}

double sm_bench_time_best(void (*fn)(void *ctx), void *ctx, int min_reps, double budget) {
    fn(ctx);
    double best = INFINITY, start = sm_bench_now();
    for (int i = 0; i < 1000 && (i < min_reps || sm_bench_now() - start < budget); i++) {
        double t0 = sm_bench_now();
        fn(ctx);
        double t = sm_bench_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* ---- JSON -------------------------------------------------------------------------------------- */

static void json_sep(sm_json *j, const char *key) {
    if (j->need_comma[j->depth]) fputc(',', j->f);
    j->need_comma[j->depth] = 1;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    if (key) fprintf(j->f, "\"%s\": ", key);
}

static void json_open(sm_json *j, const char *key, char c) {
    json_sep(j, key);
    fputc(c, j->f);
    if (j->depth < 31) j->depth++;
    j->need_comma[j->depth] = 0;
}

static void json_close(sm_json *j, char c) {
    int had = j->need_comma[j->depth];
    if (j->depth > 0) j->depth--;
    if (had) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    }
    fputc(c, j->f);
}

void sm_json_begin(sm_json *j, FILE *f) {
    memset(j, 0, sizeof *j);
    j->f = f;
    fputc('{', f);
    j->depth = 1;
}

void sm_json_end(sm_json *j) {
    json_close(j, '}');
    fputc('\n', j->f);
    fflush(j->f);
}

void sm_json_obj(sm_json *j, const char *key) { json_open(j, key, '{'); }
void sm_json_obj_end(sm_json *j) { json_close(j, '}'); }
void sm_json_arr(sm_json *j, const char *key) { json_open(j, key, '['); }
void sm_json_arr_end(sm_json *j) { json_close(j, ']'); }

void sm_json_num(sm_json *j, const char *key, double v) {
    json_sep(j, key);
    if (isfinite(v))
        fprintf(j->f, "%.6g", v);
    else
        fputs("null", j->f);
}

void sm_json_int(sm_json *j, const char *key, int64_t v) {
    json_sep(j, key);
    fprintf(j->f, "%lld", (long long)v);
}

void sm_json_bool(sm_json *j, const char *key, int v) {
    json_sep(j, key);
    fputs(v ? "true" : "false", j->f);
}

void sm_json_str(sm_json *j, const char *key, const char *v) {
    json_sep(j, key);
    fputc('"', j->f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(j->f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(j->f, "\\u%04x", *p);
        else
            fputc(*p, j->f);
    }
    fputc('"', j->f);
}

void sm_bench_die(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, sm_last_error());
    exit(1);
}

sm_bench_gpt2 sm_bench_gpt2_train(int B, int T, int full_logits)
{
    sm_bench_gpt2 m = {.B = B, .T = T};
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 50257, c.context = T > 1024 ? T : 1024, c.n_layer = 12, c.n_head = 12, c.n_embd = 768;
    c.batch = B, c.seq = T, c.full_logits = full_logits;
    sm_adamw_config_default(&m.ac);
    if (sm_graph_create(&m.g) || sm_gpt_build(m.g, &c, &m.io) || sm_graph_backward(m.g, m.io.loss) ||
        sm_graph_adamw(m.g, &m.ac, &m.opt))
        sm_bench_die("bench", "building the GPT-2 training graph");
    return m;
}

double sm_bench_gpt2_step(const sm_bench_gpt2 *m, sm_runtime *rt)
{
    size_t n = (size_t)m->B * (size_t)m->T;
    int32_t *ids = malloc(sizeof *ids * n);
    if (!ids) sm_bench_die("bench", "out of memory for the tokens");
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((i * 2654435761u) % 50257);
    float hp[SM_ADAMW_HPARAMS];
    sm_adamw_hparams(&m->ac, 0, hp);
    if (sm_runtime_set(rt, m->io.tokens, ids, sizeof *ids * n) || sm_runtime_set(rt, m->io.targets, ids, sizeof *ids * n) ||
        sm_runtime_set(rt, m->opt.hparams, hp, sizeof hp))
        sm_bench_die("bench", "setting the inputs");
    free(ids);
    double t0 = sm_bench_now();
    if (sm_runtime_run(rt)) sm_bench_die("bench", "running a step");
    return sm_bench_now() - t0;
}
