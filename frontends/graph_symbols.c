/* graph_symbols.c — the evaluator's symbol table: one namespace for parameters, loop variables and
 * tensors, open addressing on FNV-1a. A loop variable's entry is emptied when its repeat ends; a
 * tensor name, once in the graph, stays taken. */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_eval_impl.h"

const char *const gp_reserved[4] = {"true", "false", "inf", "nan"};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

gp_sym *gp_sym_find(const gp_ev *E, const char *name)
{
    if (!E->cap) return NULL;
    for (size_t i = hash_str(name) & (E->cap - 1);; i = (i + 1) & (E->cap - 1)) {
        if (!E->tab[i]) return NULL;
        if (strcmp(E->tab[i]->name, name) == 0) return E->tab[i]->kind == GP_SYM_NONE ? NULL : E->tab[i];
    }
}

/* The entry for name (a new, empty one if absent). */
gp_sym *gp_sym_intern(gp_ev *E, const char *name)
{
    if ((E->used + 1) * 2 > E->cap) {
        size_t cap = E->cap ? E->cap * 2 : 256;
        gp_sym **tab = calloc(cap, sizeof *tab);
        if (!tab) return NULL;
        for (size_t j = 0; j < E->cap; j++) {
            if (!E->tab[j]) continue;
            size_t i = hash_str(E->tab[j]->name) & (cap - 1);
            while (tab[i]) i = (i + 1) & (cap - 1);
            tab[i] = E->tab[j];
        }
        free(E->tab);
        E->tab = tab;
        E->cap = cap;
    }
    size_t i = hash_str(name) & (E->cap - 1);
    for (; E->tab[i]; i = (i + 1) & (E->cap - 1))
        if (strcmp(E->tab[i]->name, name) == 0) return E->tab[i];
    gp_sym *s = gp_alloc(&E->c->arena, sizeof *s);
    if (!s || !(s->name = gp_strndup(&E->c->arena, name, strlen(name)))) return NULL;
    s->next_suffix = 1;
    E->tab[i] = s;
    E->used++;
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
