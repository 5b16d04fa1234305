/* order.c — the order pass: a topological execution order of the lowered graph's nodes that keeps
 * the activation peak low.
 *
 * Two orders are built and the one whose peak of live activation bytes is lower is kept (ties keep
 * insertion order, which is how the graph was written and what a person reading a plan expects):
 *   insertion  the order the nodes were added in (always topological: a node names only tensors
 *              that already exist);
 *   greedy     list scheduling: among the nodes whose inputs are ready, run the one that adds the
 *              fewest bytes (its output's bytes minus those of the inputs it is the last reader of),
 *              ties to the earliest inserted. It frees big tensors as soon as their last reader can
 *              run instead of when the writer happened to add it.
 * A node that updates its inputs in place (the optimizer step) also waits for every other reader of
 * the storage it writes. The peak is counted as the lifetimes pass will: an activation is live from
 * its producer's step to its last reader's, views share their source's storage, tensors read between
 * runs hold theirs throughout. Graphs above ORDER_GREEDY_MAX nodes keep insertion order (the greedy
 * scan is quadratic in the number of ready nodes). */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

#define ORDER_GREEDY_MAX 200000

/* The tensor whose storage t uses when t is a view (followed to the end). */
static sm_tensor storage_of(const sm_graph *g, sm_tensor t)
{
    while (g->t[t].node >= 0 && sm_op_def_get(g->nodes[g->t[t].node].op)->is_view) t = g->nodes[g->t[t].node].in[0];
    return t;
}

static bool counted(const sm_graph *g, sm_tensor t)
{
    const sm_tensor_rec *r = &g->t[t];
    return r->node >= 0 && !sm_plan_role_spans_run(r->role) && !r->is_output;
}

/* Peak of live activation bytes over `order` (the quantity both orders are judged by). */
static sm_status order_peak(const sm_graph *g, const int *order, uint64_t *peak)
{
    int n = g->n_nodes;
    int *last = malloc(sizeof *last * (size_t)(g->n_t ? g->n_t : 1));
    int *first = malloc(sizeof *first * (size_t)(g->n_t ? g->n_t : 1));
    int64_t *delta = calloc((size_t)n + 2, sizeof *delta);
    if (!last || !first || !delta) {
        free(last), free(first), free(delta);
        return sm_error(SM_ERR_NOMEM, "ordering: out of memory");
    }
    for (int i = 0; i < g->n_t; i++) last[i] = -1;
    for (int s = 0; s < n; s++) {
        const sm_node *nd = &g->nodes[order[s]];
        sm_tensor o = storage_of(g, nd->out);
        if (last[o] < s) last[o] = s;
        for (int i = 0; i < nd->n_in; i++) {
            sm_tensor r = storage_of(g, nd->in[i]);
            if (last[r] < s) last[r] = s;
        }
    }
    for (int s = 0; s < n; s++) first[g->nodes[order[s]].out] = s;
    for (int i = 0; i < g->n_t; i++) {
        if (!counted(g, i) || storage_of(g, i) != i) continue;
        int64_t b = (int64_t)sm_plan_align(sm_rec_bytes(&g->t[i]));
        delta[first[i]] += b;
        delta[(last[i] > first[i] ? last[i] : first[i]) + 1] -= b;
    }
    int64_t live = 0, best = 0;
    for (int s = 0; s < n; s++) {
        live += delta[s];
        if (live > best) best = live;
    }
    *peak = (uint64_t)best;
    free(first);
    free(last);
    free(delta);
    return SM_OK;
}

/* Greedy list scheduling (see the top). wait[k]: nodes k still waits for; users: the nodes each node
 * unblocks (CSR: users[ustart[k] .. ustart[k+1])); readers[r]: unrun readers of storage r. */
typedef struct sched {
    int *wait, *ustart, *users, *readers, *ready, *writer, *from, *to;
} sched;

static void sched_free(sched *c)
{
    free(c->wait), free(c->ustart), free(c->users), free(c->readers), free(c->ready), free(c->writer);
    free(c->from), free(c->to);
}

/* Edges: producer -> consumer, and every other reader of storage an in-place update writes -> that
 * update. At most two per input. */
static int sched_edges(const sm_graph *g, sched *c)
{
    int n_edges = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const sm_node *nd = &g->nodes[k];
        bool mut = sm_op_def_get(nd->op)->mutates_inputs;
        for (int i = 0; i < nd->n_in; i++) {
            sm_tensor r = storage_of(g, nd->in[i]);
            int p = g->t[nd->in[i]].node, w = c->writer[r];
            if (p >= 0) c->from[n_edges] = p, c->to[n_edges++] = k;
            if (w >= 0 && w != k && !mut) c->from[n_edges] = k, c->to[n_edges++] = w;
            c->readers[r]++;
        }
    }
    return n_edges;
}

static int64_t sched_gain(const sm_graph *g, const sched *c, int k)
{
    const sm_node *nd = &g->nodes[k];
    int64_t gain = counted(g, nd->out) && storage_of(g, nd->out) == nd->out
                       ? (int64_t)sm_plan_align(sm_rec_bytes(&g->t[nd->out])) : 0;
    for (int i = 0; i < nd->n_in; i++) {
        sm_tensor r = storage_of(g, nd->in[i]);
        bool dup = false;
        for (int q = 0; q < i; q++) dup |= storage_of(g, nd->in[q]) == r;
        if (!dup && counted(g, r) && c->readers[r] == 1) gain -= (int64_t)sm_plan_align(sm_rec_bytes(&g->t[r]));
    }
    return gain;
}

static sm_status order_greedy(const sm_graph *g, int *out)
{
    int n = g->n_nodes, nt = g->n_t;
    size_t max_edges = 2 * (size_t)SM_MAX_INPUTS * (size_t)n + 1;
    sched c = {calloc((size_t)n + 1, sizeof(int)), calloc((size_t)n + 2, sizeof(int)), malloc(max_edges * sizeof(int)),
               calloc((size_t)nt + 1, sizeof(int)), malloc(((size_t)n + 1) * sizeof(int)),
               malloc(((size_t)nt + 1) * sizeof(int)), malloc(max_edges * sizeof(int)), malloc(max_edges * sizeof(int))};
    if (!c.wait || !c.ustart || !c.users || !c.readers || !c.ready || !c.writer || !c.from || !c.to) {
        sched_free(&c);
        return sm_error(SM_ERR_NOMEM, "ordering %d nodes: out of memory", n);
    }
    for (int i = 0; i < nt; i++) c.writer[i] = -1;
    for (int k = 0; k < n; k++)
        if (sm_op_def_get(g->nodes[k].op)->mutates_inputs)
            for (int i = 0; i < g->nodes[k].n_in; i++) c.writer[storage_of(g, g->nodes[k].in[i])] = k;
    int n_edges = sched_edges(g, &c);
    for (int e = 0; e < n_edges; e++) c.ustart[c.from[e] + 1]++, c.wait[c.to[e]]++;
    for (int k = 0; k < n; k++) c.ustart[k + 1] += c.ustart[k];
    int *cursor = c.ready;   /* free until the schedule starts */
    memcpy(cursor, c.ustart, sizeof *cursor * (size_t)n);
    for (int e = 0; e < n_edges; e++) c.users[cursor[c.from[e]]++] = c.to[e];
    int n_ready = 0;
    for (int k = 0; k < n; k++)
        if (!c.wait[k]) c.ready[n_ready++] = k;
    sm_status st = SM_OK;
    for (int s = 0; s < n; s++) {
        if (!n_ready) {
            st = sm_error(SM_ERR_INTERNAL, "ordering: the graph has a cycle through its in-place updates");
            break;
        }
        int best = 0;
        int64_t best_gain = sched_gain(g, &c, c.ready[0]);
        for (int j = 1; j < n_ready; j++) {
            int64_t gain = sched_gain(g, &c, c.ready[j]);
            if (gain < best_gain || (gain == best_gain && c.ready[j] < c.ready[best])) best = j, best_gain = gain;
        }
        int k = c.ready[best];
        c.ready[best] = c.ready[--n_ready];
        out[s] = k;
        const sm_node *nd = &g->nodes[k];
        for (int i = 0; i < nd->n_in; i++) c.readers[storage_of(g, nd->in[i])]--;
        for (int e = c.ustart[k]; e < c.ustart[k + 1]; e++)
            if (--c.wait[c.users[e]] == 0) c.ready[n_ready++] = c.users[e];
    }
    sched_free(&c);
    return st;
}

sm_status sm_plan_order(const sm_graph *g, sm_plan *p)
{
    int n = g->n_nodes;
    free(p->order);
    p->order = malloc(sizeof *p->order * (size_t)(n ? n : 1));
    if (!p->order) return sm_error(SM_ERR_NOMEM, "ordering %d nodes: out of memory", n);
    p->n_steps = n;
    for (int k = 0; k < n; k++) p->order[k] = k;
    uint64_t peak_ins = 0, peak_greedy = 0;
    sm_status s = order_peak(g, p->order, &peak_ins);
    if (s) return s;
    const char *kept = "insertion";
    if (n <= ORDER_GREEDY_MAX) {
        int *greedy = malloc(sizeof *greedy * (size_t)(n ? n : 1));
        if (!greedy) return sm_error(SM_ERR_NOMEM, "ordering %d nodes: out of memory", n);
        s = order_greedy(g, greedy);
        if (!s) s = order_peak(g, greedy, &peak_greedy);
        if (!s && peak_greedy < peak_ins) {
            memcpy(p->order, greedy, sizeof *greedy * (size_t)n);
            kept = "greedy";
        }
        free(greedy);
        if (s) return s;
    }
    char a[SM_BYTES_STR_MAX], b[SM_BYTES_STR_MAX];
    sm_plan_log(p, SM_PASS_ORDER, "%d nodes, %s order kept (live activation peak: insertion %s, greedy %s)", n, kept,
                sm_format_bytes(peak_ins, a, sizeof a),
                n <= ORDER_GREEDY_MAX ? sm_format_bytes(peak_greedy, b, sizeof b) : "not tried");
    return SM_OK;
}
