/* backward.h — what backward rules share: small builders for gradient nodes, and the declaration of
 * every rule (each row points at its rule with `.backward`).
 *
 * A rule (sm_backward_fn, op.h) appends nodes to g, so it must not keep pointers into g->nodes or
 * g->t across a builder call (both arrays may move): copy the node first. */
#ifndef SM_BACKWARD_H
#define SM_BACKWARD_H

#include "op.h"

/* Appends node `op`(in[0..n-1]; attrs or the op's defaults) named "bwd.<op>.<node number>". */
sm_status sm_bwd_op(sm_graph *g, sm_op_kind op, const sm_tensor *in, int n, const sm_attrs *attrs,
                    sm_tensor *out);
/* A view of x with `like`'s shape (x itself when the shapes already match). */
sm_status sm_bwd_reshape_like(sm_graph *g, sm_tensor x, sm_tensor like, sm_tensor *out);
/* A view of x as rows: [numel / cols, cols]. */
sm_status sm_bwd_rows(sm_graph *g, sm_tensor x, int64_t cols, sm_tensor *out);
/* gy summed over its leading dims down to the shape of `like`, which equals gy's trailing dims
 * (gy itself when the shapes match): the adjoint of a broadcast. */
sm_status sm_bwd_sum_to(sm_graph *g, sm_tensor gy, sm_tensor like, sm_tensor *out);
/* True if a and b have the same shape (dims and sizes). */
bool sm_bwd_same_shape(const sm_graph *g, sm_tensor a, sm_tensor b);

/* The rule of every op the op list marks GRAD: its row (ops/<op>.c) sets
 * `.backward = sm_backward_<op>`; the rule lives where the kernels it needs are (often
 * ops/<group>_bwd.c), written as SM_BACKWARD_RULE(<op>) { ... }. */
#define SM_BACKWARD_RULE(op)                                                                          \
    sm_status sm_backward_##op(sm_graph *g, int node, sm_tensor gy, const bool need[SM_MAX_INPUTS], \
                               sm_tensor gx[SM_MAX_INPUTS])
#define RULE_DECLARATION_GRAD(name) SM_BACKWARD_RULE(name);
#define RULE_DECLARATION_NO_GRAD(name)
#define RULE_DECLARATION(KIND, name, grad) RULE_DECLARATION_##grad(name)
SM_OP_LIST(RULE_DECLARATION)
#undef RULE_DECLARATION
#undef RULE_DECLARATION_NO_GRAD
#undef RULE_DECLARATION_GRAD

#endif
