/* bench_kv.c — generation with the KV cache (sm_infer) against the uncached path (the full forward of
 * the last T tokens for every token, what `generate --no-kv-cache` does), side by side in one run:
 *   1. GPT-2 124M shape at T = 1024: seconds per generated token with and without the cache, the
 *      ratio (target >= 20x), prefill throughput, and the memory of each (plan totals, peak RSS);
 *   2. the `gpt` template (L=6, C=384, H=6, V=256): per-token decode time at position 128 and at
 *      position 8192, with a linear cache (full causal attention: the per-token cost grows with the
 *      keys it reads) and with windowed attention over a ring (span 1024 + 4 sinks: flat; target
 *      pos-8k / pos-128 <= 1.5).
 * Weights are random (sm_runtime_init_params): speed does not depend on their values.
 * Usage: bench_kv [--threads N] [--quick] [--part all|uncached|cached|gpt]
 *   --quick: smaller runs for a smoke test; --part: one part alone, so that peak_rss is that part's.
 * Prints one JSON object. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static const char *prog = "bench_kv";
static int quick;

#define TRY(x, what)                                   \
    do {                                               \
        if ((x) != SM_OK) sm_bench_die(prog, (what));  \
    } while (0)

static sm_gpt_config gpt2(void)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 50257;
    c.context = 1024;
    c.n_layer = 12;
    c.n_head = 12;
    c.n_embd = 768;
    c.batch = 1;
    c.with_loss = 0;
    return c;
}

static void fill_tokens(int32_t *t, int n, int V)
{
    uint64_t s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
}

/* The uncached path at window T: one full forward of T tokens per generated token. */
static double uncached(sm_json *j, const sm_gpt_config *m, int T, int threads, int reps)
{
    sm_gpt_config c = *m;
    c.seq = T;
    sm_graph *g;
    sm_gpt_tensors io;
    sm_plan *p;
    sm_runtime *rt;
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = threads;
    TRY(sm_graph_create(&g), "graph");
    TRY(sm_gpt_build(g, &c, &io), "build");
    TRY(sm_plan_create(g, &o, &p), "plan");
    TRY(sm_runtime_create(g, p, &rt), "runtime");
    TRY(sm_runtime_init_params(rt, 1), "init");
    int32_t *tok = malloc(sizeof *tok * (size_t)T);
    fill_tokens(tok, T, c.vocab);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        TRY(sm_runtime_set(rt, io.tokens, tok, sizeof *tok * (size_t)T), "set");
        double t0 = sm_bench_now();
        TRY(sm_runtime_run(rt), "run");
        double dt = sm_bench_now() - t0;
        if (dt < best) best = dt;
    }
    sm_json_obj(j, "uncached");
    sm_json_int(j, "window", T);
    sm_json_num(j, "seconds_per_token", best);
    sm_json_num(j, "tokens_per_second", 1.0 / best);
    sm_json_int(j, "plan_bytes", (int64_t)sm_plan_estimate(p));
    sm_json_obj_end(j);
    free(tok);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
    return best;
}

/* A session: prefill `at` tokens (timed: prefill throughput), then `n` decode steps at positions
 * at, at+1, ... (best and mean seconds per token). */
typedef struct decode_result {
    double prefill_s, decode_best, decode_mean;
    uint64_t plan_bytes, kv_bytes;
} decode_result;

static decode_result decode_at(const sm_gpt_config *m, const sm_infer_options *io, int at, int n)
{
    sm_infer *s;
    TRY(sm_infer_create(m, NULL, io, &s), "session");
    int32_t *tok = malloc(sizeof *tok * (size_t)(at + n));
    fill_tokens(tok, at + n, m->vocab);
    decode_result r = {0};
    double t0 = sm_bench_now();
    TRY(sm_infer_append(s, tok, at, NULL, 0), "prefill");
    r.prefill_s = sm_bench_now() - t0;
    r.decode_best = 1e30;
    float *lg = malloc(sizeof *lg * (size_t)m->vocab);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double t1 = sm_bench_now();
        TRY(sm_infer_append(s, tok + at + i, 1, lg, 0), "decode");
        double dt = sm_bench_now() - t1;
        sum += dt;
        if (dt < r.decode_best) r.decode_best = dt;
    }
    r.decode_mean = sum / n;
    r.plan_bytes = sm_infer_bytes(s);
    r.kv_bytes = sm_infer_kv_bytes(s);
    free(lg);
    free(tok);
    sm_infer_free(s);
    return r;
}

static void put_decode(sm_json *j, const char *key, int at, const decode_result *r)
{
    sm_json_obj(j, key);
    sm_json_int(j, "prefill_tokens", at);
    sm_json_num(j, "prefill_seconds", r->prefill_s);
    sm_json_num(j, "prefill_tokens_per_second", at / r->prefill_s);
    sm_json_num(j, "decode_seconds_per_token_best", r->decode_best);
    sm_json_num(j, "decode_seconds_per_token_mean", r->decode_mean);
    sm_json_num(j, "decode_tokens_per_second", 1.0 / r->decode_best);
    sm_json_int(j, "kv_bytes", (int64_t)r->kv_bytes);
    sm_json_int(j, "session_bytes", (int64_t)r->plan_bytes);
    sm_json_obj_end(j);
}

int main(int argc, char **argv)
{
    int threads = 0;
    const char *part = "all";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--part") && i + 1 < argc) part = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick] [--part all|uncached|cached|gpt]\n", prog);
            return 2;
        }
    }
    const int all = !strcmp(part, "all"), do_un = all || !strcmp(part, "uncached"),
              do_cached = all || !strcmp(part, "cached"), do_gpt = all || !strcmp(part, "gpt");
    if (!threads) threads = omp_get_max_threads();
    char cpu[128];
    sm_json j;
    sm_json_begin(&j, stdout);
    sm_json_str(&j, "bench", "kv");
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));
    sm_json_int(&j, "threads", threads);

    /* 1. GPT-2 124M at T = 1024 */
    const int T = quick ? 256 : 1024, n = quick ? 4 : 16;
    sm_gpt_config m = gpt2();
    sm_json_obj(&j, "gpt2_124m");
    double un = do_un ? uncached(&j, &m, T, threads, quick ? 1 : 3) : 0;
    if (do_cached) {
        sm_infer_options io;
        sm_infer_options_default(&io);
        io.n_threads = threads;
        io.chunk = 256;
        io.positions = 1024;
        decode_result r = decode_at(&m, &io, T - n, n);
        put_decode(&j, "cached", T - n, &r);
        if (do_un) sm_json_num(&j, "decode_speedup_cached_over_uncached", un / r.decode_best);
    }
    sm_json_obj_end(&j);
    if (!do_gpt) {
        sm_json_int(&j, "peak_rss", (int64_t)sm_bench_peak_rss());
        sm_json_end(&j);
        return 0;
    }

    /* 2. the gpt template at positions 128 and 8192: linear cache, and a windowed ring */
    sm_gpt_config g;
    sm_gpt_config_default(&g);
    const int far = quick ? 2048 : 8192, steps = quick ? 8 : 32;
    g.context = far + steps;
    g.batch = 1;
    g.with_loss = 0;
    sm_infer_options lo;
    sm_infer_options_default(&lo);
    lo.n_threads = threads;
    lo.chunk = 256;
    sm_json_obj(&j, "gpt_template");
    decode_result a = decode_at(&g, &lo, 128, steps), b = decode_at(&g, &lo, far, steps);
    sm_json_obj(&j, "linear_full_attention");
    put_decode(&j, "at_128", 128, &a);
    put_decode(&j, "at_far", far, &b);
    sm_json_num(&j, "ratio_far_over_128", b.decode_best / a.decode_best);
    sm_json_obj_end(&j);
    g.span = 1024;
    lo.ring = 1;
    lo.sink = 4;
    a = decode_at(&g, &lo, 128, steps);
    b = decode_at(&g, &lo, far, steps);
    sm_json_obj(&j, "ring_window_1024_sink_4");
    put_decode(&j, "at_128", 128, &a);
    put_decode(&j, "at_far", far, &b);
    sm_json_num(&j, "ratio_far_over_128", b.decode_best / a.decode_best);
    sm_json_obj_end(&j);
    sm_json_int(&j, "far_position", far);
    sm_json_obj_end(&j);
    sm_json_int(&j, "peak_rss", (int64_t)sm_bench_peak_rss());
    sm_json_end(&j);
    return 0;
}
