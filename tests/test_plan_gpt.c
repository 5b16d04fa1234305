/* test_plan_gpt.c — the planner on the GPT templates (gpt-tiny, gpt, gpt2 at their default B and T),
 * inference and training (forward + backward + one AdamW step):
 *   - golden arena sizes. Weights, gradients and optimizer state come from the parameter count
 *     (formula below); the inference activation arena from the peak worked out by hand; the training
 *     activation arena is a constant derived once from this planner (how: see `golden`), so a change
 *     to the graphs or the planner that moves it must be looked at;
 *   - every activation arena within 1.05 x its lower bound (here: exactly at it);
 *   - executing a packed plan gives bitwise the results of the naive plan (nothing shared), in debug
 *     mode (dead ranges poisoned, every read checked): the logits of inference, and the losses and
 *     parameters over two training steps.
 * The GPT graphs need the attention row and every op's backward rule; a build without them skips
 * these tests with the reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "scheduler/plan.h"

typedef struct gpt {
    const char *name;
    sm_gpt_config c;
} gpt;

/* the CLI's templates (frontends/cli/model.c) at their default B and T */
static gpt tmpl(int k)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);   /* "gpt": L=6 C=384 H=6 V=256, B=8 T=256 */
    if (k == 0) {
        c.n_layer = 2, c.n_embd = 64, c.n_head = 2, c.context = 64, c.batch = 2, c.seq = 64;
        return (gpt){"gpt-tiny", c};
    }
    if (k == 2) {
        c.vocab = 50257, c.context = 1024, c.n_layer = 12, c.n_head = 12, c.n_embd = 768, c.batch = 4, c.seq = 64;
        return (gpt){"gpt2", c};
    }
    return (gpt){"gpt", c};
}

/* Inference is the generation graph (no targets or loss; the logits are the output), as
 * `smallmind plan --infer` builds it; training adds the loss, the backward and one AdamW step. */
static sm_status build(const sm_gpt_config *c, int training, sm_graph **g, sm_gpt_tensors *io, sm_adamw_tensors *opt)
{
    sm_gpt_config cc = *c;
    cc.with_loss = training;
    sm_status s = sm_graph_create(g);
    if (!s) s = sm_gpt_build(*g, &cc, io);
    if (!s && training) {
        sm_adamw_config ac;
        sm_adamw_config_default(&ac);
        s = sm_graph_backward(*g, io->loss);
        if (!s) s = sm_graph_adamw(*g, &ac, opt);
    }
    return s;
}

#define BUILD(c, training, g, io, opt) cr_assert_eq(build(c, training, g, io, opt), SM_OK, "%s", sm_last_error())

/* Parameters of the tied GPT-2 layout: token and position tables, per layer ln1 (2C), qkv (3C^2+3C),
 * attn proj (C^2+C), ln2 (2C), fc (4C^2+4C), mlp proj (4C^2+C) = 12C^2+13C, and lnf (2C). Every
 * tensor's bytes are a multiple of 64 here, so the arena is exactly 4 bytes per parameter. */
static uint64_t param_bytes(const sm_gpt_config *c)
{
    uint64_t C = (uint64_t)c->n_embd;
    return 4 * ((uint64_t)c->vocab * C + (uint64_t)c->context * C + (uint64_t)c->n_layer * (12 * C * C + 13 * C) + 2 * C);
}

static uint64_t align64(uint64_t x) { return (x + 63) / 64 * 64; }

/* Inference: the activation peak is either inside an MLP (residual stream, ln2 output and fc output
 * live: C + C + 4C floats per token; gelu then runs in place) or at the logits (residual stream,
 * which lnf overwrote in place, and the logits: C + V), plus the i32 tokens, which live the whole
 * run. */
static uint64_t infer_act(const sm_gpt_config *c)
{
    uint64_t bt = (uint64_t)c->batch * (uint64_t)c->seq, C = (uint64_t)c->n_embd, V = (uint64_t)c->vocab;
    uint64_t per_token = 6 * C > C + V ? 6 * C : C + V;
    return 4 * bt * per_token + align64(4 * bt);
}

/* Training: constants from `smallmind plan <model> --train --threads 2 --json`, re-derived when the
 * templates' head became the fused lm_head_ce (no logits or dlogits tensor). Every activation the
 * backward reads is live at the start of the backward (per layer ln1, qkv, attn, res1, ln2, fc, gelu,
 * res2 = 16C floats per token, plus the embedding output). Without the [BT, V] logits the peak of
 * gpt-tiny and gpt moves into the last block's MLP backward (the [BT, 4C] gradient of the gelu
 * output on top of the saved activations): gpt-tiny 1311872 (was 1377472 with the logits), gpt
 * 321273984. The head's backward writes dw and dx into one [V + BT, C] tensor, alive until the tied
 * embedding's gradient is added to its dw rows: for gpt2 that tensor (155.2 MB) and the token-
 * embedding gradient [V, C] (154.4 MB) make the peak, 310354048 (the order pass runs the embedding
 * backward as soon as it can). */
static const uint64_t golden_train_act[3] = {1311872, 321273984, 310354048};

Test(plan_gpt, golden_arenas)
{
    for (int k = 0; k < 3; k++)
        for (int training = 0; training <= 1; training++) {
            gpt m = tmpl(k);
            sm_graph *g = NULL;
            sm_gpt_tensors io;
            sm_adamw_tensors opt;
            BUILD(&m.c, training, &g, &io, &opt);
            sm_plan_options o;
            sm_plan_options_default(&o);
            o.n_threads = 2;
            sm_plan *p;
            cr_assert_eq(sm_plan_create(g, &o, &p), SM_OK, "%s", sm_last_error());
            cr_assert_eq(sm_plan_validate(p, g), SM_OK, "%s", sm_last_error());
            const char *mode = training ? "training" : "inference";
            uint64_t w = param_bytes(&m.c);
            cr_assert_eq(p->arena[SM_ARENA_PARAMS].size, w, "%s %s weights", m.name, mode);
            cr_assert_eq(p->arena[SM_ARENA_GRADS].size, training ? w : 0, "%s %s gradients", m.name, mode);
            cr_assert_eq(p->arena[SM_ARENA_OPTIM].size, training ? 2 * w : 0, "%s %s optimizer state", m.name, mode);
            cr_assert_eq(p->arena[SM_ARENA_KV].size, 0);
            const sm_plan_arena *act = &p->arena[SM_ARENA_ACT];
            uint64_t want = training ? golden_train_act[k] : infer_act(&m.c);
            cr_assert_eq(act->size, want, "%s %s activations: %llu bytes, expected %llu (lower bound %llu); if the "
                         "graph changed on purpose, re-derive (see golden_train_act)", m.name, mode,
                         (unsigned long long)act->size, (unsigned long long)want, (unsigned long long)act->lower_bound);
            cr_assert_leq((double)act->size, 1.05 * (double)act->lower_bound, "%s %s", m.name, mode);
            cr_assert_leq(act->size, act->packed[SM_PACK_BESTFIT_INORDER]);
            /* training: the head's chunk of logits [rows, V] is the shared workspace */
            cr_assert_eq(p->arena[SM_ARENA_WORK].size, 2 * p->work_per_thread + p->work_shared);
            cr_assert_eq(p->work_shared > 0, training);
            sm_plan_free(p);
            sm_graph_free(g);
        }
}

/* ---- execution: packed == naive, bitwise ---- */

typedef struct outcome {
    float loss[2];        /* training: the loss of each step; inference: the first logit */
    float *logits;        /* inference: the logits of the last run */
    size_t n_logits;
    float *params;        /* every parameter after the last step, concatenated */
    size_t n;
} outcome;

static outcome train_steps(const sm_graph *g, const sm_gpt_tensors *io, const sm_adamw_tensors *opt,
                           const sm_gpt_config *c, sm_plan_strategy strategy, int debug, int threads)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.strategy = strategy;
    o.n_threads = 2;
    sm_plan *p;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(g, &o, &p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_create(g, p, &rt), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_set_threads(rt, threads), SM_OK);
    if (debug) cr_assert_eq(sm_runtime_set_debug(rt, 1), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_runtime_init_params(rt, 7), SM_OK, "%s", sm_last_error());
    int64_t n = (int64_t)c->batch * c->seq;
    int32_t *tok = malloc(sizeof *tok * (size_t)n * 2);
    sm_adamw_config ac;
    sm_adamw_config_default(&ac);
    outcome r = {0};
    for (int step = 0; step < 2; step++) {
        for (int64_t i = 0; i < 2 * n; i++) tok[i] = (int32_t)(sm_rng_mix((uint64_t)(step * 1000003 + i)) % (uint64_t)c->vocab);
        float hp[SM_ADAMW_HPARAMS];
        cr_assert_eq(sm_adamw_hparams(&ac, step, hp), SM_OK);
        cr_assert_eq(sm_runtime_set(rt, io->tokens, tok, sizeof *tok * (size_t)n), SM_OK);
        if (io->targets != SM_NO_TENSOR)
            cr_assert_eq(sm_runtime_set(rt, io->targets, tok + n, sizeof *tok * (size_t)n), SM_OK);
        if (opt) cr_assert_eq(sm_runtime_set(rt, opt->hparams, hp, sizeof hp), SM_OK);
        cr_assert_eq(sm_runtime_run(rt), SM_OK, "%s", sm_last_error());
        if (io->loss != SM_NO_TENSOR) {
            cr_assert_eq(sm_runtime_get(rt, io->loss, &r.loss[step], sizeof(float)), SM_OK);
        } else {
            r.n_logits = (size_t)sm_tensor_numel(g, io->logits);
            free(r.logits);
            r.logits = malloc(sizeof(float) * r.n_logits);
            cr_assert_eq(sm_runtime_get(rt, io->logits, r.logits, sizeof(float) * r.n_logits), SM_OK);
            r.loss[step] = r.logits[0];
        }
    }
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].role == SM_ROLE_PARAM) r.n += (size_t)sm_rec_numel(&g->t[i]);
    r.params = malloc(sizeof(float) * r.n);
    size_t at = 0;
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].role == SM_ROLE_PARAM) {
            size_t k = (size_t)sm_rec_numel(&g->t[i]);
            cr_assert_eq(sm_runtime_get(rt, i, r.params + at, sizeof(float) * k), SM_OK);
            at += k;
        }
    free(tok);
    sm_runtime_free(rt);
    sm_plan_free(p);
    return r;
}

static void packed_equals_naive(int training)
{
    gpt m = tmpl(0);
    sm_graph *g = NULL;
    sm_gpt_tensors io;
    sm_adamw_tensors opt;
    BUILD(&m.c, training, &g, &io, &opt);
    const sm_adamw_tensors *po = training ? &opt : NULL;
    outcome a = train_steps(g, &io, po, &m.c, SM_PLAN_NAIVE, 0, 1);
    outcome b = train_steps(g, &io, po, &m.c, SM_PLAN_PACKED, 1, 1);
    outcome c = train_steps(g, &io, po, &m.c, SM_PLAN_PACKED, 0, 2);
    for (int step = 0; step < 2; step++) {
        cr_assert(memcmp(&a.loss[step], &b.loss[step], sizeof(float)) == 0, "step %d loss %.9g vs %.9g (debug)", step,
                  a.loss[step], b.loss[step]);
        cr_assert(memcmp(&a.loss[step], &c.loss[step], sizeof(float)) == 0, "step %d loss %.9g vs %.9g (2 threads)", step,
                  a.loss[step], c.loss[step]);
    }
    if (!training) {
        cr_assert(memcmp(a.logits, b.logits, sizeof(float) * a.n_logits) == 0, "logits differ (debug packed)");
        cr_assert(memcmp(a.logits, c.logits, sizeof(float) * a.n_logits) == 0, "logits differ (packed, 2 threads)");
    }
    free(a.logits);
    free(b.logits);
    free(c.logits);
    cr_assert(memcmp(a.params, b.params, sizeof(float) * a.n) == 0, "parameters differ after two steps (debug packed)");
    cr_assert(memcmp(a.params, c.params, sizeof(float) * a.n) == 0, "parameters differ after two steps (packed, 2 threads)");
    free(a.params);
    free(b.params);
    free(c.params);
    sm_graph_free(g);
}

Test(plan_gpt, packed_equals_naive_inference) { packed_equals_naive(0); }
Test(plan_gpt, packed_equals_naive_training) { packed_equals_naive(1); }
