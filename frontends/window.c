/* window.c — tiling a sequence into overlapping windows (W, S) and combining the windows' per-position
 * outputs (mean, max, last-context). The runners that push windows through a plan are in
 * window_run.c. */
#include <string.h>

#include "../base/error.h"
#include "smallmind.h"

sm_status sm_windows_init(sm_windows *w, int64_t n, int64_t window, int64_t stride)
{
    if (!w) return sm_error(SM_ERR_INVALID_ARG, "sm_windows_init: w is NULL");
    memset(w, 0, sizeof *w);
    if (n < 0) return sm_error(SM_ERR_INVALID_ARG, "windows: the sequence length is %lld; it cannot be negative", (long long)n);
    if (window < 1)
        return sm_error(SM_ERR_INVALID_ARG, "windows: window %lld: a window holds at least 1 position", (long long)window);
    if (stride < 1)
        return sm_error(SM_ERR_INVALID_ARG, "windows: stride %lld: the stride is at least 1 (1 <= stride <= window)",
                        (long long)stride);
    if (stride > window)
        return sm_error(SM_ERR_INVALID_ARG, "windows: stride cannot be greater than window (stride %lld, window %lld): "
                        "a larger stride would skip positions; use a stride <= the window", (long long)stride,
                        (long long)window);
    w->n = n;
    w->window = window;
    w->stride = stride;
    /* ceil((n - W) / S) + 1 written so that nothing can overflow for any n <= INT64_MAX */
    w->count = n == 0 ? 0 : n <= window ? 1 : (n - window) / stride + ((n - window) % stride != 0) + 1;
    return SM_OK;
}

sm_status sm_windows_get(const sm_windows *w, int64_t k, sm_window *out)
{
    if (!w || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_windows_get: w or out is NULL");
    if (k < 0 || k >= w->count)
        return sm_error(SM_ERR_INVALID_ARG, "windows: window %lld does not exist; there are %lld (0..%lld)",
                        (long long)k, (long long)w->count, (long long)w->count - 1);
    /* k < count keeps k*S below n, so none of this overflows */
    out->begin = k * w->stride;
    out->end = w->n - out->begin <= w->window ? w->n : out->begin + w->window;
    out->own = k == 0 ? 0 : out->begin - w->stride + w->window;
    return SM_OK;
}

void sm_windows_default(int64_t context, int64_t *window, int64_t *stride)
{
    int64_t w = context / 8 > 2048 ? context / 8 : 2048;
    if (window) *window = w;
    if (stride) *stride = w / 2;
}

static const char *const combine_names[] = {"mean", "max", "last-context"};

sm_status sm_window_combine_parse(const char *text, sm_window_combine *out)
{
    for (int i = 0; i < 3; i++)
        if (text && out && !strcmp(text, combine_names[i])) {
            *out = (sm_window_combine)i;
            return SM_OK;
        }
    return sm_error(SM_ERR_INVALID_ARG, "window combine '%s': use mean, max or last-context", text ? text : "(null)");
}

const char *sm_window_combine_name(sm_window_combine c)
{
    return (unsigned)c < 3 ? combine_names[c] : "?";
}

/* Windows covering position p: those with k*S <= p < k*S + W, i.e. k from ceil((p - W + 1) / S) to
 * floor(p / S), clipped to the tiling. */
static int64_t cover_count(const sm_windows *w, int64_t p)
{
    int64_t hi = p / w->stride, lo = p < w->window ? 0 : (p - w->window) / w->stride + 1;
    if (hi > w->count - 1) hi = w->count - 1;
    return hi - lo + 1;
}

sm_status sm_windows_merge(const sm_windows *w, sm_window_combine how, int64_t k, const float *rows, int64_t dim,
                           float *out)
{
    sm_window win = {0, 0, 0};
    sm_status st = sm_windows_get(w, k, &win);
    if (st) return st;
    if (!rows || !out || dim < 1)
        return sm_error(SM_ERR_INVALID_ARG, "sm_windows_merge: rows and out must be given and dim >= 1 (dim %lld)",
                        (long long)dim);
    if ((unsigned)how > SM_WINDOW_LAST_CONTEXT)
        return sm_error(SM_ERR_INVALID_ARG, "sm_windows_merge: unknown combine %d", (int)how);
    /* Positions [begin, fresh) were written by earlier windows; [fresh, end) are new. */
    int64_t fresh = win.own, done = k + 1 < w->count ? win.begin + w->stride : win.end;
    for (int64_t p = win.begin; p < win.end; p++) {
        const float *r = rows + (p - win.begin) * dim;
        float *o = out + p * dim;
        if (p >= fresh) memcpy(o, r, sizeof *o * (size_t)dim);
        else if (how == SM_WINDOW_MEAN)
            for (int64_t j = 0; j < dim; j++) o[j] += r[j];
        else if (how == SM_WINDOW_MAX)
            for (int64_t j = 0; j < dim; j++) o[j] = r[j] > o[j] ? r[j] : o[j];
        /* LAST_CONTEXT: the earlier window gave p more left context; keep its rows */
        if (how == SM_WINDOW_MEAN && p < done) {
            int64_t c = cover_count(w, p);
            if (c > 1)
                for (int64_t j = 0; j < dim; j++) o[j] /= (float)c;
        }
    }
    return SM_OK;
}
