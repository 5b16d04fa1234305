/* optimizer.c — AdamW as graph nodes appended after the backward, and its per-step schedule.
 * The optimizer state (two moments per parameter) is ordinary tensors of role SM_ROLE_OPTIM, so the
 * planner sees and places it like everything else; the values that change every step (learning
 * rate, bias corrections) come in through one small input, "opt.hparams", so the graph itself never
 * changes during training. With loss scaling (sm_graph_backward_scaled) the gradients arrive multiplied
 * by the scale S: a found_inf check over all of them decides whether the step happens at all, and the
 * update nodes divide S back out (the policy choosing S is the host's: loss_scaler.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops/backward.h"
#include "../base/error.h"
#include "graph.h"

void sm_adamw_config_default(sm_adamw_config *c)
{
    memset(c, 0, sizeof *c);
    c->lr = 6e-4f;
    c->min_lr = 6e-5f;
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->eps = 1e-8f;
    c->weight_decay = 0.1f;
    c->grad_clip = 1.0f;
}

static sm_status check_config(const sm_adamw_config *c)
{
    if (!c) return sm_error(SM_ERR_INVALID_ARG, "AdamW: NULL config");
    if (!(c->lr >= 0) || !(c->min_lr >= 0) || c->warmup_steps < 0 || c->total_steps < 0)
        return sm_error(SM_ERR_INVALID_ARG, "AdamW: lr %g, min_lr %g, warmup_steps %lld and total_steps %lld must "
                        "all be >= 0", c->lr, c->min_lr, (long long)c->warmup_steps, (long long)c->total_steps);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return sm_error(SM_ERR_INVALID_ARG, "AdamW: beta1 %g and beta2 %g must be in [0, 1)", c->beta1, c->beta2);
    if (!(c->eps > 0) || !(c->weight_decay >= 0) || !(c->grad_clip >= 0))
        return sm_error(SM_ERR_INVALID_ARG, "AdamW: eps %g must be > 0, weight_decay %g and grad_clip %g >= 0",
                        c->eps, c->weight_decay, c->grad_clip);
    return SM_OK;
}

/* Linear warmup to lr over warmup_steps (step 0 gets lr/warmup_steps), then a half cosine from lr
 * down to min_lr at total_steps, then min_lr. total_steps <= warmup_steps: no decay. */
float sm_adamw_lr(const sm_adamw_config *c, int64_t step)
{
    if (!c || step < 0) return 0.0f;
    if (step < c->warmup_steps) return (float)((double)c->lr * (double)(step + 1) / (double)c->warmup_steps);
    if (c->total_steps <= c->warmup_steps) return c->lr;
    if (step >= c->total_steps) return c->min_lr;
    double ratio = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * ratio));
    return (float)((double)c->min_lr + coeff * ((double)c->lr - (double)c->min_lr));
}

sm_status sm_adamw_hparams(const sm_adamw_config *c, int64_t step, float out[SM_ADAMW_HPARAMS])
{
    return sm_adamw_hparams_skipped(c, step, 0, out);
}

sm_status sm_adamw_hparams_skipped(const sm_adamw_config *c, int64_t step, int64_t skipped,
                                   float out[SM_ADAMW_HPARAMS])
{
    sm_status s = check_config(c);
    if (s) return s;
    if (step < 0 || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_adamw_hparams: step %lld (must be >= 0) or NULL "
                                          "out", (long long)step);
    if (skipped < 0 || skipped > step)
        return sm_error(SM_ERR_INVALID_ARG, "sm_adamw_hparams_skipped: %lld steps skipped before step %lld: must be "
                        "from 0 to the step number", (long long)skipped, (long long)step);
    double t = (double)(step - skipped) + 1.0;   /* updates applied, this one included */
    out[SM_ADAMW_LR] = sm_adamw_lr(c, step);
    out[SM_ADAMW_BETA1] = c->beta1;
    out[SM_ADAMW_BETA2] = c->beta2;
    out[SM_ADAMW_EPS] = c->eps;
    out[SM_ADAMW_WD] = c->weight_decay;
    out[SM_ADAMW_BC1] = (float)(1.0 / (1.0 - pow((double)c->beta1, t)));
    out[SM_ADAMW_BC2] = (float)(1.0 / (1.0 - pow((double)c->beta2, t)));
    out[SM_ADAMW_CLIP] = c->grad_clip;
    return SM_OK;
}

/* "<prefix><param>" into buf, refusing names that do not fit or exist already. */
static sm_status derived_name(const sm_graph *g, const char *prefix, sm_tensor p, char buf[SM_NAME_MAX])
{
    char tmp[2 * SM_NAME_MAX];
    snprintf(tmp, sizeof tmp, "%s%s", prefix, g->t[p].name);
    if (strlen(tmp) >= SM_NAME_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "parameter '%s': its optimizer tensor name '%s' is longer than %d bytes; "
                        "use a shorter parameter name", g->t[p].name, tmp, SM_NAME_MAX - 1);
    memcpy(buf, tmp, strlen(tmp) + 1);
    return SM_OK;
}

static bool updated(const sm_tensor_rec *r) { return r->role == SM_ROLE_PARAM && r->grad != SM_NO_TENSOR; }

/* One value over every gradient: a chain of `op` nodes (sumsq or found_inf), each taking the
 * running value (its "acc" attribute set) and up to 7 more gradients, in tensor order; `extra`, when
 * there is one, is read by the first node before the gradients. The last is named `name` and kept as
 * an output. */
static sm_status over_grads(sm_graph *g, int t_end, sm_op_kind op, sm_tensor extra, const char *name, sm_tensor *out)
{
    sm_tensor total = SM_NO_TENSOR, in[SM_MAX_INPUTS];
    int p = 0;
    for (;;) {
        int k = 0;
        if (total != SM_NO_TENSOR) in[k++] = total;
        else if (extra != SM_NO_TENSOR) in[k++] = extra;
        for (; k < SM_MAX_INPUTS && p < t_end; p++)
            if (updated(&g->t[p])) in[k++] = g->t[p].grad;
        while (p < t_end && !updated(&g->t[p])) p++;
        bool last = p == t_end;
        sm_attrs a = sm_op_default_attrs(op);
        a.i[op == SM_OP_SUMSQ ? SM_IATTR_SUMSQ_ACC : SM_IATTR_FOUND_INF_ACC] = total != SM_NO_TENSOR;
        sm_status s = last ? sm_graph_op(g, op, in, k, &a, name, &total) : sm_bwd_op(g, op, in, k, &a, &total);
        if (s) return s;
        if (last) break;
    }
    *out = total;
    return sm_graph_mark_output(g, total);
}

static sm_status add_update(sm_graph *g, sm_tensor p, const sm_adamw_tensors *o)
{
    char nm[SM_NAME_MAX], nv[SM_NAME_MAX], nu[SM_NAME_MAX];
    const sm_tensor_rec *r = &g->t[p];
    if (r->dtype != SM_F32)
        return sm_error(SM_ERR_UNSUPPORTED, "AdamW: parameter '%s' is %s; only f32 parameters are updated (keep "
                        "master weights in f32)", r->name, sm_dtype_name(r->dtype));
    sm_tensor m, v, tok, in[8] = {p, r->grad, 0, 0, o->hparams};
    int n_in = 5;
    int64_t ne[SM_MAX_DIMS];
    int ndim = r->ndim;
    memcpy(ne, r->ne, sizeof ne);
    /* GPT-2 decays the matmul weights and embeddings (2+ dims), not biases or norm gains (1-D). */
    sm_attrs a = sm_op_default_attrs(SM_OP_ADAMW);
    a.i[SM_IATTR_ADAMW_DECAY] = ndim >= 2;
    a.i[SM_IATTR_ADAMW_SCALED] = o->loss_scale != SM_NO_TENSOR;
    if (o->grad_sumsq != SM_NO_TENSOR) in[n_in++] = o->grad_sumsq;
    if (o->loss_scale != SM_NO_TENSOR) in[n_in++] = o->loss_scale, in[n_in++] = o->found_inf;
    sm_status s;
    if ((s = derived_name(g, "adam.m.", p, nm)) || (s = derived_name(g, "adam.v.", p, nv)) ||
        (s = derived_name(g, "adam.", p, nu)))
        return s;
    if ((s = sm_graph_add_tensor(g, nm, SM_F32, SM_ROLE_OPTIM, ndim, ne, &m)) ||
        (s = sm_graph_add_tensor(g, nv, SM_F32, SM_ROLE_OPTIM, ndim, ne, &v)))
        return s;
    in[2] = m;
    in[3] = v;
    return sm_graph_op(g, SM_OP_ADAMW, in, n_in, &a, nu, &tok);
}

sm_status sm_graph_adamw(sm_graph *g, const sm_adamw_config *cfg, sm_adamw_tensors *out)
{
    if (!g || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_adamw: NULL graph or out");
    sm_status s = check_config(cfg);
    if (s) return s;
    int t0 = g->n_t, n0 = g->n_nodes, n_params = 0;
    for (int p = 0; p < t0; p++) n_params += updated(&g->t[p]);
    if (!n_params)
        return sm_error(SM_ERR_STATE, "sm_graph_adamw: no parameter has a gradient: call sm_graph_backward first");
    if (sm_graph_find(g, "opt.hparams", NULL) == SM_OK)
        return sm_error(SM_ERR_STATE, "sm_graph_adamw: the graph already has an optimizer ('opt.hparams' exists)");
    sm_error_clear();

    sm_adamw_tensors o = {SM_NO_TENSOR, SM_NO_TENSOR, n_params, g->loss_scale, SM_NO_TENSOR};
    int64_t nh = SM_ADAMW_HPARAMS;
    s = sm_graph_input(g, "opt.hparams", SM_F32, 1, &nh, &o.hparams);
    if (!s && cfg->grad_clip > 0) s = over_grads(g, t0, SM_OP_SUMSQ, SM_NO_TENSOR, "opt.grad_sumsq", &o.grad_sumsq);
    /* The overflow check reads every gradient before any update writes a parameter (each update
     * depends on it), and the sum of squares too: with a large scale the squares of finite scaled
     * gradients can overflow f32, which would make the clipping factor 0 (a silently wasted step);
     * counting that as an overflow backs the scale off instead. */
    if (!s && o.loss_scale != SM_NO_TENSOR)
        s = over_grads(g, t0, SM_OP_FOUND_INF, o.grad_sumsq, "opt.found_inf", &o.found_inf);
    for (int p = 0; !s && p < t0; p++)
        if (updated(&g->t[p])) s = add_update(g, p, &o);
    if (s) {   /* restore the graph */
        g->n_nodes = n0;
        g->n_t = t0;
        return s;
    }
    *out = o;
    return SM_OK;
}
