/* test_examples.c — the example graph files in examples/: each loads, prints back to itself, plans,
 * trains a few steps at a tiny size (loss falls on a fixed periodic sequence) and then generates that
 * sequence greedily. gpt-tiny.smg and gpt2-small.smg are the gpt-tiny and gpt2 templates written as
 * files: same weights (names, shapes, inits), same nodes, so a template's saved weights load into them
 * and give the same loss. Last, the `check` and `print` commands on them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/graph_prune.h"
#include "graph/graph.h"
#include "helpers/cli_run.h"
#include "smallmind.h"

#define OK(call) cr_assert_eq((call), SM_OK, "%s", sm_last_error())

static const char *path_of(const char *file)
{
    static char path[1024];
    const char *dir = getenv("SM_EXAMPLES");
    cr_assert(dir, "SM_EXAMPLES is set by ctest");
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return path;
}

static sm_graph *load(const char *file, const char *const *defs, int n)
{
    sm_graph *g = NULL;
    OK(sm_graph_load_file(path_of(file), defs, n, &g));
    return g;
}

/* tiny sizes: V=31 tokens, 2 layers, 2 heads, C=16, T=8 */
static const char *const gpt_tiny_defs[] = {"V=31", "CTX=16", "L=2", "H=2", "C=16", "T=8", "B=2"};
static const char *const llama_tiny_defs[] = {"V=31", "L=2", "H=2", "C=16", "T=8", "B=2"};

typedef struct {
    const char *file;
    const char *const *defs;
    int n_defs;   /* the last define is B=2 */
} example;

static const example examples[] = {
    {"gpt-tiny.smg", gpt_tiny_defs, 7},
    {"gpt2-small.smg", gpt_tiny_defs, 7},
    {"llama.smg", llama_tiny_defs, 6},
};
#define N_EXAMPLES ((int)(sizeof examples / sizeof examples[0]))

/* ---- load, print, plan ---- */

static void round_trip(const sm_graph *g)
{
    char *t1, *t2;
    sm_graph *g2 = NULL;
    OK(sm_graph_print(g, &t1));
    OK(sm_graph_load_string(t1, "canonical", NULL, 0, &g2));
    cr_assert_eq(sm_graph_tensor_count(g2), sm_graph_tensor_count(g));
    cr_assert_eq(sm_graph_node_count(g2), sm_graph_node_count(g));
    OK(sm_graph_print(g2, &t2));
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(sm_graph_identity(g), sm_graph_identity(g2));
    free(t1);
    free(t2);
    sm_graph_free(g2);
}

static int64_t weight_elements(const sm_graph *g)
{
    int64_t n = 0;
    for (int t = 0; t < g->n_t; t++)
        if (g->t[t].role == SM_ROLE_PARAM) n += sm_tensor_numel(g, t);
    return n;
}

Test(examples, load_print_and_plan_at_default_and_tiny_size)
{
    for (int e = 0; e < N_EXAMPLES; e++) {
        for (int tiny = 0; tiny < 2; tiny++) {
            sm_graph *g = load(examples[e].file, examples[e].defs, tiny ? examples[e].n_defs : 0);
            cr_assert_neq(sm_graph_loss(g), SM_NO_TENSOR, "%s declares a loss", examples[e].file);
            sm_tensor t;
            OK(sm_graph_find(g, "tokens", &t));
            OK(sm_graph_find(g, "targets", &t));
            OK(sm_graph_find(g, "logits", &t));
            cr_assert(g->t[t].is_output, "logits is an output");
            round_trip(g);
            sm_plan_options po;
            sm_plan_options_default(&po);
            sm_plan *p = NULL;
            OK(sm_plan_create(g, &po, &p)); /* planning allocates nothing large, even for GPT-2 */
            cr_assert_gt(sm_plan_total_bytes(p), (uint64_t)weight_elements(g) * 4);
            sm_plan_free(p);
            sm_graph_free(g);
        }
    }
}

Test(examples, gpt2_small_has_the_gpt2_124m_weights)
{
    sm_graph *g = load("gpt2-small.smg", NULL, 0);
    cr_assert_eq(weight_elements(g), 124439808); /* GPT-2 small with tied embeddings */
    sm_tensor t;
    OK(sm_graph_find(g, "h11.mlp.proj.w", &t));
    cr_assert_eq(g->t[t].ne[0], 768);
    cr_assert_eq(g->t[t].ne[1], 3072);
    sm_graph_free(g);
}

/* ---- the same model as the templates ---- */

/* Everything but the names of activations (the file calls them x, x.1, ...) and the logits being an
 * output (the files mark it, for generation). */
static void assert_same_model(const sm_graph *a, const sm_graph *b)
{
    cr_assert_eq(a->n_t, b->n_t);
    cr_assert_eq(a->n_nodes, b->n_nodes);
    cr_assert_eq(a->loss, b->loss);
    for (int i = 0; i < a->n_t; i++) {
        const sm_tensor_rec *x = &a->t[i], *y = &b->t[i];
        if (x->node < 0) cr_assert_str_eq(x->name, y->name, "leaf %d", i);
        cr_assert_eq(x->ndim, y->ndim, "%s", x->name);
        for (int d = 0; d < SM_MAX_DIMS; d++) cr_assert_eq(x->ne[d], y->ne[d], "%s", x->name);
        cr_assert_eq(x->dtype, y->dtype);
        cr_assert_eq(x->node, y->node);
        if (strcmp(y->name, "logits")) cr_assert_eq(x->role, y->role, "%s", x->name);
        if (x->role == SM_ROLE_PARAM) {
            cr_assert_eq(x->init, y->init, "%s", x->name);
            cr_assert_eq(x->trainable, y->trainable);
            cr_assert_float_eq(x->init_std, y->init_std, 1e-9, "%s: %g vs %g", x->name, (double)x->init_std,
                               (double)y->init_std);
        }
    }
    for (int i = 0; i < a->n_nodes; i++) {
        const sm_node *x = &a->nodes[i], *y = &b->nodes[i];
        cr_assert_eq(x->op, y->op, "node %d", i);
        cr_assert_eq(x->n_in, y->n_in);
        for (int k = 0; k < x->n_in; k++) cr_assert_eq(x->in[k], y->in[k], "node %d input %d", i, k);
        for (int k = 0; k < SM_MAX_IATTRS; k++)
            if (sm_op_iattr_name(x->op, k)) cr_assert_eq(x->attrs.i[k], y->attrs.i[k], "node %d", i);
        for (int k = 0; k < SM_MAX_FATTRS; k++)
            if (sm_op_fattr_name(x->op, k)) cr_assert_eq(x->attrs.f[k], y->attrs.f[k], "node %d", i);
    }
}

static sm_graph *template_graph(const sm_gpt_config *c)
{
    sm_graph *g;
    sm_gpt_tensors io;
    OK(sm_graph_create(&g));
    OK(sm_gpt_build(g, c, &io));
    return g;
}

/* What the CLI trains: the part of the file's graph the loss depends on (the files also make the
 * logits, for generation; their loss is the fused head, as the template's). */
static sm_graph *training_part(sm_graph *f)
{
    sm_tensor loss = sm_graph_loss(f), l;
    sm_graph *h;
    OK(sm_graph_extract(f, &loss, 1, &h));
    OK(sm_graph_find(h, "loss", &l));
    OK(sm_graph_set_loss(h, l));
    cr_assert_neq(sm_graph_find(h, "logits", NULL), SM_OK, "training makes no logits");
    sm_graph_free(f);
    return h;
}

/* The files always slice the position table, the template only when T < context: compare at T < CTX. */
Test(examples, gpt_files_are_the_gpt_templates)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 31, c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.batch = 2, c.seq = 8;
    for (int e = 0; e < 2; e++) {
        sm_graph *t = template_graph(&c), *f = training_part(load(examples[e].file, examples[e].defs, examples[e].n_defs));
        assert_same_model(t, f);
        sm_graph_free(f);
        sm_graph_free(t);
    }
    /* and at their own default sizes (T=32 < 64 for gpt-tiny; gpt2 as the template has it) */
    const char *defs[] = {"T=32"};
    sm_gpt_config tiny = {256, 64, 2, 2, 64, 4, 1, 2, 32, 1, 0, 0, 0, 0, 0},
                  gpt2 = {50257, 1024, 12, 12, 768, 4, 1, 4, 64, 1, 0, 0, 0, 0, 0};
    sm_graph *t = template_graph(&tiny), *f = training_part(load("gpt-tiny.smg", defs, 1));
    assert_same_model(t, f);
    sm_graph_free(f);
    sm_graph_free(t);
    t = template_graph(&gpt2), f = training_part(load("gpt2-small.smg", NULL, 0));
    assert_same_model(t, f);
    sm_graph_free(f);
    sm_graph_free(t);
}

/* What the CLI runs for generation: the part of the file's graph the logits depend on. For the GPT
 * files it is the template built without a loss. */
Test(examples, inference_graph_is_the_template_without_loss)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 31, c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.batch = 2, c.seq = 8;
    c.with_loss = 0;
    sm_graph *t = template_graph(&c), *f = load("gpt-tiny.smg", gpt_tiny_defs, 7), *inf = NULL;
    sm_tensor logits;
    OK(sm_graph_find(f, "logits", &logits));
    OK(sm_graph_extract(f, &logits, 1, &inf));
    assert_same_model(t, inf);
    cr_assert_eq(sm_graph_loss(inf), SM_NO_TENSOR);
    cr_assert_neq(sm_graph_find(inf, "targets", NULL), SM_OK);
    OK(sm_graph_find(inf, "logits", &logits));
    cr_assert(inf->t[logits].is_output);
    cr_assert_eq(inf->t[logits].role, SM_ROLE_OUTPUT);
    round_trip(inf);
    sm_graph_free(inf);
    sm_graph_free(f);
    sm_graph_free(t);
}

/* ---- running them ---- */

typedef struct {
    sm_graph *g;
    sm_plan *p;
    sm_runtime *rt;
    sm_tensor tokens, targets, logits, hparams;
    int B, T, V;
} model;

static void model_open(model *m, sm_graph *g)
{
    m->g = g;
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = 1; /* the kernels are tested for thread counts elsewhere; here the model is tiny */
    OK(sm_plan_create(g, &po, &m->p));
    OK(sm_runtime_create(g, m->p, &m->rt));
    OK(sm_runtime_set_threads(m->rt, 1));
    OK(sm_runtime_init_params(m->rt, 7));
    OK(sm_graph_find(g, "tokens", &m->tokens));
    OK(sm_graph_find(g, "targets", &m->targets));
    /* a template's training graph fuses the head into its loss: no logits tensor */
    if (sm_graph_find(g, "logits", &m->logits)) m->logits = SM_NO_TENSOR;
    m->hparams = SM_NO_TENSOR;
    if (sm_graph_find(g, "opt.hparams", &m->hparams)) m->hparams = SM_NO_TENSOR;
    m->B = (int)g->t[m->tokens].ne[0];
    m->T = (int)g->t[m->tokens].ne[1];
    m->V = m->logits == SM_NO_TENSOR ? 0 : (int)g->t[m->logits].ne[2];
}

static void model_close(model *m)
{
    sm_runtime_free(m->rt);
    sm_plan_free(m->p);
    sm_graph_free(m->g);
}

/* The sequence to learn: period 5, every token distinct, so the next token is fixed by the last. */
static const int32_t pattern[5] = {3, 17, 8, 25, 11};

static float run(model *m, const int32_t *tok, const int32_t *tgt)
{
    size_t bytes = sizeof(int32_t) * (size_t)m->B * (size_t)m->T;
    OK(sm_runtime_set(m->rt, m->tokens, tok, bytes));
    OK(sm_runtime_set(m->rt, m->targets, tgt, bytes));
    OK(sm_runtime_run(m->rt));
    float loss;
    OK(sm_runtime_get(m->rt, sm_graph_loss(m->g), &loss, sizeof loss));
    return loss;
}

/* Trains on the pattern (each batch row at another phase), returns first and last loss. */
static void train(model *m, int steps, float *first, float *last)
{
    sm_adamw_config ac;
    sm_adamw_config_default(&ac);
    ac.lr = 1e-2f;
    ac.weight_decay = 0;
    int32_t tok[64], tgt[64];
    cr_assert_leq(m->B * m->T, 64);
    for (int b = 0; b < m->B; b++)
        for (int t = 0; t < m->T; t++) {
            tok[b * m->T + t] = pattern[(b + t) % 5];
            tgt[b * m->T + t] = pattern[(b + t + 1) % 5];
        }
    for (int s = 0; s < steps; s++) {
        float hp[SM_ADAMW_HPARAMS];
        OK(sm_adamw_hparams(&ac, s, hp));
        OK(sm_runtime_set(m->rt, m->hparams, hp, sizeof hp));
        float loss = run(m, tok, tgt);
        cr_assert(isfinite(loss), "step %d: loss %g", s, (double)loss);
        if (s == 0) *first = loss;
        *last = loss;
    }
}

/* Greedy decoding with a fixed window: tokens past the end are 0 and, attention being causal, do not
 * change the logits at the last real position. */
static void generate(model *m, int32_t *seq, int prompt)
{
    int32_t tok[64] = {0}, tgt[64] = {0};
    float *logits = malloc(sizeof(float) * (size_t)m->T * (size_t)m->V);
    cr_assert(logits);
    for (int n = prompt; n < m->T; n++) {
        memcpy(tok, seq, sizeof(int32_t) * (size_t)n);
        run(m, tok, tgt);
        OK(sm_runtime_get(m->rt, m->logits, logits, sizeof(float) * (size_t)m->T * (size_t)m->V));
        const float *row = logits + (size_t)(n - 1) * (size_t)m->V;
        int best = 0;
        for (int v = 1; v < m->V; v++)
            if (row[v] > row[best]) best = v;
        seq[n] = best;
    }
    free(logits);
}

static void copy_weights(model *from, model *to)
{
    for (int t = 0; t < to->g->n_t; t++) {
        if (to->g->t[t].role != SM_ROLE_PARAM) continue;
        sm_tensor src;
        OK(sm_graph_find(from->g, to->g->t[t].name, &src));
        size_t bytes = sm_rec_bytes(&to->g->t[t]);
        void *buf = malloc(bytes);
        OK(sm_runtime_get(from->rt, src, buf, bytes));
        OK(sm_runtime_set(to->rt, t, buf, bytes));
        free(buf);
    }
}

Test(examples, train_a_few_steps_then_generate, .timeout = 300)
{
    for (int e = 0; e < N_EXAMPLES; e++) {
        const example *ex = &examples[e];
        model tr, gen;
        sm_graph *g = load(ex->file, ex->defs, ex->n_defs);
        OK(sm_graph_backward(g, sm_graph_loss(g)));
        sm_adamw_config ac;
        sm_adamw_tensors at;
        sm_adamw_config_default(&ac);
        OK(sm_graph_adamw(g, &ac, &at));
        round_trip(g); /* the training graph prints back to itself too */
        model_open(&tr, g);
        float first = 0, last = 0;
        train(&tr, 60, &first, &last);
        cr_assert_float_eq(first, logf(31.0f), 0.3f, "%s: first loss %g is about ln V", ex->file, (double)first);
        cr_assert_lt(last, 0.1f, "%s: the loss fell from %g to %g", ex->file, (double)first, (double)last);
        cr_log_info("%s: loss %.4f -> %.4f in 60 steps", ex->file, (double)first, (double)last);

        /* a forward-only instance with B=1 and the trained weights */
        const char *defs[8];
        memcpy(defs, ex->defs, sizeof(char *) * (size_t)(ex->n_defs - 1));
        defs[ex->n_defs - 1] = "B=1";
        model_open(&gen, load(ex->file, defs, ex->n_defs));
        copy_weights(&tr, &gen);
        int32_t seq[8] = {pattern[2], pattern[3]};
        generate(&gen, seq, 2);
        for (int n = 0; n < gen.T; n++)
            cr_assert_eq(seq[n], pattern[(n + 2) % 5], "%s: token %d is %d, want %d", ex->file, n, seq[n],
                         pattern[(n + 2) % 5]);
        model_close(&gen);
        model_close(&tr);
    }
}

/* The gpt2 template's weights load by name into the file's graph and give the same loss. (By name
 * through the runtime: sm_runtime_save/load are not implemented on this branch yet.) */
Test(examples, template_weights_load_into_the_file_model)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = 31, c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.batch = 2, c.seq = 8;
    model t, f;
    model_open(&t, template_graph(&c));
    model_open(&f, load("gpt2-small.smg", gpt_tiny_defs, 7));
    OK(sm_runtime_init_params(f.rt, 99)); /* different weights until copied */
    int n_params = 0;
    for (int i = 0; i < f.g->n_t; i++) n_params += f.g->t[i].role == SM_ROLE_PARAM;
    for (int i = 0; i < t.g->n_t; i++) n_params -= t.g->t[i].role == SM_ROLE_PARAM;
    cr_assert_eq(n_params, 0, "the same number of weights");
    copy_weights(&t, &f);
    int32_t tok[16], tgt[16];
    for (int i = 0; i < 16; i++) tok[i] = (i * 7) % 31, tgt[i] = (i * 5 + 1) % 31;
    float lt = run(&t, tok, tgt), lf = run(&f, tok, tgt);
    /* the template fuses the head into the loss (lm_head_ce), the file spells out linear +
     * cross_entropy: the same loss bit for bit */
    cr_assert_eq(t.logits, SM_NO_TENSOR);
    cr_assert_eq(lt, lf, "same weights, same model, same loss: %g vs %g", (double)lt, (double)lf);
    model_close(&f);
    model_close(&t);
}

/* ---- the CLI on graph files ---- */

static int sh(const char *cmd, char *out, size_t cap) { return sm_test_capture(out, cap, "%s", cmd); }

Test(cli, check_and_print_graph_files)
{
    const char *cli = getenv("SM_CLI");
    cr_assert(cli, "SM_CLI is set by ctest");
    static char out[1 << 20], cmd[2048];
    snprintf(cmd, sizeof cmd, "%s check %s -D T=4 -DL=1 2>&1", cli, path_of("gpt-tiny.smg"));
    cr_assert_eq(sh(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, ": ok: "), "%s", out);

    /* print writes the canonical form */
    const char *defs[] = {"T=4", "L=1"};
    sm_graph *g = load("gpt-tiny.smg", defs, 2);
    char *text;
    OK(sm_graph_print(g, &text));
    snprintf(cmd, sizeof cmd, "%s print %s -D T=4 -D L=1", cli, path_of("gpt-tiny.smg"));
    cr_assert_eq(sh(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, text);
    free(text);
    sm_graph_free(g);

    /* -B/-T set B and T */
    snprintf(cmd, sizeof cmd, "%s print %s -B 3 -T 5 | grep '^input tokens'", cli, path_of("llama.smg"));
    cr_assert_eq(sh(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, "input tokens: i32[3, 5]\n");

    /* an error: exit 1, the diagnostic on stderr */
    char bad[] = "/tmp/sm_bad_XXXXXX.smg";
    int fd = mkstemps(bad, 4);
    cr_assert_geq(fd, 0);
    const char src[] = "smallmind-graph 1\ninput x: f32[2]\ny = gleu(x)\n";
    cr_assert_eq(write(fd, src, sizeof src - 1), (ssize_t)(sizeof src - 1));
    close(fd);
    snprintf(cmd, sizeof cmd, "%s check %s 2>&1", cli, bad);
    cr_assert_eq(sh(cmd, out, sizeof out), 1);
    char want[512];
    snprintf(want, sizeof want,
             "%s:3:5: error: unknown op 'gleu'; did you mean 'gelu'?\n    3 | y = gleu(x)\n      |     ^~~~\n", bad);
    cr_assert_str_eq(out, want);
    snprintf(cmd, sizeof cmd, "%s check %s -D Q=1 2>&1", cli, path_of("llama.smg"));
    cr_assert_eq(sh(cmd, out, sizeof out), 1);
    cr_assert(strstr(out, "the graph has no parameter 'Q' to define"), "%s", out);
    unlink(bad);

    snprintf(cmd, sizeof cmd, "%s check --help", cli);
    cr_assert_eq(sh(cmd, out, sizeof out), 0);
    cr_assert(strstr(out, "usage: smallmind check"));
    snprintf(cmd, sizeof cmd, "%s print --help", cli);
    cr_assert_eq(sh(cmd, out, sizeof out), 0);
    cr_assert(strstr(out, "usage: smallmind print"));
}

/* A missing file named like a path says so (it was once called a template); a bare name that is no
 * file and a template's name are not graph files either. */
Test(cli, check_names_a_missing_file)
{
    const char *cli = getenv("SM_CLI");
    cr_assert(cli, "SM_CLI is set by ctest");
    static char out[4096], cmd[2048];
    const struct {
        const char *name, *want;
    } cases[] = {
        {"/nonexistent", "graph file: cannot open '/nonexistent': No such file or directory; check the path\n"},
        {"sm-no-such-file.smg",
         "graph file: cannot open 'sm-no-such-file.smg': No such file or directory; check the path\n"},
        {"sm-no-such-file", "smallmind check: 'sm-no-such-file' is not a graph file (No such file or directory); "
                            "check reads graph files, templates are built in\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd /tmp && %s check %s 2>&1", cli, cases[i].name);
        cr_assert_eq(sh(cmd, out, sizeof out), 1, "%s", out);
        cr_assert_str_eq(out, cases[i].want);
    }
    snprintf(cmd, sizeof cmd, "%s plan /nonexistent/x 2>&1", cli);
    cr_assert_eq(sh(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "graph file: cannot open '/nonexistent/x': No such file or directory"), "%s", out);
}

/* train, generate, plan: the commands that take a model take a graph file (with -D), and a file's
 * checkpoint opens its inference graph (no targets, no loss) for generation. */
Test(cli, train_generate_and_plan_a_graph_file, .timeout = 300)
{
    const char *cli = getenv("SM_CLI");
    cr_assert(cli);
    static char out[1 << 16], cmd[4096];
    char dir[] = "/tmp/sm_cli_graph_XXXXXX";
    cr_assert(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "yes 'In the beginning God created the heaven and the earth.' | head -c 20000 > %s/data.txt", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s train %s --data %s/data.txt -T 16 -D C=32 --steps 3 --threads 1 --val-every 0 --save %s/m.st 2>&1",
             cli, path_of("llama.smg"), dir, dir);
    cr_assert_eq(sh(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "L=2 C=32 H=2 V=256, B=2 T=16"), "%s", out);
    /* generate re-instantiates the file named in the checkpoint, with its B and T but default
     * parameters otherwise: a checkpoint of the defaults */
    snprintf(cmd, sizeof cmd,
             "%s train %s --data %s/data.txt -T 16 --steps 2 --threads 1 --val-every 0 --save %s/d.st >/dev/null 2>&1 && "
             "%s generate --checkpoint %s/d.st -n 5 --threads 1 2>&1",
             cli, path_of("llama.smg"), dir, dir, cli, dir);
    int rc = sh(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s plan %s --infer -T 32 -D L=3 2>&1 && %s plan %s --train -B 1 2>&1", cli,
             path_of("gpt-tiny.smg"), cli, path_of("llama.smg"));
    cr_assert_eq(sh(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "L=3 C=64 H=2 V=256 context=32, B=2 T=32, inference"), "%s", out);
    cr_assert(strstr(out, "B=1 T=64, training"), "%s", out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
