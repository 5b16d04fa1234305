/* graph_eval.c — instantiating a parsed graph file: parameters and defines are evaluated, repeats
 * are expanded, and every statement becomes a graph leaf or node through the public builder. Ops and
 * their attributes are found by name in the op table, so an op added to the table is usable here with
 * no change. Every error points at the statement (and repeat iteration) that caused it. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../graph/error.h"
#include "../graph/graph.h"
#include "graph_eval.h"

#define MAX_NUMEL ((int64_t)1 << 40)

/* ---- symbols: parameters, loop variables and tensors share one namespace ---- */

typedef enum { SYM_NONE = 0, SYM_PARAM, SYM_LOOP, SYM_TENSOR } sym_kind;

typedef struct sym {
    const char *name;
    sym_kind kind;
    gp_val val;           /* SYM_PARAM, SYM_LOOP */
    sm_tensor t;          /* SYM_TENSOR */
    const char *what;     /* "input", "weight", "tensor", "value": for messages */
    bool leaf;            /* declared, not computed: cannot be rebound */
    bool graph_name;      /* a graph tensor carries exactly this name (sticky) */
    int line;             /* where it was declared or last bound */
    int next_suffix;      /* first ".N" to try when this name is bound again */
} sym;

typedef struct {
    gp_ctx *c;
    sm_graph *g;
    const gp_define *defs;
    int n_defs;
    int max_tensors;
    int64_t max_steps, steps;
    sym **tab;            /* open addressing, power-of-two capacity */
    size_t cap, used;
    bool *explicit_role;  /* per tensor: its role was written out (role=...), keep it when marked */
    int cap_role;
    gp_params *params;
} ev;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static sym *find(const ev *E, const char *name)
{
    if (!E->cap) return NULL;
    for (size_t i = hash_str(name) & (E->cap - 1);; i = (i + 1) & (E->cap - 1)) {
        if (!E->tab[i]) return NULL;
        if (strcmp(E->tab[i]->name, name) == 0) return E->tab[i]->kind == SYM_NONE ? NULL : E->tab[i];
    }
}

/* The entry for name (a new, empty one if absent). */
static sym *intern(ev *E, const char *name)
{
    if ((E->used + 1) * 2 > E->cap) {
        size_t cap = E->cap ? E->cap * 2 : 256;
        sym **tab = calloc(cap, sizeof *tab);
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
    sym *s = gp_alloc(&E->c->arena, sizeof *s);
    if (!s || !(s->name = gp_strndup(&E->c->arena, name, strlen(name)))) return NULL;
    s->next_suffix = 1;
    E->tab[i] = s;
    E->used++;
    return s;
}

static const char *kind_name(const sym *s)
{
    return s->kind == SYM_PARAM ? "parameter" : s->kind == SYM_LOOP ? "loop variable" : s->what;
}

/* ---- numbers ---- */

static const char *const reserved[] = {"true", "false", "inf", "nan"};
static const char *const functions[] = {"sqrt", "min", "max"};

static sm_status num_error(ev *E, gp_pos at, const char *what)
{
    return gp_error(E->c, at, SM_ERR_FORMAT, "%s", what);
}

static sm_status eval(ev *E, const gp_expr *e, bool dtypes, gp_val *out);

static sm_status unknown_number_name(ev *E, const gp_expr *e, bool dtypes)
{
    const sym *s = find(E, e->name);
    if (s) /* a tensor */
        return gp_error(E->c, e->pos, SM_ERR_FORMAT,
                        "'%s' is a tensor; numbers use parameters and loop variables only", e->name);
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, e->name);
    for (size_t i = 0; i < E->cap; i++)
        if (E->tab[i] && (E->tab[i]->kind == SYM_PARAM || E->tab[i]->kind == SYM_LOOP))
            gp_suggest_add(&sg, E->tab[i]->name);
    for (int i = 0; dtypes && i < SM_DTYPE_COUNT; i++) gp_suggest_add(&sg, sm_dtype_name((sm_dtype)i));
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) gp_suggest_add(&sg, reserved[i]);
    return gp_error(E->c, e->pos, SM_ERR_FORMAT, "unknown parameter '%s'%s", e->name,
                    gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status eval_name(ev *E, const gp_expr *e, bool dtypes, gp_val *out)
{
    const sym *s = find(E, e->name);
    if (s && (s->kind == SYM_PARAM || s->kind == SYM_LOOP)) {
        *out = s->val;
        return SM_OK;
    }
    if (!s) {
        if (!strcmp(e->name, "true") || !strcmp(e->name, "false")) {
            *out = (gp_val){.i = e->name[0] == 't'};
            return SM_OK;
        }
        if (!strcmp(e->name, "inf") || !strcmp(e->name, "nan")) {
            *out = (gp_val){.is_float = true, .f = e->name[0] == 'i' ? INFINITY : NAN};
            return SM_OK;
        }
        for (int i = 0; i < SM_DTYPE_COUNT; i++)
            if (!strcmp(e->name, sm_dtype_name((sm_dtype)i))) {
                if (!dtypes)
                    return gp_error(E->c, e->pos, SM_ERR_FORMAT,
                                    "'%s' is a dtype; dtype names are values of a 'dtype' attribute only", e->name);
                *out = (gp_val){.i = i};
                return SM_OK;
            }
    }
    return unknown_number_name(E, e, dtypes);
}

static sm_status eval_call(ev *E, const gp_expr *e, gp_val *out)
{
    int want = !strcmp(e->name, "sqrt") ? 1 : (!strcmp(e->name, "min") || !strcmp(e->name, "max")) ? 2 : -1;
    if (want < 0) {
        gp_suggest sg;
        char hint[SM_NAME_MAX + 32];
        gp_suggest_init(&sg, e->name);
        for (size_t i = 0; i < sizeof functions / sizeof *functions; i++) gp_suggest_add(&sg, functions[i]);
        return gp_error(E->c, e->pos, SM_ERR_FORMAT, "unknown function '%s'%s (numbers have sqrt, min and max)",
                        e->name, gp_suggest_text(&sg, hint, sizeof hint));
    }
    if (e->n_args != want)
        return gp_error(E->c, e->pos, SM_ERR_FORMAT, "%s takes %d argument%s, got %d", e->name, want,
                        want == 1 ? "" : "s", e->n_args);
    gp_val a, b = {0};
    sm_status s = eval(E, e->args[0], false, &a);
    if (!s && want == 2) s = eval(E, e->args[1], false, &b);
    if (s) return s;
    if (want == 1) {
        double x = a.is_float ? a.f : (double)a.i;
        if (x < 0) return num_error(E, e->pos, "sqrt of a negative number");
        *out = (gp_val){.is_float = true, .f = sqrt(x)};
        return SM_OK;
    }
    bool mx = e->name[1] == 'a';
    if (!a.is_float && !b.is_float) {
        *out = (gp_val){.i = (mx ? a.i > b.i : a.i < b.i) ? a.i : b.i};
    } else {
        double x = a.is_float ? a.f : (double)a.i, y = b.is_float ? b.f : (double)b.i;
        *out = (gp_val){.is_float = true, .f = (mx ? x > y : x < y) ? x : y};
    }
    return SM_OK;
}

static sm_status eval_bin(ev *E, const gp_expr *e, gp_val a, gp_val b, gp_val *out)
{
    if (!a.is_float && !b.is_float) {
        int64_t r = 0;
        bool bad = false;
        switch (e->op) {
        case '+': bad = __builtin_add_overflow(a.i, b.i, &r); break;
        case '-': bad = __builtin_sub_overflow(a.i, b.i, &r); break;
        case '*': bad = __builtin_mul_overflow(a.i, b.i, &r); break;
        default:
            if (b.i == 0) return num_error(E, e->pos, "division by zero");
            if (a.i == INT64_MIN && b.i == -1) bad = true;
            else r = e->op == '/' ? a.i / b.i : a.i % b.i;
        }
        if (bad) return num_error(E, e->pos, "integer overflow");
        *out = (gp_val){.i = r};
        return SM_OK;
    }
    if (e->op == '%') return num_error(E, e->pos, "'%' needs integers");
    double x = a.is_float ? a.f : (double)a.i, y = b.is_float ? b.f : (double)b.i;
    if (e->op == '/' && y == 0) return num_error(E, e->pos, "division by zero");
    double r = e->op == '+' ? x + y : e->op == '-' ? x - y : e->op == '*' ? x * y : x / y;
    *out = (gp_val){.is_float = true, .f = r};
    return SM_OK;
}

static sm_status eval(ev *E, const gp_expr *e, bool dtypes, gp_val *out)
{
    gp_val a, b;
    sm_status s;
    switch (e->kind) {
    case GE_INT: *out = (gp_val){.i = e->i}; return SM_OK;
    case GE_FLOAT: *out = (gp_val){.is_float = true, .f = e->f}; return SM_OK;
    case GE_NAME: return eval_name(E, e, dtypes, out);
    case GE_CALL: return eval_call(E, e, out);
    case GE_NEG:
        if ((s = eval(E, e->a, false, &a))) return s;
        if (!a.is_float && a.i == INT64_MIN) return num_error(E, e->pos, "integer overflow");
        *out = a.is_float ? (gp_val){.is_float = true, .f = -a.f} : (gp_val){.i = -a.i};
        return SM_OK;
    case GE_BIN:
        if ((s = eval(E, e->a, false, &a)) || (s = eval(E, e->b, false, &b))) return s;
        return eval_bin(E, e, a, b, out);
    }
    return sm_error(SM_ERR_INTERNAL, "graph file: bad expression kind %d", (int)e->kind);
}

static sm_status eval_int(ev *E, const gp_expr *e, const char *what, int64_t *out)
{
    gp_val v;
    sm_status s = eval(E, e, false, &v);
    if (s) return s;
    if (v.is_float) return gp_error(E->c, e->pos, SM_ERR_FORMAT, "%s must be an integer, got %g", what, v.f);
    *out = v.i;
    return SM_OK;
}

/* A float attribute or init std: any number that fits a float. */
static sm_status eval_float(ev *E, const gp_expr *e, const char *what, float *out)
{
    gp_val v;
    sm_status s = eval(E, e, false, &v);
    if (s) return s;
    double x = v.is_float ? v.f : (double)v.i;
    /* a float literal may be a little above FLT_MAX and still round to it (FLT_MAX prints as
     * 3.4028235e+38); only what rounds to infinity, from halfway to 2^128 on, does not fit */
    if (isfinite(x) && fabs(x) >= 0x1.ffffffp+127)
        return gp_error(E->c, e->pos, SM_ERR_FORMAT, "%s %g does not fit a float", what, x);
    *out = (float)x;
    return SM_OK;
}

/* ---- names ---- */

/* Evaluates a tensor name (literal pieces and {expr} pieces) into buf[SM_NAME_MAX]. */
static sm_status eval_tname(ev *E, const gp_name *nm, char *buf)
{
    size_t n = 0;
    for (int i = 0; i < nm->n_parts; i++) {
        const gp_name_part *p = &nm->parts[i];
        char num[24];
        const char *piece = p->lit;
        size_t len = p->len;
        if (p->expr) {
            int64_t v = 0;
            sm_status s = eval_int(E, p->expr, "a {} piece of a name", &v);
            if (s) return s;
            len = (size_t)snprintf(num, sizeof num, "%lld", (long long)v);
            piece = num;
        }
        if (n + len >= SM_NAME_MAX)
            return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "name is longer than %d bytes", SM_NAME_MAX - 1);
        memcpy(buf + n, piece, len);
        n += len;
    }
    buf[n] = '\0';
    if (n == 0) return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "empty name");
    return SM_OK;
}

/* The tensor a name refers to. */
static sm_status resolve(ev *E, const gp_name *nm, sm_tensor *out)
{
    char name[SM_NAME_MAX];
    sm_status s = eval_tname(E, nm, name);
    if (s) return s;
    const sym *sy = find(E, name);
    if (sy && sy->kind == SYM_TENSOR) {
        *out = sy->t;
        return SM_OK;
    }
    if (sy)
        return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "'%s' is a %s, not a tensor", name, kind_name(sy));
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, name);
    for (size_t i = 0; i < E->cap; i++)
        if (E->tab[i] && E->tab[i]->kind == SYM_TENSOR) gp_suggest_add(&sg, E->tab[i]->name);
    return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "unknown tensor '%s'%s", name, gp_suggest_text(&sg, hint, sizeof hint));
}

/* A name that a declaration may take: not bound to anything yet. */
static sm_status check_fresh(ev *E, const gp_name *nm, const char *name)
{
    const sym *s = find(E, name);
    if (!s) return SM_OK;
    return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "'%s' is already declared (the %s at line %d)", name, kind_name(s),
                    s->line);
}

/* ---- types ---- */

static sm_status eval_dtype(ev *E, const gp_type *ty, sm_dtype *out)
{
    for (int i = 0; i < SM_DTYPE_COUNT; i++)
        if (!strcmp(ty->dtype, sm_dtype_name((sm_dtype)i))) {
            *out = (sm_dtype)i;
            return SM_OK;
        }
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, ty->dtype);
    for (int i = 0; i < SM_DTYPE_COUNT; i++) gp_suggest_add(&sg, sm_dtype_name((sm_dtype)i));
    return gp_error(E->c, ty->pos, SM_ERR_FORMAT, "unknown dtype '%s'%s", ty->dtype, gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status eval_type(ev *E, const gp_type *ty, sm_dtype *dt, int64_t shape[SM_MAX_DIMS])
{
    sm_status s = eval_dtype(E, ty, dt);
    int64_t numel = 1;
    for (int i = 0; !s && i < ty->ndim; i++) {
        if ((s = eval_int(E, ty->dims[i], "a dim", &shape[i]))) return s;
        if (shape[i] < 1)
            return gp_error(E->c, ty->dims[i]->pos, SM_ERR_SHAPE, "dim %d is %lld; dims must be >= 1", i,
                            (long long)shape[i]);
        if (__builtin_mul_overflow(numel, shape[i], &numel) || numel > MAX_NUMEL)
            return gp_error(E->c, ty->dims[i]->pos, SM_ERR_SHAPE, "the shape has more than 2^40 elements");
    }
    return s;
}

static void type_str(sm_dtype dt, int ndim, const int64_t *ne, char *buf, size_t cap)
{
    sm_tensor_rec r = {.ndim = ndim, .dtype = dt};
    memcpy(r.ne, ne, sizeof r.ne);
    char sh[96];
    snprintf(buf, cap, "%s%s", sm_dtype_name(dt), sm_shape_str(&r, sh, sizeof sh));
}

/* A "x: f32[B, T] = ..." annotation is a check of what the op computed. */
static sm_status check_annotation(ev *E, const gp_stmt *st, sm_tensor t)
{
    if (!st->has_type) return SM_OK;
    sm_dtype dt;
    int64_t shape[SM_MAX_DIMS] = {1, 1, 1, 1};
    sm_status s = eval_type(E, &st->type, &dt, shape);
    if (s) return s;
    const sm_tensor_rec *r = &E->g->t[t];
    bool same = dt == r->dtype && st->type.ndim == r->ndim;
    for (int i = 0; same && i < r->ndim; i++) same = shape[i] == r->ne[i];
    if (same) return SM_OK;
    char want[128], got[128];
    type_str(dt, st->type.ndim, shape, want, sizeof want);
    type_str(r->dtype, r->ndim, r->ne, got, sizeof got);
    return gp_error(E->c, st->type.pos, SM_ERR_SHAPE, "'%s' is %s, not %s as annotated", r->name, got, want);
}

/* ---- options after declarations and calls ---- */

/* Finds each option's slot among the allowed keys (did-you-mean on unknown keys, error on repeats). */
static sm_status match_opts(ev *E, const gp_stmt *st, const char *what, const char *const *keys, int n_keys,
                            const gp_kv *found[])
{
    for (int k = 0; k < n_keys; k++) found[k] = NULL;
    for (int i = 0; i < st->n_opts; i++) {
        const gp_kv *kv = &st->opts[i];
        int k = 0;
        while (k < n_keys && strcmp(keys[k], kv->key)) k++;
        if (k == n_keys) {
            if (!n_keys) return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "%s takes no options", what);
            gp_suggest sg;
            char hint[SM_NAME_MAX + 32], list[128] = "";
            gp_suggest_init(&sg, kv->key);
            size_t n = 0;
            for (int j = 0; j < n_keys; j++) {
                gp_suggest_add(&sg, keys[j]);
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", j ? ", " : "", keys[j]);
            }
            if (sg.best)
                return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "%s has no option '%s'%s", what, kv->key,
                                gp_suggest_text(&sg, hint, sizeof hint));
            return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "%s has no option '%s' (it takes: %s)", what, kv->key, list);
        }
        if (found[k]) return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "option '%s' is given twice", kv->key);
        found[k] = kv;
    }
    return SM_OK;
}

static sm_status eval_role(ev *E, const gp_kv *kv, sm_role *out)
{
    const char *w = kv->val->kind == GE_NAME ? kv->val->name : "";
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, w);
    for (int i = 0; i < SM_ROLE_COUNT; i++) {
        if (!strcmp(w, sm_role_name((sm_role)i))) {
            *out = (sm_role)i;
            return SM_OK;
        }
        gp_suggest_add(&sg, sm_role_name((sm_role)i));
    }
    return gp_error(E->c, kv->val->pos, SM_ERR_FORMAT,
                    "unknown role '%s'%s (roles: input, param, activation, output, grad, optim, kv)", w,
                    gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status eval_init(ev *E, const gp_kv *kv, sm_init *init, float *std)
{
    const gp_expr *v = kv->val;
    static const char *const inits[] = {"zeros", "ones", "normal"};
    const char *w = v->kind == GE_NAME || v->kind == GE_CALL ? v->name : "";
    *std = 0;
    if (v->kind == GE_NAME && (!strcmp(w, "zeros") || !strcmp(w, "ones"))) {
        *init = w[0] == 'z' ? SM_INIT_ZEROS : SM_INIT_ONES;
        return SM_OK;
    }
    if (v->kind == GE_CALL && !strcmp(w, "normal")) {
        if (v->n_args != 1)
            return gp_error(E->c, v->pos, SM_ERR_FORMAT, "normal takes one argument, the standard deviation");
        *init = SM_INIT_NORMAL;
        sm_status s = eval_float(E, v->args[0], "the standard deviation", std);
        if (!s && !(*std >= 0) ) return gp_error(E->c, v->args[0]->pos, SM_ERR_FORMAT, "the standard deviation must be >= 0");
        return s;
    }
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, w);
    for (int i = 0; i < 3; i++) gp_suggest_add(&sg, inits[i]);
    return gp_error(E->c, v->pos, SM_ERR_FORMAT, "unknown init '%s'%s (inits: zeros, ones, normal(std))", w,
                    gp_suggest_text(&sg, hint, sizeof hint));
}

/* ---- statements ---- */

static sm_status room_for_tensor(ev *E, gp_pos at)
{
    if (E->g->n_t < E->max_tensors) return SM_OK;
    return gp_error(E->c, at, SM_ERR_FORMAT, "the graph would have more than %d tensors (a runaway repeat?)", E->max_tensors);
}

static sm_status note_tensor(ev *E, sm_tensor t, bool explicit_role)
{
    if (t >= E->cap_role) {
        int cap = E->cap_role ? E->cap_role * 2 : 256;
        while (cap <= t) cap *= 2;
        bool *nr = realloc(E->explicit_role, (size_t)cap * sizeof *nr);
        if (!nr) return gp_nomem();
        memset(nr + E->cap_role, 0, (size_t)(cap - E->cap_role) * sizeof *nr);
        E->explicit_role = nr;
        E->cap_role = cap;
    }
    E->explicit_role[t] = explicit_role;
    return SM_OK;
}

static sm_status bind_tensor(ev *E, const char *name, sm_tensor t, const char *what, bool leaf, bool graph_name,
                             int line)
{
    sym *s = intern(E, name);
    if (!s) return gp_nomem();
    s->kind = SYM_TENSOR;
    s->t = t;
    s->what = what;
    s->leaf = leaf;
    s->graph_name |= graph_name;
    s->line = line;
    return SM_OK;
}

/* Errors of the C builder become diagnostics at the statement that called it. */
static sm_status wrap(ev *E, gp_pos at, sm_status s)
{
    if (!s) return s;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", sm_last_error());
    return gp_error(E->c, at, s, "%s", msg);
}

static sm_status exec_decl(ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX];
    sm_dtype dt;
    int64_t shape[SM_MAX_DIMS] = {1, 1, 1, 1};
    sm_status s = eval_tname(E, &st->lhs, name);
    if (!s) s = check_fresh(E, &st->lhs, name);
    if (!s) s = eval_type(E, &st->type, &dt, shape);
    if (!s) s = room_for_tensor(E, st->pos);
    if (s) return s;
    sm_tensor t = SM_NO_TENSOR;
    const gp_kv *opt[2];
    const char *what = st->kind == GS_INPUT ? "input" : st->kind == GS_WEIGHT ? "weight" : "tensor";
    if (st->kind == GS_INPUT) {
        if ((s = match_opts(E, st, "an input", NULL, 0, opt))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_input(E->g, name, dt, st->type.ndim, shape, &t));
    } else if (st->kind == GS_WEIGHT) {
        static const char *const keys[] = {"init", "trainable"};
        sm_init init = SM_INIT_NORMAL;
        float std = 0.02f;
        int64_t trainable = dt != SM_I32;
        if ((s = match_opts(E, st, "a weight", keys, 2, opt))) return s;
        if (opt[0] && (s = eval_init(E, opt[0], &init, &std))) return s;
        if (opt[1] && (s = eval_int(E, opt[1]->val, "trainable", &trainable))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_param(E->g, name, dt, st->type.ndim, shape, init, std, &t));
        if (!s) E->g->t[t].trainable = trainable != 0;
    } else {
        static const char *const keys[] = {"role"};
        sm_role role = SM_ROLE_ACTIVATION;
        if ((s = match_opts(E, st, "a tensor", keys, 1, opt))) return s;
        if (!opt[0])
            return gp_error(E->c, st->pos, SM_ERR_FORMAT, "a tensor declaration needs role=..., like role=optim");
        if ((s = eval_role(E, opt[0], &role))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_add_tensor(E->g, name, dt, role, st->type.ndim, shape, &t));
    }
    if (!s) s = note_tensor(E, t, st->kind == GS_TENSOR);
    if (!s) s = bind_tensor(E, name, t, what, true, true, st->pos.line);
    return s;
}

/* The graph name for a value bound to `name`: the name itself the first time, then name.1, name.2, ...
 * so that a value rebound in every iteration of a repeat (x = add(x, a)) gets a new tensor each time. */
static sm_status value_name(ev *E, const gp_stmt *st, const char *name, char *gname)
{
    sym *s = find(E, name);
    if (s && (s->kind != SYM_TENSOR || s->leaf))
        return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' is the %s declared at line %d; it cannot be rebound",
                        name, kind_name(s), s->line);
    if (!s || !s->graph_name) {
        snprintf(gname, SM_NAME_MAX, "%s", name);
        return SM_OK;
    }
    for (;; s->next_suffix++) {
        int n = snprintf(gname, SM_NAME_MAX, "%s.%d", name, s->next_suffix);
        if (n < 0 || n >= SM_NAME_MAX)
            return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' rebound: '%s.%d' is longer than %d bytes", name,
                            name, s->next_suffix, SM_NAME_MAX - 1);
        if (!find(E, gname)) return SM_OK;
    }
}

/* key=value attributes of a call, by the names the op table gives its slots. */
static sm_status eval_attrs(ev *E, const gp_stmt *st, sm_op_kind op, sm_attrs *at)
{
    const gp_kv *seen[SM_MAX_IATTRS + SM_MAX_FATTRS] = {0};
    *at = sm_op_default_attrs(op);
    for (int a = 0; a < st->n_attrs; a++) {
        const gp_kv *kv = &st->attrs[a];
        int slot = -1;
        for (int k = 0; slot < 0 && k < SM_MAX_IATTRS + SM_MAX_FATTRS; k++) {
            const char *nm = k < SM_MAX_IATTRS ? sm_op_iattr_name(op, k) : sm_op_fattr_name(op, k - SM_MAX_IATTRS);
            if (nm && !strcmp(nm, kv->key)) slot = k;
        }
        if (slot < 0) {
            gp_suggest sg;
            char hint[SM_NAME_MAX + 32], list[256] = "";
            size_t n = 0;
            gp_suggest_init(&sg, kv->key);
            for (int k = 0; k < SM_MAX_IATTRS + SM_MAX_FATTRS; k++) {
                const char *nm = k < SM_MAX_IATTRS ? sm_op_iattr_name(op, k) : sm_op_fattr_name(op, k - SM_MAX_IATTRS);
                if (!nm) continue;
                gp_suggest_add(&sg, nm);
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", nm);
            }
            if (!n) return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "op '%s' takes no attributes", sm_op_name(op));
            if (sg.best)
                return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "op '%s' has no attribute '%s'%s", sm_op_name(op), kv->key,
                                gp_suggest_text(&sg, hint, sizeof hint));
            return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "op '%s' has no attribute '%s' (it takes: %s)",
                            sm_op_name(op), kv->key, list);
        }
        if (seen[slot]) return gp_error(E->c, kv->pos, SM_ERR_FORMAT, "attribute '%s' is given twice", kv->key);
        seen[slot] = kv;
        sm_status s;
        if (slot < SM_MAX_IATTRS) {
            gp_val v;
            bool dtypes = !strcmp(kv->key, "dtype") || !strcmp(kv->key, "to");
            if ((s = eval(E, kv->val, dtypes, &v))) return s;
            if (v.is_float)
                return gp_error(E->c, kv->val->pos, SM_ERR_FORMAT, "attribute '%s' of op '%s' is an integer, got %g",
                                kv->key, sm_op_name(op), v.f);
            at->i[slot] = v.i;
        } else if ((s = eval_float(E, kv->val, "attribute value", &at->f[slot - SM_MAX_IATTRS]))) {
            return s;
        }
    }
    return SM_OK;
}

static sm_status unknown_op(ev *E, const gp_stmt *st)
{
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, st->op);
    for (int k = 0; k < SM_OP_COUNT; k++) gp_suggest_add(&sg, sm_op_name((sm_op_kind)k));
    return gp_error(E->c, st->op_pos, SM_ERR_FORMAT, "unknown op '%s'%s", st->op, gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status exec_value(ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX], gname[SM_NAME_MAX];
    sm_op_kind op;
    sm_tensor in[SM_MAX_INPUTS], t;
    sm_attrs at;
    if (sm_op_lookup(st->op, &op)) return unknown_op(E, st);
    if (st->n_args > SM_MAX_INPUTS)
        return gp_error(E->c, st->args[SM_MAX_INPUTS].pos, SM_ERR_FORMAT, "more than %d tensor arguments",
                        SM_MAX_INPUTS);
    sm_status s = eval_tname(E, &st->lhs, name);
    for (int i = 0; !s && i < st->n_args; i++) s = resolve(E, &st->args[i], &in[i]);
    if (!s) s = eval_attrs(E, st, op, &at);
    if (!s) s = value_name(E, st, name, gname);
    if (!s) s = room_for_tensor(E, st->pos);
    if (s) return s;
    if ((s = wrap(E, st->op_pos, sm_graph_op(E->g, op, in, st->n_args, &at, gname, &t)))) return s;
    int64_t numel = 1;
    const sm_tensor_rec *r = &E->g->t[t];
    for (int i = 0; i < r->ndim; i++)
        if (__builtin_mul_overflow(numel, r->ne[i], &numel) || numel > MAX_NUMEL)
            return gp_error(E->c, st->op_pos, SM_ERR_SHAPE, "'%s' would have more than 2^40 elements", gname);
    static const char *const keys[] = {"role"};
    const gp_kv *opt[1];
    sm_role role = SM_ROLE_ACTIVATION;
    if ((s = check_annotation(E, st, t)) || (s = match_opts(E, st, "a value", keys, 1, opt))) return s;
    if (opt[0] && (s = eval_role(E, opt[0], &role))) return s;
    if (opt[0]) E->g->t[t].role = role;
    if ((s = note_tensor(E, t, opt[0] != NULL))) return s;
    if ((s = bind_tensor(E, name, t, "value", false, !strcmp(name, gname), st->pos.line))) return s;
    return strcmp(name, gname) ? bind_tensor(E, gname, t, "value", false, true, st->pos.line) : SM_OK;
}

/* x = y: another name for an existing tensor (no node). */
static sm_status exec_alias(ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX], unused[SM_NAME_MAX];
    sm_tensor t;
    sm_status s = eval_tname(E, &st->lhs, name);
    if (!s) s = resolve(E, &st->args[0], &t);
    if (!s) s = value_name(E, st, name, unused);
    if (!s) s = check_annotation(E, st, t);
    return s ? s : bind_tensor(E, name, t, "value", false, false, st->pos.line);
}

/* Marking keeps a role written out with role=... (the printer writes one only where marking would
 * not give it). */
static sm_status mark(ev *E, const gp_name *nm, bool loss)
{
    sm_tensor t;
    sm_status s = resolve(E, nm, &t);
    if (s) return s;
    sm_tensor_rec *r = &E->g->t[t];
    if (loss && E->g->loss != SM_NO_TENSOR)
        return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "the loss is already '%s'; a graph has one loss",
                        E->g->t[E->g->loss].name);
    if (!loss && r->is_output) return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "'%s' is already an output", r->name);
    sm_role role = r->role;
    if ((s = wrap(E, nm->pos, loss ? sm_graph_set_loss(E->g, t) : sm_graph_mark_output(E->g, t)))) return s;
    if (t < E->cap_role && E->explicit_role[t]) r->role = role;
    return SM_OK;
}

static sm_status exec_grad(ev *E, const gp_stmt *st)
{
    sm_tensor p, gr;
    sm_status s = resolve(E, &st->lhs, &p);
    if (!s) s = resolve(E, &st->args[0], &gr);
    if (s) return s;
    if (E->g->t[p].grad != SM_NO_TENSOR)
        return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' already has a gradient ('%s')", E->g->t[p].name,
                        E->g->t[E->g->t[p].grad].name);
    E->g->t[p].grad = gr;
    return SM_OK;
}

static const gp_define *find_define(const ev *E, const char *name)
{
    const gp_define *found = NULL;
    for (int i = 0; i < E->n_defs; i++)
        if (!strcmp(E->defs[i].key, name) && (!found || (found->soft && !E->defs[i].soft))) found = &E->defs[i];
    return found;
}

static bool reserved_word(const char *name)
{
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (!strcmp(name, reserved[i])) return true;
    for (int i = 0; i < SM_DTYPE_COUNT; i++)
        if (!strcmp(name, sm_dtype_name((sm_dtype)i))) return true;
    return false;
}

static sm_status exec_param(ev *E, const gp_stmt *st)
{
    if (E->c->n_frames)
        return gp_error(E->c, st->pos, SM_ERR_FORMAT, "parameters are declared at the top level, not in a repeat");
    if (reserved_word(st->var))
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "'%s' is a reserved word; pick another parameter name",
                        st->var);
    if (strlen(st->var) >= SM_NAME_MAX)
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "parameter name is longer than %d bytes", SM_NAME_MAX - 1);
    const sym *old = find(E, st->var);
    if (old)
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "'%s' is already declared (the %s at line %d)", st->var,
                        kind_name(old), old->line);
    const gp_define *d = find_define(E, st->var);
    gp_val v;
    sm_status s = eval(E, d ? d->value : st->value, false, &v);
    if (s) return s;
    sym *sy = intern(E, st->var);
    if (!sy) return gp_nomem();
    sy->kind = SYM_PARAM;
    sy->val = v;
    sy->line = st->pos.line;
    gp_params *P = E->params;
    if (P->n == P->cap) {
        int cap = P->cap ? P->cap * 2 : 16;
        gp_param *np = gp_alloc(&E->c->arena, (size_t)cap * sizeof *np);
        if (!np) return gp_nomem();
        if (P->n) memcpy(np, P->v, (size_t)P->n * sizeof *np);
        P->v = np;
        P->cap = cap;
    }
    P->v[P->n++] = (gp_param){.name = sy->name, .val = v};
    return SM_OK;
}

static sm_status exec_block(ev *E, const gp_stmt *stmts, int n);

static sm_status exec_repeat(ev *E, const gp_stmt *st)
{
    int64_t lo = 0, hi = 0;
    sm_status s = eval_int(E, st->value, "the start of a range", &lo);
    if (!s) s = eval_int(E, st->hi, "the end of a range", &hi);
    if (s) return s;
    if (hi < lo)
        return gp_error(E->c, st->value->pos, SM_ERR_FORMAT, "the range %lld..%lld runs backwards", (long long)lo,
                        (long long)hi);
    const sym *old = find(E, st->var);
    if (old || reserved_word(st->var))
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "loop variable '%s' is already declared%s", st->var,
                        old ? "" : " (a reserved word)");
    sym *v = intern(E, st->var);
    if (!v) return gp_nomem();
    gp_frame *f = &E->c->frames[E->c->n_frames++];
    *f = (gp_frame){.pos = st->pos, .var = v->name};
    for (int64_t i = lo; !s && i < hi; i++) {
        if (++E->steps > E->max_steps)
            return gp_error(E->c, st->pos, SM_ERR_FORMAT, "the file expands to more than %lld statements",
                            (long long)E->max_steps);
        f->value = i;
        v->kind = SYM_LOOP;
        v->val = (gp_val){.i = i};
        v->line = st->pos.line;
        s = exec_block(E, st->body, st->n_body);
    }
    if (s) return s;
    v->kind = SYM_NONE;
    E->c->n_frames--;
    return SM_OK;
}

static sm_status exec_block(ev *E, const gp_stmt *stmts, int n)
{
    sm_status s = SM_OK;
    for (int i = 0; !s && i < n; i++) {
        const gp_stmt *st = &stmts[i];
        if (++E->steps > E->max_steps)
            return gp_error(E->c, st->pos, SM_ERR_FORMAT, "the file expands to more than %lld statements",
                            (long long)E->max_steps);
        switch (st->kind) {
        case GS_PARAM: s = exec_param(E, st); break;
        case GS_INPUT:
        case GS_WEIGHT:
        case GS_TENSOR: s = exec_decl(E, st); break;
        case GS_VALUE: s = exec_value(E, st); break;
        case GS_ALIAS: s = exec_alias(E, st); break;
        case GS_OUTPUT:
            for (int k = 0; !s && k < st->n_args; k++) s = mark(E, &st->args[k], false);
            break;
        case GS_LOSS: s = mark(E, &st->lhs, true); break;
        case GS_GRAD: s = exec_grad(E, st); break;
        case GS_REPEAT: s = exec_repeat(E, st); break;
        }
    }
    return s;
}

/* Every define must name a top-level parameter (a soft one need not). */
static sm_status check_defines(ev *E, const gp_file *f)
{
    for (int i = 0; i < E->n_defs; i++) {
        const gp_define *d = &E->defs[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(E->defs[j].key, d->key) && E->defs[j].soft == d->soft)
                return gp_error(E->c, d->pos, SM_ERR_INVALID_ARG, "'%s' is defined twice", d->key);
        if (d->soft) continue;
        gp_suggest sg;
        char hint[SM_NAME_MAX + 32];
        gp_suggest_init(&sg, d->key);
        bool found = false;
        for (int k = 0; k < f->n_stmts && !found; k++)
            if (f->stmts[k].kind == GS_PARAM) {
                found = !strcmp(f->stmts[k].var, d->key);
                gp_suggest_add(&sg, f->stmts[k].var);
            }
        if (!found)
            return gp_error(E->c, d->pos, SM_ERR_INVALID_ARG, "the graph has no parameter '%s' to define%s", d->key,
                            gp_suggest_text(&sg, hint, sizeof hint));
    }
    return SM_OK;
}

sm_status gp_eval(gp_ctx *c, const gp_file *f, const gp_define *defs, int n_defs, int max_tensors, int64_t max_steps,
                  sm_graph *g, gp_params *params)
{
    ev E = {.c = c, .g = g, .defs = defs, .n_defs = n_defs, .max_tensors = max_tensors, .max_steps = max_steps,
            .params = params};
    sm_status s = check_defines(&E, f);
    if (!s) s = exec_block(&E, f->stmts, f->n_stmts);
    free(E.tab);
    free(E.explicit_role);
    return s;
}
