/* graph_prune.c — the part of a graph some tensors depend on, as a graph of its own. Tensors are
 * copied in id order (inputs before the nodes that read them), so the copy builds through the same
 * checked path as any graph and its weights keep their names (a checkpoint of the whole model loads
 * into it by name). */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_prune.h"

/* need[t]: keep[] and, through the nodes that make them, everything they read */
static sm_status mark_needed(const sm_graph *g, const sm_tensor *keep, int n_keep, bool *need)
{
    sm_tensor *stack = malloc(sizeof *stack * (size_t)(g->n_t + 1));
    if (!stack) return sm_error(SM_ERR_NOMEM, "extracting a subgraph: out of memory");
    int top = 0;
    for (int i = 0; i < n_keep; i++)
        if (!need[keep[i]]) need[keep[i]] = true, stack[top++] = keep[i];
    while (top > 0) {
        const sm_tensor_rec *r = &g->t[stack[--top]];
        if (r->node < 0) continue;
        const sm_node *n = &g->nodes[r->node];
        for (int k = 0; k < n->n_in; k++)
            if (!need[n->in[k]]) need[n->in[k]] = true, stack[top++] = n->in[k];
    }
    free(stack);
    return SM_OK;
}

static sm_status copy_tensor(const sm_graph *g, sm_graph *h, sm_tensor t, const sm_tensor *map, sm_tensor *out)
{
    const sm_tensor_rec *r = &g->t[t];
    sm_status s;
    if (r->node < 0) {
        s = sm_graph_add_tensor(h, r->name, r->dtype, r->role, r->ndim, r->ne, out);
        if (s) return s;
        sm_tensor_rec *c = &h->t[*out];
        c->init = r->init;
        c->init_std = r->init_std;
        c->trainable = r->trainable;
        return SM_OK;
    }
    const sm_node *n = &g->nodes[r->node];
    sm_tensor in[SM_MAX_INPUTS];
    for (int k = 0; k < n->n_in; k++) {
        if (map[n->in[k]] == SM_NO_TENSOR)
            return sm_error(SM_ERR_UNSUPPORTED, "extracting a subgraph: node '%s' reads a tensor made after it",
                            r->name);
        in[k] = map[n->in[k]];
    }
    s = sm_graph_op(h, n->op, in, n->n_in, &n->attrs, r->name, out);
    if (!s) h->t[*out].role = r->role == SM_ROLE_OUTPUT ? SM_ROLE_ACTIVATION : r->role;
    return s;
}

sm_status sm_graph_extract(const sm_graph *g, const sm_tensor *keep, int n_keep, sm_graph **out)
{
    if (!g || !out || (n_keep && !keep)) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_extract: NULL argument");
    *out = NULL;
    for (int i = 0; i < n_keep; i++)
        if (!sm_graph_valid(g, keep[i])) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_extract: bad tensor id");
    bool *need = calloc((size_t)g->n_t + 1, sizeof *need);
    sm_tensor *map = malloc(sizeof *map * ((size_t)g->n_t + 1));
    sm_graph *h = NULL;
    sm_status s = need && map ? mark_needed(g, keep, n_keep, need) : sm_error(SM_ERR_NOMEM, "out of memory");
    if (!s) s = sm_graph_create(&h);
    for (sm_tensor t = 0; !s && t < g->n_t; t++) {
        map[t] = SM_NO_TENSOR;
        if (need[t]) s = copy_tensor(g, h, t, map, &map[t]);
    }
    for (int i = 0; !s && i < n_keep; i++) s = sm_graph_mark_output(h, map[keep[i]]);
    free(need);
    free(map);
    if (s) {
        sm_graph_free(h);
        return s;
    }
    *out = h;
    return SM_OK;
}
