/* model.c — turning a model name from the command line into a graph: a built-in template, or a graph
 * file (loaded by the graph-file frontend with the -D defines). A file model's tensors are found by
 * name: inputs "tokens" and "targets", output "logits", and the tensor its `loss` line declares. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../base/error.h"
#include "../../base/atomic_file.h"
#include "../graph_parse.h"
#include "../graph_prune.h"
#include "cli.h"

typedef struct {
    const char *name;
    const char *about;
    sm_gpt_config cfg;
} template_row;

/*                                 V      ctx   L   H   C    mlp tied B  T    loss full_logits span kv_positions kv_ring kv_sink */
static const template_row templates[] = {
    {"gpt", "byte-level GPT, L=6 C=384 H=6 (config c)", {256, 256, 6, 6, 384, 4, 1, 8, 256, 1, 0, 0, 0, 0, 0}},
    {"gpt-demo", "byte-level GPT, L=4 C=256 H=4 T=128, the demo's", {256, 128, 4, 4, 256, 4, 1, 16, 128, 1, 0, 0, 0, 0, 0}},
    {"gpt-tiny", "byte-level GPT, L=2 C=64 H=2, for tests", {256, 64, 2, 2, 64, 4, 1, 2, 64, 1, 0, 0, 0, 0, 0}},
    {"gpt2", "GPT-2 124M shape, L=12 C=768 H=12 V=50257", {50257, 1024, 12, 12, 768, 4, 1, 4, 64, 1, 0, 0, 0, 0, 0}},
};

const char *sm_cli_templates_help(void)
{
    static char buf[512];
    size_t n = 0;
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s (%s)", i ? ", " : "", templates[i].name,
                              templates[i].about);
    return buf;
}

static bool is_template(const char *name)
{
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
        if (!strcmp(name, templates[i].name)) return true;
    return false;
}

/* A name that looks like a path counts as a file even when it does not exist, so that opening it
 * reports the system's reason ("No such file or directory") instead of an unknown template. */
bool sm_model_is_file(const char *name)
{
    size_t n = strlen(name);
    if (is_template(name)) return false;
    return strchr(name, '/') || (n > 4 && !strcmp(name + n - 4, ".smg")) || access(name, F_OK) == 0;
}

bool sm_cli_define(const char *cmd, sm_model_spec *spec, const char *val)
{
    int cap = (int)(sizeof spec->defines / sizeof spec->defines[0]);
    if (!val || !strchr(val, '=')) {
        fprintf(stderr, "smallmind %s: -D needs KEY=VALUE, got '%s'\n", cmd, val ? val : "(nothing)");
        return false;
    }
    if (spec->n_defines == cap) {
        fprintf(stderr, "smallmind %s: at most %d -D defines\n", cmd, cap);
        return false;
    }
    spec->defines[spec->n_defines++] = val;
    return true;
}

void sm_model_spec_join_defines(const sm_model_spec *spec, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < spec->n_defines && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", spec->defines[i]);
}

void sm_model_spec_split_defines(sm_model_spec *spec, char *joined)
{
    int cap = (int)(sizeof spec->defines / sizeof spec->defines[0]);
    spec->n_defines = 0;
    for (char *save = NULL, *d = strtok_r(joined, " ", &save); d && spec->n_defines < cap; d = strtok_r(NULL, " ", &save))
        spec->defines[spec->n_defines++] = d;
}

static sm_tensor find_opt(const sm_graph *g, const char *name)
{
    sm_tensor t = SM_NO_TENSOR;
    if (sm_graph_find(g, name, &t)) sm_error_clear();
    return t;
}

/* Inference (generate, eval's sampling, plan --infer): only what the logits depend on, so no targets
 * to feed and no loss to compute. The weights keep their names, so a checkpoint of the training model
 * loads into it. */
static sm_status to_inference(const char *name, sm_model *m)
{
    sm_tensor logits = find_opt(m->g, "logits");
    if (logits == SM_NO_TENSOR)
        return sm_error(SM_ERR_INVALID_ARG, "%s has no tensor 'logits' to run for inference (name the model's "
                        "output logits)", name);
    sm_graph *h;
    sm_status s = sm_graph_extract(m->g, &logits, 1, &h);
    if (s) return s;
    sm_graph_free(m->g);
    m->g = h;
    return SM_OK;
}

/* Training: only what the loss depends on. A file marks its logits as an output for
 * generation; with a fused loss (lm_head_ce) the training graph then need not make them at all, and
 * with linear + cross_entropy they stop being pinned for the whole run. */
static sm_status to_training(sm_model *m)
{
    sm_tensor loss = sm_graph_loss(m->g);
    const char *name;
    if (loss == SM_NO_TENSOR) return SM_OK;   /* add_training says so when it matters */
    sm_graph *h;
    sm_status s = sm_tensor_info(m->g, loss, &name, NULL, NULL, NULL, NULL);
    if (!s) s = sm_graph_extract(m->g, &loss, 1, &h);
    if (s) return s;
    if ((s = sm_graph_find(h, name, &loss)) || (s = sm_graph_set_loss(h, loss))) {
        sm_graph_free(h);
        return s;
    }
    sm_graph_free(m->g);
    m->g = h;
    return SM_OK;
}

/* -B/-T set the file's parameters B and T, which the file must then declare. */
static sm_status load_file(const sm_model_spec *spec, sm_model *m)
{
    char bdef[32], tdef[32];
    const char *soft[2];
    int n_soft = 0;
    if (spec->batch) snprintf(bdef, sizeof bdef, "B=%d", spec->batch), soft[n_soft++] = bdef;
    if (spec->seq) snprintf(tdef, sizeof tdef, "T=%d", spec->seq), soft[n_soft++] = tdef;
    sm_graph_load_opts o = {.defines = spec->defines, .n_defines = spec->n_defines, .soft_defines = soft,
                            .n_soft_defines = n_soft};
    sm_graph_params params;
    sm_status s = sm_graph_load_file_ex(spec->name, &o, &m->g, &params);
    if (s) return s;
    int64_t v, dummy;
    if (spec->batch && !sm_graph_params_int(&params, "B", &dummy))
        s = sm_error(SM_ERR_INVALID_ARG, "%s declares no parameter B for -B to set", spec->name);
    if (!s && spec->seq && !sm_graph_params_int(&params, "T", &dummy))
        s = sm_error(SM_ERR_INVALID_ARG, "%s declares no parameter T for -T to set", spec->name);
    /* the vocabulary: the logits' last dim (read now: a fused training graph drops them), else the
     * token table's rows (a file with only a fused loss: lm_head_ce(x, wte, targets)) */
    int nd;
    int64_t shape[SM_MAX_DIMS];
    sm_tensor logits = s ? SM_NO_TENSOR : find_opt(m->g, "logits"), wte = s ? SM_NO_TENSOR : find_opt(m->g, "wte");
    if (logits != SM_NO_TENSOR && !sm_tensor_info(m->g, logits, NULL, NULL, NULL, &nd, shape))
        m->gpt.vocab = (int)shape[nd - 1];
    else if (wte != SM_NO_TENSOR && !sm_tensor_info(m->g, wte, NULL, NULL, NULL, &nd, shape) && nd == 2)
        m->gpt.vocab = (int)shape[0];
    if (!s && spec->inference) s = to_inference(spec->name, m);
    else if (!s && spec->training) s = to_training(m);
    if (s) { /* before the lookups below, which clear the message when a name is missing */
        sm_graph_params_free(&params);
        return s;
    }
    m->io.tokens = find_opt(m->g, "tokens");
    m->io.targets = find_opt(m->g, "targets");
    m->io.logits = find_opt(m->g, "logits");
    m->io.loss = sm_graph_loss(m->g);
    if (m->io.tokens != SM_NO_TENSOR && !sm_tensor_info(m->g, m->io.tokens, NULL, NULL, NULL, &nd, shape) &&
        nd == 2) {
        m->gpt.batch = (int)shape[0];
        m->gpt.seq = (int)shape[1];
    }
    m->gpt.n_layer = sm_graph_params_int(&params, "L", &v) ? (int)v : 0;
    m->gpt.n_head = sm_graph_params_int(&params, "H", &v) ? (int)v : 0;
    m->gpt.n_embd = sm_graph_params_int(&params, "C", &v) ? (int)v : 0;
    m->gpt.context = m->gpt.seq;
    sm_graph_params_free(&params);
    return SM_OK;
}

sm_dtype sm_model_storage(const sm_model_spec *spec, const sm_graph *g)
{
    if (spec->precision == SM_PRECISION_FP16) return SM_F16;   /* --precision: the pass stores activations f16 */
    if (spec->precision == SM_PRECISION_BF16) return SM_BF16;
    for (int i = 0; i < sm_graph_tensor_count(g); i++) {
        sm_dtype t;
        if (!sm_tensor_info(g, i, NULL, &t, NULL, NULL, NULL) && t == SM_F16) return SM_F16;
    }
    return SM_F32;
}

/* The training graph: the forward, its backward (seeded with the loss scale when scaling), and one
 * AdamW step. */
static sm_status add_training(const sm_model_spec *spec, sm_model *m)
{
    sm_tensor loss = sm_graph_loss(m->g);
    if (loss == SM_NO_TENSOR)
        return sm_error(SM_ERR_INVALID_ARG, "model '%s' has no loss, so it cannot be trained", spec->name);
    sm_adamw_config def;
    sm_adamw_config_default(&def);
    int mode = spec->loss_scale == SM_CLI_LOSS_SCALE_AUTO ? (int)sm_loss_scale_auto(sm_model_storage(spec, m->g))
                                                          : spec->loss_scale;
    sm_status s = mode != SM_LOSS_SCALE_OFF ? sm_graph_backward_scaled(m->g, loss, NULL) : sm_graph_backward(m->g, loss);
    return s ? s : sm_graph_adamw(m->g, spec->adamw ? spec->adamw : &def, &m->opt);
}

static sm_status build_template(const sm_model_spec *spec, sm_model *m)
{
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++) {
        if (strcmp(spec->name, templates[i].name)) continue;
        m->gpt = templates[i].cfg;
        if (spec->batch) m->gpt.batch = spec->batch;
        m->gpt.with_loss = !spec->inference;
        if (spec->seq) {
            m->gpt.seq = spec->seq;
            if (m->gpt.context < spec->seq) m->gpt.context = spec->seq;
        }
        sm_status s = sm_graph_create(&m->g);
        return s ? s : sm_gpt_build(m->g, &m->gpt, &m->io);
    }
    return sm_error(SM_ERR_INVALID_ARG, "unknown model '%s': give a template (%s) or a graph file", spec->name,
                    sm_cli_templates_help());
}

sm_status sm_model_load(const sm_model_spec *spec, sm_model *m)
{
    memset(m, 0, sizeof *m);
    m->io = (sm_gpt_tensors){SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR};
    sm_status s;
    if (sm_model_is_file(spec->name)) s = load_file(spec, m);
    else if (spec->n_defines)
        s = sm_error(SM_ERR_INVALID_ARG, "-D defines are for graph files; '%s' is a template", spec->name);
    else s = build_template(spec, m);
    if (!s && spec->training) s = add_training(spec, m);
    if (s) sm_model_free(m);
    return s;
}

void sm_model_free(sm_model *m)
{
    sm_graph_free(m->g);
    m->g = NULL;
}
