/* lifetimes.c — the lifetimes and in-place passes: each tensor's first/last use over the order,
 * views sharing their source's storage, and in-place reuse. After this, every tensor with storage of its
 * own (a "root") has a span [first, last] covering every tensor that shares its storage; the
 * offset packers only see roots.
 *
 * Time is the step index in the order. A tensor is live on the closed interval [first, last]: it is
 * written at step first and read last at step last, so two tensors conflict when their intervals
 * intersect (a node's output never shares memory with an input that dies at that node unless the
 * op allows it in place). */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

/* Inputs are written by the caller before a run and outputs read after it, at any time between
 * runs, so both hold their storage for the whole run: an output sharing bytes with an input would
 * be clobbered by setting the next run's input before reading the last run's output. Parameters,
 * gradients, optimizer state and KV persist across runs. */
bool sm_plan_role_spans_run(sm_role role) { return role != SM_ROLE_ACTIVATION; }

bool sm_plan_work_bytes(const sm_plan *p, uint64_t *out)
{
    uint64_t threads;
    return p->n_threads >= 1 && !__builtin_mul_overflow(p->work_per_thread, (uint64_t)p->n_threads, &threads) &&
           !__builtin_add_overflow(threads, p->work_shared, out);
}

static sm_tensor root_of(const sm_plan *p, sm_tensor t)
{
    while (p->t[t].alias != SM_NO_TENSOR) t = p->t[t].alias;
    return t;
}

sm_status sm_plan_lifetimes(const sm_graph *g, sm_plan *p)
{
    int *step_of = malloc(sizeof *step_of * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!step_of) return sm_error(SM_ERR_NOMEM, "planning: out of memory for %d nodes", g->n_nodes);
    for (int s = 0; s < p->n_steps; s++) step_of[p->order[s]] = s;

    int last_step = p->n_steps ? p->n_steps - 1 : 0;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        sm_plan_tensor *pt = &p->t[i];
        pt->alias = SM_NO_TENSOR;
        pt->view_off = 0;
        pt->inplace = false;
        bool spans = sm_plan_role_spans_run(r->role) || r->is_output;
        pt->first = r->node >= 0 && !(spans && r->role != SM_ROLE_OUTPUT) ? step_of[r->node] : 0;
        pt->last = spans ? last_step : pt->first;
    }
    /* Views alias their source (followed to the root); a use of a view is a use of the root. */
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        const sm_op_def *d = sm_op_def_get(n->op);
        if (d->is_view) {
            sm_tensor src = root_of(p, n->in[0]);
            p->t[n->out].alias = src;
            p->t[n->out].arena = p->t[src].arena;
            p->t[n->out].view_off = p->t[n->in[0]].view_off + (d->view_offset ? d->view_offset(g, n) : 0);
        }
        for (int i = 0; i < n->n_in; i++)
            for (sm_tensor u = n->in[i]; u != SM_NO_TENSOR; u = p->t[u].alias)
                if (p->t[u].last < s) p->t[u].last = s;
    }
    /* A view that outlives its source's uses (an output, say) keeps the source alive. */
    for (int i = 0; i < g->n_t; i++)
        if (p->t[i].alias != SM_NO_TENSOR && p->t[p->t[i].alias].last < p->t[i].last)
            p->t[p->t[i].alias].last = p->t[i].last;
    free(step_of);

    uint64_t work = 0, shared = 0;
    p->flops = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const sm_op_def *d = sm_op_def_get(g->nodes[k].op);
        if (d->workspace) {
            uint64_t w = sm_plan_align(d->workspace(g, &g->nodes[k]));
            if (w > work) work = w;
        }
        if (d->shared_workspace) {
            uint64_t w = sm_plan_align(d->shared_workspace(g, &g->nodes[k]));
            if (w > shared) shared = w;
        }
        if (d->flops) p->flops += d->flops(g, &g->nodes[k]);
    }
    p->work_per_thread = work;
    p->work_shared = shared;
    p->n_inplace = 0;
    int n_views = 0;
    for (int i = 0; i < g->n_t; i++) n_views += p->t[i].alias != SM_NO_TENSOR;
    sm_plan_log(p, SM_PASS_LIFETIMES, "%d steps, %d tensors (%d views share their source's storage), %.3g FLOPs",
                p->n_steps, g->n_t, n_views, p->flops);
    return SM_OK;
}

/* In-place: node n (op marked inplace) may write its output over input 0's storage when
 *  - that storage's root is an activation in the activation arena and nothing sharing it is read
 *    outside the run (a parameter, input, output or persistent tensor: "pinned"),
 *  - the root's span ends at this node, counting every view of it (so nothing reads it later),
 *  - no other input of the node shares that storage (the kernel would read what it overwrote),
 *  - the output is an activation/output of exactly the root's bytes and input 0's dtype.
 * The output then joins the root's storage and the root's span grows to cover it. Processing the
 * order front to back lets chains form (x -> gelu in place -> add in place ...). */
sm_status sm_plan_inplace(const sm_graph *g, sm_plan *p)
{
    bool *pinned = calloc((size_t)(g->n_t ? g->n_t : 1), sizeof *pinned);
    if (!pinned) return sm_error(SM_ERR_NOMEM, "planning: out of memory");
    for (int i = 0; i < g->n_t; i++)
        if (sm_plan_role_spans_run(g->t[i].role) || g->t[i].is_output) pinned[root_of(p, i)] = true;
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        const sm_op_def *d = sm_op_def_get(n->op);
        if (!d->inplace || d->is_view || n->n_in < 1) continue;
        sm_tensor r = root_of(p, n->in[0]);
        const sm_tensor_rec *out = &g->t[n->out], *x = &g->t[n->in[0]];
        if (pinned[r] || p->t[r].arena != SM_ARENA_ACT) continue;
        if (p->t[n->out].arena != SM_ARENA_ACT || p->t[n->out].alias != SM_NO_TENSOR) continue;
        if (p->t[r].last != s) continue;
        if (sm_rec_bytes(out) != p->t[r].bytes || out->dtype != x->dtype) continue;
        bool shared = false;
        for (int i = 1; i < n->n_in && !shared; i++) shared = root_of(p, n->in[i]) == r;
        if (shared) continue;
        /* The output's own span (its views included) joins the root's. */
        p->t[n->out].alias = r;
        p->t[n->out].inplace = true;
        if (p->t[n->out].last > p->t[r].last) p->t[r].last = p->t[n->out].last;
        pinned[r] = pinned[n->out];
        p->n_inplace++;
    }
    free(pinned);
    sm_plan_log(p, SM_PASS_INPLACE, "%d outputs take their input's storage", p->n_inplace);
    /* Views of an in-place output were rooted at the output: re-root them at its root. */
    for (int i = 0; i < g->n_t; i++) {
        if (p->t[i].alias == SM_NO_TENSOR) continue;
        sm_tensor r = root_of(p, i);
        p->t[i].alias = r;
        if (p->t[i].last > p->t[r].last) p->t[r].last = p->t[i].last;
    }
    return SM_OK;
}
