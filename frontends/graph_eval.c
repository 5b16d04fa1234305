/* graph_eval.c — instantiating a parsed graph file: parameters and defines are evaluated, repeats
 * are expanded, and every statement becomes a graph leaf or node through the public builder. Ops and
 * their attributes are found by name in the op table, so an op added to the table is usable here with
 * no change. Every error points at the statement (and repeat iteration) that caused it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_eval_impl.h"

static sm_status room_for_tensor(gp_ev *E, gp_pos at)
{
    if (E->g->n_t < E->max_tensors) return SM_OK;
    return gp_error(E->c, at, SM_ERR_FORMAT, "the graph would have more than %d tensors (a runaway repeat?)", E->max_tensors);
}

static sm_status note_tensor(gp_ev *E, sm_tensor t, bool explicit_role)
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


/* Errors of the C builder become diagnostics at the statement that called it. */
static sm_status wrap(gp_ev *E, gp_pos at, sm_status s)
{
    if (!s) return s;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", sm_last_error());
    return gp_error(E->c, at, s, "%s", msg);
}

static sm_status exec_decl(gp_ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX];
    sm_dtype dt;
    int64_t shape[SM_MAX_DIMS] = {1, 1, 1, 1};
    sm_status s = gp_eval_tname(E, &st->lhs, name);
    if (!s) s = gp_check_fresh(E, &st->lhs, name);
    if (!s) s = gp_eval_type(E, &st->type, &dt, shape);
    if (!s) s = room_for_tensor(E, st->pos);
    if (s) return s;
    sm_tensor t = SM_NO_TENSOR;
    const gp_kv *opt[2];
    const char *what = st->kind == GS_INPUT ? "input" : st->kind == GS_WEIGHT ? "weight" : "tensor";
    if (st->kind == GS_INPUT) {
        if ((s = gp_match_opts(E, st, "an input", NULL, 0, opt))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_input(E->g, name, dt, st->type.ndim, shape, &t));
    } else if (st->kind == GS_WEIGHT) {
        static const char *const keys[] = {"init", "trainable"};
        sm_init init = SM_INIT_NORMAL;
        float std = 0.02f;
        int64_t trainable = dt != SM_I32;
        if ((s = gp_match_opts(E, st, "a weight", keys, 2, opt))) return s;
        if (opt[0] && (s = gp_eval_init(E, opt[0], &init, &std))) return s;
        if (opt[1] && (s = gp_eval_int(E, opt[1]->val, "trainable", &trainable))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_param(E->g, name, dt, st->type.ndim, shape, init, std, &t));
        if (!s) E->g->t[t].trainable = trainable != 0;
    } else {
        static const char *const keys[] = {"role"};
        sm_role role = SM_ROLE_ACTIVATION;
        if ((s = gp_match_opts(E, st, "a tensor", keys, 1, opt))) return s;
        if (!opt[0])
            return gp_error(E->c, st->pos, SM_ERR_FORMAT, "a tensor declaration needs role=..., like role=optim");
        if ((s = gp_eval_role(E, opt[0], &role))) return s;
        s = wrap(E, st->lhs.pos, sm_graph_add_tensor(E->g, name, dt, role, st->type.ndim, shape, &t));
    }
    if (!s) s = note_tensor(E, t, st->kind == GS_TENSOR);
    if (!s) s = gp_bind_tensor(E, name, t, what, true, true, st->pos.line);
    return s;
}

/* The graph name for a value bound to `name`: the name itself the first time, then name.1, name.2, ...
 * so that a value rebound in every iteration of a repeat (x = add(x, a)) gets a new tensor each time. */
static sm_status value_name(gp_ev *E, const gp_stmt *st, const char *name, char *gname)
{
    gp_sym *s = gp_sym_find(E, name);
    if (s && (s->kind != GP_SYM_TENSOR || s->leaf))
        return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' is the %s declared at line %d; it cannot be rebound",
                        name, gp_sym_what(s), s->line);
    if (!s || !s->graph_name) {
        snprintf(gname, SM_NAME_MAX, "%s", name);
        return SM_OK;
    }
    for (;; s->next_suffix++) {
        int n = snprintf(gname, SM_NAME_MAX, "%s.%d", name, s->next_suffix);
        if (n < 0 || n >= SM_NAME_MAX)
            return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' rebound: '%s.%d' is longer than %d bytes", name,
                            name, s->next_suffix, SM_NAME_MAX - 1);
        if (!gp_sym_find(E, gname)) return SM_OK;
    }
}

/* key=value attributes of a call, by the names the op table gives its slots. */
static sm_status eval_attrs(gp_ev *E, const gp_stmt *st, sm_op_kind op, sm_attrs *at)
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
            if ((s = gp_eval_num(E, kv->val, dtypes, &v))) return s;
            if (v.is_float)
                return gp_error(E->c, kv->val->pos, SM_ERR_FORMAT, "attribute '%s' of op '%s' is an integer, got %g",
                                kv->key, sm_op_name(op), v.f);
            at->i[slot] = v.i;
        } else if ((s = gp_eval_float(E, kv->val, "attribute value", &at->f[slot - SM_MAX_IATTRS]))) {
            return s;
        }
    }
    return SM_OK;
}

static sm_status unknown_op(gp_ev *E, const gp_stmt *st)
{
    gp_suggest sg;
    char hint[SM_NAME_MAX + 32];
    gp_suggest_init(&sg, st->op);
    for (int k = 0; k < SM_OP_COUNT; k++) gp_suggest_add(&sg, sm_op_name((sm_op_kind)k));
    return gp_error(E->c, st->op_pos, SM_ERR_FORMAT, "unknown op '%s'%s", st->op, gp_suggest_text(&sg, hint, sizeof hint));
}

static sm_status exec_value(gp_ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX], gname[SM_NAME_MAX];
    sm_op_kind op;
    sm_tensor in[SM_MAX_INPUTS], t;
    sm_attrs at;
    if (sm_op_lookup(st->op, &op)) return unknown_op(E, st);
    if (st->n_args > SM_MAX_INPUTS)
        return gp_error(E->c, st->args[SM_MAX_INPUTS].pos, SM_ERR_FORMAT, "more than %d tensor arguments",
                        SM_MAX_INPUTS);
    sm_status s = gp_eval_tname(E, &st->lhs, name);
    for (int i = 0; !s && i < st->n_args; i++) s = gp_resolve(E, &st->args[i], &in[i]);
    if (!s) s = eval_attrs(E, st, op, &at);
    if (!s) s = value_name(E, st, name, gname);
    if (!s) s = room_for_tensor(E, st->pos);
    if (s) return s;
    if ((s = wrap(E, st->op_pos, sm_graph_op(E->g, op, in, st->n_args, &at, gname, &t)))) return s;
    int64_t numel = 1;
    const sm_tensor_rec *r = &E->g->t[t];
    for (int i = 0; i < r->ndim; i++)
        if (__builtin_mul_overflow(numel, r->ne[i], &numel) || numel > GP_MAX_NUMEL)
            return gp_error(E->c, st->op_pos, SM_ERR_SHAPE, "'%s' would have more than 2^40 elements", gname);
    static const char *const keys[] = {"role"};
    const gp_kv *opt[1];
    sm_role role = SM_ROLE_ACTIVATION;
    if ((s = gp_check_annotation(E, st, t)) || (s = gp_match_opts(E, st, "a value", keys, 1, opt))) return s;
    if (opt[0] && (s = gp_eval_role(E, opt[0], &role))) return s;
    if (opt[0]) E->g->t[t].role = role;
    if ((s = note_tensor(E, t, opt[0] != NULL))) return s;
    if ((s = gp_bind_tensor(E, name, t, "value", false, !strcmp(name, gname), st->pos.line))) return s;
    return strcmp(name, gname) ? gp_bind_tensor(E, gname, t, "value", false, true, st->pos.line) : SM_OK;
}

/* x = y: another name for an existing tensor (no node). */
static sm_status exec_alias(gp_ev *E, const gp_stmt *st)
{
    char name[SM_NAME_MAX], unused[SM_NAME_MAX];
    sm_tensor t;
    sm_status s = gp_eval_tname(E, &st->lhs, name);
    if (!s) s = gp_resolve(E, &st->args[0], &t);
    if (!s) s = value_name(E, st, name, unused);
    if (!s) s = gp_check_annotation(E, st, t);
    return s ? s : gp_bind_tensor(E, name, t, "value", false, false, st->pos.line);
}

/* Marking keeps a role written out with role=... (the printer writes one only where marking would
 * not give it). */
static sm_status mark(gp_ev *E, const gp_name *nm, bool loss)
{
    sm_tensor t;
    sm_status s = gp_resolve(E, nm, &t);
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

static sm_status exec_grad(gp_ev *E, const gp_stmt *st)
{
    sm_tensor p, gr;
    sm_status s = gp_resolve(E, &st->lhs, &p);
    if (!s) s = gp_resolve(E, &st->args[0], &gr);
    if (s) return s;
    if (E->g->t[p].grad != SM_NO_TENSOR)
        return gp_error(E->c, st->lhs.pos, SM_ERR_FORMAT, "'%s' already has a gradient ('%s')", E->g->t[p].name,
                        E->g->t[E->g->t[p].grad].name);
    E->g->t[p].grad = gr;
    return SM_OK;
}

static const gp_define *find_define(const gp_ev *E, const char *name)
{
    const gp_define *found = NULL;
    for (int i = 0; i < E->n_defs; i++)
        if (!strcmp(E->defs[i].key, name) && (!found || (found->soft && !E->defs[i].soft))) found = &E->defs[i];
    return found;
}


static sm_status exec_param(gp_ev *E, const gp_stmt *st)
{
    if (E->c->n_frames)
        return gp_error(E->c, st->pos, SM_ERR_FORMAT, "parameters are declared at the top level, not in a repeat");
    if (gp_reserved_word(st->var))
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "'%s' is a reserved word; pick another parameter name",
                        st->var);
    if (strlen(st->var) >= SM_NAME_MAX)
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "parameter name is longer than %d bytes", SM_NAME_MAX - 1);
    const gp_sym *old = gp_sym_find(E, st->var);
    if (old)
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "'%s' is already declared (the %s at line %d)", st->var,
                        gp_sym_what(old), old->line);
    const gp_define *d = find_define(E, st->var);
    gp_val v;
    sm_status s = gp_eval_num(E, d ? d->value : st->value, false, &v);
    if (s) return s;
    gp_sym *sy = gp_sym_intern(E, st->var);
    if (!sy) return gp_nomem();
    sy->kind = GP_SYM_PARAM;
    sy->val = v;
    sy->line = st->pos.line;
    gp_params *P = E->params;
    if (P->n == P->cap) {
        int cap = P->cap ? P->cap * 2 : 16;
        gp_param *np = sm_pool_alloc(&E->c->arena, (size_t)cap * sizeof *np);
        if (!np) return gp_nomem();
        if (P->n) memcpy(np, P->v, (size_t)P->n * sizeof *np);
        P->v = np;
        P->cap = cap;
    }
    P->v[P->n++] = (gp_param){.name = sy->name, .val = v};
    return SM_OK;
}

static sm_status exec_block(gp_ev *E, const gp_stmt *stmts, int n);

static sm_status exec_repeat(gp_ev *E, const gp_stmt *st)
{
    int64_t lo = 0, hi = 0;
    sm_status s = gp_eval_int(E, st->value, "the start of a range", &lo);
    if (!s) s = gp_eval_int(E, st->hi, "the end of a range", &hi);
    if (s) return s;
    if (hi < lo)
        return gp_error(E->c, st->value->pos, SM_ERR_FORMAT, "the range %lld..%lld runs backwards", (long long)lo,
                        (long long)hi);
    const gp_sym *old = gp_sym_find(E, st->var);
    if (old || gp_reserved_word(st->var))
        return gp_error(E->c, st->var_pos, SM_ERR_FORMAT, "loop variable '%s' is already declared%s", st->var,
                        old ? "" : " (a reserved word)");
    gp_sym *v = gp_sym_intern(E, st->var);
    if (!v) return gp_nomem();
    gp_frame *f = &E->c->frames[E->c->n_frames++];
    *f = (gp_frame){.pos = st->pos, .var = v->name};
    for (int64_t i = lo; !s && i < hi; i++) {
        if (++E->steps > E->max_steps)
            return gp_error(E->c, st->pos, SM_ERR_FORMAT, "the file expands to more than %lld statements",
                            (long long)E->max_steps);
        f->value = i;
        v->kind = GP_SYM_LOOP;
        v->val = (gp_val){.i = i};
        v->line = st->pos.line;
        s = exec_block(E, st->body, st->n_body);
    }
    if (s) return s;
    v->kind = GP_SYM_NONE;
    E->c->n_frames--;
    return SM_OK;
}

static sm_status exec_block(gp_ev *E, const gp_stmt *stmts, int n)
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
        case GS_CHECKPOINT:
            for (int k = 0; !s && k < st->n_args; k++) {
                sm_tensor t;
                if (!(s = gp_resolve(E, &st->args[k], &t))) s = wrap(E, st->args[k].pos, sm_graph_checkpoint(E->g, t));
            }
            break;
        case GS_LOSS: s = mark(E, &st->lhs, true); break;
        case GS_GRAD: s = exec_grad(E, st); break;
        case GS_REPEAT: s = exec_repeat(E, st); break;
        }
    }
    return s;
}

/* Every define must name a top-level parameter (a soft one need not). */
static sm_status check_defines(gp_ev *E, const gp_file *f)
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
    gp_ev E = {.c = c, .g = g, .defs = defs, .n_defs = n_defs, .max_tensors = max_tensors, .max_steps = max_steps,
            .params = params};
    sm_status s = check_defines(&E, f);
    if (!s) s = exec_block(&E, f->stmts, f->n_stmts);
    free(E.syms);
    sm_name_index_free(&E.names);
    free(E.explicit_role);
    return s;
}
