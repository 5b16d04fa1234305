/* graph_symbols.c — the evaluator's symbol table: one namespace for parameters, loop variables and
 * tensors, numbered in the order they are first named and found through a name index (XXH3, open
 * addressing). A loop variable's entry is emptied when its repeat ends; a tensor name, once in the
 * graph, stays taken. */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_eval_impl.h"

const char *const gp_reserved[4] = {"true", "false", "inf", "nan"};

static const char *sym_name(const void *owner, int32_t id) { return ((const gp_ev *)owner)->syms[id]->name; }

static gp_sym *sym_lookup(const gp_ev *E, const char *name)
{
    int32_t id = sm_name_index_find(&E->names, name, sym_name, E, NULL);
    return id < 0 ? NULL : E->syms[id];
}

gp_sym *gp_sym_find(const gp_ev *E, const char *name)
{
    gp_sym *s = sym_lookup(E, name);
    return s && s->kind != GP_SYM_NONE ? s : NULL;
}

/* The entry for name (a new, empty one if absent). */
gp_sym *gp_sym_intern(gp_ev *E, const char *name)
{
    gp_sym *s = sym_lookup(E, name);
    if (s) return s;
    if (E->n_syms == E->cap_syms) {
        int cap = E->cap_syms ? E->cap_syms * 2 : 256;
        gp_sym **syms = realloc(E->syms, (size_t)cap * sizeof *syms);
        if (!syms) return NULL;
        E->syms = syms;
        E->cap_syms = cap;
    }
    s = sm_pool_alloc(&E->c->arena, sizeof *s);
    if (!s || !(s->name = sm_pool_strndup(&E->c->arena, name, strlen(name)))) return NULL;
    if (sm_name_index_add(&E->names, s->name, E->n_syms)) return NULL;
    s->next_suffix = 1;
    E->syms[E->n_syms++] = s;
    return s;
}

const char *gp_sym_what(const gp_sym *s)
{
    return s->kind == GP_SYM_PARAM ? "parameter" : s->kind == GP_SYM_LOOP ? "loop variable" : s->what;
}

sm_status gp_bind_tensor(gp_ev *E, const char *name, sm_tensor t, const char *what, bool leaf, bool graph_name,
                             int line)
{
    gp_sym *s = gp_sym_intern(E, name);
    if (!s) return gp_nomem();
    s->kind = GP_SYM_TENSOR;
    s->t = t;
    s->what = what;
    s->leaf = leaf;
    s->graph_name |= graph_name;
    s->line = line;
    return SM_OK;
}

bool gp_reserved_word(const char *name)
{
    for (size_t i = 0; i < sizeof gp_reserved / sizeof *gp_reserved; i++)
        if (!strcmp(name, gp_reserved[i])) return true;
    for (int i = 0; i < SM_DTYPE_COUNT; i++)
        if (!strcmp(name, sm_dtype_name((sm_dtype)i))) return true;
    return false;
}
