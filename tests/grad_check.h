/* grad_check.h — what the autodiff and optimizer tests share: building a graph whose loss is a
 * weighted sum of one output, running it, and checking gradients against central finite
 * differences.
 *
 * Why finite differences in f32 are good enough, and how the tolerance is chosen: the kernels exist
 * only in f32, so f(x) is evaluated by the executor in f32 and summed on the host in double
 * (f = Σ w·y, w fixed random in [-1, 1]). With inputs of order 1 and a step h = 1e-2:
 *   - truncation error of the central difference is h²/6·|f'''| ≈ 2e-5·|f'''|;
 *   - rounding: each y carries a relative error of a few f32 ulps (~1e-7·|y|); over N ≤ a few
 *     hundred outputs that moves f by ≲ 1e-5, which the division by 2h turns into ≲ 1e-3 in the
 *     worst case (random signs make it ~1e-5 typically);
 *   - the step actually taken is the difference of the two f32 values x±h, used exactly.
 * So |analytic - fd| <= 2e-3·(1 + |fd|) passes a right gradient with margin, and a wrong one (a
 * missing term, a transposed index, a wrong scale) is off by O(0.1..1) and fails. */
#ifndef SM_TEST_GRAD_CHECK_H
#define SM_TEST_GRAD_CHECK_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/op.h"
#include "smallmind.h"

#define GC_MAX_INPUTS 4

typedef struct gc_case {
    sm_graph *g;
    sm_plan *plan;
    sm_runtime *rt;
    sm_tensor y, w, loss;
    int n_inputs;                       /* i32/f32 inputs to set before every run */
    sm_tensor in[GC_MAX_INPUTS];
    const void *in_data[GC_MAX_INPUTS];
    int n_fwd_tensors;                  /* tensors before the backward */
} gc_case;

#define GC_OK(call)                                                                   \
    do {                                                                              \
        sm_status s_ = (call);                                                        \
        cr_assert_eq(s_, SM_OK, "%s failed: %s (%s)", #call, sm_status_name(s_), sm_last_error()); \
    } while (0)


static inline void gc_begin(gc_case *c)
{
    memset(c, 0, sizeof *c);
    c->y = c->w = c->loss = SM_NO_TENSOR;
    GC_OK(sm_graph_create(&c->g));
}

/* A trainable parameter with N(0, std²) values. */
static inline sm_tensor gc_param(gc_case *c, const char *name, int ndim, const int64_t *shape, float std)
{
    sm_tensor t;
    GC_OK(sm_graph_param(c->g, name, SM_F32, ndim, shape, SM_INIT_NORMAL, std, &t));
    return t;
}

/* An input whose data (kept by the caller) is set before every run. */
static inline sm_tensor gc_input(gc_case *c, const char *name, sm_dtype dt, int ndim, const int64_t *shape,
                                 const void *data)
{
    sm_tensor t;
    GC_OK(sm_graph_input(c->g, name, dt, ndim, shape, &t));
    cr_assert(c->n_inputs < GC_MAX_INPUTS);
    c->in[c->n_inputs] = t;
    c->in_data[c->n_inputs++] = data;
    return t;
}

static inline void gc_run(gc_case *c)
{
    for (int i = 0; i < c->n_inputs; i++)
        GC_OK(sm_runtime_set(c->rt, c->in[i], c->in_data[i], sm_rec_bytes(&c->g->t[c->in[i]])));
    GC_OK(sm_runtime_run(c->rt));
}

/* loss = Σ w ⊙ y (w a frozen parameter "gc.w"), then the backward. */
static inline void gc_loss(gc_case *c, sm_tensor y)
{
    sm_graph *g = c->g;
    int64_t n = sm_tensor_numel(g, y), row[2] = {1, n}, one = 1;
    sm_tensor y2, l2;
    c->y = y;
    GC_OK(sm_graph_param(g, "gc.w", SM_F32, 2, row, SM_INIT_ZEROS, 0, &c->w));
    GC_OK(sm_graph_set_trainable(g, c->w, 0));
    GC_OK(sm_reshape(g, y, 2, row, "gc.y2", &y2));
    GC_OK(sm_linear(g, y2, c->w, SM_NO_TENSOR, "gc.l2", &l2));
    GC_OK(sm_reshape(g, l2, 1, &one, "gc.loss", &c->loss));
    GC_OK(sm_graph_set_loss(g, c->loss));
    GC_OK(sm_graph_mark_output(g, y));
    c->n_fwd_tensors = sm_graph_tensor_count(g);
    GC_OK(sm_graph_backward(g, c->loss));
}

/* Plan and run with n_threads (1 for finite differences: thousands of tiny runs, where barriers on a
 * loaded machine cost more than the work), runtime, params initialised from `seed`; w gets values uniform in [-1, 1]. */
static inline void gc_compile(gc_case *c, int n_threads, uint64_t seed)
{
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.strategy = SM_PLAN_NAIVE;
    po.n_threads = n_threads;
    GC_OK(sm_plan_create(c->g, &po, &c->plan));
    GC_OK(sm_runtime_create(c->g, c->plan, &c->rt));
    GC_OK(sm_runtime_set_threads(c->rt, n_threads));
    GC_OK(sm_runtime_init_params(c->rt, seed));
    if (c->w == SM_NO_TENSOR) return;
    float *w;
    GC_OK(sm_runtime_data(c->rt, c->w, (void **)&w));
    uint64_t st = seed * 2654435761u + 1;
    for (int64_t i = 0; i < sm_tensor_numel(c->g, c->w); i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static inline void gc_finish(gc_case *c, sm_tensor y, int n_threads, uint64_t seed)
{
    gc_loss(c, y);
    gc_compile(c, n_threads, seed);
}

static inline void gc_free(gc_case *c)
{
    sm_runtime_free(c->rt);
    sm_plan_free(c->plan);
    sm_graph_free(c->g);
    memset(c, 0, sizeof *c);
}

static inline float *gc_data(gc_case *c, sm_tensor t)
{
    void *p;
    GC_OK(sm_runtime_data(c->rt, t, &p));
    return p;
}

/* f = Σ w·y in double, after a run. */
static inline double gc_f(gc_case *c)
{
    const float *y = gc_data(c, c->y), *w = gc_data(c, c->w);
    double f = 0;
    for (int64_t i = 0; i < sm_tensor_numel(c->g, c->y); i++) f += (double)w[i] * y[i];
    return f;
}

/* Central difference of fn at element j of tensor p (fn runs the graph and returns f). */
static inline double gc_fd(gc_case *c, sm_tensor p, int64_t j, double h, double (*fn)(gc_case *))
{
    float *x = gc_data(c, p), x0 = x[j], xp = (float)(x0 + h), xm = (float)(x0 - h);
    x[j] = xp;
    double fp = fn(c);
    x[j] = xm;
    double fm = fn(c);
    x[j] = x0;
    return (fp - fm) / ((double)xp - (double)xm);
}

static inline double gc_run_f(gc_case *c)
{
    gc_run(c);
    return gc_f(c);
}

/* Checks the gradient of every trainable parameter against finite differences of fn, on up to
 * max_per_param entries each (spread evenly): |a - fd| <= atol + rtol·|fd|, a = 0 for a parameter
 * without a gradient. Returns the entries checked. */
static inline int gc_check_grads_fn(gc_case *c, double h, double atol, double rtol, int max_per_param,
                                    double (*fn)(gc_case *))
{
    sm_graph *g = c->g;
    int checked = 0;
    for (sm_tensor p = 0; p < c->n_fwd_tensors; p++) {
        if (g->t[p].role != SM_ROLE_PARAM || !g->t[p].trainable) continue;
        /* A parameter without a gradient must be one the loss does not depend on: its finite
         * differences must then be 0. */
        sm_tensor gt = sm_graph_grad(g, p);
        int64_t n = sm_tensor_numel(g, p), step = n > max_per_param ? (n + max_per_param - 1) / max_per_param : 1;
        float *ga = calloc((size_t)n, sizeof *ga);
        cr_assert(ga);
        gc_run(c);   /* at the unperturbed point: the previous parameter's last run was not */
        if (gt != SM_NO_TENSOR) GC_OK(sm_runtime_get(c->rt, gt, ga, (size_t)n * sizeof *ga));
        for (int64_t j = 0; j < n; j += step) {
            double fd = gc_fd(c, p, j, h, fn);
            cr_expect(fabs(ga[j] - fd) <= atol + rtol * fabs(fd), "d/d %s[%lld]: backward %.7g, finite difference %.7g",
                      g->t[p].name, (long long)j, (double)ga[j], fd);
            checked++;
        }
        free(ga);
    }
    return checked;
}

static inline int gc_check_grads(gc_case *c, double h, double tol)
{
    return gc_check_grads_fn(c, h, tol, tol, 1 << 30, gc_run_f);
}

#endif
