/* graph.h — the graph IR: tensors and nodes, shared by every module below the frontends. */
#ifndef SM_GRAPH_H
#define SM_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "name_index.h"
#include "smallmind.h"

typedef struct sm_tensor_rec {
    char name[SM_NAME_MAX];
    int ndim;
    int64_t ne[SM_MAX_DIMS];   /* shape, outermost first; unused dims are 1 */
    sm_dtype dtype;
    sm_role role;
    int node;                  /* producing node, -1 for leaves */
    sm_init init;              /* parameters only */
    float init_std;
    bool trainable;            /* parameters only: gets a gradient */
    sm_tensor grad;            /* gradient tensor once autodiff has run, else SM_NO_TENSOR */
    bool is_output;            /* kept alive to the end of a run */
    bool checkpoint;           /* marked by hand as a block boundary (sm_graph_checkpoint) */
} sm_tensor_rec;

typedef struct sm_node {
    sm_op_kind op;
    int n_in;
    sm_tensor in[SM_MAX_INPUTS];
    sm_tensor out;
    sm_attrs attrs;
} sm_node;

struct sm_graph {
    sm_tensor_rec *t;
    int n_t, cap_t;
    sm_node *nodes;            /* in insertion order, which is a valid topological order */
    int n_nodes, cap_nodes;
    sm_tensor loss;
    sm_tensor loss_scale;      /* the input the backward's seed is (sm_graph_backward_scaled), else
                                  SM_NO_TENSOR; sm_graph_adamw unscales by it */
    /* Tensor names to ids. Slots of tensors dropped by a rollback (n_t lowered) or renamed stay
     * behind; lookups check the name in t[], so such a slot never matches. */
    sm_name_index names;
    uint64_t name_probes;      /* slots visited by the lookups adding tensors did: O(1) each */
};

/* Element count and storage bytes of a tensor. */
int64_t sm_rec_numel(const sm_tensor_rec *r);
size_t sm_rec_bytes(const sm_tensor_rec *r);
/* "[8, 256, 384]" into buf. */
const char *sm_shape_str(const sm_tensor_rec *r, char *buf, size_t cap);
/* Adds a tensor record; returns its id or SM_NO_TENSOR (with the error set) on failure. */
sm_status sm_graph_add_tensor(sm_graph *g, const char *name, sm_dtype dtype, sm_role role, int ndim,
                              const int64_t *shape, sm_tensor *out);
/* Renames tensor t to name, which must be free (autodiff names a parameter's gradient this way). */
sm_status sm_graph_rename(sm_graph *g, sm_tensor t, const char *name);
/* A deep copy of g (the plan's lowered graph starts as one). */
sm_status sm_graph_clone(const sm_graph *g, sm_graph **out);
/* True if id is a tensor of g. */
bool sm_graph_valid(const sm_graph *g, sm_tensor t);

#endif
