/* test_adamw.c — the AdamW step appended by sm_graph_adamw: updates against a reference computed
 * here in double (bias correction, decoupled weight decay only for 2-D parameters), global-norm
 * clipping, the learning-rate schedule, the tensors it adds, errors, and that training a tiny model
 * lowers its loss, bitwise the same for 1 and 2 threads. */
#include "grad_check.h"

static sm_adamw_config config(float lr, float wd, float eps, float clip)
{
    sm_adamw_config c;
    sm_adamw_config_default(&c);
    c.lr = lr;
    c.weight_decay = wd;
    c.eps = eps;
    c.grad_clip = clip;
    return c;
}

/* Reference AdamW state of one parameter, in double. */
typedef struct {
    int n;
    double p[32], m[32], v[32];
} ref_param;

static void ref_init(ref_param *r, const float *p, int n)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    for (int i = 0; i < n; i++) r->p[i] = p[i];
}

/* One update with gradient g (already clipped by the factor c) at update number step. */
static void ref_step(ref_param *r, const double *g, double c, const sm_adamw_config *cfg, int step, bool decay)
{
    double t = step + 1, lr = sm_adamw_lr(cfg, step);
    double bc1 = 1 / (1 - pow(cfg->beta1, t)), bc2 = 1 / (1 - pow(cfg->beta2, t));
    for (int i = 0; i < r->n; i++) {
        double gi = c * g[i];
        r->m[i] = cfg->beta1 * r->m[i] + (1 - cfg->beta1) * gi;
        r->v[i] = cfg->beta2 * r->v[i] + (1 - cfg->beta2) * gi * gi;
        r->p[i] -= lr * (r->m[i] * bc1 / (sqrt(r->v[i] * bc2) + cfg->eps) + (decay ? cfg->weight_decay * r->p[i] : 0));
    }
}

static void expect_close(const char *what, const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        cr_expect(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])), "%s[%d]: %.8g, reference %.8g", what, i,
                  (double)got[i], want[i]);
}

static float hp[SM_ADAMW_HPARAMS];

static void add_optimizer(gc_case *c, const sm_adamw_config *cfg, sm_adamw_tensors *opt)
{
    GC_OK(sm_graph_adamw(c->g, cfg, opt));
    cr_assert(c->n_inputs < GC_MAX_INPUTS);
    c->in[c->n_inputs] = opt->hparams;
    c->in_data[c->n_inputs++] = hp;
}

static void step(gc_case *c, const sm_adamw_config *cfg, int t)
{
    GC_OK(sm_adamw_hparams(cfg, t, hp));
    gc_run(c);
}

/* y = x + b with loss Σ w·y: the gradients are constant (w and its column sums), so the reference
 * needs no model. x [2,3] is decayed, b [3] is not. */
Test(adamw, steps_match_reference)
{
    gc_case c;
    gc_begin(&c);
    int64_t sx[2] = {2, 3}, sb = 3;
    sm_tensor x = gc_param(&c, "x", 2, sx, 1), b = gc_param(&c, "b", 1, &sb, 1), y;
    GC_OK(sm_add(c.g, x, b, "y", &y));
    gc_loss(&c, y);
    sm_adamw_config cfg = config(0.1f, 0.2f, 1e-8f, 0);
    cfg.warmup_steps = 2;
    cfg.total_steps = 6;
    sm_adamw_tensors opt;
    add_optimizer(&c, &cfg, &opt);
    cr_expect_eq(opt.grad_sumsq, SM_NO_TENSOR, "no clipping, no sum of squares");
    cr_expect_eq(opt.n_params, 2);
    gc_compile(&c, 2, 5);
    const float *w = gc_data(&c, c.w);
    double gx[6], gb[3] = {0};
    for (int i = 0; i < 6; i++) gx[i] = w[i], gb[i % 3] += w[i];
    ref_param rx, rb;
    ref_init(&rx, gc_data(&c, x), 6);
    ref_init(&rb, gc_data(&c, b), 3);
    sm_tensor mx, vx;
    GC_OK(sm_graph_find(c.g, "adam.m.x", &mx));
    GC_OK(sm_graph_find(c.g, "adam.v.x", &vx));
    for (int t = 0; t < 4; t++) {
        step(&c, &cfg, t);
        ref_step(&rx, gx, 1, &cfg, t, true);
        ref_step(&rb, gb, 1, &cfg, t, false);
        expect_close("x", gc_data(&c, x), rx.p, 6, 1e-6);
        expect_close("b", gc_data(&c, b), rb.p, 3, 1e-6);
        expect_close("adam.m.x", gc_data(&c, mx), rx.m, 6, 1e-6);
        expect_close("adam.v.x", gc_data(&c, vx), rx.v, 6, 1e-6);
    }
    gc_free(&c);
}

/* The first update by hand: m̂ = g and v̂ = g², so x moves by -lr·(sign(g) + wd·x) and b by
 * -lr·sign(g) (no decay for 1-D parameters). */
Test(adamw, first_step_by_hand)
{
    gc_case c;
    gc_begin(&c);
    int64_t sx[2] = {2, 3}, sb = 3;
    sm_tensor x = gc_param(&c, "x", 2, sx, 1), b = gc_param(&c, "b", 1, &sb, 1), y;
    GC_OK(sm_add(c.g, x, b, "y", &y));
    gc_loss(&c, y);
    sm_adamw_config cfg = config(0.01f, 0.5f, 1e-8f, 0);
    sm_adamw_tensors opt;
    add_optimizer(&c, &cfg, &opt);
    gc_compile(&c, 2, 6);
    float x0[6], b0[3], w[6];
    memcpy(x0, gc_data(&c, x), sizeof x0);
    memcpy(b0, gc_data(&c, b), sizeof b0);
    memcpy(w, gc_data(&c, c.w), sizeof w);
    step(&c, &cfg, 0);
    const float *x1 = gc_data(&c, x), *b1 = gc_data(&c, b);
    for (int i = 0; i < 6; i++)
        cr_expect_float_eq(x1[i], x0[i] - 0.01f * ((w[i] > 0 ? 1 : -1) + 0.5f * x0[i]), 1e-6f, "x[%d]", i);
    for (int j = 0; j < 3; j++) {
        float g = w[j] + w[3 + j];
        cr_expect_float_eq(b1[j], b0[j] - 0.01f * (g > 0 ? 1 : -1), 1e-6f, "b[%d]", j);
    }
    gc_free(&c);
}

/* y = x·x (gradient 2·x·w changes every step). With eps 0.1 the update depends on the gradient's
 * scale, so the clipping factor shows in the result; the sum of squares output is checked too. */
Test(adamw, clipping)
{
    gc_case c;
    gc_begin(&c);
    int64_t sx[2] = {4, 5};
    sm_tensor x = gc_param(&c, "x", 2, sx, 1), y;
    GC_OK(sm_mul(c.g, x, x, "y", &y));
    gc_loss(&c, y);
    sm_adamw_config cfg = config(0.05f, 0.1f, 0.1f, 0.3f);
    sm_adamw_tensors opt;
    add_optimizer(&c, &cfg, &opt);
    cr_assert_neq(opt.grad_sumsq, SM_NO_TENSOR);
    gc_compile(&c, 2, 7);
    const float *w = gc_data(&c, c.w);
    ref_param r;
    ref_init(&r, gc_data(&c, x), 20);
    int clipped = 0;
    for (int t = 0; t < 4; t++) {
        double g[20], ss = 0;
        for (int i = 0; i < 20; i++) g[i] = 2 * r.p[i] * w[i], ss += g[i] * g[i];
        double f = cfg.grad_clip / (sqrt(ss) + 1e-6);
        clipped += f < 1;
        step(&c, &cfg, t);
        float got_ss;
        GC_OK(sm_runtime_get(c.rt, opt.grad_sumsq, &got_ss, sizeof got_ss));
        cr_expect(fabs(got_ss - ss) <= 1e-5 * ss, "sum of squares %.8g, reference %.8g", (double)got_ss, ss);
        ref_step(&r, g, f < 1 ? f : 1, &cfg, t, true);
        expect_close("x", gc_data(&c, x), r.p, 20, 2e-6);
    }
    cr_expect_gt(clipped, 0, "the test must exercise clipping");
    gc_free(&c);
}

Test(adamw, schedule)
{
    sm_adamw_config c = config(1.0f, 0, 1e-8f, 0);
    c.min_lr = 0.1f;
    c.warmup_steps = 10;
    c.total_steps = 110;
    cr_expect_float_eq(sm_adamw_lr(&c, 0), 0.1f, 1e-7f, "warmup starts at lr/warmup");
    cr_expect_float_eq(sm_adamw_lr(&c, 4), 0.5f, 1e-7f);
    cr_expect_float_eq(sm_adamw_lr(&c, 9), 1.0f, 1e-7f, "warmup ends at lr");
    cr_expect_float_eq(sm_adamw_lr(&c, 10), 1.0f, 1e-7f, "the cosine starts at lr");
    cr_expect_float_eq(sm_adamw_lr(&c, 60), 0.55f, 1e-6f, "half way: the mean of lr and min_lr");
    cr_expect_float_eq(sm_adamw_lr(&c, 35), (float)(0.1 + 0.45 * (1 + cos(M_PI / 4))), 1e-6f);
    cr_expect_float_eq(sm_adamw_lr(&c, 110), 0.1f, 1e-7f);
    cr_expect_float_eq(sm_adamw_lr(&c, 1000), 0.1f, 1e-7f, "min_lr after the decay");
    for (int s = 11; s < 110; s++) cr_expect_leq(sm_adamw_lr(&c, s), sm_adamw_lr(&c, s - 1), "decreasing at %d", s);
    c.warmup_steps = 0;
    c.total_steps = 0;
    cr_expect_eq(sm_adamw_lr(&c, 0), 1.0f, "no schedule: constant lr");
    cr_expect_eq(sm_adamw_lr(&c, 12345), 1.0f);

    float h[SM_ADAMW_HPARAMS];
    c = config(0.5f, 0.25f, 1e-6f, 2.0f);
    GC_OK(sm_adamw_hparams(&c, 0, h));
    cr_expect_float_eq(h[SM_ADAMW_LR], 0.5f, 1e-7f);
    cr_expect_float_eq(h[SM_ADAMW_BC1], 10.0f, 1e-5f, "1/(1-0.9)");
    cr_expect_float_eq(h[SM_ADAMW_BC2], 20.0f, 1e-4f, "1/(1-0.95)");
    cr_expect_eq(h[SM_ADAMW_WD], 0.25f);
    cr_expect_eq(h[SM_ADAMW_CLIP], 2.0f);
    cr_expect_eq(h[SM_ADAMW_EPS], 1e-6f);
    GC_OK(sm_adamw_hparams(&c, 1, h));
    cr_expect_float_eq(h[SM_ADAMW_BC1], (float)(1 / (1 - 0.81)), 1e-5f);
    cr_expect_float_eq(h[SM_ADAMW_BC2], (float)(1 / (1 - 0.95 * 0.95)), 1e-5f);
    cr_expect_eq(sm_adamw_hparams(&c, -1, h), SM_ERR_INVALID_ARG);
    c.beta1 = 1.0f;
    cr_expect_eq(sm_adamw_hparams(&c, 0, h), SM_ERR_INVALID_ARG);
}

/* The tensors it adds: "opt.hparams", moments with role optim for each parameter with a gradient,
 * none for a frozen one; errors before the backward and on a second call. */
Test(adamw, tensors_and_errors)
{
    gc_case c;
    gc_begin(&c);
    int64_t sx[2] = {2, 3};
    sm_tensor x = gc_param(&c, "x", 2, sx, 1), f = gc_param(&c, "frozen", 2, sx, 1), y;
    GC_OK(sm_graph_set_trainable(c.g, f, 0));
    GC_OK(sm_mul(c.g, x, f, "y", &y));
    sm_adamw_config cfg = config(0.1f, 0.1f, 1e-8f, 1.0f);
    sm_adamw_tensors opt;
    cr_expect_eq(sm_graph_adamw(c.g, &cfg, &opt), SM_ERR_STATE, "before the backward");
    gc_loss(&c, y);
    cfg.eps = 0;
    cr_expect_eq(sm_graph_adamw(c.g, &cfg, &opt), SM_ERR_INVALID_ARG, "eps 0");
    cfg.eps = 1e-8f;
    add_optimizer(&c, &cfg, &opt);
    sm_tensor t;
    sm_role role;
    GC_OK(sm_graph_find(c.g, "adam.m.x", &t));
    GC_OK(sm_tensor_info(c.g, t, NULL, NULL, &role, NULL, NULL));
    cr_expect_eq(role, SM_ROLE_OPTIM);
    GC_OK(sm_graph_find(c.g, "adam.v.x", &t));
    cr_expect_neq(sm_graph_find(c.g, "adam.m.frozen", &t), SM_OK, "a frozen parameter has no moments");
    GC_OK(sm_graph_find(c.g, "opt.hparams", &t));
    cr_expect_eq(t, opt.hparams);
    cr_expect_eq(opt.n_params, 1);
    cr_expect_eq(sm_graph_adamw(c.g, &cfg, &opt), SM_ERR_STATE, "a second optimizer");
    gc_free(&c);
}

/* Least squares: pred = x·Wᵀ + b, loss = Σ (pred - target)², on a fixed batch. */
typedef struct {
    gc_case c;
    sm_tensor W, b, loss;
    float x[8 * 4], negt[8 * 3];
} lsq;

static void lsq_build(lsq *m, int threads, const sm_adamw_config *cfg)
{
    gc_case *c = &m->c;
    gc_begin(c);
    int64_t sx[2] = {8, 4}, st[2] = {8, 3}, sw[2] = {3, 4}, sb = 3, row[2] = {1, 24}, one = 1;
    /* targets of a known linear map, so the minimum is 0 */
    for (int i = 0; i < 32; i++) m->x[i] = (float)sin(1.3 * i);
    for (int r = 0; r < 8; r++)
        for (int o = 0; o < 3; o++) {
            double t = 0.3 * o - 0.2;
            for (int k = 0; k < 4; k++) t += cos(o + 2.0 * k) * m->x[r * 4 + k];
            m->negt[r * 3 + o] = (float)-t;
        }
    sm_tensor x = gc_input(c, "x", SM_F32, 2, sx, m->x), nt = gc_input(c, "negt", SM_F32, 2, st, m->negt);
    m->W = gc_param(c, "W", 2, sw, 0.5f);
    m->b = gc_param(c, "b", 1, &sb, 0.5f);
    sm_tensor ones, p, d, sq, l;
    GC_OK(sm_graph_param(c->g, "ones", SM_F32, 2, row, SM_INIT_ONES, 0, &ones));
    GC_OK(sm_graph_set_trainable(c->g, ones, 0));
    GC_OK(sm_linear(c->g, x, m->W, m->b, "pred", &p));
    GC_OK(sm_add(c->g, p, nt, "d", &d));
    GC_OK(sm_mul(c->g, d, d, "sq", &sq));
    GC_OK(sm_reshape(c->g, sq, 2, row, "sq2", &sq));
    GC_OK(sm_linear(c->g, sq, ones, SM_NO_TENSOR, "l2", &l));
    GC_OK(sm_reshape(c->g, l, 1, &one, "loss", &m->loss));
    GC_OK(sm_graph_set_loss(c->g, m->loss));
    GC_OK(sm_graph_backward(c->g, m->loss));
    sm_adamw_tensors opt;
    add_optimizer(c, cfg, &opt);
    gc_compile(c, threads, 11);
}

Test(adamw, loss_decreases_and_threads_agree)
{
    sm_adamw_config cfg = config(0.05f, 0.01f, 1e-8f, 1.0f);
    lsq m1, m2;
    lsq_build(&m1, 1, &cfg);
    lsq_build(&m2, 2, &cfg);
    GC_OK(sm_runtime_set_threads(m2.c.rt, 2));
    float first = 0, last = 0;
    for (int t = 0; t < 40; t++) {
        step(&m1.c, &cfg, t);
        step(&m2.c, &cfg, t);
        float l1 = *gc_data(&m1.c, m1.loss), l2 = *gc_data(&m2.c, m2.loss);
        cr_expect_eq(memcmp(&l1, &l2, sizeof l1), 0, "step %d: loss %.9g with 1 thread, %.9g with 2", t, (double)l1,
                     (double)l2);
        if (t == 0) first = l1;
        last = l1;
    }
    cr_expect_arr_eq(gc_data(&m1.c, m1.W), gc_data(&m2.c, m2.W), 12 * sizeof(float), "weights differ across threads");
    cr_expect_lt(last, 0.05f * first, "loss %.4g -> %.4g", (double)first, (double)last);
    gc_free(&m1.c);
    gc_free(&m2.c);
}

/* A tiny GPT on one fixed batch: 15 steps must clearly lower its cross-entropy. */
Test(adamw, tiny_gpt_learns)
{
    sm_graph *g;
    GC_OK(sm_graph_create(&g));
    sm_gpt_config gc;
    sm_gpt_config_default(&gc);
    gc.vocab = 11, gc.context = 8, gc.n_layer = 2, gc.n_head = 2, gc.n_embd = 16, gc.batch = 2, gc.seq = 5;
    sm_gpt_tensors io;
    GC_OK(sm_gpt_build(g, &gc, &io));
    GC_OK(sm_graph_backward(g, io.loss));
    sm_adamw_config cfg = config(1e-2f, 0.0f, 1e-8f, 1.0f);
    sm_adamw_tensors opt;
    GC_OK(sm_graph_adamw(g, &cfg, &opt));
    sm_plan *plan;
    sm_runtime *rt;
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = 1;   /* ~300 tiny nodes a step: barriers would dominate */
    GC_OK(sm_plan_create(g, &po, &plan));
    GC_OK(sm_runtime_create(g, plan, &rt));
    GC_OK(sm_runtime_init_params(rt, 3));
    int32_t tok[10], tgt[10];
    for (int i = 0; i < 10; i++) tok[i] = (i * 7 + 3) % 11, tgt[i] = (i * 5 + 1) % 11;
    float first = 0, loss = 0;
    for (int t = 0; t < 15; t++) {
        GC_OK(sm_adamw_hparams(&cfg, t, hp));
        GC_OK(sm_runtime_set(rt, io.tokens, tok, sizeof tok));
        GC_OK(sm_runtime_set(rt, io.targets, tgt, sizeof tgt));
        GC_OK(sm_runtime_set(rt, opt.hparams, hp, sizeof hp));
        GC_OK(sm_runtime_run(rt));
        GC_OK(sm_runtime_get(rt, io.loss, &loss, sizeof loss));
        if (t == 0) first = loss;
    }
    cr_expect_lt(loss, 0.7f * first, "loss %.4f -> %.4f", (double)first, (double)loss);
    sm_runtime_free(rt);
    sm_plan_free(plan);
    sm_graph_free(g);
}
