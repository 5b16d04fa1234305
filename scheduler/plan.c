/* plan.c — turning a graph into a plan: order, lifetimes, aliases, then offsets by a strategy. */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "../graph/error.h"
#include "../ops/op.h"
#include "plan.h"

static const char *arena_names[SM_ARENA_COUNT] = {"params", "grads", "optim", "activations", "kv", "workspace"};

const char *sm_arena_name(sm_arena_id a) { return (unsigned)a < SM_ARENA_COUNT ? arena_names[a] : "?"; }

sm_arena_id sm_plan_arena_of(sm_role role)
{
    switch (role) {
    case SM_ROLE_PARAM: return SM_ARENA_PARAMS;
    case SM_ROLE_GRAD: return SM_ARENA_GRADS;
    case SM_ROLE_OPTIM: return SM_ARENA_OPTIM;
    case SM_ROLE_KV: return SM_ARENA_KV;
    default: return SM_ARENA_ACT;
    }
}

static uint64_t align_up(uint64_t x) { return (x + SM_PLAN_ALIGN - 1) / SM_PLAN_ALIGN * SM_PLAN_ALIGN; }

static bool persistent(const sm_tensor_rec *r)
{
    return r->role == SM_ROLE_PARAM || r->role == SM_ROLE_OPTIM || r->role == SM_ROLE_KV || r->role == SM_ROLE_GRAD;
}

void sm_plan_options_default(sm_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = SM_PLAN_PACKED;
}

sm_status sm_plan_prepare(const sm_graph *g, const sm_plan_options *o, sm_plan *p)
{
    p->opts = *o;
    p->n_threads = o->n_threads > 0 ? o->n_threads : omp_get_max_threads();
    p->n_steps = g->n_nodes;
    p->n_tensors = g->n_t;
    p->order = malloc(sizeof *p->order * (size_t)(g->n_nodes ? g->n_nodes : 1));
    p->t = calloc((size_t)(g->n_t ? g->n_t : 1), sizeof *p->t);
    if (!p->order || !p->t) return sm_error(SM_ERR_NOMEM, "planning: out of memory");

    /* Order: insertion order is topological (a node only names tensors that already exist). */
    for (int i = 0; i < g->n_nodes; i++) p->order[i] = i;
    int *step_of = malloc(sizeof *step_of * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!step_of) return sm_error(SM_ERR_NOMEM, "planning: out of memory");
    for (int s = 0; s < p->n_steps; s++) step_of[p->order[s]] = s;

    int last_step = p->n_steps ? p->n_steps - 1 : 0;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        sm_plan_tensor *pt = &p->t[i];
        pt->arena = sm_plan_arena_of(r->role);
        pt->bytes = sm_rec_bytes(r);
        pt->alias = SM_NO_TENSOR;
        pt->first = r->node >= 0 ? step_of[r->node] : 0;
        pt->last = persistent(r) || r->is_output ? last_step : pt->first;
    }
    /* Views alias their source (followed to the root); a use of a view is a use of the root. */
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        if (sm_op_def_get(n->op)->is_view) {
            sm_tensor src = n->in[0];
            while (p->t[src].alias != SM_NO_TENSOR) src = p->t[src].alias;
            p->t[n->out].alias = src;
            p->t[n->out].arena = p->t[src].arena;
        }
        for (int i = 0; i < n->n_in; i++) {
            sm_tensor u = n->in[i];
            while (u != SM_NO_TENSOR) {
                if (p->t[u].last < s) p->t[u].last = s;
                u = p->t[u].alias;
            }
        }
    }
    /* A view that outlives its source's uses (an output, say) keeps the source alive. */
    for (int i = 0; i < g->n_t; i++)
        if (p->t[i].alias != SM_NO_TENSOR && p->t[p->t[i].alias].last < p->t[i].last)
            p->t[p->t[i].alias].last = p->t[i].last;
    free(step_of);

    uint64_t work = 0;
    p->flops = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const sm_op_def *d = sm_op_def_get(g->nodes[k].op);
        if (d->workspace) {
            uint64_t w = align_up(d->workspace(g, &g->nodes[k]));
            if (w > work) work = w;
        }
        if (d->flops) p->flops += d->flops(g, &g->nodes[k]);
    }
    p->work_per_thread = work;
    return SM_OK;
}

void sm_plan_assign_naive(const sm_graph *g, sm_plan *p)
{
    uint64_t end[SM_ARENA_COUNT] = {0};
    for (int i = 0; i < g->n_t; i++) {
        sm_plan_tensor *pt = &p->t[i];
        if (pt->alias != SM_NO_TENSOR) continue;
        pt->offset = end[pt->arena];
        end[pt->arena] += align_up(pt->bytes);
    }
    for (int i = 0; i < g->n_t; i++)
        if (p->t[i].alias != SM_NO_TENSOR) p->t[i].offset = p->t[p->t[i].alias].offset;
    end[SM_ARENA_WORK] = p->work_per_thread * (uint64_t)p->n_threads;
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        p->arena[a].size = end[a];
        p->arena[a].naive = end[a];
    }
}

sm_status sm_plan_create(const sm_graph *g, const sm_plan_options *opts, sm_plan **out)
{
    if (!g || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: NULL graph or out");
    sm_plan_options def;
    if (!opts) {
        sm_plan_options_default(&def);
        opts = &def;
    }
    sm_plan *p = calloc(1, sizeof *p);
    if (!p) return sm_error(SM_ERR_NOMEM, "planning: out of memory");
    sm_status s = sm_plan_prepare(g, opts, p);
    if (!s) sm_plan_assign_naive(g, p);
    if (!s && opts->budget && sm_plan_total_bytes(p) > opts->budget)
        s = sm_error(SM_ERR_BUDGET, "the plan needs %llu bytes; the budget is %llu bytes",
                     (unsigned long long)sm_plan_total_bytes(p), (unsigned long long)opts->budget);
    if (s) {
        sm_plan_free(p);
        return s;
    }
    *out = p;
    return SM_OK;
}

void sm_plan_free(sm_plan *p)
{
    if (!p) return;
    free(p->order);
    free(p->t);
    free(p);
}

uint64_t sm_plan_total_bytes(const sm_plan *p)
{
    uint64_t s = 0;
    for (int a = 0; p && a < SM_ARENA_COUNT; a++) s += p->arena[a].size;
    return s;
}

double sm_plan_flops(const sm_plan *p) { return p ? p->flops : 0; }
