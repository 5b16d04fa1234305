/* test_recompute.c — recompute (gradient checkpointing) must not change results: for every policy,
 * on the gpt template, the GPT-2 124M shape at a small T and examples/llama.smg, the loss and every
 * parameter gradient are bitwise those of the plan without recompute, five AdamW steps give
 * byte-identical checkpoints, NaN-poison debug runs pass, and every plan validates. Random graphs
 * check the same with every policy; hand-marked boundaries and plan files round-trip. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "graph/graph.h"
#include "scheduler/plan.h"
#include "smallmind.h"

#define OK(call) cr_assert_eq((call), SM_OK, "%s", sm_last_error())

static const char *const policies[] = {"none", "every:1", "every:2", "every:3", "sqrt", "selective", "budget:1G", "auto"};
#define N_POLICIES (int)(sizeof policies / sizeof *policies)

/* A training graph: forward, backward, AdamW; tokens/targets/hparams found by name. */
typedef struct model {
    sm_graph *g;
    sm_tensor tokens, targets, hparams;
    int vocab;
    sm_adamw_config ac;
} model;

static void finish(model *m)
{
    OK(sm_graph_backward(m->g, sm_graph_loss(m->g)));
    sm_adamw_config_default(&m->ac);
    m->ac.lr = 1e-2f;
    sm_adamw_tensors opt;
    OK(sm_graph_adamw(m->g, &m->ac, &opt));
    m->hparams = opt.hparams;
    OK(sm_graph_find(m->g, "tokens", &m->tokens));
    OK(sm_graph_find(m->g, "targets", &m->targets));
}

static model gpt_model(int L, int C, int H, int V, int T, int B)
{
    model m = {.vocab = V};
    OK(sm_graph_create(&m.g));
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = L, c.n_embd = C, c.n_head = H, c.vocab = V, c.context = T, c.seq = T, c.batch = B;
    sm_gpt_tensors io;
    OK(sm_gpt_build(m.g, &c, &io));
    finish(&m);
    return m;
}

static model llama_model(void)
{
    char path[1024];
    const char *dir = getenv("SM_EXAMPLES");
    cr_assert(dir, "SM_EXAMPLES is set by ctest");
    snprintf(path, sizeof path, "%s/llama.smg", dir);
    static const char *const defs[] = {"V=31", "L=3", "H=2", "C=16", "T=8", "B=2"};
    model m = {.vocab = 31};
    OK(sm_graph_load_file(path, defs, 6, &m.g));
    finish(&m);
    return m;
}

static void feed(sm_runtime *rt, const model *m, int64_t step)
{
    const sm_graph *g = m->g;
    int64_t n = sm_tensor_numel(g, m->tokens);
    int32_t *ids = malloc(sizeof *ids * (size_t)n * 2);
    for (int64_t i = 0; i < 2 * n; i++) ids[i] = (int32_t)((i * 7 + step * 13 + (i * i) % 5) % m->vocab);
    OK(sm_runtime_set(rt, m->tokens, ids, sizeof *ids * (size_t)n));
    OK(sm_runtime_set(rt, m->targets, ids + n, sizeof *ids * (size_t)n));
    float hp[SM_ADAMW_HPARAMS];
    OK(sm_adamw_hparams(&m->ac, step, hp));
    OK(sm_runtime_set(rt, m->hparams, hp, sizeof hp));
    free(ids);
}

/* XXH3 of every tensor a run leaves for the caller, in id order: the loss, the gradients, the
 * updated weights and moments (hashed in place: the GPT-2 shape has 2 GB of them). */
static uint64_t collect(sm_runtime *rt, const sm_graph *g)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int i = 0; i < g->n_t; i++) {
        sm_role role = g->t[i].role;
        if (role != SM_ROLE_PARAM && role != SM_ROLE_GRAD && role != SM_ROLE_OPTIM && i != g->loss) continue;
        void *data;
        OK(sm_runtime_data(rt, i, &data));
        XXH3_64bits_update(st, data, sm_rec_bytes(&g->t[i]));
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static sm_plan *plan_policy(const sm_graph *g, const char *policy)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = 2;
    OK(sm_recompute_parse(policy, &o.recompute));
    sm_plan *p;
    OK(sm_plan_create(g, &o, &p));
    OK(sm_plan_validate(p, g));
    return p;
}

/* One run (debug: NaN poisoning and range checks on) of policy; its result. */
static uint64_t run_once(const model *m, const char *policy, bool debug, sm_plan_recompute_info *info)
{
    sm_plan *p = plan_policy(m->g, policy);
    if (info) OK(sm_plan_recompute(p, info));
    sm_runtime *rt;
    OK(sm_runtime_create(m->g, p, &rt));
    OK(sm_runtime_init_params(rt, 5));
    if (debug) OK(sm_runtime_set_debug(rt, 1));
    feed(rt, m, 0);
    OK(sm_runtime_run(rt));
    uint64_t r = collect(rt, m->g);
    sm_runtime_free(rt);
    sm_plan_free(p);
    return r;
}

/* shrinks: the policy must also make the activation arena smaller (true at these sizes for every
 * fixed policy; a budget may rightly pick none) */
static void check_model(model *m, const char *name, bool debug, bool shrinks)
{
    uint64_t ref = run_once(m, "none", debug, NULL);
    for (int k = 1; k < N_POLICIES; k++) {
        sm_plan_recompute_info info;
        uint64_t r = run_once(m, policies[k], debug, &info);
        cr_assert_eq(r, ref, "%s, recompute %s (%d tensors recomputed): loss, gradients or updated weights differ from "
                     "recompute none", name, policies[k], info.n_recomputed);
        if (strncmp(policies[k], "budget", 6) && strcmp(policies[k], "auto")) {
            cr_assert_gt(info.n_recomputed, 0, "%s, %s recomputes something", name, policies[k]);
            cr_assert_gt(info.extra_flops, 0);
            if (shrinks)
                cr_assert_lt(info.act, info.act_none, "%s, %s: activations %llu, without recompute %llu", name,
                             policies[k], (unsigned long long)info.act, (unsigned long long)info.act_none);
        }
    }
}

Test(recompute, gpt_template_bitwise, .timeout = 300)
{
    model m = gpt_model(3, 32, 2, 64, 16, 2);
    check_model(&m, "gpt L=3", true, true);
    sm_graph_free(m.g);
}

Test(recompute, llama_bitwise, .timeout = 300)
{
    model m = llama_model();
    check_model(&m, "llama.smg", true, false);
    sm_graph_free(m.g);
}

/* The real GPT-2 124M shape (L=12, C=768, H=12, V=50257) at T=8, B=1: no debug (the poisoning walks
 * 2 GB per step). */
Test(recompute, gpt2_shape_bitwise, .timeout = 600)
{
    model m = gpt_model(12, 768, 12, 50257, 8, 1);
    static const char *const few[] = {"none", "sqrt", "selective"};
    uint64_t ref = run_once(&m, few[0], false, NULL);
    for (int k = 1; k < 3; k++) cr_assert_eq(run_once(&m, few[k], false, NULL), ref, "gpt2 shape, recompute %s differs", few[k]);
    sm_graph_free(m.g);
}

/* Five AdamW steps under each policy write byte-identical checkpoints. */
static void five_steps(const model *m, const char *policy, const char *path)
{
    sm_plan *p = plan_policy(m->g, policy);
    sm_runtime *rt;
    OK(sm_runtime_create(m->g, p, &rt));
    OK(sm_runtime_init_params(rt, 9));
    for (int64_t s = 0; s < 5; s++) {
        feed(rt, m, s);
        OK(sm_runtime_run(rt));
    }
    OK(sm_runtime_save(rt, path, SM_SAVE_OPTIMIZER));
    sm_runtime_free(rt);
    sm_plan_free(p);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

Test(recompute, five_steps_identical_checkpoints, .timeout = 300)
{
    model ms[2] = {gpt_model(3, 32, 2, 64, 16, 2), llama_model()};
    for (int k = 0; k < 2; k++) {
        char ref_path[] = "/tmp/sm_rc_ref_XXXXXX", path[] = "/tmp/sm_rc_pol_XXXXXX";
        close(mkstemp(ref_path));
        close(mkstemp(path));
        five_steps(&ms[k], "none", ref_path);
        size_t n_ref, n;
        unsigned char *ref = slurp(ref_path, &n_ref);
        for (int j = 1; j < N_POLICIES; j++) {
            five_steps(&ms[k], policies[j], path);
            unsigned char *b = slurp(path, &n);
            cr_assert(n == n_ref && !memcmp(b, ref, n), "model %d, recompute %s: the checkpoint after 5 steps differs",
                      k, policies[j]);
            free(b);
        }
        free(ref);
        unlink(ref_path);
        unlink(path);
        sm_graph_free(ms[k].g);
    }
}

/* The GPT's residual stream after every attention and MLP add is a block boundary, and every:1
 * keeps all of them. */
Test(recompute, gpt_boundaries)
{
    model m = gpt_model(4, 32, 2, 64, 16, 2);
    sm_plan *p = plan_policy(m.g, "every:1");
    sm_plan_recompute_info info;
    OK(sm_plan_recompute(p, &info));
    cr_assert_geq(info.n_boundaries, 2 * 4, "%d boundaries", info.n_boundaries);
    cr_assert_eq(info.n_kept, info.n_boundaries);
    const sm_graph *lg = sm_plan_graph(p);
    cr_assert_gt(sm_graph_tensor_count(lg), sm_graph_tensor_count(m.g), "clones are appended");
    for (int i = 0; i < sm_graph_tensor_count(lg); i++) {
        sm_tensor src = sm_plan_recomputes(p, i);
        if (src == SM_NO_TENSOR) continue;
        cr_assert_lt(src, sm_graph_tensor_count(m.g));
        cr_assert(!strstr(m.g->t[src].name, ".res"), "residual '%s' is kept, not recomputed", m.g->t[src].name);
    }
    /* sqrt: K = ceil(sqrt(boundaries)) */
    sm_plan *q = plan_policy(m.g, "sqrt");
    sm_plan_recompute_info qi;
    OK(sm_plan_recompute(q, &qi));
    int k = 1;
    while (k * k < qi.n_boundaries) k++;
    cr_assert_eq(qi.every, k);
    sm_plan_free(q);
    sm_plan_free(p);
    sm_graph_free(m.g);
}

/* Marked boundaries replace the found ones. */
Test(recompute, marked_boundaries)
{
    model m = {.vocab = 64};
    OK(sm_graph_create(&m.g));
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = 3, c.n_embd = 32, c.n_head = 2, c.vocab = 64, c.context = 16, c.seq = 16, c.batch = 2;
    sm_gpt_tensors io;
    OK(sm_gpt_build(m.g, &c, &io));
    sm_tensor t;
    OK(sm_graph_find(m.g, "h0.res2", &t));
    OK(sm_graph_checkpoint(m.g, t));
    OK(sm_graph_find(m.g, "h1.res2", &t));
    OK(sm_graph_checkpoint(m.g, t));
    sm_tensor tokens;
    OK(sm_graph_find(m.g, "tokens", &tokens));
    cr_assert_eq(sm_graph_checkpoint(m.g, tokens), SM_ERR_INVALID_ARG, "an input is no boundary");
    finish(&m);
    sm_plan *p = plan_policy(m.g, "every:1");
    sm_plan_recompute_info info;
    OK(sm_plan_recompute(p, &info));
    cr_assert_eq(info.n_boundaries, 2);
    cr_assert_gt(info.n_recomputed, 0);
    sm_plan_free(p);
    check_model(&m, "gpt with marked boundaries", true, false);
    sm_graph_free(m.g);
}

/* budget:X: the plan fits X with no more extra FLOPs than the best every:K that fits X. */
Test(recompute, budget_beats_every_k, .timeout = 300)
{
    model m = gpt_model(6, 64, 2, 128, 64, 4);
    sm_plan *none = plan_policy(m.g, "none"), *tight = plan_policy(m.g, "every:1");
    uint64_t hi = sm_plan_estimate(none), lo = sm_plan_estimate(tight);
    for (int j = 0; j <= 4; j++) {
        uint64_t budget = lo + (hi - lo) * (uint64_t)j / 4;
        char pol[64];
        snprintf(pol, sizeof pol, "budget:%llu", (unsigned long long)budget);
        sm_plan *p = plan_policy(m.g, pol);
        cr_assert_leq(sm_plan_estimate(p), budget);
        double best = -1;
        for (int k = 1; k <= 20; k++) {
            char e[32];
            snprintf(e, sizeof e, "every:%d", k);
            sm_plan *q = plan_policy(m.g, e);
            sm_plan_recompute_info qi;
            OK(sm_plan_recompute(q, &qi));
            if (sm_plan_estimate(q) <= budget && (best < 0 || qi.extra_flops < best)) best = qi.extra_flops;
            sm_plan_free(q);
        }
        sm_plan_recompute_info info;
        OK(sm_plan_recompute(p, &info));
        if (best >= 0) cr_assert_leq(info.extra_flops, best, "budget %llu", (unsigned long long)budget);
        sm_plan_free(p);
    }
    /* below what any policy reaches: a budget error naming the smallest plan */
    sm_plan_options o;
    sm_plan_options_default(&o);
    OK(sm_recompute_parse("budget:1M", &o.recompute));
    sm_plan *p = NULL;
    cr_assert_eq(sm_plan_create(m.g, &o, &p), SM_ERR_BUDGET);
    cr_assert(strstr(sm_last_error(), "no recompute policy fits"), "%s", sm_last_error());
    sm_plan_free(none);
    sm_plan_free(tight);
    sm_graph_free(m.g);
}

Test(recompute, policy_text)
{
    sm_recompute_policy r;
    char buf[64];
    OK(sm_recompute_parse("every:4", &r));
    cr_assert(r.kind == SM_RECOMPUTE_EVERY && r.every == 4);
    cr_assert_str_eq(sm_recompute_str(&r, buf, sizeof buf), "every:4");
    OK(sm_recompute_parse("budget:8G", &r));
    cr_assert(r.kind == SM_RECOMPUTE_BUDGET && r.budget == 8ull << 30);
    OK(sm_recompute_parse("auto", &r));
    cr_assert(r.kind == SM_RECOMPUTE_BUDGET && r.budget == 0);
    cr_assert_str_eq(sm_recompute_str(&r, buf, sizeof buf), "auto");
    static const char *const bad[] = {"every:0", "every:", "every:x", "budget:", "budget:0", "sqrt2", "", "Every:2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(sm_recompute_parse(bad[i], &r), SM_ERR_INVALID_ARG, "'%s' is refused", bad[i]);
    cr_assert(strstr(sm_last_error(), "unknown recompute policy"));
}

/* A plan file keeps the recompute decision: loading re-lowers the graph and checks its hash. */
Test(recompute, plan_file_roundtrip)
{
    model m = gpt_model(3, 32, 2, 64, 16, 2);
    sm_plan *p = plan_policy(m.g, "sqrt");
    char path[] = "/tmp/sm_rc_plan_XXXXXX";
    close(mkstemp(path));
    OK(sm_plan_save(p, path));
    sm_plan *q;
    OK(sm_plan_load(m.g, path, &q));
    cr_assert_eq(sm_plan_hash(q), sm_plan_hash(p));
    cr_assert_eq(sm_graph_tensor_count(sm_plan_graph(q)), sm_graph_tensor_count(sm_plan_graph(p)));
    sm_runtime *rt;
    OK(sm_runtime_create(m.g, q, &rt));
    OK(sm_runtime_init_params(rt, 1));
    feed(rt, &m, 0);
    OK(sm_runtime_run(rt));
    sm_runtime_free(rt);
    unlink(path);
    sm_plan_free(q);
    sm_plan_free(p);
    sm_graph_free(m.g);
}

/* Random graphs: leaves, then ops drawn from linear, add, mul, gelu, layernorm, scale with random
 * long-range skips, reduced to a scalar loss (mean of a final product). Every policy gives the
 * bytes of none; debug runs check no dead range is read. */
static model random_model(uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
#define RND(n) ((s = s * 6364136223846793005ull + 1442695040888963407ull), (int)((s >> 33) % (uint64_t)(n)))
    model m = {.vocab = 16};
    OK(sm_graph_create(&m.g));
    const int64_t R = 4 + RND(6), C = 8;
    int64_t ids_shape[1] = {R};
    OK(sm_graph_input(m.g, "tokens", SM_I32, 1, ids_shape, &m.tokens));
    OK(sm_graph_input(m.g, "targets", SM_I32, 1, ids_shape, &m.targets));
    int64_t tshape[2] = {16, C};
    sm_tensor table, pool[64];
    OK(sm_graph_param(m.g, "table", SM_F32, 2, tshape, SM_INIT_NORMAL, 0.5f, &table));
    int n = 0;
    OK(sm_embedding(m.g, m.tokens, table, "x0", &pool[n++]));
    int n_ops = 6 + RND(30);
    for (int k = 0; k < n_ops; k++) {
        sm_tensor a = pool[n - 1 - RND(n < 4 ? n : 4)], b = pool[RND(n)], out;
        char name[32], wn[32];
        snprintf(name, sizeof name, "n%d", k);
        switch (RND(6)) {
        case 0: {
            int64_t ws[2] = {C, C};
            sm_tensor w;
            snprintf(wn, sizeof wn, "w%d", k);
            OK(sm_graph_param(m.g, wn, SM_F32, 2, ws, SM_INIT_NORMAL, 0.3f, &w));
            OK(sm_linear(m.g, a, w, SM_NO_TENSOR, name, &out));
            break;
        }
        case 1: OK(sm_add(m.g, a, b, name, &out)); break;
        case 2: OK(sm_mul(m.g, a, b, name, &out)); break;
        case 3: OK(sm_gelu(m.g, a, name, &out)); break;
        case 4: {
            int64_t ws[1] = {C};
            sm_tensor w, bb;
            snprintf(wn, sizeof wn, "g%d", k);
            OK(sm_graph_param(m.g, wn, SM_F32, 1, ws, SM_INIT_ONES, 0, &w));
            snprintf(wn, sizeof wn, "b%d", k);
            OK(sm_graph_param(m.g, wn, SM_F32, 1, ws, SM_INIT_ZEROS, 0, &bb));
            OK(sm_layernorm(m.g, a, w, bb, 1e-5f, name, &out));
            break;
        }
        default: OK(sm_scale(m.g, a, 0.5f, name, &out)); break;
        }
        if (n < 64) pool[n++] = out;
        else pool[RND(64)] = out;
    }
    int64_t hs[2] = {16, C};
    sm_tensor head, logits, loss;
    OK(sm_graph_param(m.g, "head", SM_F32, 2, hs, SM_INIT_NORMAL, 0.3f, &head));
    OK(sm_linear(m.g, pool[n - 1], head, SM_NO_TENSOR, "logits", &logits));
    OK(sm_cross_entropy(m.g, logits, m.targets, "loss", &loss));
    OK(sm_graph_set_loss(m.g, loss));
#undef RND
    finish(&m);
    return m;
}

Test(recompute, random_graphs_every_policy, .timeout = 300)
{
    int recomputed = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        model m = random_model(seed);
        uint64_t ref = run_once(&m, "none", true, NULL);
        for (int k = 1; k < N_POLICIES; k++) {
            sm_plan_recompute_info info;
            cr_assert_eq(run_once(&m, policies[k], true, &info), ref, "seed %llu, recompute %s differs from none",
                         (unsigned long long)seed, policies[k]);
            recomputed += info.n_recomputed > 0;
        }
        sm_graph_free(m.g);
    }
    cr_assert_gt(recomputed, 100, "the random graphs exercise recompute (%d plans recomputed something)", recomputed);
}

/* `checkpoint NAME` in a graph file marks boundaries; the printed form carries it and loads back to
 * the same graph. */
Test(recompute, graph_file_checkpoint)
{
    static const char text[] = "smallmind-graph 1\n"
                               "input tokens: i32[2, 8]\ninput targets: i32[2, 8]\n"
                               "weight e: f32[31, 16] init=normal(0.02)\nweight w: f32[16, 16] init=normal(0.02)\n"
                               "x = embedding(tokens, e)\nh = linear(x, w)\nh = gelu(h)\ny = linear(h, w)\n"
                               "logits = linear(y, e)\nloss = cross_entropy(logits, targets)\n"
                               "checkpoint y\nloss loss\n";
    sm_graph *g, *h;
    OK(sm_graph_load_string(text, "ck.smg", NULL, 0, &g));
    sm_tensor y;
    OK(sm_graph_find(g, "y", &y));
    cr_assert(g->t[y].checkpoint);
    char *printed;
    OK(sm_graph_print(g, &printed));
    cr_assert(strstr(printed, "\ncheckpoint y\n"), "%s", printed);
    OK(sm_graph_load_string(printed, "printed", NULL, 0, &h));
    cr_assert_eq(sm_graph_hash(h), sm_graph_hash(g));
    free(printed);
    sm_graph_free(h);
    sm_graph_free(g);
    static const char bad[] = "smallmind-graph 1\ninput tokens: i32[2, 8]\ncheckpoint tokens\n";
    cr_assert_eq(sm_graph_load_string(bad, "bad.smg", NULL, 0, &g), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "bad.smg:3:12") && strstr(sm_last_error(), "block boundary"), "%s", sm_last_error());
}
