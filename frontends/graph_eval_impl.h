/* graph_eval_impl.h — what the evaluator's files share: the symbol table (parameters, loop variables
 * and tensors share one namespace) and the evaluation of numbers, names, types and options. */
#ifndef SM_GRAPH_EVAL_IMPL_H
#define SM_GRAPH_EVAL_IMPL_H

#include "../graph/name_index.h"
#include "graph_eval.h"

#define GP_MAX_NUMEL ((int64_t)1 << 40)

typedef enum { GP_SYM_NONE = 0, GP_SYM_PARAM, GP_SYM_LOOP, GP_SYM_TENSOR } gp_sym_kind;

typedef struct gp_sym {
    const char *name;
    gp_sym_kind kind;
    gp_val val;           /* GP_SYM_PARAM, GP_SYM_LOOP */
    sm_tensor t;          /* GP_SYM_TENSOR */
    const char *what;     /* "input", "weight", "tensor", "value": for messages */
    bool leaf;            /* declared, not computed: cannot be rebound */
    bool graph_name;      /* a graph tensor carries exactly this name (sticky) */
    int line;             /* where it was declared or last bound */
    int next_suffix;      /* first ".N" to try when this name is bound again */
} gp_sym;

typedef struct gp_ev {
    gp_ctx *c;
    sm_graph *g;
    const gp_define *defs;
    int n_defs;
    int max_tensors;
    int64_t max_steps, steps;
    gp_sym **syms;        /* every symbol ever named, by number; names maps a name to its number */
    int n_syms, cap_syms;
    sm_name_index names;
    bool *explicit_role;  /* per tensor: its role was written out (role=...), keep it when marked */
    int cap_role;
    gp_params *params;
} gp_ev;

/* ---- symbols (graph_symbols.c) ---- */

/* The live symbol called name, or NULL. */
gp_sym *gp_sym_find(const gp_ev *E, const char *name);
/* The entry for name: a new empty one if absent; NULL when out of memory. */
gp_sym *gp_sym_intern(gp_ev *E, const char *name);
/* "parameter", "loop variable", "weight", ... for messages. */
const char *gp_sym_what(const gp_sym *s);
sm_status gp_bind_tensor(gp_ev *E, const char *name, sm_tensor t, const char *what, bool leaf, bool graph_name,
                         int line);
/* true, false, inf, nan; they and the dtype names cannot name parameters. */
extern const char *const gp_reserved[4];
bool gp_reserved_word(const char *name);

/* ---- numbers and names (graph_expr.c) ---- */

/* With dtypes, dtype names are values (for an attribute called dtype). */
sm_status gp_eval_num(gp_ev *E, const gp_expr *e, bool dtypes, gp_val *out);
sm_status gp_eval_int(gp_ev *E, const gp_expr *e, const char *what, int64_t *out);
sm_status gp_eval_float(gp_ev *E, const gp_expr *e, const char *what, float *out);
/* A tensor name with its {expr} pieces evaluated, into buf[SM_NAME_MAX]. */
sm_status gp_eval_tname(gp_ev *E, const gp_name *nm, char *buf);
/* The tensor a name refers to. */
sm_status gp_resolve(gp_ev *E, const gp_name *nm, sm_tensor *out);
/* An error unless name is still free. */
sm_status gp_check_fresh(gp_ev *E, const gp_name *nm, const char *name);

/* ---- types and options (graph_types.c) ---- */

sm_status gp_eval_type(gp_ev *E, const gp_type *ty, sm_dtype *dt, int64_t shape[SM_MAX_DIMS]);
sm_status gp_check_annotation(gp_ev *E, const gp_stmt *st, sm_tensor t);
sm_status gp_match_opts(gp_ev *E, const gp_stmt *st, const char *what, const char *const *keys, int n_keys,
                        const gp_kv *found[]);
sm_status gp_eval_role(gp_ev *E, const gp_kv *kv, sm_role *out);
sm_status gp_eval_init(gp_ev *E, const gp_kv *kv, sm_init *init, float *std);

#endif
