/* precision.c — the precision pass on the lowered graph: which tensors are stored in 16 bits.
 *
 * Under a 16-bit policy (bf16 or fp16) in a training graph, every activation SAVED for the
 * backward (produced by a forward node, read by a backward node: gradients, recompute clones) is
 * stored in the policy's type instead of f32, since saved activations are what fills the activation
 * arena of a training step (they live from the forward to the backward; everything else lives for a
 * node or two):
 *   - a cast to 16 bits is appended right after the tensor's producer; the f32 original then dies at
 *     its last forward reader, and only the 16-bit copy crosses into the backward;
 *   - each backward reader reads the 16-bit copy directly where its op reads 16-bit storage in that
 *     slot (sm_op_def.half_inputs; or it is a view whose readers all do: the view then has the
 *     16-bit type too), else one cast back to f32, placed right before the first such reader and
 *     shared by the others (it lives only across the backward's use of the tensor).
 * What stays f32: parameters (the master weights), optimizer state, gradients, inputs and outputs,
 * and the outputs of ops that keep f32 (statistics, reductions, losses: sm_op_def.keeps_f32), and
 * views of persistent storage (a cast copy there would add bytes, not save them). The forward itself
 * runs as under fp32 (its kernels read the f32 originals), so the loss of a step equals the fp32
 * one; the gradients see each saved activation rounded once to the 16-bit type.
 * An inference graph (no gradients: generation, evaluation with a loss) has no backward, so nothing is
 * saved; there the weights are stored in 16 bits instead (store_weights). Under fp32 the pass changes nothing (bitwise today's results).
 * Casts are appended (ids after the user's and the recompute clones; nothing is renumbered) and
 * named "<source>.<type>" / "<source>.f32". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

/* A unique name "<src>.<suffix>" for a tensor appended to g, else "<suffix>.<id>". */
static void cast_name(const sm_graph *g, sm_tensor src, const char *suffix, char name[SM_NAME_MAX])
{
    int room = SM_NAME_MAX - 2 - (int)strlen(suffix);
    snprintf(name, SM_NAME_MAX, "%.*s.%s", room, g->t[src].name, suffix);
    if ((int)strlen(g->t[src].name) > room || sm_graph_find(g, name, NULL) == SM_OK)
        snprintf(name, SM_NAME_MAX, "%s.%d", suffix, g->n_t);
    sm_error_clear();
}

static sm_status add_cast(sm_graph *g, sm_tensor x, sm_dtype to, const char *suffix, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_CAST);
    at.i[SM_IATTR_CAST_DTYPE] = to;
    char name[SM_NAME_MAX];
    cast_name(g, x, suffix, name);
    sm_status s = sm_graph_op(g, SM_OP_CAST, &x, 1, &at, name, out);
    return s ? sm_error_prefix(s, "precision: casting '%s' to %s: ", g->t[x].name, sm_dtype_name(to)) : SM_OK;
}

/* The tensor whose storage t uses: t itself, or the root of its chain of views. */
static sm_tensor storage_root(const sm_graph *g, sm_tensor t)
{
    while (g->t[t].node >= 0 && sm_op_def_get(g->nodes[g->t[t].node].op)->is_view)
        t = g->nodes[g->t[t].node].in[0];
    return t;
}

static bool is_held(const sm_tensor_rec *t)
{
    return t->node < 0 || sm_plan_role_spans_run(t->role) || t->is_output;
}

/* Per node of g: the loss depends on it (the forward). */
static bool *forward_nodes(const sm_graph *g)
{
    bool *fwd = calloc((size_t)g->n_nodes + 1, sizeof *fwd), *need = calloc((size_t)g->n_t + 1, sizeof *need);
    if (!fwd || !need) {
        free(fwd), free(need);
        return NULL;
    }
    if (g->loss != SM_NO_TENSOR) need[g->loss] = true;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const sm_node *n = &g->nodes[k];
        if (!need[n->out]) continue;
        fwd[k] = true;
        for (int i = 0; i < n->n_in; i++) need[n->in[i]] = true;
    }
    free(need);
    return fwd;
}

/* Rebuilds p->order with the casts: after[k] right after node k, before[k] right before it. Each
 * cast node appears in exactly one list (an index into g->nodes past n_nodes). */
static sm_status splice(sm_plan *p, int n_nodes, const int *after, const int *before)
{
    const sm_graph *g = p->g;
    int total = g->n_nodes;
    int *order = malloc(sizeof *order * (size_t)(total ? total : 1));
    if (!order) return sm_error(SM_ERR_NOMEM, "precision: out of memory");
    int n = 0;
    for (int s = 0; s < p->n_steps; s++) {
        int k = p->order[s];
        for (int c = n_nodes; c < total; c++)
            if (before[c - n_nodes] == k) order[n++] = c;
        order[n++] = k;
        for (int c = n_nodes; c < total; c++)
            if (after[c - n_nodes] == k) order[n++] = c;
    }
    if (n != total) {
        free(order);
        return sm_error(SM_ERR_INTERNAL, "precision: %d of %d casts were not placed", total - n, total - n_nodes);
    }
    free(p->order);
    p->order = order;
    p->n_steps = total;
    return SM_OK;
}

/* Who reads each tensor (node and input slot), over the nodes the pass starts with: built once, so
 * the questions below cost the readers of a tensor, not a sweep of the graph. An entry is checked
 * against the node before use (the pass rewires the reads of the tensors it casts). */
typedef struct readers {
    int n_t;
    int *start;           /* entries of tensor t: start[t] .. start[t+1] */
    int *node, *slot;
} readers;

static void readers_free(readers *r) { free(r->start), free(r->node), free(r->slot); }

static sm_status readers_build(const sm_graph *g, int n_nodes, readers *r)
{
    int n_t = g->n_t, n_e = 0;
    for (int k = 0; k < n_nodes; k++) n_e += g->nodes[k].n_in;
    r->n_t = n_t;
    r->start = calloc((size_t)n_t + 2, sizeof *r->start);
    r->node = malloc(sizeof *r->node * ((size_t)n_e + 1));
    r->slot = malloc(sizeof *r->slot * ((size_t)n_e + 1));
    int *fill = calloc((size_t)n_t + 1, sizeof *fill);
    if (!r->start || !r->node || !r->slot || !fill) {
        free(fill);
        readers_free(r);
        return sm_error(SM_ERR_NOMEM, "precision: out of memory");
    }
    for (int k = 0; k < n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++) r->start[g->nodes[k].in[i] + 1]++;
    for (int t = 0; t < n_t; t++) r->start[t + 1] += r->start[t];
    for (int k = 0; k < n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_in; i++) {
            int t = g->nodes[k].in[i], e = r->start[t] + fill[t]++;
            r->node[e] = k, r->slot[e] = i;
        }
    free(fill);
    return SM_OK;
}

#define FOR_READERS(R, g, t, k, i)                                                                 \
    for (int e_ = (t) < (R)->n_t ? (R)->start[t] : 0, end_ = (t) < (R)->n_t ? (R)->start[(t) + 1] : 0, k, i; \
         e_ < end_ && (k = (R)->node[e_], i = (R)->slot[e_], 1); e_++)                             \
        if ((g)->nodes[k].in[i] == (t))

/* Is u an activation worth storing in 16 bits: f32, made by a forward node whose op may give it
 * 16-bit storage, not persistent (nor a view of persistent storage), read by the backward? */
static bool is_saved(const sm_graph *g, const readers *R, const bool *fwd, int n_nodes, sm_tensor u)
{
    const sm_tensor_rec *r = &g->t[u];
    if (r->dtype != SM_F32 || r->node < 0 || r->node >= n_nodes || !fwd[r->node] || is_held(r) ||
        is_held(&g->t[storage_root(g, u)]) || sm_op_def_get(g->nodes[r->node].op)->keeps_f32)
        return false;
    FOR_READERS(R, g, u, k, i) {
        (void)i;
        if (!fwd[k]) return true;
    }
    return false;
}

static bool readers_half(const sm_graph *g, const readers *R, sm_tensor t);

/* Can slot i of node k read 16-bit storage: its op reads it (half_inputs), or the op is a view (a
 * view has its input's type: reshape, rows) whose output only such slots read. */
static bool slot_half(const sm_graph *g, const readers *R, int k, int i)
{
    const sm_node *n = &g->nodes[k];
    const sm_op_def *d = sm_op_def_get(n->op);
    if (d->half_inputs & (1u << i)) return true;
    return d->is_view && i == 0 && !is_held(&g->t[n->out]) && readers_half(g, R, n->out);
}

static bool readers_half(const sm_graph *g, const readers *R, sm_tensor t)
{
    FOR_READERS(R, g, t, k, i)
        if (!slot_half(g, R, k, i)) return false;
    return true;
}

/* A view that now reads 16-bit storage has that type too, as have the views of it. */
static void retype_views(sm_graph *g, const readers *R, sm_tensor t, sm_dtype half)
{
    g->t[t].dtype = half;
    FOR_READERS(R, g, t, k, i)
        if (i == 0 && sm_op_def_get(g->nodes[k].op)->is_view) retype_views(g, R, g->nodes[k].out, half);
}

/* Casts one saved tensor u: u.<half> after its producer, the backward's reads redirected; the cast
 * back to f32 (if any reader needs one) before the first reader in the order (pos: node -> step). */
static sm_status store_half(sm_plan *p, const readers *R, const bool *fwd, int n_nodes, const int *pos, sm_tensor u,
                            sm_dtype half, int *after, int *before)
{
    sm_graph *g = p->g;
    sm_tensor h, back = SM_NO_TENSOR;
    int producer = g->t[u].node, first = -1;
    FOR_READERS(R, g, u, k, i)
        if (!fwd[k] && !slot_half(g, R, k, i) && (first < 0 || pos[k] < pos[first])) first = k;
    sm_status s = add_cast(g, u, half, sm_dtype_name(half), &h);
    if (s) return s;
    after[g->t[h].node - n_nodes] = producer, before[g->t[h].node - n_nodes] = -1;
    if (first >= 0) {
        if ((s = add_cast(g, h, SM_F32, "f32", &back))) return s;
        before[g->t[back].node - n_nodes] = first, after[g->t[back].node - n_nodes] = -1;
    }
    FOR_READERS(R, g, u, k, i) {
        if (fwd[k]) continue;
        bool half_ok = slot_half(g, R, k, i);
        g->nodes[k].in[i] = half_ok ? h : back;
        if (half_ok && !(sm_op_def_get(g->nodes[k].op)->half_inputs & (1u << i))) retype_views(g, R, g->nodes[k].out, half);
    }
    p->prec.n_cast += 1 + (back != SM_NO_TENSOR);
    p->prec.n_half++;
    return SM_OK;
}

/* Inference: no backward, so nothing is saved; the weights are what fills memory. Every parameter
 * all of whose readers read 16-bit storage (the matmul/linear weights, the embedding table; views of
 * them) is stored in the policy's type; the rest (norm gains, biases: a few per mille of a GPT's
 * parameters) stay f32. The runtime converts at its boundary (sm_runtime_set/get/init_params). */
static sm_status store_weights(sm_plan *p, sm_dtype half)
{
    sm_graph *g = p->g;
    readers R;
    sm_status s = readers_build(g, g->n_nodes, &R);
    if (s) return s;
    uint64_t n_half = 0, n_all = 0;
    for (sm_tensor t = 0; t < g->n_t; t++) {
        sm_tensor_rec *r = &g->t[t];
        if (r->role != SM_ROLE_PARAM || r->dtype != SM_F32) continue;
        n_all += (uint64_t)sm_rec_numel(r);
        if (R.start[t] == R.start[t + 1] || !readers_half(g, &R, t)) continue;   /* unread, or a reader needs f32 */
        retype_views(g, &R, t, half);
        n_half += (uint64_t)sm_rec_numel(r);
        p->prec.n_half++;
    }
    readers_free(&R);
    sm_plan_log(p, SM_PASS_PRECISION, "%s, inference: %d weights stored %s (%.1f%% of the parameters); norm gains, "
                "biases and activations f32", sm_precision_name(p->opts.precision), p->prec.n_half, sm_dtype_name(half),
                n_all ? 100.0 * (double)n_half / (double)n_all : 0.0);
    return SM_OK;
}

sm_status sm_plan_precision_pass(sm_plan *p)
{
    memset(&p->prec, 0, sizeof p->prec);
    p->prec.first_node = INT_MAX;
    sm_precision pol = p->opts.precision;
    sm_dtype half = sm_precision_dtype(pol);
    if (pol == SM_PRECISION_FP32) {
        sm_plan_log(p, SM_PASS_PRECISION, "fp32: every tensor f32");
        return SM_OK;
    }
    sm_graph *g = p->g;
    bool backward = false;   /* a training graph: it has gradients */
    for (int i = 0; i < g->n_t && !backward; i++) backward = g->t[i].role == SM_ROLE_GRAD;
    if (!backward || g->loss == SM_NO_TENSOR) return store_weights(p, half);
    int n_nodes = g->n_nodes, n_t = g->n_t;
    readers R;
    sm_status s = readers_build(g, n_nodes, &R);
    if (s) return s;
    bool *fwd = forward_nodes(g);
    int *pos = malloc(sizeof *pos * ((size_t)n_nodes + 1));
    /* at most two casts per tensor */
    int *after = malloc(sizeof *after * (2 * (size_t)n_t + 1)), *before = malloc(sizeof *before * (2 * (size_t)n_t + 1));
    s = fwd && pos && after && before ? SM_OK : sm_error(SM_ERR_NOMEM, "precision: out of memory");
    for (int i = 0; !s && i < p->n_steps; i++) pos[p->order[i]] = i;
    uint64_t bytes = 0;
    for (sm_tensor u = 0; !s && u < n_t; u++) {
        if (!is_saved(g, &R, fwd, n_nodes, u)) continue;
        bytes += sm_rec_bytes(&g->t[u]);
        s = store_half(p, &R, fwd, n_nodes, pos, u, half, after, before);
    }
    if (!s) s = splice(p, n_nodes, after, before);
    if (!s && p->prec.n_cast) p->prec.first_node = n_nodes;
    /* the casts recompute nothing (p->src covers every tensor of g) */
    sm_tensor *src = s ? NULL : realloc(p->src, sizeof *src * ((size_t)g->n_t + 1));
    if (!s && !src) s = sm_error(SM_ERR_NOMEM, "precision: out of memory");
    if (!s) {
        for (int i = n_t; i < g->n_t; i++) src[i] = SM_NO_TENSOR;
        p->src = src;
    }
    free(fwd), free(pos), free(after), free(before);
    readers_free(&R);
    if (!s)
        sm_plan_log(p, SM_PASS_PRECISION, "%s: %d saved activations stored %s (%.1f MiB as f32 -> %.1f MiB), %d casts "
                    "inserted; weights, gradients, optimizer state and statistics f32", sm_precision_name(pol),
                    p->prec.n_half, sm_dtype_name(half), (double)bytes / 1048576.0, (double)bytes / 2097152.0,
                    p->prec.n_cast);
    return s;
}

sm_status sm_plan_precision(const sm_plan *p, sm_plan_precision_info *out)
{
    if (!p || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_precision: NULL plan or out");
    memset(out, 0, sizeof *out);
    out->policy = p->opts.precision;
    out->n_half = p->prec.n_half;
    out->n_cast = p->prec.n_cast;
    const sm_graph *g = p->g;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        out->n_stored[r->dtype]++;
        if (r->role != SM_ROLE_PARAM) continue;
        out->n_params += (uint64_t)sm_rec_numel(r);
        out->param_bytes += sm_rec_bytes(r);
    }
    if (out->n_params) {
        out->bytes_per_param = (double)out->param_bytes / (double)out->n_params;
        out->state_bytes_per_param = (double)(p->arena[SM_ARENA_PARAMS].size + p->arena[SM_ARENA_GRADS].size +
                                              p->arena[SM_ARENA_OPTIM].size) / (double)out->n_params;
    }
    return SM_OK;
}
