/* graph_hash.c — the identity of a graph's structure: XXH3-64 over every tensor's name, shape,
 * dtype, role and flags and every node's op, inputs, output and attributes, in id order. Parameter
 * initialisation (init rule, std) is left out: it changes values, not structure, so a plan or a
 * checkpoint layout stays valid across it. Each field is fed at a fixed width in little-endian
 * order so the hash is the same on every host. */
#include <string.h>

#include <xxhash.h>

#include "graph.h"

static void put_u64(XXH3_state_t *st, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    XXH3_64bits_update(st, b, sizeof b);
}

static void put_f32(XXH3_state_t *st, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put_u64(st, u);
}

uint64_t sm_graph_hash(const sm_graph *g)
{
    if (!g) return 0;
    XXH3_state_t *st = XXH3_createState();
    if (!st) return 0;
    XXH3_64bits_reset(st);
    static const char tag[] = "smallmind graph v1";
    XXH3_64bits_update(st, tag, sizeof tag);
    put_u64(st, (uint64_t)g->n_t);
    put_u64(st, (uint64_t)g->n_nodes);
    put_u64(st, (uint64_t)(int64_t)g->loss);
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        size_t len = strnlen(r->name, SM_NAME_MAX);
        put_u64(st, len);
        XXH3_64bits_update(st, r->name, len);
        put_u64(st, (uint64_t)r->ndim);
        for (int d = 0; d < SM_MAX_DIMS; d++) put_u64(st, (uint64_t)r->ne[d]);
        put_u64(st, (uint64_t)r->dtype);
        put_u64(st, (uint64_t)r->role);
        put_u64(st, (uint64_t)(int64_t)r->node);
        put_u64(st, (uint64_t)r->trainable | (uint64_t)r->is_output << 1 | (uint64_t)r->checkpoint << 2);
        put_u64(st, (uint64_t)(int64_t)r->grad);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const sm_node *n = &g->nodes[k];
        put_u64(st, (uint64_t)n->op);
        put_u64(st, (uint64_t)n->n_in);
        for (int i = 0; i < n->n_in; i++) put_u64(st, (uint64_t)(int64_t)n->in[i]);
        put_u64(st, (uint64_t)(int64_t)n->out);
        for (int i = 0; i < SM_MAX_IATTRS; i++) put_u64(st, (uint64_t)n->attrs.i[i]);
        for (int i = 0; i < SM_MAX_FATTRS; i++) put_f32(st, n->attrs.f[i]);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}
