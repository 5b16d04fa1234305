/* test_autodiff.c — sm_graph_backward: every op's backward rule against central finite differences
 * (tolerances justified in grad_check.h), accumulation of multi-use tensors, which tensors get
 * gradients (and their names and roles), errors, the whole GPT graph's gradients, and bitwise equal
 * gradients for 1 and 2 threads. */
#include "grad_check.h"

#define H 1e-2
#define TOL 2e-3

static const int64_t S234[3] = {2, 3, 4};

/* ---- elementwise and broadcast ---- */

Test(autodiff, add_same_shape)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), b = gc_param(&c, "b", 3, S234, 1), y;
    GC_OK(sm_add(c.g, a, b, "y", &y));
    gc_finish(&c, y, 1, 1);
    cr_assert_gt(gc_check_grads(&c, H, TOL), 0);
    gc_free(&c);
}

Test(autodiff, add_broadcast)
{
    gc_case c;
    gc_begin(&c);
    int64_t s34[2] = {3, 4}, s4 = 4;
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), b = gc_param(&c, "b", 2, s34, 1), d = gc_param(&c, "d", 1, &s4, 1), y;
    GC_OK(sm_add(c.g, a, b, "ab", &y));
    GC_OK(sm_add(c.g, y, d, "y", &y));
    gc_finish(&c, y, 1, 2);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, mul_same_and_broadcast)
{
    gc_case c;
    gc_begin(&c);
    int64_t s4 = 4;
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), b = gc_param(&c, "b", 3, S234, 1), d = gc_param(&c, "d", 1, &s4, 1), y;
    GC_OK(sm_mul(c.g, a, b, "ab", &y));
    GC_OK(sm_mul(c.g, y, d, "y", &y));
    gc_finish(&c, y, 1, 3);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, scale)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), y;
    GC_OK(sm_scale(c.g, a, -2.5f, "y", &y));
    gc_finish(&c, y, 1, 4);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

/* ---- matmul and linear ---- */

/* a [2,M,K] (or its transpose), b batched [2,K,N] or shared [K,N] (or transposes). */
static void matmul_case(int ta, int tb, bool shared_b, int a_dims)
{
    gc_case c;
    gc_begin(&c);
    int64_t M = 3, K = 4, N = 5;
    int64_t sa[3] = {2, ta ? K : M, ta ? M : K}, sb[3] = {2, tb ? N : K, tb ? K : N};
    sm_tensor a = a_dims == 3 ? gc_param(&c, "a", 3, sa, 1) : gc_param(&c, "a", 2, sa + 1, 1);
    sm_tensor b = shared_b ? gc_param(&c, "b", 2, sb + 1, 1) : a_dims == 3 ? gc_param(&c, "b", 3, sb, 1)
                                                                            : gc_param(&c, "b", 2, sb + 1, 1);
    sm_tensor y;
    GC_OK(sm_matmul(c.g, a, b, ta, tb, "y", &y));
    gc_finish(&c, y, 1, (uint64_t)(10 + ta * 4 + tb * 2 + shared_b));
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, matmul_2d)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) matmul_case(ta, tb, false, 2);
}

Test(autodiff, matmul_batched)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) matmul_case(ta, tb, false, 3);
}

Test(autodiff, matmul_shared_b)
{
    /* ta = 1 with a shared b needs permute (a transposed gradient per batch) */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) matmul_case(ta, tb, true, 3);
}

Test(autodiff, linear)
{
    for (int bias = 0; bias < 2; bias++) {
        gc_case c;
        gc_begin(&c);
        int64_t sw[2] = {5, 4}, sbias = 5;
        sm_tensor x = gc_param(&c, "x", 3, S234, 1), w = gc_param(&c, "w", 2, sw, 1), y;
        sm_tensor b = bias ? gc_param(&c, "b", 1, &sbias, 1) : SM_NO_TENSOR;
        GC_OK(sm_linear(c.g, x, w, b, "y", &y));
        gc_finish(&c, y, 1, (uint64_t)(20 + bias));
        gc_check_grads(&c, H, TOL);
        gc_free(&c);
    }
}

/* Repeated ids accumulate into one table row; an out-of-range id (a zero row) contributes nothing. */
Test(autodiff, embedding)
{
    gc_case c;
    gc_begin(&c);
    static const int32_t ids[6] = {1, 3, 1, 0, 3, 7};
    int64_t sid[2] = {2, 3}, st[2] = {5, 4};
    sm_tensor i = gc_input(&c, "ids", SM_I32, 2, sid, ids), tab = gc_param(&c, "tab", 2, st, 1), y;
    GC_OK(sm_embedding(c.g, i, tab, "y", &y));
    gc_finish(&c, y, 1, 30);
    gc_check_grads(&c, H, TOL);
    cr_expect_eq(sm_graph_grad(c.g, i), SM_NO_TENSOR, "i32 ids get no gradient");
    float *gt = gc_data(&c, sm_graph_grad(c.g, tab));
    for (int j = 0; j < 4; j++) cr_expect_eq(gt[2 * 4 + j], 0.0f, "row 2 of the table is never used");
    gc_free(&c);
}

/* ---- views and data movement ---- */

Test(autodiff, reshape)
{
    gc_case c;
    gc_begin(&c);
    int64_t s[2] = {4, 6};
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), b = gc_param(&c, "b", 2, s, 1), r, y;
    GC_OK(sm_reshape(c.g, a, 2, s, "r", &r));
    GC_OK(sm_mul(c.g, r, b, "y", &y));   /* a product, so the gradient depends on the layout */
    gc_finish(&c, y, 1, 40);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, permute)
{
    gc_case c;
    gc_begin(&c);
    int perm[3] = {2, 0, 1};
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), y;
    GC_OK(sm_permute(c.g, a, perm, "y", &y));
    gc_finish(&c, y, 1, 41);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, slice)
{
    gc_case c;
    gc_begin(&c);
    int64_t s[3] = {2, 5, 3};
    sm_tensor a = gc_param(&c, "a", 3, s, 1), y;
    GC_OK(sm_slice(c.g, a, 1, 1, 3, "y", &y));
    gc_finish(&c, y, 1, 42);
    gc_check_grads(&c, H, TOL);
    float *ga = gc_data(&c, sm_graph_grad(c.g, a));
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 3; k++) {
            cr_expect_eq(ga[(b * 5 + 0) * 3 + k], 0.0f, "outside the slice the gradient is 0");
            cr_expect_eq(ga[(b * 5 + 4) * 3 + k], 0.0f, "outside the slice the gradient is 0");
        }
    gc_free(&c);
}

Test(autodiff, concat)
{
    for (int axis = 0; axis < 3; axis++) {
        gc_case c;
        gc_begin(&c);
        int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 3, 4};
        sb[axis] = 2;
        sm_tensor in[2] = {gc_param(&c, "a", 3, sa, 1), gc_param(&c, "b", 3, sb, 1)}, y;
        GC_OK(sm_concat(c.g, in, 2, axis, "y", &y));
        gc_finish(&c, y, 1, (uint64_t)(43 + axis));
        gc_check_grads(&c, H, TOL);
        gc_free(&c);
    }
}

Test(autodiff, sum_and_mean)
{
    for (int mean = 0; mean < 2; mean++)
        for (int axis = -1; axis < 3; axis++) {
            gc_case c;
            gc_begin(&c);
            sm_tensor a = gc_param(&c, "a", 3, S234, 1), y;
            GC_OK((mean ? sm_mean : sm_sum)(c.g, a, axis, "y", &y));
            gc_finish(&c, y, 1, (uint64_t)(50 + mean * 4 + axis));
            gc_check_grads(&c, H, TOL);
            gc_free(&c);
        }
}

/* f32 -> f16 -> f32: the forward rounds to f16 (spacing ~1e-3 near 1), so the step is 0.1 and the
 * tolerance 1e-2 (the rounding moves each of f(x±h) by <= 2^-11·|x|, /0.2 ≈ 5e-3 at |x| ≈ 2). */
Test(autodiff, cast)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), h, y;
    GC_OK(sm_cast(c.g, a, SM_F16, "h", &h));
    GC_OK(sm_cast(c.g, h, SM_F32, "y", &y));
    gc_finish(&c, y, 1, 60);
    gc_check_grads(&c, 0.1, 1e-2);
    gc_free(&c);
}

/* ---- normalisation, activations, softmax, loss ---- */

static void norm_case(bool rms, uint64_t seed)
{
    gc_case c;
    gc_begin(&c);
    int64_t C = 6, sx[3] = {2, 3, 6};
    sm_tensor x = gc_param(&c, "x", 3, sx, 1), w = gc_param(&c, "w", 1, &C, 1), b, y;
    if (rms) {
        GC_OK(sm_rmsnorm(c.g, x, w, 1e-5f, "y", &y));
    } else {
        b = gc_param(&c, "b", 1, &C, 1);
        GC_OK(sm_layernorm(c.g, x, w, b, 1e-5f, "y", &y));
    }
    gc_finish(&c, y, 1, seed);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

Test(autodiff, layernorm) { norm_case(false, 70); }
Test(autodiff, rmsnorm) { norm_case(true, 71); }

Test(autodiff, gelu_silu_softmax)
{
    sm_status (*fn[3])(sm_graph *, sm_tensor, const char *, sm_tensor *) = {sm_gelu, sm_silu, sm_softmax};
    for (int i = 0; i < 3; i++) {
        gc_case c;
        gc_begin(&c);
        sm_tensor a = gc_param(&c, "a", 3, S234, 1.5f), y;
        GC_OK(fn[i](c.g, a, "y", &y));
        gc_finish(&c, y, 1, (uint64_t)(80 + i));
        gc_check_grads(&c, H, TOL);
        gc_free(&c);
    }
}

/* One target is -1 (ignored): its row gets no gradient, and the mean is over the other rows. */
Test(autodiff, cross_entropy)
{
    gc_case c;
    gc_begin(&c);
    static const int32_t tg[6] = {0, 4, -1, 2, 2, 1};
    int64_t sl[3] = {2, 3, 5}, st[2] = {2, 3};
    sm_tensor l = gc_param(&c, "logits", 3, sl, 2), t = gc_input(&c, "targets", SM_I32, 2, st, tg), y;
    GC_OK(sm_cross_entropy(c.g, l, t, "y", &y));
    gc_finish(&c, y, 1, 90);
    gc_check_grads(&c, H, TOL);
    float *gl = gc_data(&c, sm_graph_grad(c.g, l));
    for (int j = 0; j < 5; j++) cr_expect_eq(gl[2 * 5 + j], 0.0f, "the ignored row has no gradient");
    gc_free(&c);
}

/* The fused head: one ignored row, two chunks of rows would need > 384 rows (test_lm_head checks
 * those bitwise against the unfused path, whose gradients are checked above). */
Test(autodiff, lm_head_ce)
{
    gc_case c;
    gc_begin(&c);
    static const int32_t tg[6] = {0, 4, -1, 2, 6, 1};
    int64_t sx[3] = {2, 3, 5}, sw[2] = {7, 5}, st[2] = {2, 3};
    sm_tensor x = gc_param(&c, "x", 3, sx, 1), w = gc_param(&c, "w", 2, sw, 1);
    sm_tensor t = gc_input(&c, "targets", SM_I32, 2, st, tg), y;
    GC_OK(sm_lm_head_ce(c.g, x, w, t, "y", &y));
    gc_finish(&c, y, 1, 91);
    cr_assert_gt(gc_check_grads(&c, H, TOL), 0);
    gc_free(&c);
}

/* rows is a view at an offset: a planner that dropped the offset would read rows 0.. and the
 * gradient (placed at `start` by pad) would not match the finite differences. */
Test(autodiff, rows)
{
    gc_case c;
    gc_begin(&c);
    int64_t s[2] = {6, 4};
    sm_tensor x = gc_param(&c, "x", 2, s, 1), r, y;
    GC_OK(sm_graph_op(c.g, SM_OP_ROWS, &x, 1, &(sm_attrs){.i = {2, 3}}, "r", &r));
    GC_OK(sm_gelu(c.g, r, "y", &y));
    gc_finish(&c, y, 1, 92);
    cr_assert_gt(gc_check_grads(&c, H, TOL), 0);
    const float *xv = gc_data(&c, x), *yv = gc_data(&c, y);
    gc_run(&c);
    for (int i = 0; i < 12; i++) {
        double v = xv[8 + i];
        cr_assert(fabs(yv[i] - 0.5 * v * (1 + tanh(0.7978845608 * (v + 0.044715 * v * v * v)))) < 1e-5, "element %d", i);
    }
    gc_free(&c);
}

/* ---- attention and rope ---- */

Test(autodiff, attention)
{
    for (int span = 0; span < 3; span += 2) {
        gc_case c;
        gc_begin(&c);
        int64_t s[3] = {2, 5, 3 * 8};
        sm_tensor qkv = gc_param(&c, "qkv", 3, s, 1), y;
        GC_OK(sm_attention(c.g, qkv, 2, span, "y", &y));
        gc_finish(&c, y, 1, (uint64_t)(100 + span));
        gc_check_grads(&c, H, TOL);
        gc_free(&c);
    }
}

Test(autodiff, rope)
{
    gc_case c;
    gc_begin(&c);
    int64_t s[3] = {2, 5, 3 * 8};
    sm_tensor qkv = gc_param(&c, "qkv", 3, s, 1), y;
    GC_OK(sm_rope(c.g, qkv, 2, 10000.0f, "y", &y));
    gc_finish(&c, y, 1, 110);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

/* ---- accumulation and bookkeeping ---- */

/* y = x·x + x + 3x: x is used four times (twice by one node). dy/dx = 2x + 4. */
Test(autodiff, multi_use_accumulates)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor x = gc_param(&c, "x", 3, S234, 1), xx, x3, y;
    GC_OK(sm_mul(c.g, x, x, "xx", &xx));
    GC_OK(sm_add(c.g, xx, x, "xx_x", &y));
    GC_OK(sm_scale(c.g, x, 3.0f, "x3", &x3));
    GC_OK(sm_add(c.g, y, x3, "y", &y));
    gc_finish(&c, y, 1, 120);
    gc_check_grads(&c, H, TOL);
    gc_run(&c);
    const float *gx = gc_data(&c, sm_graph_grad(c.g, x)), *xv = gc_data(&c, x), *w = gc_data(&c, c.w);
    for (int i = 0; i < 24; i++)
        cr_expect_float_eq(gx[i], w[i] * (2 * xv[i] + 4), 1e-5f, "closed form at %d", i);
    gc_free(&c);
}

/* Frozen parameters, parameters the loss does not use and inputs get no gradient; the others get
 * "grad.<name>" with role grad, even when the gradient is a plain pass-through (add). */
Test(autodiff, who_gets_gradients)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), frozen = gc_param(&c, "frozen", 3, S234, 1);
    sm_tensor unused = gc_param(&c, "unused", 3, S234, 1), xin, y, u;
    static float xdata[24];
    xin = gc_input(&c, "xin", SM_F32, 3, S234, xdata);
    GC_OK(sm_graph_set_trainable(c.g, frozen, 0));
    GC_OK(sm_add(c.g, a, frozen, "af", &y));
    GC_OK(sm_add(c.g, y, xin, "y", &y));
    GC_OK(sm_scale(c.g, unused, 2.0f, "u", &u));
    GC_OK(sm_graph_mark_output(c.g, u));
    gc_finish(&c, y, 1, 130);
    cr_expect_eq(sm_graph_grad(c.g, frozen), SM_NO_TENSOR);
    cr_expect_eq(sm_graph_grad(c.g, unused), SM_NO_TENSOR);
    cr_expect_eq(sm_graph_grad(c.g, xin), SM_NO_TENSOR);
    cr_expect_eq(sm_graph_grad(c.g, c.w), SM_NO_TENSOR, "the frozen loss weights");
    sm_tensor ga = sm_graph_grad(c.g, a), found;
    const char *name;
    sm_role role;
    GC_OK(sm_tensor_info(c.g, ga, &name, NULL, &role, NULL, NULL));
    cr_expect_str_eq(name, "grad.a");
    cr_expect_eq(role, SM_ROLE_GRAD);
    GC_OK(sm_graph_find(c.g, "grad.a", &found));
    cr_expect_eq(found, ga);
    gc_check_grads(&c, H, TOL);
    gc_free(&c);
}

/* Two parameters whose gradient is the same tensor (y = a + b) each get their own. */
Test(autodiff, shared_gradient_is_copied)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), b = gc_param(&c, "b", 3, S234, 1), y;
    GC_OK(sm_add(c.g, a, b, "y", &y));
    gc_finish(&c, y, 1, 140);
    sm_tensor ga = sm_graph_grad(c.g, a), gb = sm_graph_grad(c.g, b);
    cr_assert(ga != SM_NO_TENSOR && gb != SM_NO_TENSOR && ga != gb);
    gc_run(&c);
    cr_expect_arr_eq(gc_data(&c, ga), gc_data(&c, gb), 24 * sizeof(float));
    gc_free(&c);
}

Test(autodiff, errors_leave_the_graph_as_it_was)
{
    sm_graph *g;
    GC_OK(sm_graph_create(&g));
    sm_tensor a, b, y, l;
    int64_t one = 1;
    GC_OK(sm_graph_param(g, "a", SM_F32, 3, S234, SM_INIT_NORMAL, 1, &a));
    GC_OK(sm_graph_input(g, "b", SM_F32, 1, &one, &b));
    GC_OK(sm_scale(g, a, 2.0f, "y", &y));
    cr_expect_eq(sm_graph_backward(g, y), SM_ERR_SHAPE, "a loss of 24 values");
    GC_OK(sm_scale(g, b, 2.0f, "l", &l));
    cr_expect_eq(sm_graph_backward(g, l), SM_ERR_INVALID_ARG, "a loss that depends on no parameter");
    cr_expect_eq(sm_graph_backward(g, 99), SM_ERR_INVALID_ARG);
    /* a parameter whose gradient name is taken */
    sm_tensor taken, l2, y2, w;
    int64_t s1[2] = {1, 24};
    GC_OK(sm_graph_input(g, "grad.a", SM_F32, 1, &one, &taken));
    GC_OK(sm_graph_input(g, "w", SM_F32, 2, s1, &w));
    GC_OK(sm_reshape(g, y, 2, s1, "y2", &y2));
    GC_OK(sm_linear(g, y2, w, SM_NO_TENSOR, "l2", &l2));
    GC_OK(sm_reshape(g, l2, 1, &one, "l2v", &l2));
    int nodes = sm_graph_node_count(g), tensors = sm_graph_tensor_count(g);
    cr_expect_eq(sm_graph_backward(g, l2), SM_ERR_INVALID_ARG);
    cr_expect(strstr(sm_last_error(), "grad.a") != NULL, "message: %s", sm_last_error());
    cr_expect_eq(sm_graph_node_count(g), nodes, "a failed backward leaves no nodes behind");
    cr_expect_eq(sm_graph_tensor_count(g), tensors);
    cr_expect_eq(sm_graph_grad(g, a), SM_NO_TENSOR);
    sm_graph_free(g);
}

Test(autodiff, backward_twice_is_refused)
{
    gc_case c;
    gc_begin(&c);
    sm_tensor a = gc_param(&c, "a", 3, S234, 1), y;
    GC_OK(sm_scale(c.g, a, 2.0f, "y", &y));
    gc_finish(&c, y, 1, 150);
    cr_expect_eq(sm_graph_backward(c.g, c.loss), SM_ERR_STATE);
    gc_free(&c);
}

/* ---- the whole GPT graph ---- */

/* Cross-entropy of the logits in double, mean over the rows whose target is a class (-1: ignored),
 * as the loss node computes it. */
static const int32_t gpt_tok[10] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, gpt_tgt[10] = {1, 4, 1, 5, -1, 2, 6, 5, 3, 5};

static double gpt_loss(gc_case *c)
{
    gc_run(c);
    const float *lg = gc_data(c, c->y);
    double total = 0;
    int n = 0;
    for (int r = 0; r < 10; r++) {
        if (gpt_tgt[r] < 0) continue;
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < 11; j++) mx = fmax(mx, lg[r * 11 + j]);
        for (int j = 0; j < 11; j++) s += exp(lg[r * 11 + j] - mx);
        total += mx + log(s) - lg[r * 11 + gpt_tgt[r]];
        n++;
    }
    return total / n;
}

/* L=2, C=16, H=2, V=11, B=2, T=5 < context 8 (the positions are a slice of wpe), tied embeddings,
 * one target ignored. Parameters get up to ±0.2 of deterministic noise on top of their init, so
 * biases and norm gains are away from their trivial values.
 * Tolerance: the loss (~2.4) is computed in double from f32 logits whose rounding moves it by
 * ~1e-6 at most; /(2h) with h = 1e-2 that is ~5e-5, and the truncation error h²/6·f''' is of the
 * same order, so |a - fd| <= 2e-4 + 1e-2·|fd|; gradients here are 1e-3..1e-1. */
static void gpt_case(gc_case *c, int threads)
{
    gc_begin(c);
    sm_gpt_config gc;
    sm_gpt_config_default(&gc);
    gc.vocab = 11, gc.context = 8, gc.n_layer = 2, gc.n_head = 2, gc.n_embd = 16, gc.batch = 2, gc.seq = 5;
    gc.full_logits = 1;   /* the logits are checked too; the fused head has its own test (test_op_lm_head) */
    sm_gpt_tensors io;
    GC_OK(sm_gpt_build(c->g, &gc, &io));
    c->in[0] = io.tokens, c->in_data[0] = gpt_tok;
    c->in[1] = io.targets, c->in_data[1] = gpt_tgt;
    c->n_inputs = 2;
    c->y = io.logits;
    c->loss = io.loss;
    GC_OK(sm_graph_mark_output(c->g, io.logits));
    c->n_fwd_tensors = sm_graph_tensor_count(c->g);
    GC_OK(sm_graph_backward(c->g, io.loss));
    gc_compile(c, threads, 17);
    for (sm_tensor p = 0; p < c->n_fwd_tensors; p++) {
        if (c->g->t[p].role != SM_ROLE_PARAM) continue;
        float *x = gc_data(c, p);
        for (int64_t j = 0; j < sm_tensor_numel(c->g, p); j++)
            x[j] += 0.2f * (float)sin(12.9898 * (double)(p * 1000 + j) + 0.5);
    }
}

Test(autodiff, gpt_gradients)
{
    gc_case c;
    gpt_case(&c, 1);
    int n_params = 0;
    for (sm_tensor p = 0; p < c.n_fwd_tensors; p++) n_params += c.g->t[p].role == SM_ROLE_PARAM;
    cr_expect_eq(n_params, 2 + 2 * 12 + 2, "wte, wpe, 12 per layer, lnf");
    int checked = gc_check_grads_fn(&c, 1e-2, 2e-4, 1e-2, 6, gpt_loss);
    cr_expect_gt(checked, 100);
    float loss;
    gc_run(&c);
    GC_OK(sm_runtime_get(c.rt, c.loss, &loss, sizeof loss));
    double ref = gpt_loss(&c);
    cr_expect(fabs(loss - ref) < 1e-4, "the loss node %.6f vs the double recomputation %.6f", (double)loss, ref);
    gc_free(&c);
}

/* Every gradient bitwise the same with 1 and 2 threads. */
Test(autodiff, gpt_gradients_thread_independent)
{
    gc_case c;
    gpt_case(&c, 2);
    sm_graph *g = c.g;
    size_t total = 0;
    for (sm_tensor p = 0; p < c.n_fwd_tensors; p++)
        if (sm_graph_grad(g, p) != SM_NO_TENSOR) total += sm_rec_bytes(&g->t[p]);
    unsigned char *r[2] = {malloc(total), malloc(total)};
    for (int k = 0; k < 2; k++) {
        GC_OK(sm_runtime_set_threads(c.rt, k + 1));
        gc_run(&c);
        size_t off = 0;
        for (sm_tensor p = 0; p < c.n_fwd_tensors; p++) {
            sm_tensor gt = sm_graph_grad(g, p);
            if (gt == SM_NO_TENSOR) continue;
            GC_OK(sm_runtime_get(c.rt, gt, r[k] + off, sm_rec_bytes(&g->t[gt])));
            off += sm_rec_bytes(&g->t[gt]);
        }
    }
    cr_expect_arr_eq(r[0], r[1], total, "gradients differ between 1 and 2 threads");
    free(r[0]);
    free(r[1]);
    gc_free(&c);
}

/* Every op of the forward table has a backward rule (the ops appended for backward and the
 * optimizer are not differentiated again). A placeholder row with no kernel yet is not checked. */
Test(autodiff, every_forward_op_has_a_rule)
{
    for (int op = 0; op < SM_OP_FILL; op++) {
        const sm_op_def *d = sm_op_def_get((sm_op_kind)op);
        if (!d->forward && !d->is_view) {
            cr_log_warn("op '%s' has no kernel yet: its backward rule is not checked", d->name);
            continue;
        }
        cr_expect(d->backward != NULL, "op '%s' has no backward rule", d->name);
    }
}
