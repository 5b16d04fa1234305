/* test_window.c — tiling into overlapping windows and combining their outputs (the seed's
 * SlidingWindowProcessor cases, ported), the batched forward against a window-by-window loop, and the
 * streaming strided evaluation against a reference computed from full logits, one window at a time. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smallmind.h"

static sm_windows tiling(int64_t n, int64_t W, int64_t S)
{
    sm_windows w;
    cr_assert_eq(sm_windows_init(&w, n, W, S), SM_OK, "%s", sm_last_error());
    return w;
}

static sm_window window(const sm_windows *w, int64_t k)
{
    sm_window win;
    cr_assert_eq(sm_windows_get(w, k, &win), SM_OK, "%s", sm_last_error());
    return win;
}

Test(window, counts_follow_the_formula)
{
    cr_assert_eq(tiling(0, 10, 5).count, 0, "an empty input gives no windows");
    cr_assert_eq(tiling(5, 10, 5).count, 1);
    cr_assert_eq(tiling(10, 10, 5).count, 1);
    cr_assert_eq(tiling(8, 4, 2).count, 3);    /* [0-3] [2-5] [4-7] */
    cr_assert_eq(tiling(10, 4, 2).count, 4);   /* [0-3] [2-5] [4-7] [6-9] */
    cr_assert_eq(tiling(7, 4, 2).count, 3);    /* [0-3] [2-5] [4-6] */
    cr_assert_eq(tiling(INT64_MAX, 4096, 1).count, INT64_MAX - 4096 + 1, "no overflow at the largest n");
    /* against enumeration: starts 0, S, 2S, ... until a window reaches the end */
    for (int64_t n = 0; n < 40; n++)
        for (int64_t W = 1; W < 12; W++)
            for (int64_t S = 1; S <= W; S++) {
                int64_t count = 0;
                for (int64_t b = 0; n > 0; b += S) {
                    count++;
                    if (b + W >= n) break;
                }
                sm_windows w = tiling(n, W, S);
                cr_assert_eq(w.count, count, "n=%lld W=%lld S=%lld", (long long)n, (long long)W, (long long)S);
                for (int64_t k = 0; k < w.count; k++) {
                    sm_window v = window(&w, k);
                    cr_assert(v.begin == k * S && v.end == (k * S + W < n ? k * S + W : n));
                    cr_assert_eq(v.own, k ? (k - 1) * S + W : 0);
                }
            }
}

Test(window, bad_sizes_are_refused_with_the_reason)
{
    sm_windows w;
    cr_assert_eq(sm_windows_init(&w, 10, 0, 1), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_windows_init(&w, 10, -100, 1), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_windows_init(&w, 10, 100, 0), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_windows_init(&w, 10, 100, -10), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_windows_init(&w, -1, 100, 10), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_windows_init(&w, 10, 100, 200), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "stride cannot be greater than window"), "%s", sm_last_error());
    w = tiling(8, 4, 2);
    sm_window v;
    cr_assert_eq(sm_windows_get(&w, 3, &v), SM_ERR_INVALID_ARG);
}

Test(window, windows_hold_the_right_tokens_and_the_last_may_be_partial)
{
    /* the seed's [1..7] with W=4, S=2: [1,2,3,4] [3,4,5,6] [5,6,7] */
    sm_windows w = tiling(7, 4, 2);
    int64_t want[3][2] = {{0, 4}, {2, 6}, {4, 7}};
    for (int k = 0; k < 3; k++) {
        sm_window v = window(&w, k);
        cr_assert(v.begin == want[k][0] && v.end == want[k][1], "window %d: [%lld, %lld)", k, (long long)v.begin,
                  (long long)v.end);
    }
    /* 32k tokens in windows of 4k every 2k: 15 windows, all full */
    w = tiling(32768, 4096, 2048);
    cr_assert_eq(w.count, 15);
    for (int64_t k = 0; k < w.count; k++) cr_assert_eq(window(&w, k).end - window(&w, k).begin, 4096);
    int64_t W, S;
    sm_windows_default(8192, &W, &S);
    cr_assert(W == 2048 && S == 1024);
    sm_windows_default(131072, &W, &S);
    cr_assert(W == 16384 && S == 8192);
}

/* Merges the windows' rows (rows[k] holds window k's) into out. */
static void merge_all(const sm_windows *w, sm_window_combine how, float *const *rows, int64_t dim, float *out)
{
    for (int64_t k = 0; k < w->count; k++)
        cr_assert_eq(sm_windows_merge(w, how, k, rows[k], dim, out), SM_OK, "%s", sm_last_error());
}

Test(window, a_single_window_is_returned_as_is)
{
    sm_windows w = tiling(5, 10, 5);
    float in[15], out[15];
    for (int i = 0; i < 15; i++) in[i] = (float)i;
    float *rows[1] = {in};
    for (int how = SM_WINDOW_MEAN; how <= SM_WINDOW_LAST_CONTEXT; how++) {
        memset(out, 0, sizeof out);
        merge_all(&w, (sm_window_combine)how, rows, 3, out);
        cr_assert_arr_eq(out, in, sizeof in, "%s", sm_window_combine_name((sm_window_combine)how));
    }
}

Test(window, overlaps_are_averaged_maxed_or_taken_from_the_most_context)
{
    sm_windows w = tiling(6, 4, 2);   /* [0-3] [2-5] */
    float a[8], b[8], out[12];
    for (int i = 0; i < 8; i++) a[i] = 1, b[i] = 3;
    float *rows[2] = {a, b};
    merge_all(&w, SM_WINDOW_MEAN, rows, 2, out);
    float mean[12] = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    cr_assert_arr_eq(out, mean, sizeof mean, "positions 0-1 from the first, 2-3 averaged, 4-5 from the second");

    float c[4] = {0, 1, 2, 3}, d[4] = {3, 2, 1, 0}, o[6];
    float *r2[2] = {c, d};
    merge_all(&w, SM_WINDOW_MAX, r2, 1, o);
    float max[6] = {0, 1, 3, 3, 1, 0};
    cr_assert_arr_eq(o, max, sizeof max);
    merge_all(&w, SM_WINDOW_LAST_CONTEXT, r2, 1, o);
    float last[6] = {0, 1, 2, 3, 1, 0};
    cr_assert_arr_eq(o, last, sizeof last, "the first window saw positions 2-3 with more context");

    /* three windows over a partial tail: mean = sum over covering windows / their count */
    w = tiling(9, 5, 2);   /* [0-4] [2-6] [4-8] */
    float x[3][5], got[9], sum[9] = {0}, cnt[9] = {0};
    float *r3[3] = {x[0], x[1], x[2]};
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < 5; t++) {
            x[k][t] = (float)((k * 7 + t * 3) % 5) - 1.5f;
            if (2 * k + t < 9) sum[2 * k + t] += x[k][t], cnt[2 * k + t]++;
        }
    merge_all(&w, SM_WINDOW_MEAN, r3, 1, got);
    for (int p = 0; p < 9; p++) cr_assert_float_eq(got[p], sum[p] / cnt[p], 1e-6, "position %d", p);
    sm_window_combine how;
    cr_assert_eq(sm_window_combine_parse("last-context", &how), SM_OK);
    cr_assert_eq(how, SM_WINDOW_LAST_CONTEXT);
    cr_assert_eq(sm_window_combine_parse("median", &how), SM_ERR_INVALID_ARG);
}

/* ---- through a model ----------------------------------------------------------------------------- */

enum { V = 256, T = 16 };

typedef struct model {
    sm_graph *g;
    sm_gpt_tensors io;
    sm_plan *plan;
    sm_runtime *rt;
} model;

static model model_open(int B, int with_loss)
{
    model m;
    sm_gpt_config c = {.vocab = V, .context = T, .n_layer = 2, .n_head = 2, .n_embd = 32, .mlp_ratio = 4,
                       .tied_embeddings = 1, .batch = B, .seq = T, .with_loss = with_loss};
    cr_assert_eq(sm_graph_create(&m.g), SM_OK);
    cr_assert_eq(sm_gpt_build(m.g, &c, &m.io), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_plan_create(m.g, NULL, &m.plan), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_create(m.g, m.plan, &m.rt), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_init_params(m.rt, 7), SM_OK);
    return m;
}

static void model_close(model *m)
{
    sm_runtime_free(m->rt);
    sm_plan_free(m->plan);
    sm_graph_free(m->g);
}

static int32_t *random_tokens(int64_t n, uint32_t seed)
{
    int32_t *t = malloc(sizeof *t * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)((seed = seed * 1664525u + 1013904223u) >> 24);
    return t;
}

/* Window k of (n, W, S) computed here, not by the library. */
static void ref_window(int64_t n, int64_t S, int64_t k, int64_t *begin, int64_t *end, int64_t *own)
{
    *begin = k * S;
    *end = *begin + T < n ? *begin + T : n;
    *own = k ? (k - 1) * S + T : 0;
}

/* The logits of one window run alone (B = 1), padded with token 0. */
static void run_one(model *m, const int32_t *tokens, int64_t begin, int64_t end, float *logits)
{
    int32_t x[T] = {0};
    memcpy(x, tokens + begin, sizeof *x * (size_t)(end - begin));
    cr_assert_eq(sm_runtime_set(m->rt, m->io.tokens, x, sizeof x), SM_OK);
    cr_assert_eq(sm_runtime_run(m->rt), SM_OK);
    cr_assert_eq(sm_runtime_get(m->rt, m->io.logits, logits, sizeof *logits * T * V), SM_OK);
}

Test(window, the_batched_forward_matches_a_window_by_window_loop)
{
    model one = model_open(1, 0), batched = model_open(3, 0);
    const int64_t n = 53, S = 6;
    int32_t *tok = random_tokens(n, 5);
    float *out = malloc(sizeof *out * n * V), *sum = calloc((size_t)(n * V), sizeof *sum), *first = malloc(sizeof *first * n * V),
          *lg = malloc(sizeof *lg * T * V);
    int cover[53] = {0};
    for (int64_t k = 0, b, e, own; k == 0 || (k - 1) * S + T < n; k++) {
        ref_window(n, S, k, &b, &e, &own);
        run_one(&one, tok, b, e, lg);
        for (int64_t p = b; p < e; p++) {
            cover[p]++;
            for (int v = 0; v < V; v++) sum[p * V + v] += lg[(p - b) * V + v];
            if (p >= own) memcpy(first + p * V, lg + (p - b) * V, sizeof *lg * V);
        }
    }
    cr_assert_eq(sm_windows_forward(batched.rt, batched.io.tokens, batched.io.logits, tok, n, S, SM_WINDOW_MEAN, out),
                 SM_OK, "%s", sm_last_error());
    for (int64_t i = 0; i < n * V; i++)
        cr_assert_float_eq(out[i], sum[i] / (float)cover[i / V], 1e-4, "mean at position %lld", (long long)(i / V));
    cr_assert_eq(sm_windows_forward(batched.rt, batched.io.tokens, batched.io.logits, tok, n, S, SM_WINDOW_LAST_CONTEXT,
                                    out), SM_OK);
    for (int64_t i = 0; i < n * V; i++) cr_assert_float_eq(out[i], first[i], 1e-4);
    cr_assert_eq(sm_windows_forward(batched.rt, batched.io.tokens, batched.io.logits, tok, n, T + 1, SM_WINDOW_MEAN, out),
                 SM_ERR_INVALID_ARG);
    free(tok), free(out), free(sum), free(first), free(lg);
    model_close(&one);
    model_close(&batched);
}

/* Copies every parameter of src into dst (same template, another B). */
static void copy_params(model *dst, model *src)
{
    for (sm_tensor t = 0; t < sm_graph_tensor_count(src->g); t++) {
        sm_role role;
        const char *name;
        sm_tensor u;
        void *a, *b;
        cr_assert_eq(sm_tensor_info(src->g, t, &name, NULL, &role, NULL, NULL), SM_OK);
        if (role != SM_ROLE_PARAM) continue;
        cr_assert_eq(sm_graph_find(dst->g, name, &u), SM_OK);
        cr_assert_eq(sm_runtime_data(src->rt, t, &a), SM_OK);
        cr_assert_eq(sm_runtime_data(dst->rt, u, &b), SM_OK);
        memcpy(b, a, sizeof(float) * (size_t)sm_tensor_numel(src->g, t));
    }
}

/* The strided NLL from full logits, one window at a time, in double. */
static double reference_nll(model *m, const int32_t *tok, int64_t n, int64_t S, int64_t *predicted)
{
    float *lg = malloc(sizeof *lg * T * V);
    double nll = 0;
    int64_t n_in = n - 1;
    *predicted = 0;
    for (int64_t k = 0, b, e, own; n_in > 0 && (k == 0 || (k - 1) * S + T < n_in); k++) {
        ref_window(n_in, S, k, &b, &e, &own);
        run_one(m, tok, b, e, lg);
        for (int64_t p = own; p < e; p++) {
            const float *z = lg + (p - b) * V;
            double mx = z[0], s = 0;
            for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (int v = 0; v < V; v++) s += exp(z[v] - mx);
            nll += mx + log(s) - z[tok[p + 1]];
            ++*predicted;
        }
    }
    free(lg);
    return nll;
}

static sm_window_eval_result eval(model *m, const int32_t *tok, int64_t n, int64_t S, int64_t piece)
{
    sm_window_eval *e;
    sm_window_eval_result r;
    cr_assert_eq(sm_window_eval_create(m->rt, m->io.tokens, m->io.targets, m->io.loss, S, &e), SM_OK, "%s",
                 sm_last_error());
    for (int64_t i = 0; i < n; i += piece)
        cr_assert_eq(sm_window_eval_push(e, tok + i, n - i < piece ? n - i : piece), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_window_eval_finish(e, &r), SM_OK, "%s", sm_last_error());
    sm_window_eval_free(e);
    return r;
}

Test(window, strided_eval_matches_a_reference_of_the_same_windows)
{
    model ref = model_open(1, 0), m = model_open(3, 1);
    copy_params(&m, &ref);
    int64_t sizes[] = {2, 9, 17, 18, 101}, strides[] = {1, 5, 8, T};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) {
            int64_t n = sizes[i], S = strides[j], predicted;
            int32_t *tok = random_tokens(n, (uint32_t)(n * 31 + S));
            double want = reference_nll(&ref, tok, n, S, &predicted);
            sm_window_eval_result r = eval(&m, tok, n, S, n);
            cr_assert_eq(r.predicted, n - 1, "every token but the first, once (n=%lld S=%lld)", (long long)n, (long long)S);
            cr_assert_eq(r.predicted, predicted);
            cr_assert_float_eq(r.nll, want, 1e-5 * fabs(want), "n=%lld S=%lld: %.9g vs %.9g", (long long)n,
                               (long long)S, r.nll, want);
            cr_assert_eq(r.tokens, n);
            /* pieces of any size give the same runs, so the same bits */
            for (int64_t piece = 1; piece < 40; piece += 13) {
                sm_window_eval_result q = eval(&m, tok, n, S, piece);
                cr_assert(q.nll == r.nll && q.windows == r.windows && q.runs == r.runs, "piece %lld", (long long)piece);
            }
            free(tok);
        }
    model_close(&ref);
    model_close(&m);
}

Test(window, eval_is_independent_of_the_thread_count_and_handles_tiny_streams)
{
    model m = model_open(2, 1);
    int32_t *tok = random_tokens(200, 3);
    sm_window_eval_result a = eval(&m, tok, 200, 5, 64);
    cr_assert_eq(sm_runtime_set_threads(m.rt, 1), SM_OK);
    sm_window_eval_result b = eval(&m, tok, 200, 5, 64);
    cr_assert(a.nll == b.nll, "1 thread %.17g, default %.17g", b.nll, a.nll);
    sm_window_eval_result one = eval(&m, tok, 1, 5, 1), none = eval(&m, tok, 0, 5, 1);
    cr_assert(one.predicted == 0 && none.predicted == 0 && isnan(one.cross_entropy) && one.runs == 0);
    sm_window_eval *e;
    cr_assert_eq(sm_window_eval_create(m.rt, m.io.tokens, m.io.targets, m.io.loss, T + 1, &e), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "stride cannot be greater than window"), "%s", sm_last_error());
    cr_assert_eq(sm_window_eval_create(m.rt, m.io.tokens, m.io.tokens, m.io.tokens, 4, &e), SM_ERR_SHAPE);
    free(tok);
    model_close(&m);
}
