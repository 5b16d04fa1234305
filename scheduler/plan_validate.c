/* plan_validate.c — the plan checker: everything the executor relies on, checked from the plan's
 * data alone against the graph. Used by tests, by debug runs, and on every loaded plan file (a file
 * is untrusted input). */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

typedef struct span {
    int id;
    uint64_t lo, hi;      /* [lo, hi) bytes */
    int first, last;
} span;

static int by_lo(const void *x, const void *y)
{
    const span *a = x, *b = y;
    if (a->lo != b->lo) return a->lo < b->lo ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Two passes, roots first, so an alias is only compared with a root already known to be sane
 * (plan files are untrusted: no sum below may wrap). */
static sm_status check_tensors(const sm_plan *p, const sm_graph *g)
{
    int last_step = p->n_steps ? p->n_steps - 1 : 0;
    for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < g->n_t; i++) {
        const sm_plan_tensor *t = &p->t[i];
        const sm_tensor_rec *r = &g->t[i];
        if ((t->alias != SM_NO_TENSOR) != (pass == 1)) continue;
        if (t->arena < 0 || t->arena >= SM_ARENA_COUNT || t->arena == SM_ARENA_WORK)
            return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' is in arena %d, which holds no tensors", r->name,
                            t->arena);
        if (t->bytes != sm_rec_bytes(r))
            return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' has %llu bytes in the plan but %zu in the graph",
                            r->name, (unsigned long long)t->bytes, sm_rec_bytes(r));
        if (t->first < 0 || t->first > t->last || t->last > last_step)
            return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' has a bad span [%d, %d] (%d steps)", r->name, t->first,
                            t->last, p->n_steps);
        if (t->alias != SM_NO_TENSOR) {
            if (t->alias < 0 || t->alias >= g->n_t || p->t[t->alias].alias != SM_NO_TENSOR)
                return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' aliases %d, which is not a root tensor", r->name,
                                (int)t->alias);
            const sm_plan_tensor *root = &p->t[t->alias];
            uint64_t room = sm_plan_align(root->bytes);
            if (root->arena != t->arena || t->offset < root->offset || t->bytes > room ||
                t->offset - root->offset > room - t->bytes)
                return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' lies outside '%s', whose storage it shares",
                                r->name, g->t[t->alias].name);
            if (t->first < root->first || t->last > root->last)
                return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' [%d, %d] outlives '%s' [%d, %d], whose storage it "
                                "shares", r->name, t->first, t->last, g->t[t->alias].name, root->first, root->last);
            continue;
        }
        if (t->arena != (int)sm_plan_arena_of(r->role))
            return sm_error(SM_ERR_INTERNAL, "plan: %s tensor '%s' is in the %s arena", sm_role_name(r->role), r->name,
                            sm_arena_name((sm_arena_id)t->arena));
        uint64_t size = p->arena[t->arena].size;
        if (t->offset % SM_PLAN_ALIGN || t->offset > size || t->bytes > size - t->offset)
            return sm_error(SM_ERR_INTERNAL, "plan: tensor '%s' at offset %llu (+%llu bytes) is misaligned or past the "
                            "end of the %s arena (%llu bytes)", r->name, (unsigned long long)t->offset,
                            (unsigned long long)t->bytes, sm_arena_name((sm_arena_id)t->arena),
                            (unsigned long long)p->arena[t->arena].size);
        bool spans = sm_plan_role_spans_run(r->role) || r->is_output;
        if (spans && (t->last != last_step || (r->role != SM_ROLE_OUTPUT && t->first != 0)))
            return sm_error(SM_ERR_INTERNAL, "plan: %s tensor '%s' must hold its storage for the whole run, not [%d, %d]",
                            sm_role_name(r->role), r->name, t->first, t->last);
    }
    return SM_OK;
}

static bool covers(const sm_plan_tensor *t, int s) { return t->first <= s && s <= t->last; }

static sm_status check_steps(const sm_plan *p, const sm_graph *g)
{
    int *step_of = malloc(sizeof *step_of * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!step_of) return sm_error(SM_ERR_NOMEM, "validating a plan: out of memory");
    for (int k = 0; k < g->n_nodes; k++) step_of[k] = -1;
    sm_status st = SM_OK;
    for (int s = 0; !st && s < p->n_steps; s++) {
        int k = p->order[s];
        if (k < 0 || k >= g->n_nodes || step_of[k] >= 0) {
            st = sm_error(SM_ERR_INTERNAL, "plan: step %d names node %d, which is not a node or comes twice", s, k);
            break;
        }
        step_of[k] = s;
        const sm_node *n = &g->nodes[k];
        for (int i = 0; !st && i < n->n_in; i++) {
            sm_tensor u = n->in[i];
            int prod = g->t[u].node;
            if (prod >= 0 && step_of[prod] < 0)
                st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' at step %d reads '%s' before it is computed",
                              g->t[n->out].name, s, g->t[u].name);
            sm_tensor r = p->t[u].alias != SM_NO_TENSOR ? p->t[u].alias : u;
            if (!st && (!covers(&p->t[u], s) || !covers(&p->t[r], s)))
                st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' at step %d reads '%s', which is not live then "
                              "([%d, %d])", g->t[n->out].name, s, g->t[u].name, p->t[u].first, p->t[u].last);
        }
        const sm_plan_tensor *o = &p->t[n->out];
        bool spans = sm_plan_role_spans_run(g->t[n->out].role) && g->t[n->out].role != SM_ROLE_OUTPUT;
        if (!st && ((!spans && o->first != s) || !covers(o, s)))
            st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' writes its output at step %d, outside its span [%d, %d]",
                          g->t[n->out].name, s, o->first, o->last);
        const sm_op_def *d = sm_op_def_get(n->op);
        if (!st && d->workspace && sm_plan_align(d->workspace(g, n)) > p->work_per_thread)
            st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' needs %zu bytes of workspace per thread; the plan has %llu",
                          g->t[n->out].name, d->workspace(g, n), (unsigned long long)p->work_per_thread);
        if (!st && d->shared_workspace && sm_plan_align(d->shared_workspace(g, n)) > p->work_shared)
            st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' needs %zu bytes of shared workspace; the plan has %llu",
                          g->t[n->out].name, d->shared_workspace(g, n), (unsigned long long)p->work_shared);
    }
    free(step_of);
    uint64_t work;
    if (!st && !sm_plan_work_bytes(p, &work))
        st = sm_error(SM_ERR_INTERNAL, "plan: %d threads x %llu bytes of workspace + %llu shared overflows 64 bits",
                      p->n_threads, (unsigned long long)p->work_per_thread, (unsigned long long)p->work_shared);
    if (!st && p->arena[SM_ARENA_WORK].size < work)
        st = sm_error(SM_ERR_INTERNAL, "plan: the workspace arena (%llu bytes) is smaller than %d threads x %llu "
                      "bytes + %llu shared", (unsigned long long)p->arena[SM_ARENA_WORK].size, p->n_threads,
                      (unsigned long long)p->work_per_thread, (unsigned long long)p->work_shared);
    return st;
}

/* No two roots of one arena live at the same step may share a byte. Sorted by offset, each root is
 * compared with the roots that start inside its range. */
static sm_status check_overlaps(const sm_plan *p, const sm_graph *g)
{
    span *sp = malloc(sizeof *sp * (size_t)(g->n_t ? g->n_t : 1));
    if (!sp) return sm_error(SM_ERR_NOMEM, "validating a plan: out of memory");
    sm_status st = SM_OK;
    for (int a = 0; !st && a < SM_ARENA_COUNT; a++) {
        int n = 0;
        for (int i = 0; i < g->n_t; i++) {
            const sm_plan_tensor *t = &p->t[i];
            if (t->arena == a && t->alias == SM_NO_TENSOR)
                sp[n++] = (span){i, t->offset, t->offset + t->bytes, t->first, t->last};
        }
        qsort(sp, (size_t)n, sizeof *sp, by_lo);
        for (int i = 0; !st && i < n; i++)
            for (int j = i + 1; !st && j < n && sp[j].lo < sp[i].hi; j++)
                if (sp[i].first <= sp[j].last && sp[j].first <= sp[i].last)
                    st = sm_error(SM_ERR_INTERNAL, "plan: '%s' [steps %d-%d, bytes %llu-%llu] and '%s' [steps %d-%d, "
                                  "bytes %llu-%llu] are live together and overlap in the %s arena",
                                  g->t[sp[i].id].name, sp[i].first, sp[i].last, (unsigned long long)sp[i].lo,
                                  (unsigned long long)sp[i].hi, g->t[sp[j].id].name, sp[j].first, sp[j].last,
                                  (unsigned long long)sp[j].lo, (unsigned long long)sp[j].hi,
                                  sm_arena_name((sm_arena_id)a));
    }
    free(sp);
    return st;
}

/* A node that updates its inputs in place (the optimizer step) must come after every other node that
 * reads them, or that node would read the updated values. (The op table does not say which inputs
 * are written; the rows that write keep to persistent tensors, which are never reused.) */
static sm_status check_mutations(const sm_plan *p, const sm_graph *g)
{
    int *last_read = malloc(sizeof *last_read * (size_t)(g->n_t ? g->n_t : 1));
    if (!last_read) return sm_error(SM_ERR_NOMEM, "validating a plan: out of memory");
    for (int i = 0; i < g->n_t; i++) last_read[i] = -1;
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        if (sm_op_def_get(n->op)->mutates_inputs) continue;
        for (int i = 0; i < n->n_in; i++) {
            sm_tensor r = p->t[n->in[i]].alias != SM_NO_TENSOR ? p->t[n->in[i]].alias : n->in[i];
            last_read[r] = s;
        }
    }
    sm_status st = SM_OK;
    for (int s = 0; !st && s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        if (!sm_op_def_get(n->op)->mutates_inputs) continue;
        for (int i = 0; !st && i < n->n_in; i++) {
            sm_tensor r = p->t[n->in[i]].alias != SM_NO_TENSOR ? p->t[n->in[i]].alias : n->in[i];
            if (last_read[r] > s)
                st = sm_error(SM_ERR_INTERNAL, "plan: node '%s' at step %d updates its inputs in place, but node '%s' "
                              "reads '%s' later (step %d)", g->t[n->out].name, s,
                              g->t[g->nodes[p->order[last_read[r]]].out].name, g->t[n->in[i]].name, last_read[r]);
        }
    }
    free(last_read);
    return st;
}

sm_status sm_plan_check_graph(const sm_plan *p, const sm_graph *g)
{
    if (!p || !g || !p->g) return sm_error(SM_ERR_INVALID_ARG, "checking a plan: NULL plan or graph");
    if (g == p->g) return SM_OK;
    uint64_t h = sm_graph_hash(g);
    if (h != p->graph_hash || g->n_t > p->g->n_t || g->n_nodes > p->g->n_nodes)
        return sm_error(SM_ERR_INVALID_ARG, "the plan was made for another graph (graph hash %016llx; this graph's is "
                        "%016llx): make a plan for this graph", (unsigned long long)p->graph_hash, (unsigned long long)h);
    return SM_OK;
}

/* t, or the f32 tensor the precision pass's casts made it from (a 16-bit copy, or such a copy cast
 * back): a recompute clone that reads one computes what its source does from a rounded input. */
static sm_tensor through_casts(const sm_plan *p, const sm_graph *g, sm_tensor t)
{
    while (g->t[t].node >= p->prec.first_node && g->nodes[g->t[t].node].op == SM_OP_CAST) t = g->nodes[g->t[t].node].in[0];
    return t;
}

/* Every recompute clone computes what its source does: the same op and attributes on the same
 * inputs (or 16-bit copies of them: precision.c), or on clones of them. */
static sm_status check_recompute(const sm_plan *p, const sm_graph *g)
{
    for (int i = 0; p->src && i < g->n_t; i++) {
        sm_tensor src = p->src[i];
        if (src == SM_NO_TENSOR) continue;
        const sm_tensor_rec *c = &g->t[i], *o = src >= 0 && src < i ? &g->t[src] : NULL;
        if (!o || c->node < 0 || o->node < 0)
            return sm_error(SM_ERR_INTERNAL, "plan: '%s' recomputes tensor %d, which no earlier node computes", c->name,
                            (int)src);
        const sm_node *a = &g->nodes[c->node], *b = &g->nodes[o->node];
        bool same = a->op == b->op && a->n_in == b->n_in && !memcmp(&a->attrs, &b->attrs, sizeof a->attrs) &&
                    c->dtype == o->dtype && c->ndim == o->ndim && !memcmp(c->ne, o->ne, sizeof c->ne);
        for (int k = 0; same && k < a->n_in; k++) {
            sm_tensor x = through_casts(p, g, a->in[k]);
            same = x == b->in[k] || p->src[x] == b->in[k];
        }
        if (!same)
            return sm_error(SM_ERR_INTERNAL, "plan: '%s' does not compute what '%s' does (another op, attribute, shape "
                            "or input)", c->name, o->name);
    }
    return SM_OK;
}

sm_status sm_plan_validate(const sm_plan *p, const sm_graph *user)
{
    if (!p || !user) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_validate: NULL plan or graph");
    sm_status s = sm_plan_check_graph(p, user);
    if (s) return s;
    const sm_graph *g = p->g;
    if (p->n_tensors != g->n_t || p->n_steps != g->n_nodes)
        return sm_error(SM_ERR_INTERNAL, "plan: %d tensors and %d steps for a lowered graph of %d tensors and %d nodes",
                        p->n_tensors, p->n_steps, g->n_t, g->n_nodes);
    if (p->n_threads < 1) return sm_error(SM_ERR_INTERNAL, "plan: %d threads", p->n_threads);
    s = check_tensors(p, g);
    if (!s) s = check_steps(p, g);
    if (!s) s = check_overlaps(p, g);
    if (!s) s = check_mutations(p, g);
    if (!s) s = check_recompute(p, g);
    return s;
}
