/* recompute.c — the recompute pass (gradient checkpointing) on the lowered graph.
 *
 * The forward is every node the loss depends on; the rest (gradients, optimizer) is the backward.
 * A forward activation the backward reads is "saved": without recompute it lives from its forward
 * step to its last backward use. The pass decides which saved tensors are kept and which are freed
 * after their forward use and recomputed:
 *   1. Block boundaries: forward tensors after which the rest of the forward reads nothing older
 *      but weights and inputs (in a GPT, the residual stream after each attention and MLP add, the
 *      final norm, the logits), found by one sweep over the forward in order; or, when the graph
 *      marks any, the tensors marked `checkpoint`.
 *   2. Kept: every `every`-th boundary counted back from the last (the backward starts right after the
 *      last boundary, so what follows it is never worth recomputing), with keep_costly the outputs
 *      of costly ops (more than RC_CHEAP_FLOPS FLOPs per output element: matmul, attention), and
 *      tensors that hold their storage through the run anyway (inputs, weights, outputs).
 *   3. Every saved tensor not kept gets a clone: the same op with the same attributes, on the same
 *      inputs where those are kept, else on their clones (made the same way, back to kept tensors).
 *      The backward's reads of saved tensors are pointed at the clones, and each clone is placed
 *      in the order right before its first reader. A clone computes exactly what its source did,
 *      so results are bitwise those of the plan without recompute.
 * Clones are appended to the graph (ids after the user's; nothing is renumbered) and named
 * "<source>.rc". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

/* An op costs more than this many FLOPs per output element only when it reduces over a dimension
 * (matmul: 2K, attention: ~4T): those outputs are worth keeping under selective recompute. Norms,
 * activations, softmax and elementwise ops stay under it (layernorm 8, gelu 9). */
#define RC_CHEAP_FLOPS 32.0

/* What the pass knows of the lowered graph's forward. */
typedef struct rc_graph {
    const sm_graph *g;
    int n_nodes;          /* nodes of the user's graph (clones come after) */
    bool *fwd;            /* per node: the loss depends on it */
    bool *held;           /* per tensor: available throughout the run (leaf, output, persistent) */
    int *bound;           /* boundaries in forward order */
    int n_bound;
} rc_graph;

static void rc_free(rc_graph *r)
{
    free(r->fwd);
    free(r->held);
    free(r->bound);
}

static bool is_held(const sm_tensor_rec *t)
{
    return t->node < 0 || sm_plan_role_spans_run(t->role) || t->is_output;
}

/* Boundaries by the sweep of step 1, over the forward nodes in insertion order: after node k the
 * forward tensors still to be read by a later forward node are exactly {its output}. */
static sm_status find_boundaries(rc_graph *r)
{
    const sm_graph *g = r->g;
    bool marked = false;
    for (int i = 0; i < g->n_t; i++) marked |= g->t[i].checkpoint;
    int *last = malloc(sizeof *last * ((size_t)(unsigned)g->n_t + 1));
    if (!last) return sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    for (int i = 0; i < g->n_t; i++) last[i] = -1;
    for (int k = 0; k < r->n_nodes; k++)
        if (r->fwd[k])
            for (int i = 0; i < g->nodes[k].n_in; i++) last[g->nodes[k].in[i]] = k;
    int live = 0;
    for (int k = 0; k < r->n_nodes; k++) {
        if (!r->fwd[k]) continue;
        const sm_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            bool dup = false;
            for (int q = 0; q < i; q++) dup |= n->in[q] == n->in[i];
            if (!dup && !r->held[n->in[i]] && last[n->in[i]] == k) live--;
        }
        bool read_later = !r->held[n->out] && last[n->out] > k;
        live += read_later;
        bool is_bound = marked ? g->t[n->out].checkpoint : read_later && live == 1;
        if (is_bound) r->bound[r->n_bound++] = n->out;
    }
    free(last);
    return SM_OK;
}

static sm_status rc_analyse(const sm_graph *g, int n_nodes, rc_graph *r)
{
    memset(r, 0, sizeof *r);
    r->g = g;
    r->n_nodes = n_nodes;
    r->fwd = calloc((size_t)n_nodes + 1, sizeof *r->fwd);
    r->held = calloc((size_t)g->n_t + 1, sizeof *r->held);
    r->bound = malloc(sizeof *r->bound * ((size_t)n_nodes + 1));
    bool *need = calloc((size_t)g->n_t + 1, sizeof *need);
    if (!r->fwd || !r->held || !r->bound || !need) {
        free(need);
        rc_free(r);
        return sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    }
    for (int i = 0; i < g->n_t; i++) r->held[i] = is_held(&g->t[i]);
    if (g->loss != SM_NO_TENSOR) need[g->loss] = true;
    for (int k = n_nodes - 1; k >= 0; k--) {
        const sm_node *n = &g->nodes[k];
        if (!need[n->out]) continue;
        r->fwd[k] = true;
        for (int i = 0; i < n->n_in; i++) need[n->in[i]] = true;
    }
    free(need);
    sm_status s = find_boundaries(r);
    if (s) rc_free(r);
    return s;
}

static bool costly(const sm_graph *g, const sm_node *n)
{
    const sm_op_def *d = sm_op_def_get(n->op);
    return d->flops && d->flops(g, n) > RC_CHEAP_FLOPS * (double)sm_rec_numel(&g->t[n->out]);
}

sm_status sm_rc_resolve(const sm_graph *g, const sm_recompute_policy *pol, sm_rc_choice *out)
{
    sm_rc_choice c = {0, false};
    switch (pol->kind) {
    case SM_RECOMPUTE_NONE: break;
    case SM_RECOMPUTE_EVERY:
        if (pol->every < 1)
            return sm_error(SM_ERR_INVALID_ARG, "recompute every:%d: K must be 1 or more (1 keeps every block boundary)",
                            pol->every);
        c.every = pol->every;
        break;
    case SM_RECOMPUTE_SQRT: {
        rc_graph r;
        sm_status s = rc_analyse(g, g->n_nodes, &r);
        if (s) return s;
        c.every = r.n_bound ? (int)ceil(sqrt((double)r.n_bound)) : 1;
        rc_free(&r);
        break;
    }
    case SM_RECOMPUTE_SELECTIVE:
        c.every = 1;
        c.keep_costly = true;
        break;
    default:
        return sm_error(SM_ERR_INVALID_ARG, "recompute: policy %d has no fixed choice", (int)pol->kind);
    }
    *out = c;
    return SM_OK;
}

/* Steps 2 and 3 for choice c: keep[t] for the tensors kept, redo[t] for the saved tensors (and their
 * unkept inputs) to recompute; returns the FLOPs of recomputing them (a clone runs its source's op
 * on inputs of the same shapes: the same FLOPs). keep and redo hold g->n_t entries. */
static double rc_select(const rc_graph *r, sm_rc_choice c, bool *keep, bool *redo, int *n_kept)
{
    const sm_graph *g = r->g;
    int n_t = g->n_t;
    *n_kept = 0;
    memset(redo, 0, sizeof *redo * (size_t)n_t);
    for (int i = 0; i < n_t; i++) keep[i] = r->held[i] || c.every == 0;
    for (int b = 0; c.every > 0 && b < r->n_bound; b++)
        if ((r->n_bound - 1 - b) % c.every == 0) keep[r->bound[b]] = true, (*n_kept)++;
    for (int k = 0; c.keep_costly && k < r->n_nodes; k++)
        if (r->fwd[k] && costly(g, &g->nodes[k])) keep[g->nodes[k].out] = true;
    /* the saved tensors not kept, then (backwards over the forward) their unkept inputs */
    for (int k = 0; k < r->n_nodes; k++)
        if (!r->fwd[k])
            for (int i = 0; i < g->nodes[k].n_in; i++) {
                sm_tensor u = g->nodes[k].in[i];
                int prod = g->t[u].node;
                if (prod >= 0 && prod < r->n_nodes && r->fwd[prod] && !keep[u]) redo[u] = true;
            }
    double flops = 0;
    for (int k = r->n_nodes - 1; k >= 0; k--) {
        if (!r->fwd[k] || !redo[g->nodes[k].out]) continue;
        for (int i = 0; i < g->nodes[k].n_in; i++)
            if (!keep[g->nodes[k].in[i]]) redo[g->nodes[k].in[i]] = true;
        const sm_op_def *d = sm_op_def_get(g->nodes[k].op);
        if (d->flops) flops += d->flops(g, &g->nodes[k]);
    }
    return flops;
}

typedef struct rc_candidate {
    sm_rc_choice c;
    double flops;
} rc_candidate;

static int by_flops(const void *a, const void *b)
{
    const rc_candidate *x = a, *y = b;
    if (x->flops != y->flops) return x->flops < y->flops ? -1 : 1;
    /* equal FLOPs: the sparser choice first (fewer kept boundaries, smaller plan), stably */
    if (x->c.every != y->c.every) return x->c.every == 0 ? -1 : y->c.every == 0 ? 1 : y->c.every - x->c.every;
    return (int)y->c.keep_costly - (int)x->c.keep_costly;
}

sm_status sm_rc_candidates(const sm_graph *g, sm_rc_choice **out, int *n)
{
    rc_graph r;
    sm_status s = rc_analyse(g, g->n_nodes, &r);
    if (s) return s;
    int nb = r.n_bound > 0 ? r.n_bound : 1, k = 0, kept;
    /* none, then both flavours of every K, each with the FLOPs its clones would cost */
    rc_candidate *cand = malloc(sizeof *cand * (2 * (size_t)nb + 1));
    bool *keep = malloc(sizeof *keep * ((size_t)g->n_t + 1)), *redo = malloc(sizeof *redo * ((size_t)g->n_t + 1));
    sm_rc_choice *c = malloc(sizeof *c * (2 * (size_t)nb + 1));
    if (!cand || !keep || !redo || !c) s = sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    for (int every = 0; !s && every <= nb; every++)
        for (int costly_kept = every ? 1 : 0; costly_kept >= 0; costly_kept--) {
            sm_rc_choice ch = {every, costly_kept};
            cand[k++] = (rc_candidate){ch, rc_select(&r, ch, keep, redo, &kept)};
        }
    if (!s) {
        qsort(cand, (size_t)k, sizeof *cand, by_flops);
        for (int i = 0; i < k; i++) c[i] = cand[i].c;
        *out = c;
        *n = k;
    } else {
        free(c);
    }
    free(cand), free(keep), free(redo);
    rc_free(&r);
    return s;
}

/* A unique name for the clone of `src` in g. */
static void clone_name(const sm_graph *g, sm_tensor src, int id, char name[SM_NAME_MAX])
{
    snprintf(name, SM_NAME_MAX, "%.*s.rc", SM_NAME_MAX - 4, g->t[src].name);
    if (strlen(g->t[src].name) > SM_NAME_MAX - 4 || sm_graph_find(g, name, NULL) == SM_OK) {
        sm_error_clear();
        snprintf(name, SM_NAME_MAX, "rc.%d", id);
    }
    sm_error_clear();
}

/* Splices the clones (nodes n_nodes..) into p->order, each right before its first reader: before a
 * node is emitted, the clones it reads that are not yet emitted are, their own clone inputs first
 * (an explicit stack: clone chains can be as long as the forward). */
static sm_status splice(sm_plan *p, int n_nodes)
{
    const sm_graph *g = p->g;
    int total = g->n_nodes;
    int *order = malloc(sizeof *order * (size_t)(total ? total : 1));
    bool *emitted = calloc((size_t)total + 1, sizeof *emitted);
    int *stack = malloc(sizeof *stack * ((size_t)total + 1));
    if (!order || !emitted || !stack) {
        free(order), free(emitted), free(stack);
        return sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    }
    int n = 0;
    for (int s = 0; s < p->n_steps; s++) {
        int k = p->order[s];
        /* depth-first: push k; a node is emitted once every clone input it has is */
        int top = 0;
        stack[top++] = k;
        while (top) {
            int j = stack[top - 1];
            bool pushed = false;
            for (int i = 0; i < g->nodes[j].n_in && !pushed; i++) {
                int prod = g->t[g->nodes[j].in[i]].node;
                if (prod >= n_nodes && !emitted[prod]) stack[top++] = prod, pushed = true;
            }
            if (pushed) continue;
            top--;
            if (!emitted[j]) emitted[j] = true, order[n++] = j;
        }
    }
    free(emitted);
    free(stack);
    if (n != total) {
        free(order);
        return sm_error(SM_ERR_INTERNAL, "recompute: %d of %d clones have no reader", total - n, total - n_nodes);
    }
    free(p->order);
    p->order = order;
    p->n_steps = total;
    return SM_OK;
}

sm_status sm_plan_recompute_pass(sm_plan *p, sm_rc_choice c)
{
    sm_graph *g = p->g;
    int n_nodes = g->n_nodes, n_t = g->n_t;
    memset(&p->rc, 0, sizeof p->rc);
    p->rc.choice = c;
    free(p->src);
    p->src = NULL;
    rc_graph r;
    sm_status s = rc_analyse(g, n_nodes, &r);
    if (s) return s;
    p->rc.n_boundaries = r.n_bound;
    bool *keep = malloc(sizeof *keep * ((size_t)n_t + 1)), *redo = malloc(sizeof *redo * ((size_t)n_t + 1));
    sm_tensor *clone = malloc(sizeof *clone * ((size_t)n_t + 1));
    if (!keep || !redo || !clone) s = sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    if (!s) rc_select(&r, c, keep, redo, &p->rc.n_kept);
    for (int i = 0; !s && i < n_t; i++) clone[i] = SM_NO_TENSOR;
    for (int k = 0; !s && k < n_nodes; k++) {
        if (!r.fwd[k] || !redo[g->nodes[k].out]) continue;
        sm_node n = g->nodes[k];   /* copied: sm_graph_op may move g->nodes */
        sm_tensor in[SM_MAX_INPUTS];
        for (int i = 0; i < n.n_in; i++) in[i] = redo[n.in[i]] ? clone[n.in[i]] : n.in[i];
        char name[SM_NAME_MAX];
        clone_name(g, n.out, g->n_t, name);
        s = sm_graph_op(g, n.op, in, n.n_in, &n.attrs, name, &clone[n.out]);
        if (s) {
            s = sm_error_prefix(s, "recompute: cloning '%s': ", g->t[n.out].name);
            break;
        }
        const sm_op_def *d = sm_op_def_get(n.op);
        p->rc.n_recomputed++;
        if (d->flops) p->rc.extra_flops += d->flops(g, &g->nodes[g->t[clone[n.out]].node]);
    }
    /* the backward reads the clones */
    for (int k = 0; !s && k < n_nodes; k++)
        if (!r.fwd[k])
            for (int i = 0; i < g->nodes[k].n_in; i++)
                if (redo[g->nodes[k].in[i]]) g->nodes[k].in[i] = clone[g->nodes[k].in[i]];
    if (!s && !(p->src = malloc(sizeof *p->src * ((size_t)g->n_t + 1)))) s = sm_error(SM_ERR_NOMEM, "recompute: out of memory");
    for (int i = 0; !s && i < g->n_t; i++) p->src[i] = SM_NO_TENSOR;
    for (int i = 0; !s && i < n_t; i++)
        if (clone[i] != SM_NO_TENSOR) p->src[clone[i]] = i;
    if (!s) s = splice(p, n_nodes);
    free(keep), free(redo), free(clone);
    rc_free(&r);
    return s;
}
