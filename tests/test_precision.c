/* test_precision.c — the precision pass (scheduler/precision.c):
 *   - policies parse and print; an unknown one is refused;
 *   - fp32 leaves the lowered graph exactly the user's (same hash, every float tensor f32);
 *   - bf16/fp16 on a training graph: every activation the backward reads from the forward is read
 *     through a 16-bit copy (directly or cast back to f32), the copy is made right after its producer;
 *     weights, gradients, optimizer state, the loss and norm statistics stay f32; the casts are the
 *     only nodes added; the plan validates and the activation arena shrinks;
 *   - inference: the weights are stored in 16 bits, the runtime converts at set/get/init_params, and
 *     the logits are bitwise those of the f32 model with the rounded weights;
 *   - numerics: the step-0 loss within 1e-2 of fp32 (the forward runs as in fp32, so it is in fact
 *     equal), every gradient within a stated tolerance of the fp32 one, results independent of the
 *     thread count, NaN-poison debug runs pass, and a few AdamW steps in bf16 lower the loss;
 *   - plan files record the policy and each tensor's storage type. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "base/fp16.h"
#include "graph/graph.h"
#include "ops/op.h"
#include "scheduler/plan.h"
#include "smallmind.h"

#define OK(call) cr_assert_eq((call), SM_OK, "%s", sm_last_error())

typedef struct model {
    sm_graph *g;
    sm_tensor tokens, targets, hparams, loss;
    int vocab;
    sm_adamw_config ac;
} model;

static model gpt_model(int L, int C, int H, int V, int T, int B, bool training)
{
    model m = {.vocab = V, .hparams = SM_NO_TENSOR};
    OK(sm_graph_create(&m.g));
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = L, c.n_embd = C, c.n_head = H, c.vocab = V, c.context = T, c.seq = T, c.batch = B;
    c.with_loss = training;
    sm_gpt_tensors io;
    OK(sm_gpt_build(m.g, &c, &io));
    m.tokens = io.tokens, m.targets = io.targets, m.loss = io.loss;
    if (training) {
        OK(sm_graph_backward(m.g, sm_graph_loss(m.g)));
        sm_adamw_config_default(&m.ac);
        m.ac.lr = 1e-2f;
        sm_adamw_tensors opt;
        OK(sm_graph_adamw(m.g, &m.ac, &opt));
        m.hparams = opt.hparams;
    }
    return m;
}

static sm_plan *plan_with(const sm_graph *g, sm_precision pr, const char *recompute, int threads)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = threads;
    o.precision = pr;
    OK(sm_recompute_parse(recompute, &o.recompute));
    sm_plan *p;
    OK(sm_plan_create(g, &o, &p));
    OK(sm_plan_validate(p, g));
    return p;
}

Test(precision, policy_names)
{
    static const char *const names[] = {"fp32", "bf16", "fp16"};
    static const sm_dtype types[] = {SM_F32, SM_BF16, SM_F16};
    for (int i = 0; i < SM_PRECISION_COUNT; i++) {
        sm_precision p;
        OK(sm_precision_parse(names[i], &p));
        cr_assert_eq(p, (sm_precision)i);
        cr_assert_str_eq(sm_precision_name(p), names[i]);
        cr_assert_eq(sm_precision_dtype(p), types[i]);
    }
    sm_precision p = SM_PRECISION_BF16;
    OK(sm_precision_parse("f16", &p));
    cr_assert_eq(p, SM_PRECISION_FP16);
    OK(sm_precision_parse("f32", &p));
    cr_assert_eq(p, SM_PRECISION_FP32);
    cr_assert_eq(sm_precision_parse("fp8", &p), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "fp8") && strstr(sm_last_error(), "bf16"), "%s", sm_last_error());
    cr_assert_eq(sm_precision_parse(NULL, &p), SM_ERR_INVALID_ARG);
    cr_assert_str_eq(sm_precision_name((sm_precision)7), "?");
    /* a plan refuses an unknown policy */
    model m = gpt_model(1, 16, 2, 32, 8, 1, true);
    sm_plan_options o;
    sm_plan_options_default(&o);
    cr_assert_eq(o.precision, SM_PRECISION_FP32, "the default is fp32");
    o.precision = (sm_precision)9;
    sm_plan *q = NULL;
    cr_assert_eq(sm_plan_create(m.g, &o, &q), SM_ERR_INVALID_ARG);
    cr_assert_null(q);
    sm_graph_free(m.g);
}

/* fp32 is today's plan: the lowered graph is the user's, and every float tensor is f32. */
Test(precision, fp32_changes_nothing)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, true);
    sm_plan *p = plan_with(m.g, SM_PRECISION_FP32, "none", 2);
    cr_assert_eq(p->lowered_hash, sm_graph_hash(m.g));
    cr_assert_eq(p->g->n_t, m.g->n_t);
    cr_assert_eq(p->g->n_nodes, m.g->n_nodes);
    sm_plan_precision_info pi;
    OK(sm_plan_precision(p, &pi));
    cr_assert_eq(pi.n_half + pi.n_cast + pi.n_stored[SM_F16] + pi.n_stored[SM_BF16], 0);
    cr_assert_float_eq(pi.bytes_per_param, 4.0, 1e-12);
    /* weights + gradients + AdamW's two moments, each f32 (arenas are aligned: a little more) */
    cr_assert(pi.state_bytes_per_param >= 16.0 && pi.state_bytes_per_param < 16.5, "%f", pi.state_bytes_per_param);
    sm_plan_free(p);
    sm_graph_free(m.g);
}

/* Per node of g: the loss depends on it. */
static bool *forward_of(const sm_graph *g, int n_nodes)
{
    bool *need = calloc((size_t)g->n_t, 1), *fwd = calloc((size_t)n_nodes, 1);
    need[g->loss] = true;
    for (int k = n_nodes - 1; k >= 0; k--)
        if (need[g->nodes[k].out]) {
            fwd[k] = true;
            for (int i = 0; i < g->nodes[k].n_in; i++) need[g->nodes[k].in[i]] = true;
        }
    free(need);
    return fwd;
}

/* The rules, checked on the lowered graph against the user's graph u. */
static void check_rules(const sm_graph *u, const sm_plan *p, sm_dtype half)
{
    const sm_graph *g = p->g;
    bool *fwd = forward_of(u, u->n_nodes);
    int *step = malloc(sizeof *step * (size_t)g->n_nodes);
    for (int s = 0; s < p->n_steps; s++) step[p->order[s]] = s;
    int n_half = 0, n_cast = 0;
    /* nothing of the user's graph changes type but the backward's views of 16-bit copies */
    for (int i = 0; i < u->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (r->dtype == u->t[i].dtype) continue;
        cr_assert(r->dtype == half && r->node >= 0 && !fwd[r->node] && sm_op_def_get(g->nodes[r->node].op)->is_view &&
                  g->t[g->nodes[r->node].in[0]].dtype == half, "'%s' changed type and is no view of a 16-bit copy",
                  r->name);
    }
    /* everything appended is a cast, to the policy's type (right after the producer of its f32 source)
     * or back to f32 (before its first reader) */
    for (int k = u->n_nodes; k < g->n_nodes; k++) {
        const sm_node *n = &g->nodes[k];
        if (sm_plan_recomputes(p, n->out) != SM_NO_TENSOR) continue;   /* a recompute clone */
        cr_assert_eq(n->op, SM_OP_CAST, "appended node %d is a cast", k);
        const sm_tensor_rec *x = &g->t[n->in[0]], *y = &g->t[n->out];
        n_cast++;
        if (y->dtype == half) {
            n_half++;
            cr_assert_eq(x->dtype, SM_F32);
            cr_assert_lt(n->in[0], u->n_t, "the 16-bit copy is of a user tensor");
            cr_assert(fwd[x->node], "'%s' comes from the forward", x->name);
            cr_assert_eq(step[k], step[x->node] + 1, "'%s' is cast right after its producer", x->name);
            cr_assert(x->role == SM_ROLE_ACTIVATION && !x->is_output, "'%s' is an activation", x->name);
            cr_assert_neq(u->nodes[x->node].op, SM_OP_NORM_STATS, "norm statistics stay f32");
        } else {
            cr_assert_eq(y->dtype, SM_F32);
            cr_assert_eq(x->dtype, half, "a cast back reads a 16-bit copy");
        }
    }
    cr_assert_eq(n_half, p->prec.n_half);
    cr_assert_eq(n_cast, p->prec.n_cast);
    cr_assert_gt(n_half, 0);
    /* no backward node reads a saved activation of the user's graph in f32 any more, except the
     * ones the rules keep f32 (statistics, persistent tensors) */
    for (int k = 0; k < u->n_nodes; k++) {
        if (fwd[k]) continue;
        const sm_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            sm_tensor t = n->in[i];
            const sm_tensor_rec *r = &g->t[t];
            if (t >= u->n_t || r->node < 0 || r->node >= u->n_nodes || !fwd[r->node]) continue;
            bool kept = r->dtype != SM_F32 || r->role != SM_ROLE_ACTIVATION || r->is_output ||
                        u->nodes[r->node].op == SM_OP_NORM_STATS || u->nodes[r->node].op == SM_OP_LM_HEAD_CE ||
                        sm_op_def_get(u->nodes[r->node].op)->is_view;
            cr_assert(kept, "backward node '%s' still reads saved '%s' in f32", g->t[n->out].name, r->name);
        }
    }
    /* weights, gradients, optimizer state and the loss are f32 */
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (r->role == SM_ROLE_PARAM || r->role == SM_ROLE_GRAD || r->role == SM_ROLE_OPTIM || i == g->loss)
            cr_assert_eq(r->dtype, SM_F32, "'%s' is f32", r->name);
    }
    free(step);
    free(fwd);
}

Test(precision, training_rules, .timeout = 120)
{
    model m = gpt_model(3, 32, 2, 64, 16, 2, true);
    sm_plan *p32 = plan_with(m.g, SM_PRECISION_FP32, "none", 2);
    static const sm_precision pols[] = {SM_PRECISION_BF16, SM_PRECISION_FP16};
    for (int j = 0; j < 2; j++) {
        sm_dtype half = sm_precision_dtype(pols[j]);
        for (int r = 0; r < 2; r++) {
            sm_plan *p = plan_with(m.g, pols[j], r ? "every:2" : "none", 2);
            check_rules(m.g, p, half);
            sm_plan_precision_info pi;
            OK(sm_plan_precision(p, &pi));
            cr_assert_geq(pi.n_stored[half], pi.n_half, "the copies, and views of them");
            cr_assert_float_eq(pi.bytes_per_param, 4.0, 1e-12, "master weights stay f32");
            if (!r)
                cr_assert_lt(p->arena[SM_ARENA_ACT].size, p32->arena[SM_ARENA_ACT].size, "%s: activations %llu vs %llu",
                             sm_precision_name(pols[j]), (unsigned long long)p->arena[SM_ARENA_ACT].size,
                             (unsigned long long)p32->arena[SM_ARENA_ACT].size);
            sm_plan_free(p);
        }
    }
    sm_plan_free(p32);
    sm_graph_free(m.g);
}

/* Inference: the matmul/linear weights and the embedding tables are stored in 16 bits (about 2 bytes
 * per parameter), the norm gains and biases stay f32; activations are untouched; no cast is
 * inserted (every reader of those weights reads 16 bits). */
Test(precision, inference_weights)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, false);
    sm_plan *p32 = plan_with(m.g, SM_PRECISION_FP32, "none", 2);
    for (int j = 1; j < SM_PRECISION_COUNT; j++) {
        sm_dtype half = sm_precision_dtype((sm_precision)j);
        sm_plan *p = plan_with(m.g, (sm_precision)j, "none", 2);
        cr_assert_eq(p->prec.n_cast, 0);
        cr_assert_eq(p->g->n_t, m.g->n_t, "nothing appended");
        for (int i = 0; i < m.g->n_t; i++) {
            const sm_tensor_rec *u = &m.g->t[i], *r = &p->g->t[i];
            if (u->role != SM_ROLE_PARAM) {
                cr_assert_eq(r->dtype, u->dtype, "'%s' is not a weight: its type is kept", u->name);
                continue;
            }
            bool matrix = u->ndim == 2;   /* wte, wpe and the matmul weights; gains and biases are 1-D */
            if (!strcmp(u->name, "wpe")) continue;   /* read through a slice: stays f32 if the slice copies */
            cr_assert_eq(r->dtype, matrix ? half : SM_F32, "weight '%s' %s", u->name, sm_dtype_name(r->dtype));
        }
        sm_plan_precision_info pi;
        OK(sm_plan_precision(p, &pi));
        cr_assert(pi.bytes_per_param > 2.0 && pi.bytes_per_param < 2.2, "%f bytes/param", pi.bytes_per_param);
        cr_assert_lt(p->arena[SM_ARENA_PARAMS].size, p32->arena[SM_ARENA_PARAMS].size * 55 / 100);
        cr_assert_eq(p->arena[SM_ARENA_ACT].size, p32->arena[SM_ARENA_ACT].size);
        sm_plan_free(p);
    }
    sm_plan_free(p32);
    sm_graph_free(m.g);
}

/* The runtime converts at its boundary: init_params rounds the f32 initial values, set/get speak
 * f32, data refuses a converted weight; and the logits of 16-bit weights are those of the f32 model
 * with rounded weights: bitwise for f16 (every kernel widens exactly what the f32 path would read),
 * within a stated bound for bf16, whose products round the activations to bf16 too. */
Test(precision, inference_runtime, .timeout = 120)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, false);
    sm_tensor logits;
    OK(sm_graph_find(m.g, "logits", &logits));
    int64_t n_tok = sm_tensor_numel(m.g, m.tokens), n_log = sm_tensor_numel(m.g, logits);
    int32_t *ids = malloc(sizeof *ids * (size_t)n_tok);
    for (int64_t i = 0; i < n_tok; i++) ids[i] = (int32_t)((i * 7 + 3) % m.vocab);
    float *ref = malloc(sizeof *ref * (size_t)n_log), *y = malloc(sizeof *y * (size_t)n_log);
    for (int j = 1; j < SM_PRECISION_COUNT; j++) {
        sm_dtype half = sm_precision_dtype((sm_precision)j);
        sm_plan *p = plan_with(m.g, (sm_precision)j, "none", 2), *q = plan_with(m.g, SM_PRECISION_FP32, "none", 2);
        sm_runtime *rt, *r32;
        OK(sm_runtime_create(m.g, p, &rt));
        OK(sm_runtime_create(m.g, q, &r32));
        OK(sm_runtime_init_params(rt, 7));
        OK(sm_runtime_init_params(r32, 7));
        /* the f32 model gets the rounded weights (through get: f32 out of 16-bit storage) */
        for (int i = 0; i < m.g->n_t; i++) {
            if (m.g->t[i].role != SM_ROLE_PARAM) continue;
            size_t bytes = sm_rec_bytes(&m.g->t[i]);
            float *w = malloc(bytes), *w32 = malloc(bytes);
            OK(sm_runtime_get(rt, i, w, bytes));
            OK(sm_runtime_get(r32, i, w32, bytes));
            bool conv = p->g->t[i].dtype != SM_F32;
            for (size_t e = 0; e < bytes / 4; e++) {
                float want = !conv ? w32[e] : half == SM_BF16 ? sm_bf16_to_f32(sm_f32_to_bf16(w32[e]))
                                                              : sm_f16_to_f32(sm_f32_to_f16(w32[e]));
                cr_assert(!memcmp(&w[e], &want, 4), "'%s'[%zu]: init gives %g, the rounded f32 init %g",
                          m.g->t[i].name, e, (double)w[e], (double)want);
            }
            OK(sm_runtime_set(r32, i, w, bytes));
            void *data;
            if (conv) {
                cr_assert_eq(sm_runtime_data(rt, i, &data), SM_ERR_UNSUPPORTED);
                cr_assert(strstr(sm_last_error(), m.g->t[i].name) && strstr(sm_last_error(), "sm_runtime_set"), "%s",
                          sm_last_error());
                /* set then get round-trips the rounded values */
                OK(sm_runtime_set(rt, i, w, bytes));
                OK(sm_runtime_get(rt, i, w32, bytes));
                cr_assert(!memcmp(w, w32, bytes));
                cr_assert_eq(sm_runtime_set(rt, i, w, bytes / 2), SM_ERR_INVALID_ARG, "the caller gives f32 bytes");
            }
            free(w), free(w32);
        }
        OK(sm_runtime_set(rt, m.tokens, ids, sizeof *ids * (size_t)n_tok));
        OK(sm_runtime_set(r32, m.tokens, ids, sizeof *ids * (size_t)n_tok));
        OK(sm_runtime_run(rt));
        OK(sm_runtime_run(r32));
        OK(sm_runtime_get(rt, logits, y, sizeof *y * (size_t)n_log));
        OK(sm_runtime_get(r32, logits, ref, sizeof *ref * (size_t)n_log));
        double dmax = 0, ymax = 0;
        for (int64_t e = 0; e < n_log; e++) {
            dmax = fmax(dmax, fabs((double)y[e] - ref[e]));
            ymax = fmax(ymax, fabs((double)ref[e]));
        }
        if (half == SM_F16)
            cr_assert(!memcmp(y, ref, sizeof *y * (size_t)n_log), "f16 weights: logits differ from the f32 model's "
                      "with the same rounded weights");
        else   /* bf16 products round the activations too: 2 operands x u = 2^-8 per product, through two layers
                  and the head; 4u of the largest logit is ~14x the measured 1.1e-3 */
            cr_assert(dmax > 0 && dmax <= ymax / 64, "bf16: logits within %g of the f32 model's (largest %g); "
                      "0 would mean the products were not bf16", dmax, ymax);
        sm_runtime_free(rt), sm_runtime_free(r32);
        sm_plan_free(p), sm_plan_free(q);
    }
    free(ids), free(ref), free(y);
    sm_graph_free(m.g);
}

/* ---- numerics ---- */

static void feed(sm_runtime *rt, const model *m, int64_t step)
{
    int64_t n = sm_tensor_numel(m->g, m->tokens);
    int32_t *ids = malloc(sizeof *ids * (size_t)n * 2);
    for (int64_t i = 0; i < 2 * n; i++) ids[i] = (int32_t)((i * 7 + step * 13 + (i * i) % 5) % m->vocab);
    OK(sm_runtime_set(rt, m->tokens, ids, sizeof *ids * (size_t)n));
    OK(sm_runtime_set(rt, m->targets, ids + n, sizeof *ids * (size_t)n));
    float hp[SM_ADAMW_HPARAMS];
    OK(sm_adamw_hparams(&m->ac, step, hp));
    OK(sm_runtime_set(rt, m->hparams, hp, sizeof hp));
    free(ids);
}

/* One step of a plan: the loss and every parameter's gradient (concatenated, in id order). */
typedef struct result {
    float loss;
    float *grads;
    int64_t n;
    uint64_t hash;   /* of the loss, gradients and updated weights and moments */
} result;

static result run_step(const model *m, sm_precision pr, const char *recompute, int threads, bool debug)
{
    sm_plan *p = plan_with(m->g, pr, recompute, threads);
    sm_runtime *rt;
    OK(sm_runtime_create(m->g, p, &rt));
    OK(sm_runtime_set_threads(rt, threads));
    OK(sm_runtime_init_params(rt, 5));
    if (debug) OK(sm_runtime_set_debug(rt, 1));
    feed(rt, m, 0);
    OK(sm_runtime_run(rt));
    result r = {0};
    OK(sm_runtime_get(rt, m->loss, &r.loss, sizeof r.loss));
    const sm_graph *g = m->g;
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].role == SM_ROLE_GRAD) r.n += sm_rec_numel(&g->t[i]);
    r.grads = malloc(sizeof *r.grads * (size_t)r.n);
    int64_t at = 0;
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int i = 0; i < g->n_t; i++) {
        sm_role role = g->t[i].role;
        void *data;
        OK(sm_runtime_data(rt, i, &data));
        if (role == SM_ROLE_GRAD) {
            memcpy(r.grads + at, data, sm_rec_bytes(&g->t[i]));
            at += sm_rec_numel(&g->t[i]);
        }
        if (role == SM_ROLE_PARAM || role == SM_ROLE_GRAD || role == SM_ROLE_OPTIM || i == g->loss)
            XXH3_64bits_update(st, data, sm_rec_bytes(&g->t[i]));
    }
    r.hash = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    sm_runtime_free(rt);
    sm_plan_free(p);
    return r;
}

/* ||a - b|| / ||b|| over the gradients */
static double rel_err(const result *a, const result *b)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < b->n; i++) {
        double e = (double)a->grads[i] - (double)b->grads[i];
        d += e * e;
        s += (double)b->grads[i] * (double)b->grads[i];
    }
    return sqrt(d / s);
}

/* Tolerances. Each saved activation is rounded once to the 16-bit type, a relative error of at most
 * u = 2^-8 (bf16: 8 significant bits, round to nearest) or 2^-11 (f16: 11 bits; the activations of
 * these models are far inside its normal range). A gradient is a sum of products each of which
 * reads a few rounded activations and propagates through the layers above; the rounding errors are
 * independent and partly cancel, so the error of the whole gradient vector stays a fraction of u
 * (measured on this model: 1.3e-3 = u/2.9 for bf16, 1.7e-4 = u/2.9 for f16). The bound is 2u (2^-7,
 * 2^-10): ~6x the measured error, and still tight enough that a kernel reading a 16-bit tensor as the
 * wrong type, or a copy rounded twice, fails it (bf16 measured 3.3e-3 = u/1.2 with its products in
 * bf16 too). The loss: fp16's forward reads the f32 originals with f32 products, so it equals fp32's;
 * bf16's products round their operands (measured 1e-5 off); the 1e-2 bound is the issue's. */
Test(precision, step0_loss_and_gradients, .timeout = 300)
{
    model m = gpt_model(3, 64, 4, 96, 32, 2, true);
    result ref = run_step(&m, SM_PRECISION_FP32, "none", 2, false);
    static const sm_precision pols[] = {SM_PRECISION_BF16, SM_PRECISION_FP16};
    static const double tol[] = {2.0 / 256.0, 2.0 / 2048.0};
    for (int j = 0; j < 2; j++) {
        result r = run_step(&m, pols[j], "none", 2, false);
        cr_assert(fabsf(r.loss - ref.loss) <= 1e-2f, "%s: step-0 loss %.6f vs fp32 %.6f", sm_precision_name(pols[j]),
                  (double)r.loss, (double)ref.loss);
        if (pols[j] == SM_PRECISION_FP16)
            cr_assert(!memcmp(&r.loss, &ref.loss, sizeof r.loss), "fp16: the forward reads the f32 originals with f32 "
                      "products, so the loss is bitwise fp32's");
        double e = rel_err(&r, &ref);
        cr_assert(e <= tol[j] && e > 0, "%s: gradients' relative error %.3g (tolerance %.3g; 0 would mean nothing "
                  "was stored in 16 bits)", sm_precision_name(pols[j]), e, tol[j]);
        /* with recompute the clones recompute from 16-bit copies of the kept tensors: same bound */
        result q = run_step(&m, pols[j], "sqrt", 2, false);
        cr_assert(fabsf(q.loss - ref.loss) <= 1e-2f);
        double eq = rel_err(&q, &ref);
        cr_assert(eq <= tol[j], "%s + sqrt recompute: gradients' relative error %.3g", sm_precision_name(pols[j]), eq);
        free(r.grads), free(q.grads);
    }
    free(ref.grads);
    sm_graph_free(m.g);
}

/* The same result for any thread count, and NaN-poison debug runs pass (no dead storage read). */
Test(precision, threads_and_debug, .timeout = 300)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, true);
    for (int j = 1; j < SM_PRECISION_COUNT; j++) {
        result a = run_step(&m, (sm_precision)j, "none", 1, false);
        result b = run_step(&m, (sm_precision)j, "none", 2, true);
        result c = run_step(&m, (sm_precision)j, "every:1", 3, true);
        cr_assert_eq(a.hash, b.hash, "%s: 1 and 2 threads differ", sm_precision_name((sm_precision)j));
        result d = run_step(&m, (sm_precision)j, "every:1", 1, false);
        cr_assert_eq(c.hash, d.hash, "%s + recompute: 3 and 1 threads differ", sm_precision_name((sm_precision)j));
        free(a.grads), free(b.grads), free(c.grads), free(d.grads);
    }
    sm_graph_free(m.g);
}

/* A few AdamW steps in bf16 lower the loss, and stay close to fp32's. */
Test(precision, bf16_training_steps, .timeout = 300)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, true);
    float loss[2][8];
    for (int j = 0; j < 2; j++) {
        sm_plan *p = plan_with(m.g, j ? SM_PRECISION_BF16 : SM_PRECISION_FP32, "none", 2);
        sm_runtime *rt;
        OK(sm_runtime_create(m.g, p, &rt));
        OK(sm_runtime_init_params(rt, 3));
        for (int s = 0; s < 8; s++) {
            feed(rt, &m, 0);   /* the same batch: the loss must fall */
            OK(sm_runtime_run(rt));
            OK(sm_runtime_get(rt, m.loss, &loss[j][s], sizeof(float)));
        }
        sm_runtime_free(rt);
        sm_plan_free(p);
    }
    cr_assert_lt(loss[1][7], loss[1][0] - 0.5f, "bf16: loss %.4f -> %.4f", (double)loss[1][0], (double)loss[1][7]);
    cr_assert(fabsf(loss[1][7] - loss[0][7]) <= 0.02f * loss[0][7], "after 8 steps bf16 %.5f vs fp32 %.5f",
              (double)loss[1][7], (double)loss[0][7]);
    sm_graph_free(m.g);
}

/* Plan files keep the policy and each tensor's storage type; a file whose types disagree with the
 * lowering is refused. */
Test(precision, plan_file)
{
    model m = gpt_model(2, 32, 2, 64, 16, 2, true);
    sm_plan *p = plan_with(m.g, SM_PRECISION_BF16, "none", 2);
    char path[] = "/tmp/sm_prec_plan_XXXXXX";
    close(mkstemp(path));
    OK(sm_plan_save(p, path));
    sm_plan *q;
    OK(sm_plan_load(m.g, path, &q));
    cr_assert_eq(q->opts.precision, SM_PRECISION_BF16);
    cr_assert_eq(q->lowered_hash, p->lowered_hash);
    cr_assert_eq(q->prec.n_half, p->prec.n_half);
    sm_plan_free(q);
    /* flip the stored type of the first 16-bit tensor (record byte 2), checksum fixed up */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(n);
    cr_assert_eq(fread(b, 1, n, f), n);
    fclose(f);
    int first = -1;
    for (int i = 0; i < p->g->n_t && first < 0; i++)
        if (p->g->t[i].dtype == SM_BF16) first = i;
    cr_assert_geq(first, 0);
    size_t rec = n - 8 - 32 * (size_t)(p->n_tensors - first);
    cr_assert_eq(b[rec + 2], SM_BF16);
    b[rec + 2] = SM_F16;
    uint64_t sum = XXH3_64bits(b, n - 8);
    memcpy(b + n - 8, &sum, 8);
    f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    q = NULL;
    cr_assert_eq(sm_plan_load(m.g, path, &q), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "stored as dtype"), "%s", sm_last_error());
    cr_assert_null(q);
    free(b);
    unlink(path);
    sm_plan_free(p);
    sm_graph_free(m.g);
}

/* The GPT-2 124M shape (the llm.c import's: L=12, C=768, H=12, V=50257) at T=8: the pass leaves every
 * forward node reading exactly the tensors it read (all f32), so the step-0 loss is bitwise fp32's for
 * any weights, imported ones included (a real run of this shape is test_recompute's). */
Test(precision, gpt2_shape_forward_untouched, .timeout = 120)
{
    model m = gpt_model(12, 768, 12, 50257, 8, 1, true);
    bool *fwd = forward_of(m.g, m.g->n_nodes);
    for (int j = 1; j < SM_PRECISION_COUNT; j++) {
        sm_plan *p = plan_with(m.g, (sm_precision)j, "none", 2);
        cr_assert_gt(p->prec.n_half, 0);
        for (int k = 0; k < m.g->n_nodes; k++) {
            if (!fwd[k]) continue;
            const sm_node *a = &m.g->nodes[k], *b = &p->g->nodes[k];
            cr_assert(!memcmp(a->in, b->in, sizeof a->in), "forward node '%s' reads other tensors",
                      m.g->t[a->out].name);
            for (int i = 0; i < b->n_in; i++)
                cr_assert_eq(p->g->t[b->in[i]].dtype, m.g->t[a->in[i]].dtype, "forward node '%s' input %d changed type",
                             m.g->t[a->out].name, i);
        }
        sm_plan_free(p);
    }
    free(fwd);
    sm_graph_free(m.g);
}
