/* window_run.c — pushing the windows of a long sequence through one plan, B windows per run: the
 * combined forward (sm_windows_forward) and the streaming strided evaluation (sm_window_eval). Memory
 * is the plan's plus a few windows of tokens, whatever the sequence's length. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "smallmind.h"

/* B and W of an i32 [B, W] input. */
static sm_status input_shape(const sm_runtime *rt, sm_tensor t, const char *what, int64_t *B, int64_t *W)
{
    const char *name;
    sm_dtype dt;
    int nd;
    int64_t sh[SM_MAX_DIMS];
    sm_status st = sm_tensor_info(sm_runtime_graph(rt), t, &name, &dt, NULL, &nd, sh);
    if (st) return sm_error_prefix(st, "windows: the %s tensor: ", what);
    if (dt != SM_I32 || nd != 2)
        return sm_error(SM_ERR_SHAPE, "windows: the %s tensor '%s' must be i32 [B, W] (B windows of W tokens per run), "
                        "got a %d-dimensional %s", what, name, nd, sm_dtype_name(dt));
    *B = sh[0];
    *W = sh[1];
    return SM_OK;
}

/* Fills row b of x [B, W] with window win's tokens, padding with 0 past its end. */
static void fill_row(int32_t *x, int64_t W, int64_t b, const int32_t *tokens, const sm_window *win)
{
    int64_t len = win->end - win->begin;
    memcpy(x + b * W, tokens + win->begin, sizeof *x * (size_t)len);
    memset(x + b * W + len, 0, sizeof *x * (size_t)(W - len));
}

sm_status sm_windows_forward(sm_runtime *rt, sm_tensor ids, sm_tensor y, const int32_t *tokens, int64_t n,
                             int64_t stride, sm_window_combine how, float *out)
{
    if (!rt || (!tokens && n) || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_windows_forward: rt, tokens or out is NULL");
    int64_t B = 0, W = 0, ny = sm_tensor_numel(sm_runtime_graph(rt), y);
    sm_status st = input_shape(rt, ids, "ids", &B, &W);
    if (st) return st;
    sm_dtype dt;
    if ((st = sm_tensor_info(sm_runtime_graph(rt), y, NULL, &dt, NULL, NULL, NULL)))
        return sm_error_prefix(st, "windows: the output tensor: ");
    if (dt != SM_F32 || ny % (B * W))
        return sm_error(SM_ERR_SHAPE, "windows: the output must be f32 with B*W = %lld rows (logits [B, W, V] or "
                        "hidden states [B, W, C]); it has %lld %s elements", (long long)(B * W), (long long)ny,
                        sm_dtype_name(dt));
    sm_windows w;
    if ((st = sm_windows_init(&w, n, W, stride))) return st;
    int64_t D = ny / (B * W);
    int32_t *x = malloc(sizeof *x * (size_t)(B * W));
    float *yv = NULL;
    if (!x) return sm_error(SM_ERR_NOMEM, "windows: out of memory for a batch of %lld tokens", (long long)(B * W));
    for (int64_t k0 = 0; k0 < w.count && !st; k0 += B) {
        for (int64_t b = 0; b < B; b++) {
            sm_window win = {0, 0, 0};   /* past the last window: a row of padding */
            if (k0 + b < w.count) sm_windows_get(&w, k0 + b, &win);
            fill_row(x, W, b, tokens, &win);
        }
        if (!(st = sm_runtime_set(rt, ids, x, sizeof *x * (size_t)(B * W))) && !(st = sm_runtime_run(rt)))
            st = sm_runtime_data(rt, y, (void **)&yv);
        for (int64_t b = 0; !st && b < B && k0 + b < w.count; b++)
            st = sm_windows_merge(&w, how, k0 + b, yv + b * W * D, D, out);
    }
    free(x);
    return st;
}

/* ---- streaming strided evaluation ---------------------------------------------------------------- */

struct sm_window_eval {
    sm_runtime *rt;
    sm_tensor ids, targets, loss;
    int64_t B, W, S;
    int32_t *buf;         /* tokens [base, base + len) of the stream; cap = (B-1)*S + W + 1 */
    int64_t cap, len, base;
    int32_t *x, *y;       /* one run's inputs and targets [B, W] */
    int64_t next;         /* the next window to run */
    sm_window_eval_result r;
    int finished;
};

sm_status sm_window_eval_create(sm_runtime *rt, sm_tensor ids, sm_tensor targets, sm_tensor loss, int64_t stride,
                                sm_window_eval **out)
{
    if (!rt || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_window_eval_create: rt or out is NULL");
    *out = NULL;
    int64_t B = 0, W = 0, B2 = 0, W2 = 0;
    sm_status st = input_shape(rt, ids, "ids", &B, &W);
    if (!st) st = input_shape(rt, targets, "targets", &B2, &W2);
    if (st) return st;
    if (B2 != B || W2 != W)
        return sm_error(SM_ERR_SHAPE, "windows: ids [%lld, %lld] and targets [%lld, %lld] must have the same shape",
                        (long long)B, (long long)W, (long long)B2, (long long)W2);
    if (sm_tensor_numel(sm_runtime_graph(rt), loss) != 1)
        return sm_error(SM_ERR_SHAPE, "windows: the loss must be the graph's f32 [1] mean cross-entropy (build the "
                        "model with its loss)");
    sm_windows probe;
    if ((st = sm_windows_init(&probe, 0, W, stride))) return st;
    sm_window_eval *e = calloc(1, sizeof *e);
    if (!e) return sm_error(SM_ERR_NOMEM, "windows: out of memory");
    *e = (sm_window_eval){.rt = rt, .ids = ids, .targets = targets, .loss = loss, .B = B, .W = W, .S = stride,
                          .cap = (B - 1) * stride + W + 1};
    e->buf = malloc(sizeof *e->buf * (size_t)e->cap);
    e->x = malloc(sizeof *e->x * (size_t)(2 * B * W));
    if (!e->buf || !e->x) {
        int64_t cap = e->cap;
        sm_window_eval_free(e);
        return sm_error(SM_ERR_NOMEM, "windows: out of memory for %lld buffered tokens", (long long)cap);
    }
    e->y = e->x + B * W;
    *out = e;
    return SM_OK;
}

/* Runs windows next .. next+m-1 of the tiling w (m <= B) and drops the tokens no later window reads. */
static sm_status run_batch(sm_window_eval *e, const sm_windows *w, int64_t m)
{
    int64_t scored = 0;
    for (int64_t b = 0; b < e->B; b++) {
        sm_window win = {0, 0, 0};
        if (b < m) sm_windows_get(w, e->next + b, &win);
        int32_t *xr = e->x + b * e->W, *yr = e->y + b * e->W;
        for (int64_t t = 0; t < e->W; t++) {
            int64_t p = win.begin + t;   /* input position p predicts token p + 1 */
            bool in = p < win.end;
            xr[t] = in ? e->buf[p - e->base] : 0;
            yr[t] = in && p >= win.own ? e->buf[p + 1 - e->base] : -1;
            scored += in && p >= win.own;
        }
    }
    float loss = 0;
    size_t bytes = sizeof *e->x * (size_t)(e->B * e->W);
    sm_status st = sm_runtime_set(e->rt, e->ids, e->x, bytes);
    if (!st) st = sm_runtime_set(e->rt, e->targets, e->y, bytes);
    if (!st) st = sm_runtime_run(e->rt);
    if (!st) st = sm_runtime_get(e->rt, e->loss, &loss, sizeof loss);
    if (st) return st;
    e->r.nll += (double)loss * (double)scored;   /* the loss is the mean over this run's scored targets */
    e->r.predicted += scored;
    e->r.windows += m;
    e->r.runs++;
    e->next += m;
    int64_t drop = e->next * e->S - e->base;   /* the next window begins at next*S */
    if (drop > e->len) drop = e->len;
    memmove(e->buf, e->buf + drop, sizeof *e->buf * (size_t)(e->len - drop));
    e->len -= drop;
    e->base += drop;
    return SM_OK;
}

sm_status sm_window_eval_push(sm_window_eval *e, const int32_t *tokens, int64_t n)
{
    if (!e || (!tokens && n) || n < 0) return sm_error(SM_ERR_INVALID_ARG, "sm_window_eval_push: e or tokens is NULL");
    if (e->finished) return sm_error(SM_ERR_STATE, "windows: push after finish; create a new evaluator");
    /* The tiling of an unknown length: windows whose W inputs and the target after them are all
     * buffered are full and certainly exist, whatever comes later. */
    sm_windows w = {.n = INT64_MAX, .window = e->W, .stride = e->S, .count = INT64_MAX};
    while (n > 0) {
        int64_t take = e->cap - e->len < n ? e->cap - e->len : n;
        memcpy(e->buf + e->len, tokens, sizeof *tokens * (size_t)take);
        e->len += take;
        e->r.tokens += take;
        tokens += take;
        n -= take;
        if (e->len == e->cap) {   /* B full windows from next*S = base */
            sm_status st = run_batch(e, &w, e->B);
            if (st) return st;
        }
    }
    return SM_OK;
}

sm_status sm_window_eval_finish(sm_window_eval *e, sm_window_eval_result *out)
{
    if (!e || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_window_eval_finish: e or out is NULL");
    if (e->finished) return sm_error(SM_ERR_STATE, "windows: finish called twice");
    e->finished = 1;
    sm_windows w;
    int64_t n_in = e->r.tokens > 0 ? e->r.tokens - 1 : 0;   /* the last token is only a target */
    sm_status st = sm_windows_init(&w, n_in, e->W, e->S);
    while (!st && e->next < w.count) st = run_batch(e, &w, w.count - e->next < e->B ? w.count - e->next : e->B);
    if (st) return st;
    *out = e->r;
    out->cross_entropy = out->predicted ? out->nll / (double)out->predicted : NAN;
    return SM_OK;
}

void sm_window_eval_free(sm_window_eval *e)
{
    if (!e) return;
    free(e->buf);
    free(e->x);
    free(e);
}
