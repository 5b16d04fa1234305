/* test_runtime_hook.c — sm_runtime_set_hook / sm_runtime_watch, what the data-parallel gradient
 * exchange stands on: a watched gradient is final when SM_HOOK_WRITTEN comes (nothing changes it
 * later in the run), no node reads it before SM_HOOK_NEEDED (zeroing every gradient there zeroes the
 * optimizer's sum of squares), each comes once per run in that order, and a hook's error stops the
 * run with its status. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "smallmind.h"

#define OK(x) cr_assert_eq((x), SM_OK, "%s", sm_last_error())
#define MAX_WATCHED 64

typedef struct watch_log {
    sm_runtime *rt;
    const sm_graph *g;
    sm_tensor t[MAX_WATCHED];
    int n;
    int written[MAX_WATCHED], needed[MAX_WATCHED];
    float *copy[MAX_WATCHED];     /* each gradient as it was at SM_HOOK_WRITTEN */
    bool zero_when_needed;
    sm_status fail_with;          /* returned from the first call when not SM_OK */
} watch_log;

static int slot(const watch_log *w, sm_tensor t)
{
    for (int i = 0; i < w->n; i++)
        if (w->t[i] == t) return i;
    return -1;
}

static sm_status on_hook(void *user, sm_hook_event ev, sm_tensor t)
{
    watch_log *w = user;
    int i = slot(w, t);
    if (i < 0) return sm_error(SM_ERR_INTERNAL, "called for an unwatched tensor");
    if (w->fail_with) return w->fail_with;
    size_t bytes = (size_t)sm_tensor_numel(w->g, t) * sizeof(float);
    void *data;
    sm_status s = sm_runtime_data(w->rt, t, &data);
    if (s) return s;
    if (ev == SM_HOOK_WRITTEN) {
        if (w->needed[i] != w->written[i]) return sm_error(SM_ERR_INTERNAL, "written twice before needed");
        w->written[i]++;
        memcpy(w->copy[i], data, bytes);
    } else {
        if (w->needed[i] + 1 != w->written[i]) return sm_error(SM_ERR_INTERNAL, "needed before written");
        w->needed[i]++;
        if (w->zero_when_needed) memset(data, 0, bytes);
    }
    return SM_OK;
}

typedef struct tiny {
    sm_graph *g;
    sm_plan *plan;
    sm_runtime *rt;
    sm_gpt_tensors io;
    sm_adamw_tensors opt;
    sm_adamw_config cfg;
} tiny;

/* A two-layer GPT with its backward and AdamW, planned for `threads` threads. */
static void tiny_open(tiny *m, int threads)
{
    OK(sm_graph_create(&m->g));
    sm_gpt_config gc;
    sm_gpt_config_default(&gc);
    gc.vocab = 11, gc.context = 8, gc.n_layer = 2, gc.n_head = 2, gc.n_embd = 16, gc.batch = 2, gc.seq = 5;
    OK(sm_gpt_build(m->g, &gc, &m->io));
    OK(sm_graph_backward(m->g, m->io.loss));
    sm_adamw_config_default(&m->cfg);
    OK(sm_graph_adamw(m->g, &m->cfg, &m->opt));
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = threads;
    OK(sm_plan_create(m->g, &po, &m->plan));
    OK(sm_runtime_create(m->g, m->plan, &m->rt));
    OK(sm_runtime_init_params(m->rt, 5));
}

static void tiny_close(tiny *m)
{
    sm_runtime_free(m->rt);
    sm_plan_free(m->plan);
    sm_graph_free(m->g);
}

static sm_status tiny_step(tiny *m)
{
    int32_t tok[10], tgt[10];
    float hp[SM_ADAMW_HPARAMS];
    for (int i = 0; i < 10; i++) tok[i] = (i * 7 + 3) % 11, tgt[i] = (i * 5 + 1) % 11;
    OK(sm_adamw_hparams(&m->cfg, 0, hp));
    OK(sm_runtime_set(m->rt, m->io.tokens, tok, sizeof tok));
    OK(sm_runtime_set(m->rt, m->io.targets, tgt, sizeof tgt));
    OK(sm_runtime_set(m->rt, m->opt.hparams, hp, sizeof hp));
    return sm_runtime_run(m->rt);
}

/* Watches every parameter gradient of m. */
static void watch_grads(tiny *m, watch_log *w)
{
    memset(w, 0, sizeof *w);
    w->rt = m->rt;
    w->g = m->g;
    OK(sm_runtime_set_hook(m->rt, on_hook, w));
    for (int p = 0; p < sm_graph_tensor_count(m->g); p++) {
        sm_tensor gt = sm_graph_grad(m->g, p);
        if (gt == SM_NO_TENSOR) continue;
        cr_assert_lt(w->n, MAX_WATCHED);
        w->copy[w->n] = malloc((size_t)sm_tensor_numel(m->g, gt) * sizeof(float));
        w->t[w->n++] = gt;
        OK(sm_runtime_watch(m->rt, gt));
    }
    cr_assert_gt(w->n, 10);
}

static void unwatch(watch_log *w)
{
    for (int i = 0; i < w->n; i++) free(w->copy[i]);
}

static void check_final_at_written(int threads)
{
    tiny m;
    watch_log w;
    tiny_open(&m, threads);
    watch_grads(&m, &w);
    for (int run = 1; run <= 2; run++) {
        OK(tiny_step(&m));
        for (int i = 0; i < w.n; i++) {
            cr_assert_eq(w.written[i], run, "one SM_HOOK_WRITTEN per run");
            cr_assert_eq(w.needed[i], run, "one SM_HOOK_NEEDED per run (the optimizer reads every gradient)");
            void *now;
            OK(sm_runtime_data(m.rt, w.t[i], &now));
            cr_assert(!memcmp(now, w.copy[i], (size_t)sm_tensor_numel(m.g, w.t[i]) * sizeof(float)),
                      "gradient %d changed after SM_HOOK_WRITTEN", i);
        }
    }
    unwatch(&w);
    tiny_close(&m);
}

Test(runtime_hook, gradient_final_when_written_1_thread) { check_final_at_written(1); }
Test(runtime_hook, gradient_final_when_written_2_threads) { check_final_at_written(2); }

Test(runtime_hook, nothing_reads_a_gradient_before_needed)
{
    tiny m;
    watch_log w;
    tiny_open(&m, 2);
    watch_grads(&m, &w);
    w.zero_when_needed = true;
    OK(tiny_step(&m));
    float sumsq = -1;
    OK(sm_runtime_get(m.rt, m.opt.grad_sumsq, &sumsq, sizeof sumsq));
    cr_assert_eq(sumsq, 0.0f, "the optimizer read a gradient before SM_HOOK_NEEDED (sum of squares %g)", sumsq);
    /* without the zeroing the same step sees real gradients */
    w.zero_when_needed = false;
    OK(tiny_step(&m));
    OK(sm_runtime_get(m.rt, m.opt.grad_sumsq, &sumsq, sizeof sumsq));
    cr_assert_gt(sumsq, 0.0f);
    unwatch(&w);
    tiny_close(&m);
}

Test(runtime_hook, error_stops_the_run)
{
    tiny m;
    watch_log w;
    tiny_open(&m, 2);
    watch_grads(&m, &w);
    w.fail_with = SM_ERR_IO;
    cr_assert_eq(tiny_step(&m), SM_ERR_IO);
    /* a hook with nothing watched is never called */
    OK(sm_runtime_set_hook(m.rt, on_hook, &w));
    OK(tiny_step(&m));
    /* no hook: runs as before */
    OK(sm_runtime_set_hook(m.rt, NULL, NULL));
    OK(tiny_step(&m));
    unwatch(&w);
    tiny_close(&m);
}

Test(runtime_hook, refuses_what_no_node_writes)
{
    tiny m;
    watch_log w = {0};
    tiny_open(&m, 1);
    cr_assert_eq(sm_runtime_watch(m.rt, m.io.loss), SM_ERR_INVALID_ARG, "a hook must be set first");
    OK(sm_runtime_set_hook(m.rt, on_hook, &w));
    cr_assert_eq(sm_runtime_watch(m.rt, m.io.tokens), SM_ERR_INVALID_ARG, "an input");
    cr_assert(strstr(sm_last_error(), "tokens"), "%s", sm_last_error());
    cr_assert_eq(sm_runtime_watch(m.rt, -7), SM_ERR_INVALID_ARG);
    tiny_close(&m);
}
