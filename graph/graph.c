/* graph.c — building graphs: leaves, nodes (checked by each op's shape rule), queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/op.h"
#include "../base/error.h"
#include "graph.h"

static const size_t dtype_sizes[SM_DTYPE_COUNT] = {4, 2, 2, 4};
static const char *dtype_names[SM_DTYPE_COUNT] = {"f32", "f16", "bf16", "i32"};
static const char *role_names[SM_ROLE_COUNT] = {"input", "param", "activation", "output",
                                                "grad", "optim", "kv"};

size_t sm_dtype_size(sm_dtype t) { return (unsigned)t < SM_DTYPE_COUNT ? dtype_sizes[t] : 0; }
const char *sm_dtype_name(sm_dtype t) { return (unsigned)t < SM_DTYPE_COUNT ? dtype_names[t] : "?"; }
const char *sm_role_name(sm_role r) { return (unsigned)r < SM_ROLE_COUNT ? role_names[r] : "?"; }

int64_t sm_rec_numel(const sm_tensor_rec *r)
{
    int64_t n = 1;
    for (int i = 0; i < r->ndim; i++) n *= r->ne[i];
    return n;
}

size_t sm_rec_bytes(const sm_tensor_rec *r) { return (size_t)sm_rec_numel(r) * sm_dtype_size(r->dtype); }

const char *sm_shape_str(const sm_tensor_rec *r, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < r->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)r->ne[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

sm_status sm_graph_create(sm_graph **out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_create: out is NULL");
    sm_graph *g = calloc(1, sizeof *g);
    if (!g) return sm_error(SM_ERR_NOMEM, "sm_graph_create: out of memory");
    g->loss = SM_NO_TENSOR;
    g->loss_scale = SM_NO_TENSOR;
    *out = g;
    return SM_OK;
}

void sm_graph_free(sm_graph *g)
{
    if (!g) return;
    free(g->t);
    free(g->nodes);
    sm_name_index_free(&g->names);
    free(g);
}

bool sm_graph_valid(const sm_graph *g, sm_tensor t) { return g && t >= 0 && t < g->n_t; }

static sm_status grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return SM_OK;
    int c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return sm_error(SM_ERR_NOMEM, "graph: out of memory growing to %d entries", c);
    *p = q;
    *cap = c;
    return SM_OK;
}

/* The index's view of the tensors: an id past n_t was dropped by a rollback. */
static const char *tensor_name(const void *owner, int32_t id)
{
    const sm_graph *g = owner;
    return id < g->n_t ? g->t[id].name : NULL;
}

sm_status sm_graph_find(const sm_graph *g, const char *name, sm_tensor *out)
{
    if (!g || !name) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_find: NULL argument");
    int32_t id = sm_name_index_find(&g->names, name, tensor_name, g, NULL);
    if (id < 0) return sm_error(SM_ERR_INVALID_ARG, "no tensor named '%s' in the graph", name);
    if (out) *out = id;
    return SM_OK;
}

/* name must be free: it names no tensor of g yet. */
static sm_status check_name(sm_graph *g, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= SM_NAME_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "tensor name '%s' must be 1 to %d bytes long", name,
                        SM_NAME_MAX - 1);
    if (sm_name_index_find(&g->names, name, tensor_name, g, &g->name_probes) >= 0)
        return sm_error(SM_ERR_INVALID_ARG, "a tensor named '%s' already exists; names are unique", name);
    return SM_OK;
}

sm_status sm_graph_add_tensor(sm_graph *g, const char *name, sm_dtype dtype, sm_role role, int ndim,
                              const int64_t *shape, sm_tensor *out)
{
    if (!g || !name || !out) return sm_error(SM_ERR_INVALID_ARG, "adding a tensor: NULL argument");
    if ((unsigned)dtype >= SM_DTYPE_COUNT)
        return sm_error(SM_ERR_INVALID_ARG, "tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 1 || ndim > SM_MAX_DIMS)
        return sm_error(SM_ERR_SHAPE, "tensor '%s': %d dims; tensors have 1 to %d dims", name, ndim,
                        SM_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (!shape || shape[i] < 1 || shape[i] > ((int64_t)1 << 40))
            return sm_error(SM_ERR_SHAPE, "tensor '%s': dim %d is %lld; every dim must be >= 1", name, i,
                            shape ? (long long)shape[i] : 0LL);
    sm_status s = check_name(g, name);
    if (!s) s = grow((void **)&g->t, &g->cap_t, g->n_t + 1, sizeof *g->t);
    if (!s) s = sm_name_index_add(&g->names, name, g->n_t);
    if (s) return s;
    sm_tensor_rec *r = &g->t[g->n_t];
    memset(r, 0, sizeof *r);
    memcpy(r->name, name, strlen(name) + 1);
    r->ndim = ndim;
    for (int i = 0; i < SM_MAX_DIMS; i++) r->ne[i] = i < ndim ? shape[i] : 1;
    r->dtype = dtype;
    r->role = role;
    r->node = -1;
    r->grad = SM_NO_TENSOR;
    *out = g->n_t++;
    return SM_OK;
}

sm_status sm_graph_input(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape,
                         sm_tensor *out)
{
    return sm_graph_add_tensor(g, name, dtype, SM_ROLE_INPUT, ndim, shape, out);
}

sm_status sm_graph_kv(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape, sm_tensor *out)
{
    return sm_graph_add_tensor(g, name, dtype, SM_ROLE_KV, ndim, shape, out);
}

sm_status sm_graph_param(sm_graph *g, const char *name, sm_dtype dtype, int ndim, const int64_t *shape,
                         sm_init init, float init_std, sm_tensor *out)
{
    if ((unsigned)init > SM_INIT_NORMAL)
        return sm_error(SM_ERR_INVALID_ARG, "parameter '%s': unknown init %d", name ? name : "?", (int)init);
    sm_status s = sm_graph_add_tensor(g, name, dtype, SM_ROLE_PARAM, ndim, shape, out);
    if (s) return s;
    sm_tensor_rec *r = &g->t[*out];
    r->init = init;
    r->init_std = init_std;
    r->trainable = dtype != SM_I32;
    return SM_OK;
}

sm_status sm_graph_op(sm_graph *g, sm_op_kind op, const sm_tensor *inputs, int n_inputs,
                      const sm_attrs *attrs, const char *name, sm_tensor *out)
{
    if (!g || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_op: NULL graph or out");
    if ((unsigned)op >= SM_OP_COUNT) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_op: unknown op %d", (int)op);
    const sm_op_def *d = sm_op_def_get(op);
    char auto_name[SM_NAME_MAX];
    if (!name) {
        snprintf(auto_name, sizeof auto_name, "%s_%d", d->name, g->n_nodes);
        name = auto_name;
    }
    if (n_inputs < d->min_in || n_inputs > d->max_in) {
        if (d->min_in == d->max_in)
            return sm_error(SM_ERR_INVALID_ARG, "node '%s': %s takes %d inputs, got %d", name, d->name,
                            d->min_in, n_inputs);
        return sm_error(SM_ERR_INVALID_ARG, "node '%s': %s takes %d to %d inputs, got %d", name, d->name,
                        d->min_in, d->max_in, n_inputs);
    }
    for (int i = 0; i < n_inputs; i++)
        if (!sm_graph_valid(g, inputs[i]))
            return sm_error(SM_ERR_INVALID_ARG, "node '%s': input %d is not a tensor of this graph", name, i);

    sm_node n = {.op = op, .n_in = n_inputs, .out = g->n_t};
    memcpy(n.in, inputs, (size_t)n_inputs * sizeof *inputs);
    n.attrs = attrs ? *attrs : sm_op_default_attrs(op);

    /* The shape rule sees a scratch record named like the output so its errors name the node. */
    sm_tensor_rec tmp = {.ndim = 1, .ne = {1, 1, 1, 1}, .dtype = SM_F32};
    snprintf(tmp.name, sizeof tmp.name, "%s", name);
    sm_status s = d->shape(g, &n, &tmp);
    if (s) return s;

    sm_tensor t;
    s = sm_graph_add_tensor(g, name, tmp.dtype, SM_ROLE_ACTIVATION, tmp.ndim, tmp.ne, &t);
    if (s) return s;
    s = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes);
    if (s) {
        g->n_t--;
        return s;
    }
    g->t[t].node = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    *out = t;
    return SM_OK;
}

sm_status sm_graph_mark_output(sm_graph *g, sm_tensor t)
{
    if (!sm_graph_valid(g, t)) return sm_error(SM_ERR_INVALID_ARG, "mark_output: not a tensor of this graph");
    g->t[t].is_output = true;
    if (g->t[t].role == SM_ROLE_ACTIVATION) g->t[t].role = SM_ROLE_OUTPUT;
    return SM_OK;
}

sm_status sm_graph_set_loss(sm_graph *g, sm_tensor t)
{
    if (!sm_graph_valid(g, t)) return sm_error(SM_ERR_INVALID_ARG, "set_loss: not a tensor of this graph");
    if (sm_rec_numel(&g->t[t]) != 1 || g->t[t].dtype != SM_F32)
        return sm_error(SM_ERR_SHAPE, "loss '%s' must be a single f32 value", g->t[t].name);
    g->loss = t;
    return sm_graph_mark_output(g, t);
}

sm_status sm_graph_checkpoint(sm_graph *g, sm_tensor t)
{
    if (!sm_graph_valid(g, t)) return sm_error(SM_ERR_INVALID_ARG, "checkpoint: not a tensor of this graph");
    if (g->t[t].node < 0)
        return sm_error(SM_ERR_INVALID_ARG, "checkpoint: '%s' is a leaf (role %s), not computed by a node; only a "
                        "node's output can be a block boundary", g->t[t].name, sm_role_name(g->t[t].role));
    g->t[t].checkpoint = true;
    return SM_OK;
}

sm_status sm_graph_rename(sm_graph *g, sm_tensor t, const char *name)
{
    if (!sm_graph_valid(g, t) || !name) return sm_error(SM_ERR_INVALID_ARG, "rename: not a tensor of this graph");
    sm_status s = check_name(g, name);
    if (!s) s = sm_name_index_add(&g->names, name, t);
    if (s) return s;
    memcpy(g->t[t].name, name, strlen(name) + 1);
    return SM_OK;
}

sm_status sm_graph_clone(const sm_graph *g, sm_graph **out)
{
    if (!g || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_clone: NULL argument");
    sm_graph *c = calloc(1, sizeof *c);
    if (!c) return sm_error(SM_ERR_NOMEM, "copying a graph: out of memory");
    *c = *g;
    sm_status s = sm_name_index_copy(&g->names, &c->names);
    c->t = malloc(sizeof *c->t * (size_t)(g->n_t ? g->n_t : 1));
    c->nodes = malloc(sizeof *c->nodes * (size_t)(g->n_nodes ? g->n_nodes : 1));
    c->cap_t = g->n_t ? g->n_t : 1;
    c->cap_nodes = g->n_nodes ? g->n_nodes : 1;
    if (s || !c->t || !c->nodes) {
        sm_graph_free(c);
        return sm_error(SM_ERR_NOMEM, "copying a graph of %d tensors: out of memory", g->n_t);
    }
    /* An empty graph has NULL arrays: memcpy must not see them even for 0 bytes. */
    if (g->n_t) memcpy(c->t, g->t, sizeof *c->t * (size_t)g->n_t);
    if (g->n_nodes) memcpy(c->nodes, g->nodes, sizeof *c->nodes * (size_t)g->n_nodes);
    *out = c;
    return SM_OK;
}

sm_status sm_graph_set_trainable(sm_graph *g, sm_tensor p, int trainable)
{
    if (!sm_graph_valid(g, p) || g->t[p].role != SM_ROLE_PARAM)
        return sm_error(SM_ERR_INVALID_ARG, "set_trainable: not a parameter of this graph");
    g->t[p].trainable = trainable != 0;
    return SM_OK;
}

int sm_graph_tensor_count(const sm_graph *g) { return g ? g->n_t : 0; }
int sm_graph_node_count(const sm_graph *g) { return g ? g->n_nodes : 0; }
sm_tensor sm_graph_loss(const sm_graph *g) { return g ? g->loss : SM_NO_TENSOR; }

int64_t sm_tensor_numel(const sm_graph *g, sm_tensor t)
{
    return sm_graph_valid(g, t) ? sm_rec_numel(&g->t[t]) : -1;
}

sm_status sm_tensor_info(const sm_graph *g, sm_tensor t, const char **name, sm_dtype *dtype, sm_role *role,
                         int *ndim, int64_t shape[SM_MAX_DIMS])
{
    if (!sm_graph_valid(g, t)) return sm_error(SM_ERR_INVALID_ARG, "tensor id %d is not in this graph", (int)t);
    const sm_tensor_rec *r = &g->t[t];
    if (name) *name = r->name;
    if (dtype) *dtype = r->dtype;
    if (role) *role = r->role;
    if (ndim) *ndim = r->ndim;
    if (shape) memcpy(shape, r->ne, sizeof r->ne);
    return SM_OK;
}
