/* autodiff.c — appending the backward graph of a scalar loss (reverse mode).
 *
 * 1. Which tensors need a gradient: trainable float parameters, and every node output that depends
 *    on one (a forward sweep). Inputs, i32 tensors and frozen parameters need none.
 * 2. The seed dloss/dloss = 1 is a fill node (no input to set). With loss scaling
 *    (sm_graph_backward_scaled) it is instead 1·S, S an input the host sets before each run, so
 *    every gradient is S times larger: small ones stay above f16's underflow.
 * 3. The forward nodes are visited in reverse insertion order. A node whose output has a gradient
 *    and some input that needs one gets its op's backward rule; each input gradient the rule returns
 *    is added to what that input already has. Every consumer of a tensor comes after its producer,
 *    so a tensor's gradient is complete when its producer is visited; the adds happen in this fixed
 *    visiting order, so the result is deterministic.
 * 4. Each parameter's gradient becomes a tensor of its own named "grad.<param>", role SM_ROLE_GRAD:
 *    the final tensor itself when nothing else uses it, else a copy (scale by 1).
 * On failure the graph is restored to what it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/backward.h"
#include "../base/error.h"
#include "graph.h"

static bool is_float(sm_dtype t) { return t == SM_F32 || t == SM_F16 || t == SM_BF16; }

/* Adds contribution c to the gradient of forward tensor t. */
static sm_status accumulate(sm_graph *g, sm_tensor *grad, sm_tensor t, sm_tensor c)
{
    if (grad[t] == SM_NO_TENSOR) {
        grad[t] = c;
        return SM_OK;
    }
    sm_tensor in[2] = {grad[t], c};
    return sm_bwd_op(g, SM_OP_ADD, in, 2, NULL, &grad[t]);
}

/* The rule's gradient for input i of node n must have that input's shape and dtype. */
static sm_status check_gx(const sm_graph *g, const sm_node *n, int i, sm_tensor gx)
{
    const sm_tensor_rec *x = &g->t[n->in[i]];
    if (!sm_graph_valid(g, gx))
        return sm_error(SM_ERR_INTERNAL, "node '%s': the backward rule of %s gave no gradient for input %d '%s'",
                        g->t[n->out].name, sm_op_name(n->op), i, x->name);
    if (!sm_bwd_same_shape(g, gx, n->in[i]) || g->t[gx].dtype != x->dtype) {
        char a[64], b[64];
        return sm_error(SM_ERR_INTERNAL, "node '%s': the backward rule of %s gave '%s' %s %s for input %d '%s' %s %s",
                        g->t[n->out].name, sm_op_name(n->op), g->t[gx].name, sm_dtype_name(g->t[gx].dtype),
                        sm_shape_str(&g->t[gx], a, sizeof a), i, x->name, sm_dtype_name(x->dtype),
                        sm_shape_str(x, b, sizeof b));
    }
    return SM_OK;
}

static sm_status seed(sm_graph *g, sm_tensor loss, sm_tensor scale, sm_tensor *out)
{
    if (scale != SM_NO_TENSOR) {   /* a node of its own (1·S), so the input itself is no gradient */
        sm_attrs a = sm_op_default_attrs(SM_OP_SCALE);
        a.f[SM_FATTR_SCALE_S] = 1.0f;
        return sm_bwd_op(g, SM_OP_SCALE, &scale, 1, &a, out);
    }
    sm_attrs a = sm_op_default_attrs(SM_OP_FILL);
    for (int i = 0; i < SM_MAX_DIMS; i++) a.i[i] = i < g->t[loss].ndim ? g->t[loss].ne[i] : 0;
    a.f[SM_FATTR_FILL_VALUE] = 1.0f;
    return sm_bwd_op(g, SM_OP_FILL, NULL, 0, &a, out);
}

/* Reverse sweep over the forward nodes [0, n_fwd). */
static sm_status sweep(sm_graph *g, int n_fwd, const bool *req, sm_tensor *grad)
{
    for (int k = n_fwd - 1; k >= 0; k--) {
        sm_node n = g->nodes[k];
        sm_tensor gy = grad[n.out];
        if (gy == SM_NO_TENSOR) continue;
        bool need[SM_MAX_INPUTS] = {false}, any = false;
        for (int i = 0; i < n.n_in; i++) any |= need[i] = req[n.in[i]];
        if (!any) continue;
        const sm_op_def *d = sm_op_def_get(n.op);
        if (!d->backward)
            return sm_error(SM_ERR_UNSUPPORTED, "node '%s': op '%s' has no backward rule, and the loss depends on "
                            "a trainable parameter through it (freeze those parameters or use another op)",
                            g->t[n.out].name, d->name);
        sm_tensor gx[SM_MAX_INPUTS];
        for (int i = 0; i < SM_MAX_INPUTS; i++) gx[i] = SM_NO_TENSOR;
        sm_status s = d->backward(g, k, gy, need, gx);
        if (s) return sm_error_prefix(s, "backward of node '%s': ", g->t[n.out].name);
        for (int i = 0; i < n.n_in; i++) {
            if (!need[i]) continue;
            if ((s = check_gx(g, &n, i, gx[i])) || (s = accumulate(g, grad, n.in[i], gx[i]))) return s;
        }
    }
    return SM_OK;
}

/* Gives parameter p the gradient tensor "grad.<p>" (role SM_ROLE_GRAD). */
static sm_status finish_param(sm_graph *g, sm_tensor p, sm_tensor gt, int t0, const int *uses, bool *claimed)
{
    char name[SM_NAME_MAX + 8];
    snprintf(name, sizeof name, "grad.%s", g->t[p].name);
    if (strlen(name) >= SM_NAME_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "parameter '%s': its gradient name '%s' is longer than %d bytes; use a "
                        "shorter parameter name", g->t[p].name, name, SM_NAME_MAX - 1);
    if (sm_graph_find(g, name, NULL) == SM_OK)
        return sm_error(SM_ERR_INVALID_ARG, "parameter '%s': a tensor named '%s' already exists; that name is "
                        "reserved for its gradient", g->t[p].name, name);
    sm_error_clear();
    /* The gradient tensor must be the parameter's alone: made by backward, with its own storage (not a
     * view), not read by another node and not already another parameter's. */
    const sm_tensor_rec *r = &g->t[gt];
    bool own = gt >= t0 && r->node >= 0 && !sm_op_def_get(g->nodes[r->node].op)->is_view && uses[gt] == 0 &&
               !claimed[gt];
    if (!own) {
        sm_attrs a = sm_op_default_attrs(SM_OP_SCALE);
        a.f[SM_FATTR_SCALE_S] = 1.0f;
        sm_status s = sm_graph_op(g, SM_OP_SCALE, &gt, 1, &a, name, &gt);
        if (s) return s;
    } else {
        sm_status s = sm_graph_rename(g, gt, name);
        if (s) return s;
    }
    claimed[gt] = true;
    g->t[gt].role = SM_ROLE_GRAD;
    g->t[p].grad = gt;
    return SM_OK;
}

static sm_status finish(sm_graph *g, const bool *req, const sm_tensor *grad, int t0)
{
    int n_params = 0;
    for (int i = 0; i < t0; i++) n_params += g->t[i].role == SM_ROLE_PARAM;
    size_t cap = (size_t)g->n_t + (size_t)n_params;   /* each parameter adds at most one copy */
    int *uses = calloc(cap, sizeof *uses);
    bool *claimed = calloc(cap, sizeof *claimed);
    sm_status s = uses && claimed ? SM_OK : sm_error(SM_ERR_NOMEM, "backward: out of memory");
    for (int k = 0; !s && k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++) uses[g->nodes[k].in[i]]++;
    for (sm_tensor p = 0; !s && p < t0; p++)
        if (g->t[p].role == SM_ROLE_PARAM && req[p] && grad[p] != SM_NO_TENSOR)
            s = finish_param(g, p, grad[p], t0, uses, claimed);
    free(uses);
    free(claimed);
    return s;
}

/* The backward with seed 1 (scaled = false) or the loss scale input "opt.loss_scale" (true). */
static sm_status backward(sm_graph *g, sm_tensor loss, bool scaled, sm_tensor *scale_out)
{
    if (!g) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_backward: NULL graph");
    if (!sm_graph_valid(g, loss)) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_backward: the loss is not a tensor of this graph");
    if (sm_rec_numel(&g->t[loss]) != 1 || g->t[loss].dtype != SM_F32)
        return sm_error(SM_ERR_SHAPE, "sm_graph_backward: the loss '%s' must be a single f32 value", g->t[loss].name);
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].grad != SM_NO_TENSOR)
            return sm_error(SM_ERR_STATE, "sm_graph_backward: the graph already has its backward (parameter '%s' has "
                            "a gradient); it can be appended once", g->t[i].name);

    int t0 = g->n_t, n_fwd = g->n_nodes;   /* t0 >= 1: the loss is a tensor */
    size_t nt = (size_t)(unsigned)t0;
    bool *req = calloc(nt, sizeof *req);
    sm_tensor *grad = malloc(nt * sizeof *grad);
    if (!req || !grad) {
        free(req);
        free(grad);
        return sm_error(SM_ERR_NOMEM, "sm_graph_backward: out of memory");
    }
    for (int i = 0; i < t0; i++) {
        const sm_tensor_rec *r = &g->t[i];
        req[i] = r->role == SM_ROLE_PARAM && r->trainable && is_float(r->dtype);
        grad[i] = SM_NO_TENSOR;
    }
    for (int k = 0; k < n_fwd; k++) {
        const sm_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++) req[n->out] |= req[n->in[i]] && is_float(g->t[n->out].dtype);
    }

    sm_status s = SM_OK;
    sm_tensor scale = SM_NO_TENSOR;
    if (!req[loss])
        s = sm_error(SM_ERR_INVALID_ARG, "sm_graph_backward: the loss '%s' does not depend on any trainable "
                     "parameter", g->t[loss].name);
    if (!s && scaled) s = sm_graph_input(g, "opt.loss_scale", SM_F32, g->t[loss].ndim, g->t[loss].ne, &scale);
    if (!s) s = seed(g, loss, scale, &grad[loss]);
    if (!s) s = sweep(g, n_fwd, req, grad);
    if (!s) s = finish(g, req, grad, t0);
    if (s) {   /* restore the graph: drop everything appended, forget the gradients */
        g->n_nodes = n_fwd;
        g->n_t = t0;
        for (int i = 0; i < t0; i++) g->t[i].grad = SM_NO_TENSOR;
    } else {
        g->loss_scale = scale;
        if (scale_out) *scale_out = scale;
    }
    free(req);
    free(grad);
    return s;
}

sm_status sm_graph_backward(sm_graph *g, sm_tensor loss) { return backward(g, loss, false, NULL); }

sm_status sm_graph_backward_scaled(sm_graph *g, sm_tensor loss, sm_tensor *scale)
{
    return backward(g, loss, true, scale);
}

sm_tensor sm_graph_grad(const sm_graph *g, sm_tensor p)
{
    return sm_graph_valid(g, p) ? g->t[p].grad : SM_NO_TENSOR;
}
