/* test_train_step.c — sm_train_step, the library's training step: bitwise the same weights and
 * moments as the hand-written sequence it replaces (hyperparameters of the step, loss scale, run,
 * overflow flag into the scaler), with and without loss scaling, an overflowed step skipped and
 * counted, and its argument errors. */
#include <stdlib.h>
#include <string.h>

#include "grad_check.h"

typedef struct model {
    sm_graph *g;
    sm_plan *p;
    sm_runtime *rt;
    sm_train_tensors t;
    sm_adamw_config ac;
} model;

static void model_build(model *m, bool scaled)
{
    sm_gpt_config c = {.vocab = 64, .context = 16, .n_layer = 2, .n_head = 2, .n_embd = 32, .mlp_ratio = 4,
                       .tied_embeddings = 1, .batch = 2, .seq = 16, .with_loss = 1};
    sm_gpt_tensors io;
    sm_adamw_config_default(&m->ac);
    m->ac.lr = 3e-3f;
    GC_OK(sm_graph_create(&m->g));
    GC_OK(sm_gpt_build(m->g, &c, &io));
    GC_OK(scaled ? sm_graph_backward_scaled(m->g, io.loss, NULL) : sm_graph_backward(m->g, io.loss));
    GC_OK(sm_graph_adamw(m->g, &m->ac, &m->t.opt));
    m->t.tokens = io.tokens, m->t.targets = io.targets, m->t.loss = io.loss;
    sm_plan_options po;
    sm_plan_options_default(&po);
    GC_OK(sm_plan_create(m->g, &po, &m->p));
    GC_OK(sm_runtime_create(m->g, m->p, &m->rt));
    GC_OK(sm_runtime_init_params(m->rt, 5));
}

static void model_free(model *m)
{
    sm_runtime_free(m->rt);
    sm_plan_free(m->p);
    sm_graph_free(m->g);
}

static void batch(int step, int32_t tok[64])
{
    for (int i = 0; i < 64; i++) tok[i] = (int32_t)((step * 131 + i * 37 + (i * i) % 7) % 64);
}

/* Every parameter and optimizer moment, in tensor order (malloc'd; *n floats). */
static float *state(const model *m, size_t *n)
{
    *n = 0;
    for (int pass = 0; pass < 2; pass++) {
        float *out = pass ? malloc(sizeof(float) * *n) : NULL;
        size_t at = 0;
        for (int i = 0; i < sm_graph_tensor_count(m->g); i++) {
            sm_role role;
            sm_tensor_info(m->g, i, NULL, NULL, &role, NULL, NULL);
            if (role != SM_ROLE_PARAM && role != SM_ROLE_OPTIM) continue;
            size_t k = (size_t)sm_tensor_numel(m->g, i);
            if (pass) GC_OK(sm_runtime_get(m->rt, i, out + at, sizeof(float) * k));
            at += k;
        }
        if (pass) return out;
        *n = at;
    }
    return NULL;
}

/* The sequence sm_train_step stands for, written out: step `step` with `skipped` earlier skips. */
static float manual_step(model *m, int step, int64_t skipped, float scale, const int32_t *tok, float *found)
{
    float hp[SM_ADAMW_HPARAMS], loss;
    GC_OK(sm_adamw_hparams_skipped(&m->ac, step, skipped, hp));
    GC_OK(sm_runtime_set(m->rt, m->t.opt.hparams, hp, sizeof hp));
    if (m->t.opt.loss_scale != SM_NO_TENSOR) GC_OK(sm_runtime_set(m->rt, m->t.opt.loss_scale, &scale, sizeof scale));
    GC_OK(sm_runtime_set(m->rt, m->t.tokens, tok, sizeof(int32_t) * 32));
    GC_OK(sm_runtime_set(m->rt, m->t.targets, tok + 32, sizeof(int32_t) * 32));
    GC_OK(sm_runtime_run(m->rt));
    GC_OK(sm_runtime_get(m->rt, m->t.loss, &loss, sizeof loss));
    *found = 0.0f;
    if (m->t.opt.found_inf != SM_NO_TENSOR) GC_OK(sm_runtime_get(m->rt, m->t.opt.found_inf, found, sizeof *found));
    return loss;
}

static void expect_same_state(const model *a, const model *b, const char *what)
{
    size_t na, nb;
    float *sa = state(a, &na), *sb = state(b, &nb);
    cr_assert_eq(na, nb);
    cr_expect(memcmp(sa, sb, sizeof(float) * na) == 0, "%s: weights and moments bitwise equal", what);
    free(sa);
    free(sb);
}

Test(train_step, equals_the_sequence_it_replaces, .timeout = 120)
{
    model a, b;
    model_build(&a, false);
    model_build(&b, false);
    int32_t tok[64];
    for (int step = 0; step < 4; step++) {
        batch(step, tok);
        sm_train_step_result r;
        float found;
        GC_OK(sm_train_step(a.rt, &a.t, &a.ac, step, NULL, tok, tok + 32, 32, &r));
        float loss = manual_step(&b, step, 0, 1.0f, tok, &found);
        cr_expect_eq(r.loss, loss, "step %d: the same loss", step);
        cr_expect_eq(r.skipped, 0);
        cr_expect_eq(r.scale, 1.0f);
        float hp[SM_ADAMW_HPARAMS];
        GC_OK(sm_adamw_hparams(&a.ac, step, hp));
        cr_expect(memcmp(hp, r.hparams, sizeof hp) == 0, "step %d: the hyperparameters of the step", step);
    }
    expect_same_state(&a, &b, "4 unscaled steps");
    model_free(&a);
    model_free(&b);
}

/* A scale of 2^127 overflows the gradients: the step is skipped (counted, scale halved, nothing
 * updated); the next step runs with the skip counted in its bias correction, as the written-out
 * sequence does. */
Test(train_step, scaled_skip_then_update, .timeout = 120)
{
    model a, b;
    model_build(&a, true);
    model_build(&b, true);
    size_t n0;
    float *init = state(&a, &n0);
    sm_loss_scaler sc;
    sm_loss_scaler_init(&sc, SM_LOSS_SCALE_DYNAMIC);
    sc.scale = 0x1p127f;
    int32_t tok[64];
    sm_train_step_result r;
    float found;
    batch(0, tok);
    GC_OK(sm_train_step(a.rt, &a.t, &a.ac, 0, &sc, tok, tok + 32, 32, &r));
    manual_step(&b, 0, 0, 0x1p127f, tok, &found);
    cr_expect_eq(found, 1.0f, "2^127 overflows the gradients");
    cr_expect_eq(r.skipped, 1);
    cr_expect_eq(r.scale, 0x1p127f, "the scale the step ran with");
    cr_expect_eq(sc.skipped, 1);
    cr_expect_eq(sc.scale, 0x1p126f, "halved on overflow");
    size_t n1;
    float *after = state(&a, &n1);
    cr_expect(memcmp(init, after, sizeof(float) * n0) == 0, "a skipped step changes no weight or moment");
    free(init);
    free(after);
    sc.scale = 0x1p10f;
    batch(1, tok);
    GC_OK(sm_train_step(a.rt, &a.t, &a.ac, 1, &sc, tok, tok + 32, 32, &r));
    manual_step(&b, 1, 1, 0x1p10f, tok, &found);
    cr_expect_eq(found, 0.0f);
    cr_expect_eq(r.skipped, 0);
    cr_expect_eq(sc.skipped, 1, "a clean step skips nothing");
    cr_expect_eq(sc.growth_tracker, 1);
    expect_same_state(&a, &b, "a skipped step then an update");
    model_free(&a);
    model_free(&b);
}

Test(train_step, argument_errors)
{
    model m;
    model_build(&m, true);
    int32_t tok[64];
    batch(0, tok);
    sm_train_step_result r;
    sm_loss_scaler sc;
    sm_loss_scaler_init(&sc, SM_LOSS_SCALE_DYNAMIC);
    cr_expect_eq(sm_train_step(m.rt, &m.t, &m.ac, 0, NULL, tok, tok + 32, 32, &r), SM_ERR_INVALID_ARG);
    cr_expect(strstr(sm_last_error(), "pass a loss scaler"), "%s", sm_last_error());
    sc.skipped = 3;
    cr_expect_eq(sm_train_step(m.rt, &m.t, &m.ac, 2, &sc, tok, tok + 32, 32, &r), SM_ERR_INVALID_ARG);
    cr_expect(strstr(sm_last_error(), "3 steps skipped before step 2"), "%s", sm_last_error());
    sc.skipped = 0;
    cr_expect_neq(sm_train_step(m.rt, &m.t, &m.ac, 0, &sc, tok, tok + 32, 31, &r), SM_OK, "a batch of the wrong size");
    cr_expect_eq(sm_train_step(m.rt, &m.t, &m.ac, -1, &sc, tok, tok + 32, 32, &r), SM_ERR_INVALID_ARG);
    model_free(&m);
}
