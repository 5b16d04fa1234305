/* bench_window.c — windowed evaluation over long inputs, as JSON.
 *
 *   bench_window [--tokens N]   (default 10000000)
 *     memory: a forked child per stream length (10k and N tokens) runs the strided evaluation
 *             (sm_window_eval, W = 64, S = 32, B = 16) of a small byte-level model (L=1 C=32 H=2,
 *             random weights) over a synthetic token stream made a piece at a time, and reports its
 *             peak RSS (VmHWM): flat in the length if the windows are.
 *     speed:  gpt-tiny's shape (L=2 C=64 H=2 V=256, T=64, B=8) over 200k tokens: the plain batched
 *             non-overlapping loop (consecutive windows of T cut from an array, as eval did before
 *             windows) against sm_window_eval at S = W and S = W/2; each timed in turn, best of 3.
 * Reproduce: docs/PERFORMANCE.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "smallmind.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_window: %s: %s\n", what, sm_last_error());
    exit(1);
}

typedef struct model {
    sm_graph *g;
    sm_gpt_tensors io;
    sm_plan *plan;
    sm_runtime *rt;
    int B, T;
} model;

static model open_model(int L, int C, int H, int B, int T)
{
    model m = {.B = B, .T = T};
    sm_gpt_config c = {.vocab = 256, .context = T, .n_layer = L, .n_head = H, .n_embd = C, .mlp_ratio = 4,
                       .tied_embeddings = 1, .batch = B, .seq = T, .with_loss = 1};
    if (sm_graph_create(&m.g) || sm_gpt_build(m.g, &c, &m.io) || sm_plan_create(m.g, NULL, &m.plan) ||
        sm_runtime_create(m.g, m.plan, &m.rt) || sm_runtime_init_params(m.rt, 1))
        die("model");
    return m;
}

static uint32_t next_token(uint32_t *s) { return (*s = *s * 1664525u + 1013904223u) >> 24; }

/* Strided eval over n synthetic tokens pushed 64k at a time; returns the cross-entropy. */
static double eval_stream(model *m, int64_t n, int64_t S, double *seconds)
{
    enum { PIECE = 1 << 16 };
    static int32_t piece[PIECE];
    uint32_t seed = 12345;
    sm_window_eval *e;
    sm_window_eval_result r;
    double t0 = sm_bench_now();
    if (sm_window_eval_create(m->rt, m->io.tokens, m->io.targets, m->io.loss, S, &e)) die("eval");
    for (int64_t i = 0; i < n; i += PIECE) {
        int64_t k = n - i < PIECE ? n - i : PIECE;
        for (int64_t j = 0; j < k; j++) piece[j] = (int32_t)next_token(&seed);
        if (sm_window_eval_push(e, piece, k)) die("push");
    }
    if (sm_window_eval_finish(e, &r)) die("finish");
    sm_window_eval_free(e);
    *seconds = sm_bench_now() - t0;
    return r.cross_entropy;
}

typedef struct child_result {
    double peak_rss, seconds, ce;
} child_result;

/* Runs one stream length in a fresh process, so each peak RSS is its own. */
static child_result measure_child(int64_t n)
{
    int fd[2];
    child_result r = {0};
    if (pipe(fd)) die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        model m = open_model(1, 32, 2, 16, 64);
        r.ce = eval_stream(&m, n, 32, &r.seconds);
        r.peak_rss = (double)sm_bench_peak_rss();
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    int st;
    ssize_t got = read(fd[0], &r, sizeof r);
    waitpid(pid, &st, 0);
    close(fd[0]), close(fd[1]);
    if (got != (ssize_t)sizeof r || !WIFEXITED(st) || WEXITSTATUS(st)) die("child");
    return r;
}

/* The plain batched non-overlapping loop: windows of T at 0, T, 2T, ..., B per run. */
static double eval_plain(model *m, const int32_t *tok, int64_t n)
{
    int B = m->B, T = m->T;
    int32_t *x = malloc(sizeof *x * (size_t)(2 * B * T)), *y = x + B * T;
    double nll = 0;
    int64_t count = 0;
    for (int64_t start = 0; start < n - 1; start += (int64_t)B * T) {
        int64_t m_run = 0;
        for (int64_t i = 0; i < (int64_t)B * T; i++) {
            int64_t p = start + i;
            x[i] = p + 1 < n ? tok[p] : 0;
            y[i] = p + 1 < n ? tok[p + 1] : -1;
            m_run += p + 1 < n;
        }
        float loss;
        size_t bytes = sizeof *x * (size_t)(B * T);
        if (sm_runtime_set(m->rt, m->io.tokens, x, bytes) || sm_runtime_set(m->rt, m->io.targets, y, bytes) ||
            sm_runtime_run(m->rt) || sm_runtime_get(m->rt, m->io.loss, &loss, sizeof loss))
            die("plain run");
        nll += (double)loss * (double)m_run;
        count += m_run;
    }
    free(x);
    return nll / (double)count;
}

int main(int argc, char **argv)
{
    int64_t big = 10000000;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) big = atoll(argv[++i]);
    sm_json j;
    sm_json_begin(&j, stdout);
    char cpu[128];
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));

    sm_json_arr(&j, "memory");
    int64_t lengths[2] = {10000, big};
    for (int i = 0; i < 2; i++) {
        child_result r = measure_child(lengths[i]);
        sm_json_obj(&j, NULL);
        sm_json_str(&j, "model", "L=1 C=32 H=2 V=256, W=64 S=32 B=16");
        sm_json_int(&j, "tokens", lengths[i]);
        sm_json_num(&j, "peak_rss_mib", r.peak_rss / 1048576.0);
        sm_json_num(&j, "seconds", r.seconds);
        sm_json_num(&j, "tokens_per_s", (double)lengths[i] / r.seconds);
        sm_json_num(&j, "cross_entropy", r.ce);
        sm_json_obj_end(&j);
    }
    sm_json_arr_end(&j);

    enum { N = 200000 };
    model m = open_model(2, 64, 2, 8, 64);
    int32_t *tok = malloc(sizeof *tok * N);
    uint32_t seed = 99;
    for (int i = 0; i < N; i++) tok[i] = (int32_t)next_token(&seed);
    double best[3] = {INFINITY, INFINITY, INFINITY}, ce[3] = {0};
    for (int rep = 0; rep < 3; rep++)
        for (int v = 0; v < 3; v++) {
            double t0 = sm_bench_now(), s;
            if (v == 0) ce[v] = eval_plain(&m, tok, N), s = sm_bench_now() - t0;
            else {
                /* a stream of the same tokens: push the array */
                sm_window_eval *e;
                sm_window_eval_result r;
                if (sm_window_eval_create(m.rt, m.io.tokens, m.io.targets, m.io.loss, v == 1 ? 64 : 32, &e) ||
                    sm_window_eval_push(e, tok, N) || sm_window_eval_finish(e, &r))
                    die("eval");
                sm_window_eval_free(e);
                ce[v] = r.cross_entropy;
                s = sm_bench_now() - t0;
            }
            best[v] = s < best[v] ? s : best[v];
        }
    sm_json_obj(&j, "speed");
    sm_json_str(&j, "model", "gpt-tiny shape L=2 C=64 H=2 V=256, T=64, B=8, random weights");
    sm_json_int(&j, "tokens", N);
    const char *names[3] = {"plain_non_overlapping", "window_eval_s_eq_w", "window_eval_s_half_w"};
    for (int v = 0; v < 3; v++) {
        sm_json_obj(&j, names[v]);
        sm_json_num(&j, "seconds", best[v]);
        sm_json_num(&j, "tokens_per_s", N / best[v]);
        sm_json_num(&j, "cross_entropy", ce[v]);
        sm_json_obj_end(&j);
    }
    sm_json_num(&j, "s_eq_w_throughput_ratio", best[0] / best[1]);
    sm_json_bool(&j, "s_eq_w_same_result", ce[0] == ce[1]);
    sm_json_obj_end(&j);
    sm_json_end(&j);
    free(tok);
    sm_runtime_free(m.rt);
    sm_plan_free(m.plan);
    sm_graph_free(m.g);
    return 0;
}
