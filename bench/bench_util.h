/* bench_util.h — what every benchmark shares: a monotonic clock, the machine's FP32 peak (an FMA
 * loop), peak RSS, and a tiny JSON writer so each bench prints one machine-readable object. */
#ifndef SM_BENCH_UTIL_H
#define SM_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "smallmind.h"

/* Seconds on CLOCK_MONOTONIC (only differences are meaningful). */
double sm_bench_now(void);

/* Measured FP32 peak in GFLOPS with `threads` threads each running independent FMA chains on the
 * widest vectors this build targets (AVX-512, AVX2+FMA, else scalar fmaf). It reports the best of a
 * few repetitions of about `seconds` each, so it reflects the running clock (turbo), not the
 * nominal one in /proc/cpuinfo. */
double sm_bench_peak_gflops(int threads, double seconds);
/* FP32 lanes per FMA instruction the probe (and the compiler) uses: 16, 8 or 1. */
int sm_bench_simd_width(void);

/* Peak resident set size of this process in bytes (VmHWM from /proc/self/status; 0 if unknown). */
size_t sm_bench_peak_rss(void);
/* Resident set size right now in bytes (VmRSS; 0 if unknown). */
size_t sm_bench_rss(void);

/* The CPU model name from /proc/cpuinfo ("unknown" if not found), copied into buf. */
const char *sm_bench_cpu_name(char *buf, size_t n);

/* Best (minimum) seconds per call of fn(ctx): one untimed warm-up call, then timed calls until
 * `budget` seconds have passed and at least `min_reps` were made (at most 1000). The minimum is the
 * statistic least disturbed by other processes on a shared machine. fn must do the whole measured
 * operation (including opening any parallel region). */
double sm_bench_time_best(void (*fn)(void *ctx), void *ctx, int min_reps, double budget);

/* The GPT-2 124M shape as a training graph (forward, backward, AdamW) at B x T, the loss head fused
 * unless full_logits; exits with a message on any error (benches only). */
typedef struct sm_bench_gpt2 {
    sm_graph *g;
    sm_gpt_tensors io;
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    int B, T;
} sm_bench_gpt2;
sm_bench_gpt2 sm_bench_gpt2_train(int B, int T, int full_logits);
/* One training step of m on rt with fixed tokens; returns its seconds. */
double sm_bench_gpt2_step(const sm_bench_gpt2 *m, sm_runtime *rt);
/* "prog: what: sm_last_error()" on stderr, exit 1. */
void sm_bench_die(const char *prog, const char *what) __attribute__((noreturn));

/* A minimal streaming JSON writer: it tracks nesting and commas, nothing else. Keys are emitted as
 * given (callers pass plain identifiers); string values are escaped. */
typedef struct sm_json {
    FILE *f;
    int depth;
    int need_comma[32];   /* per depth: an element was already written at this level */
} sm_json;

void sm_json_begin(sm_json *j, FILE *f);          /* opens the top-level object */
void sm_json_end(sm_json *j);                     /* closes it and prints a newline */
void sm_json_obj(sm_json *j, const char *key);    /* key may be NULL inside an array */
void sm_json_obj_end(sm_json *j);
void sm_json_arr(sm_json *j, const char *key);
void sm_json_arr_end(sm_json *j);
void sm_json_num(sm_json *j, const char *key, double v);   /* %.6g; NaN/inf become null */
void sm_json_int(sm_json *j, const char *key, int64_t v);
void sm_json_str(sm_json *j, const char *key, const char *v);
void sm_json_bool(sm_json *j, const char *key, int v);

#endif
