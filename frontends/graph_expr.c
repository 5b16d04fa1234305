/* graph_expr.c — numbers and names in graph files. Integers stay exact 64-bit values (overflow and
 * division by zero are errors, never wrapped values); a float anywhere makes a float. Tensor names
 * get their {expr} pieces evaluated, and are looked up with a did-you-mean when unknown. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_eval_impl.h"

static const char *const functions[] = {"sqrt", "min", "max"};

static sm_status num_error(gp_ev *E, gp_pos at, const char *what)
{
    return gp_error(E->c, at, SM_ERR_FORMAT, "%s", what);
}

static sm_status unknown_number_name(gp_ev *E, const gp_expr *e, bool dtypes)
{
    const gp_sym *s = gp_sym_find(E, e->name);
    if (s) /* a tensor */
        return gp_error(E->c, e->pos, SM_ERR_FORMAT,
                        "'%s' is a tensor; numbers use parameters and loop variables only", e->name);
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, e->name);
    for (int i = 0; i < E->n_syms; i++)
        if (E->syms[i]->kind == GP_SYM_PARAM || E->syms[i]->kind == GP_SYM_LOOP) gp_suggest_add(&sg, E->syms[i]->name);
    for (int i = 0; dtypes && i < SM_DTYPE_COUNT; i++) gp_suggest_add(&sg, sm_dtype_name((sm_dtype)i));
    for (size_t i = 0; i < sizeof gp_reserved / sizeof *gp_reserved; i++) gp_suggest_add(&sg, gp_reserved[i]);
    return gp_error(E->c, e->pos, SM_ERR_FORMAT, "unknown parameter '%s'%s", e->name,
                    gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status eval_name(gp_ev *E, const gp_expr *e, bool dtypes, gp_val *out)
{
    const gp_sym *s = gp_sym_find(E, e->name);
    if (s && (s->kind == GP_SYM_PARAM || s->kind == GP_SYM_LOOP)) {
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

static sm_status eval_call(gp_ev *E, const gp_expr *e, gp_val *out)
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
    sm_status s = gp_eval_num(E, e->args[0], false, &a);
    if (!s && want == 2) s = gp_eval_num(E, e->args[1], false, &b);
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

static sm_status eval_bin(gp_ev *E, const gp_expr *e, gp_val a, gp_val b, gp_val *out)
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

sm_status gp_eval_num(gp_ev *E, const gp_expr *e, bool dtypes, gp_val *out)
{
    gp_val a, b;
    sm_status s;
    switch (e->kind) {
    case GE_INT: *out = (gp_val){.i = e->i}; return SM_OK;
    case GE_FLOAT: *out = (gp_val){.is_float = true, .f = e->f}; return SM_OK;
    case GE_NAME: return eval_name(E, e, dtypes, out);
    case GE_CALL: return eval_call(E, e, out);
    case GE_NEG:
        if ((s = gp_eval_num(E, e->a, false, &a))) return s;
        if (!a.is_float && a.i == INT64_MIN) return num_error(E, e->pos, "integer overflow");
        *out = a.is_float ? (gp_val){.is_float = true, .f = -a.f} : (gp_val){.i = -a.i};
        return SM_OK;
    case GE_BIN:
        if ((s = gp_eval_num(E, e->a, false, &a)) || (s = gp_eval_num(E, e->b, false, &b))) return s;
        return eval_bin(E, e, a, b, out);
    }
    return sm_error(SM_ERR_INTERNAL, "graph file: bad expression kind %d", (int)e->kind);
}

sm_status gp_eval_int(gp_ev *E, const gp_expr *e, const char *what, int64_t *out)
{
    gp_val v;
    sm_status s = gp_eval_num(E, e, false, &v);
    if (s) return s;
    if (v.is_float) return gp_error(E->c, e->pos, SM_ERR_FORMAT, "%s must be an integer, got %g", what, v.f);
    *out = v.i;
    return SM_OK;
}

/* A float attribute or init std: any number that fits a float. */
sm_status gp_eval_float(gp_ev *E, const gp_expr *e, const char *what, float *out)
{
    gp_val v;
    sm_status s = gp_eval_num(E, e, false, &v);
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
sm_status gp_eval_tname(gp_ev *E, const gp_name *nm, char *buf)
{
    size_t n = 0;
    for (int i = 0; i < nm->n_parts; i++) {
        const gp_name_part *p = &nm->parts[i];
        char num[24];
        const char *piece = p->lit;
        size_t len = p->len;
        if (p->expr) {
            int64_t v = 0;
            sm_status s = gp_eval_int(E, p->expr, "a {} piece of a name", &v);
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
sm_status gp_resolve(gp_ev *E, const gp_name *nm, sm_tensor *out)
{
    char name[SM_NAME_MAX];
    sm_status s = gp_eval_tname(E, nm, name);
    if (s) return s;
    const gp_sym *sy = gp_sym_find(E, name);
    if (sy && sy->kind == GP_SYM_TENSOR) {
        *out = sy->t;
        return SM_OK;
    }
    if (sy)
        return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "'%s' is a %s, not a tensor", name, gp_sym_what(sy));
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, name);
    for (int i = 0; i < E->n_syms; i++)
        if (E->syms[i]->kind == GP_SYM_TENSOR) gp_suggest_add(&sg, E->syms[i]->name);
    return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "unknown tensor '%s'%s", name, gp_suggest_text(&sg, hint, sizeof hint));
}

/* A name that a declaration may take: not bound to anything yet. */
sm_status gp_check_fresh(gp_ev *E, const gp_name *nm, const char *name)
{
    const gp_sym *s = gp_sym_find(E, name);
    if (!s) return SM_OK;
    return gp_error(E->c, nm->pos, SM_ERR_FORMAT, "'%s' is already declared (the %s at line %d)", name, gp_sym_what(s),
                    s->line);
}
