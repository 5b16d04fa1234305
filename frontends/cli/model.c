/* model.c — turning a model name from the command line into a graph: built-in templates here; graph
 * files are loaded by the graph-file frontend. */
#include <stdio.h>
#include <string.h>

#include "../../graph/error.h"
#include "cli.h"

typedef struct {
    const char *name;
    const char *about;
    sm_gpt_config cfg;
} template_row;

/*                                 V      ctx   L   H   C    mlp tied B  T    loss */
static const template_row templates[] = {
    {"gpt", "byte-level GPT, L=6 C=384 H=6 (config c)", {256, 256, 6, 6, 384, 4, 1, 8, 256, 1}},
    {"gpt-demo", "byte-level GPT, L=4 C=256 H=4 T=128, the demo's", {256, 128, 4, 4, 256, 4, 1, 16, 128, 1}},
    {"gpt-tiny", "byte-level GPT, L=2 C=64 H=2, for tests", {256, 64, 2, 2, 64, 4, 1, 2, 64, 1}},
    {"gpt2", "GPT-2 124M shape, L=12 C=768 H=12 V=50257", {50257, 1024, 12, 12, 768, 4, 1, 4, 64, 1}},
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

/* The training graph: the forward, its backward, and one AdamW step. */
static sm_status add_training(const sm_model_spec *spec, sm_model *m)
{
    sm_tensor loss = sm_graph_loss(m->g);
    if (loss == SM_NO_TENSOR)
        return sm_error(SM_ERR_INVALID_ARG, "model '%s' has no loss, so it cannot be trained", spec->name);
    sm_adamw_config def;
    sm_adamw_config_default(&def);
    sm_status s = sm_graph_backward(m->g, loss);
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
    sm_status s = build_template(spec, m);
    if (!s && spec->training) s = add_training(spec, m);
    if (s) sm_model_free(m);
    return s;
}

void sm_model_free(sm_model *m)
{
    sm_graph_free(m->g);
    m->g = NULL;
}
