/* graph_types.c — types (dtype and shape; annotations checked against what an op made) and the
 * key=value options of declarations and calls (init, trainable, role), with did-you-mean on unknown
 * keys and an error on repeated ones. */
#include <stdio.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_eval_impl.h"

/* ---- types ---- */

static sm_status eval_dtype(gp_ev *E, const gp_type *ty, sm_dtype *out)
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

sm_status gp_eval_type(gp_ev *E, const gp_type *ty, sm_dtype *dt, int64_t shape[SM_MAX_DIMS])
{
    sm_status s = eval_dtype(E, ty, dt);
    int64_t numel = 1;
    for (int i = 0; !s && i < ty->ndim; i++) {
        if ((s = gp_eval_int(E, ty->dims[i], "a dim", &shape[i]))) return s;
        if (shape[i] < 1)
            return gp_error(E->c, ty->dims[i]->pos, SM_ERR_SHAPE, "dim %d is %lld; dims must be >= 1", i,
                            (long long)shape[i]);
        if (__builtin_mul_overflow(numel, shape[i], &numel) || numel > GP_MAX_NUMEL)
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
sm_status gp_check_annotation(gp_ev *E, const gp_stmt *st, sm_tensor t)
{
    if (!st->has_type) return SM_OK;
    sm_dtype dt;
    int64_t shape[SM_MAX_DIMS] = {1, 1, 1, 1};
    sm_status s = gp_eval_type(E, &st->type, &dt, shape);
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
sm_status gp_match_opts(gp_ev *E, const gp_stmt *st, const char *what, const char *const *keys, int n_keys,
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

sm_status gp_eval_role(gp_ev *E, const gp_kv *kv, sm_role *out)
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

sm_status gp_eval_init(gp_ev *E, const gp_kv *kv, sm_init *init, float *std)
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
        sm_status s = gp_eval_float(E, v->args[0], "the standard deviation", std);
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
