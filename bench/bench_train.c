/* bench_train.c — time of one whole training step (forward, backward, AdamW) of the GPT template, as
 * JSON, against the FP32 peak of this machine measured in the same run.
 *
 *   bench_train [--steps N] [--warmup W] [--config c|b|gpt2] [--threads 1|2] [--top K] [--precision P,...]
 *
 * Configs (issue 3, point 9):
 *   c     L=6  C=384 H=6  V=256   B=8 T=256   byte-level demo model
 *   b     L=6  C=384 H=6  V=50257 B=4 T=256   the same with GPT-2's vocabulary
 *   gpt2  L=12 C=768 H=12 V=50257 B=4 T=64    the GPT-2 124M shape (1024 learned positions)
 * each at 1 and 2 threads, built exactly as `smallmind train` builds them (sm_gpt_build, tied
 * embeddings, sm_graph_backward, sm_graph_adamw with the default config incl. gradient clipping,
 * packed plan), W warm-up steps, then N timed steps: the median is reported (and the minimum).
 *
 * Model FLOPs per step (what "gflops" and "frac_peak" count; an explicit formula, not the plan's sum):
 *   matmul forward   2·B·T·(12·L·C² + C·V)       qkv 3C², attn proj C², fc 4C², mlp proj 4C² per layer;
 *                                                 the lm head C·V
 *   matmul backward  2 × forward                  dX and dW for every matmul
 *   attention fwd    L · 4·B·C·T(T+1)/2           Q·Kᵀ and P·V over the causal half (H heads of C/H)
 *   attention bwd    2.5 × attention forward      dP, dV, dK, dQ and the scores S; the kernel's extra
 *                                                 recompute of the forward is not counted
 *   model_flops = 3·matmul_fwd + 3.5·attn_fwd. Norms, GELU, softmax, cross-entropy, AdamW and the
 *   embedding are not counted (they are time the step pays without FLOPs credit). The plan's own FLOP
 *   count (every node's op table estimate) is printed next to it as plan_flops.
 * frac_peak = model GFLOPS / the FMA-loop probe with the same thread count (sm_bench_peak_gflops),
 * probed (best of three probes) right before and right after each run; the larger is the peak.
 * On a shared machine another process lowers a probe as it slows the step: a run whose two probes
 * differ ("peak_before" vs "peak_after"), or whose 2-thread probe is far below twice the 1-thread
 * one, was disturbed, and so is one whose slowest step ("ms_per_step_max") is far above the median.
 * The load averages before and after the whole run are printed too.
 *
 * Per-op breakdown: the timed steps run with the executor's profiling on (sm_runtime_set_profile:
 * thread 0 reads the clock at the barrier after each node; a node's time includes waiting for the
 * slowest thread). Each node's median over the timed steps is taken (robust to one disturbed step);
 * "by_op" sums those by op kind, "top" lists the slowest nodes by name.
 * Peak RSS is reset (/proc/self/clear_refs) before each run and read after it.
 *
 * --precision fp32,bf16 (default fp32) plans each config under each policy in turn, one after the
 * other at the same thread count, so their step times are side by side in one run ("precision" in
 * each result; "speedup_vs_first" against the list's first policy).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "smallmind.h"

typedef struct bench_config {
    const char *name;
    int L, C, H, V, B, T;
    int context;   /* learned positions: GPT-2 has 1024, so its 124M parameters include them all */
} bench_config;

static const bench_config configs[] = {
    {"c", 6, 384, 6, 256, 8, 256, 256},
    {"b", 6, 384, 6, 50257, 4, 256, 256},
    {"gpt2", 12, 768, 12, 50257, 4, 64, 1024},
};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

typedef struct opts {
    int steps, warmup, top;
    const char *only;    /* one config by name, or NULL for all */
    int threads;         /* 0 = 1 and 2 */
    sm_precision prec[SM_PRECISION_COUNT];   /* --precision: the policies, in order */
    int n_prec;
} opts;

/* The model FLOPs of the header comment. */
static double matmul_fwd_flops(const bench_config *c)
{
    return 2.0 * c->B * c->T * (12.0 * c->L * c->C * c->C + (double)c->C * c->V);
}
static double attn_fwd_flops(const bench_config *c)
{
    return (double)c->L * 4.0 * c->B * c->C * 0.5 * c->T * (c->T + 1.0);
}
static double model_flops(const bench_config *c) { return 3.0 * matmul_fwd_flops(c) + 3.5 * attn_fwd_flops(c); }

/* Elements of every parameter the graph trains (the ones AdamW updates). */
static int64_t n_params(const sm_graph *g)
{
    int64_t n = 0;
    for (sm_tensor t = 0; t < sm_graph_tensor_count(g); t++) {
        sm_role role;
        if (!sm_tensor_info(g, t, NULL, NULL, &role, NULL, NULL) && role == SM_ROLE_PARAM) n += sm_tensor_numel(g, t);
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Resets VmHWM to the current RSS so each run's peak is its own (Linux >= 4.0; ignored elsewhere). */
static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static void load_avg(double out[3])
{
    out[0] = out[1] = out[2] = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3) out[0] = out[1] = out[2] = NAN;
    fclose(f);
}

/* Best of three FMA-loop probes (each itself the best of three short runs). */
static double probe_peak(int threads)
{
    double best = 0;
    for (int i = 0; i < 3; i++) best = fmax(best, sm_bench_peak_gflops(threads, 0.2));
    return best;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_train: %s: %s\n", what, sm_last_error());
    return 1;
}

/* Per-node seconds of each timed step, from the differences of the executor's running totals. */
typedef struct step_log {
    int n_nodes, n_steps;
    double *prev;   /* totals after the previous step */
    double *sec;    /* [step][node] */
} step_log;

static int log_step(step_log *lg, const sm_runtime *rt, int step)
{
    const sm_profile_step *st;
    int n, runs;
    if (sm_runtime_profile(rt, &st, &n, &runs) || n != lg->n_nodes) return die("profile");
    for (int s = 0; s < n; s++) {
        lg->sec[(size_t)step * n + s] = st[s].seconds - lg->prev[s];
        lg->prev[s] = st[s].seconds;
    }
    return 0;
}

typedef struct node_time {
    sm_op_kind op;
    sm_tensor out;
    double seconds;
} node_time;

static int cmp_node_desc(const void *a, const void *b)
{
    double x = ((const node_time *)a)->seconds, y = ((const node_time *)b)->seconds;
    return (x < y) - (x > y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* The breakdown: each node's median over the timed steps (robust to a step disturbed by another
 * process), summed by op kind, and the `top` slowest nodes by name. */
static int print_profile(sm_json *j, const step_log *lg, const sm_runtime *rt, const sm_graph *g, int top)
{
    const sm_profile_step *st;
    int n, runs;
    if (sm_runtime_profile(rt, &st, &n, &runs)) return die("profile");
    node_time *nodes = malloc((size_t)n * sizeof *nodes);
    double *col = malloc((size_t)lg->n_steps * sizeof *col), kinds[SM_OP_COUNT] = {0}, total = 0;
    if (!nodes || !col) return die("out of memory");
    for (int s = 0; s < n; s++) {
        for (int k = 0; k < lg->n_steps; k++) col[k] = lg->sec[(size_t)k * n + s];
        nodes[s] = (node_time){st[s].op, st[s].out, median(col, lg->n_steps)};
        kinds[st[s].op] += nodes[s].seconds;
        total += nodes[s].seconds;
    }
    sm_json_num(j, "profile_ms_per_step", total * 1e3);
    sm_json_arr(j, "by_op");
    for (;;) {
        int best = -1;
        for (int k = 0; k < SM_OP_COUNT; k++)
            if (kinds[k] > 0 && (best < 0 || kinds[k] > kinds[best])) best = k;
        if (best < 0) break;
        sm_json_obj(j, NULL);
        sm_json_str(j, "op", sm_op_name((sm_op_kind)best));
        sm_json_num(j, "ms", kinds[best] * 1e3);
        sm_json_num(j, "frac", kinds[best] / total);
        sm_json_obj_end(j);
        kinds[best] = 0;
    }
    sm_json_arr_end(j);
    qsort(nodes, (size_t)n, sizeof *nodes, cmp_node_desc);
    sm_json_arr(j, "top");
    for (int s = 0; s < top && s < n; s++) {
        const char *name = "?";
        sm_tensor_info(g, nodes[s].out, &name, NULL, NULL, NULL, NULL);
        sm_json_obj(j, NULL);
        sm_json_str(j, "node", name);
        sm_json_str(j, "op", sm_op_name(nodes[s].op));
        sm_json_num(j, "ms", nodes[s].seconds * 1e3);
        sm_json_obj_end(j);
    }
    sm_json_arr_end(j);
    free(nodes), free(col);
    return 0;
}

/* Builds, plans and trains one config at one thread count; prints its result object. */
static int bench_one(sm_json *j, const bench_config *bc, int threads, const opts *o, sm_precision prec,
                     double *ms_first)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = bc->V;
    c.context = bc->context;
    c.n_layer = bc->L;
    c.n_head = bc->H;
    c.n_embd = bc->C;
    c.batch = bc->B;
    c.seq = bc->T;
    c.with_loss = 1;
    sm_adamw_config ac;
    sm_adamw_config_default(&ac);
    sm_graph *g = NULL;
    sm_plan *p = NULL;
    sm_runtime *rt = NULL;
    sm_gpt_tensors io;
    sm_adamw_tensors opt;
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.strategy = SM_PLAN_PACKED;
    po.n_threads = threads;
    po.precision = prec;
    const double peak_before = probe_peak(threads);
    reset_peak_rss();
    if (sm_graph_create(&g) || sm_gpt_build(g, &c, &io)) return die("build");
    if (sm_graph_backward(g, io.loss) || sm_graph_adamw(g, &ac, &opt)) return die("training graph");
    if (sm_plan_create(g, &po, &p)) return die("plan");
    if (sm_runtime_create(g, p, &rt) || sm_runtime_set_threads(rt, threads)) return die("runtime");
    if (sm_runtime_init_params(rt, 1)) return die("init");

    const size_t n_tok = (size_t)bc->B * bc->T;
    int32_t *tok = malloc(n_tok * sizeof *tok), *tgt = malloc(n_tok * sizeof *tgt);
    double *times = malloc((size_t)o->steps * sizeof *times);
    const int n_nodes = sm_graph_node_count(sm_plan_graph(p));   /* the plan's steps: passes add nodes */
    step_log lg = {n_nodes, o->steps, calloc((size_t)n_nodes, sizeof(double)),
                   malloc((size_t)n_nodes * o->steps * sizeof(double))};
    if (!tok || !tgt || !times || !lg.prev || !lg.sec) return die("out of memory");
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    float loss_first = NAN, loss = NAN;
    for (int step = 0; step < o->warmup + o->steps; step++) {
        if (step == o->warmup && sm_runtime_set_profile(rt, 1)) return die("profile");
        /* a fresh random batch each step; targets are the next tokens, as in training */
        for (size_t i = 0; i < n_tok; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            tok[i] = (int32_t)((rng >> 33) % (uint64_t)bc->V);
        }
        for (size_t i = 0; i < n_tok; i++) tgt[i] = (i + 1) % (size_t)bc->T ? tok[i + 1] : tok[i];
        float hp[SM_ADAMW_HPARAMS];
        sm_adamw_hparams(&ac, step, hp);
        const double t0 = sm_bench_now();
        if (sm_runtime_set(rt, io.tokens, tok, n_tok * sizeof *tok) ||
            sm_runtime_set(rt, io.targets, tgt, n_tok * sizeof *tgt) ||
            sm_runtime_set(rt, opt.hparams, hp, sizeof hp) || sm_runtime_run(rt))
            return die("run");
        const double dt = sm_bench_now() - t0;
        if (step >= o->warmup) {
            times[step - o->warmup] = dt;
            if (log_step(&lg, rt, step - o->warmup)) return 1;
        }
        sm_runtime_get(rt, io.loss, &loss, sizeof loss);
        if (step == 0) loss_first = loss;
    }
    const size_t rss = sm_bench_peak_rss();
    const double peak_after = probe_peak(threads), peak = fmax(peak_before, peak_after);
    const double med = median(times, o->steps);
    const double flops = model_flops(bc), gflops = flops / med * 1e-9;

    sm_json_obj(j, NULL);
    sm_json_str(j, "config", bc->name);
    sm_json_int(j, "L", bc->L), sm_json_int(j, "C", bc->C), sm_json_int(j, "H", bc->H);
    sm_json_int(j, "V", bc->V), sm_json_int(j, "B", bc->B), sm_json_int(j, "T", bc->T);
    sm_json_int(j, "context", bc->context);
    sm_json_int(j, "params", n_params(g));
    sm_json_int(j, "threads", threads);
    sm_json_str(j, "precision", sm_precision_name(prec));
    sm_json_int(j, "nodes", sm_graph_node_count(g));
    sm_json_num(j, "ms_per_step", med * 1e3);
    if (*ms_first > 0) sm_json_num(j, "speedup_vs_first", *ms_first / (med * 1e3));
    else *ms_first = med * 1e3;
    sm_json_num(j, "ms_per_step_min", times[0] * 1e3);
    sm_json_num(j, "ms_per_step_max", times[o->steps - 1] * 1e3);
    sm_json_num(j, "tokens_per_s", (double)n_tok / med);
    sm_json_num(j, "model_gflop", flops * 1e-9);
    sm_json_num(j, "matmul_gflop", 3.0 * matmul_fwd_flops(bc) * 1e-9);
    sm_json_num(j, "attention_gflop", 3.5 * attn_fwd_flops(bc) * 1e-9);
    sm_json_num(j, "plan_gflop", sm_plan_flops(p) * 1e-9);
    sm_json_num(j, "gflops", gflops);
    sm_json_num(j, "peak_gflops", peak);
    sm_json_num(j, "peak_before", peak_before);
    sm_json_num(j, "peak_after", peak_after);
    sm_json_num(j, "frac_peak", gflops / peak);
    sm_json_int(j, "peak_rss_bytes", (int64_t)rss);
    sm_json_int(j, "plan_bytes", (int64_t)sm_plan_total_bytes(p));
    sm_json_num(j, "loss_first", loss_first);
    sm_json_num(j, "loss_last", loss);
    int err = print_profile(j, &lg, rt, sm_plan_graph(p), o->top);
    sm_json_obj_end(j);
    fflush(j->f);
    free(tok), free(tgt), free(times), free(lg.prev), free(lg.sec);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
    return err;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--steps N] [--warmup W] [--config c|b|gpt2] [--threads 1|2] [--top K] "
                    "[--precision fp32,bf16,...]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    opts o = {.steps = 5, .warmup = 2, .top = 12, .only = NULL, .threads = 0, .prec = {SM_PRECISION_FP32}, .n_prec = 1};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage(argv[0]);
        if (!strcmp(argv[i], "--steps")) o.steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup")) o.warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--top")) o.top = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--config")) o.only = argv[++i];
        else if (!strcmp(argv[i], "--threads")) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision")) {
            char list[64], *save = NULL;
            snprintf(list, sizeof list, "%s", argv[++i]);
            o.n_prec = 0;
            for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save))
                if (o.n_prec == SM_PRECISION_COUNT || sm_precision_parse(w, &o.prec[o.n_prec++])) return usage(argv[0]);
            if (!o.n_prec) return usage(argv[0]);
        }
        else return usage(argv[0]);
    }
    if (o.steps < 1 || o.warmup < 0 || o.top < 0 || o.threads < 0 || o.threads > 2) return usage(argv[0]);
    int found = !o.only;
    for (int k = 0; k < N_CONFIGS; k++) found |= o.only && !strcmp(o.only, configs[k].name);
    if (!found) return usage(argv[0]);

    char cpu[128];
    double load0[3], load1[3];
    load_avg(load0);
    sm_json j;
    sm_json_begin(&j, stdout);
    sm_json_str(&j, "bench", "train");
    sm_json_str(&j, "cpu", sm_bench_cpu_name(cpu, sizeof cpu));
    sm_json_int(&j, "simd_width", sm_bench_simd_width());
    sm_json_int(&j, "warmup_steps", o.warmup);
    sm_json_int(&j, "timed_steps", o.steps);
    sm_json_str(&j, "flops", "3*2*B*T*(12*L*C^2 + C*V) + 3.5*L*4*B*C*T*(T+1)/2");
    sm_json_arr(&j, "results");
    int err = 0;
    for (int k = 0; k < N_CONFIGS && !err; k++) {
        if (o.only && strcmp(o.only, configs[k].name)) continue;
        for (int t = 1; t <= 2 && !err; t++) {
            double ms_first = 0;
            for (int q = 0; q < o.n_prec && !err; q++)
                if (!o.threads || o.threads == t) err = bench_one(&j, &configs[k], t, &o, o.prec[q], &ms_first);
        }
    }
    sm_json_arr_end(&j);
    load_avg(load1);
    sm_json_arr(&j, "loadavg_before");
    for (int i = 0; i < 3; i++) sm_json_num(&j, NULL, load0[i]);
    sm_json_arr_end(&j);
    sm_json_arr(&j, "loadavg_after");
    for (int i = 0; i < 3; i++) sm_json_num(&j, NULL, load1[i]);
    sm_json_arr_end(&j);
    sm_json_end(&j);
    return err;
}
