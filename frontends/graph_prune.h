/* graph_prune.h — copying the part of a graph that some tensors depend on. */
#ifndef SM_GRAPH_PRUNE_H
#define SM_GRAPH_PRUNE_H

#include "smallmind.h"

/* A new graph holding only keep[] and what they depend on (same names, dtypes, shapes, roles, ops and
 * attributes, in the same relative order), with keep[] marked as outputs. It turns a graph file's
 * training model into its inference model: the logits without the targets and the loss. */
sm_status sm_graph_extract(const sm_graph *g, const sm_tensor *keep, int n_keep, sm_graph **out);

#endif
