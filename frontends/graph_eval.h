/* graph_eval.h — instantiating a parsed graph file into an sm_graph (graph_eval.c). */
#ifndef SM_GRAPH_EVAL_H
#define SM_GRAPH_EVAL_H

#include "graph_syntax.h"

/* A number in a graph file: integers stay exact (overflow is an error); a float anywhere makes the
 * result a float. */
typedef struct gp_val {
    bool is_float;
    int64_t i;
    double f;
} gp_val;

/* A -D KEY=VALUE define; soft ones apply only where the file declares KEY. */
typedef struct gp_define {
    const char *key;
    gp_pos pos;
    gp_expr *value;
    bool soft;
} gp_define;

typedef struct gp_param {
    const char *name;
    gp_val val;
} gp_param;

typedef struct gp_params {
    gp_param *v;
    int n, cap;
} gp_params;

/* Runs the file's statements, adding tensors and nodes to g. Values of the parameters go to params
 * (arena memory). */
sm_status gp_eval(gp_ctx *c, const gp_file *f, const gp_define *defs, int n_defs, int max_tensors, int64_t max_steps,
                  sm_graph *g, gp_params *params);

#endif
