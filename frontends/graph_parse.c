/* graph_parse.c — the graph-file parser: tokens to a syntax tree (graph_syntax.h). It only checks
 * the form; names, shapes and ops are checked when the tree is evaluated (graph_eval.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_syntax.h"

#define MAX_REPEAT_NEST 16

typedef struct {
    gp_ctx *c;
    const gp_src *src;
    gp_lexer lx;          /* the current statement's tokens */
    int i;                /* the next one */
} parser;

static const char *const keywords[] = {"param",  "input", "weight", "tensor",     "output",
                                       "loss",   "grad",  "repeat", "checkpoint"};
#define N_KEYWORDS ((int)(sizeof keywords / sizeof keywords[0]))

/* Token k ahead; past the statement's end, its last token (end of line or of file). */
static gp_token *tok(parser *P, int k) { return &P->lx.tok[P->i + k < P->lx.n ? P->i + k : P->lx.n - 1]; }
static bool punct(const gp_token *t, char ch) { return t->kind == GT_PUNCT && t->punct == ch; }
static bool word(const gp_token *t, const char *w)
{
    return t->kind == GT_NAME && !t->interp && t->pos.len == strlen(w) && memcmp(t->text, w, t->pos.len) == 0;
}
static bool is_name(const gp_token *t) { return t->kind == GT_NAME || t->kind == GT_QNAME; }
static bool line_end(const gp_token *t) { return t->kind == GT_NEWLINE || t->kind == GT_EOF; }

static sm_status expected(parser *P, const char *what)
{
    char buf[96];
    return gp_error(P->c, tok(P, 0)->pos, SM_ERR_FORMAT, "expected %s, found %s", what,
                    gp_token_desc(tok(P, 0), buf, sizeof buf));
}

static sm_status expect(parser *P, char ch, const char *what)
{
    if (!punct(tok(P, 0), ch)) return expected(P, what);
    P->i++;
    return SM_OK;
}

static sm_status expect_line_end(parser *P)
{
    if (tok(P, 0)->kind == GT_EOF) return SM_OK;
    if (tok(P, 0)->kind != GT_NEWLINE) return expected(P, "end of line");
    P->i++;
    return SM_OK;
}

/* Appends one element to an arena array, doubling its capacity as needed. Most lists (a name's
 * parts, a call's tensors and attributes) hold one or two elements: they start with room for one. */
static void *push(parser *P, void **arr, int *n, int *cap, size_t elem)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 1;
        void *na = sm_pool_alloc(&P->c->arena, (size_t)nc * elem);
        if (!na) return NULL;
        if (*n) memcpy(na, *arr, (size_t)*n * elem);
        *arr = na;
        *cap = nc;
    }
    return (char *)*arr + (size_t)(*n)++ * elem;
}

static char *ident(parser *P, const gp_token *t) { return sm_pool_strndup(&P->c->arena, t->text, t->pos.len); }

/* ---- expressions ---- */

static sm_status parse_expr(parser *P, gp_expr **out);

static gp_expr *new_expr(parser *P, gp_expr_kind k, gp_pos pos)
{
    gp_expr *e = sm_pool_alloc(&P->c->arena, sizeof *e);
    if (e) {
        e->kind = k;
        e->pos = pos;
    }
    return e;
}

static sm_status parse_primary(parser *P, gp_expr **out)
{
    gp_token *t = tok(P, 0);
    gp_expr *e = NULL;
    if (t->kind == GT_INT || t->kind == GT_FLOAT) {
        if (!(e = new_expr(P, t->kind == GT_INT ? GE_INT : GE_FLOAT, t->pos))) return gp_nomem();
        e->i = t->i;
        e->f = t->f;
        P->i++;
    } else if (punct(t, '(')) {
        P->i++;
        sm_status s = parse_expr(P, &e);
        if (!s) s = expect(P, ')', "')'");
        if (s) return s;
    } else if (t->kind == GT_NAME && t->interp) {
        return gp_error(P->c, t->pos, SM_ERR_FORMAT, "{...} interpolation belongs in tensor names, not in numbers");
    } else if (t->kind == GT_NAME) {
        bool call = punct(tok(P, 1), '(');
        if (!(e = new_expr(P, call ? GE_CALL : GE_NAME, t->pos)) || !(e->name = ident(P, t))) return gp_nomem();
        P->i += call ? 2 : 1;
        int cap = 0;
        while (call && !punct(tok(P, 0), ')')) {
            gp_expr **slot = push(P, (void **)&e->args, &e->n_args, &cap, sizeof *slot);
            if (!slot) return gp_nomem();
            sm_status s = parse_expr(P, slot);
            if (s) return s;
            if (!punct(tok(P, 0), ')') && (s = expect(P, ',', "',' or ')'"))) return s;
        }
        if (call) P->i++;
    } else {
        return expected(P, "a number or a parameter name");
    }
    *out = e;
    return SM_OK;
}

static sm_status parse_unary(parser *P, gp_expr **out)
{
    if (++P->c->depth > GP_MAX_DEPTH)
        return gp_error(P->c, tok(P, 0)->pos, SM_ERR_FORMAT, "expression nested more than %d deep", GP_MAX_DEPTH);
    sm_status s;
    if (punct(tok(P, 0), '-')) {
        gp_expr *e = new_expr(P, GE_NEG, tok(P, 0)->pos);
        if (!e) return gp_nomem();
        P->i++;
        s = parse_unary(P, &e->a);
        *out = e;
    } else {
        s = parse_primary(P, out);
    }
    P->c->depth--;
    return s;
}

static sm_status parse_binary(parser *P, gp_expr **out, int level)
{
    static const char *const ops[2] = {"+-", "*/%"};
    sm_status s = level ? parse_unary(P, out) : parse_binary(P, out, 1);
    while (!s && tok(P, 0)->kind == GT_PUNCT && tok(P, 0)->punct != '.' && strchr(ops[level], tok(P, 0)->punct)) {
        gp_expr *e = new_expr(P, GE_BIN, tok(P, 0)->pos);
        if (!e) return gp_nomem();
        e->op = tok(P, 0)->punct;
        e->a = *out;
        P->i++;
        s = level ? parse_unary(P, &e->b) : parse_binary(P, &e->b, 1);
        *out = e;
    }
    return s;
}

static sm_status parse_expr(parser *P, gp_expr **out) { return parse_binary(P, out, 0); }

/* ---- names, types, key=value lists ---- */

/* The {expr} pieces of a bare name are lexed and parsed on their own, at their place in the file. */
static sm_status parse_interp(parser *P, const gp_token *t, size_t open, size_t close, gp_expr **out)
{
    gp_pos at = t->pos;
    at.off = open;
    at.col = t->pos.col + (int)(open - t->pos.off);
    at.len = close - open + 1;
    if (close == open + 1) return gp_error(P->c, at, SM_ERR_FORMAT, "empty {} in a name");
    parser sub = {.c = P->c, .src = P->src};
    gp_lexer_init(&sub.lx, P->c, P->src, open + 1, close, at.line, at.col + 1);
    sm_status s = gp_lex_statement(&sub.lx);
    if (!s) s = parse_expr(&sub, out);
    if (!s && tok(&sub, 0)->kind != GT_EOF) s = expected(&sub, "'}'");
    gp_lexer_free(&sub.lx);
    return s;
}

static sm_status parse_name(parser *P, gp_name *out)
{
    gp_token *t = tok(P, 0);
    if (!is_name(t)) return expected(P, "a name");
    memset(out, 0, sizeof *out);
    out->pos = t->pos;
    int cap = 0;
    if (t->kind == GT_QNAME || !t->interp) {
        gp_name_part *p = push(P, (void **)&out->parts, &out->n_parts, &cap, sizeof *p);
        if (!p) return gp_nomem();
        p->lit = t->kind == GT_QNAME ? t->str : t->text;
        p->len = t->kind == GT_QNAME ? strlen(t->str) : t->pos.len;
        P->i++;
        return SM_OK;
    }
    size_t i = t->pos.off, end = t->pos.off + t->pos.len;
    const char *text = P->src->text;
    while (i < end) {
        gp_name_part *p = push(P, (void **)&out->parts, &out->n_parts, &cap, sizeof *p);
        if (!p) return gp_nomem();
        if (text[i] == '{') {
            size_t close = i;
            while (text[close] != '}') close++; /* the lexer saw the '}' */
            sm_status s = parse_interp(P, t, i, close, &p->expr);
            if (s) return s;
            i = close + 1;
        } else {
            size_t j = i;
            while (j < end && text[j] != '{') j++;
            p->lit = text + i;
            p->len = j - i;
            i = j;
        }
    }
    P->i++;
    return SM_OK;
}

/* dtype '[' dim, ... ']' */
static sm_status parse_type(parser *P, gp_type *out)
{
    gp_token *t = tok(P, 0);
    if (t->kind != GT_NAME || t->interp) return expected(P, "a dtype (f32, f16, bf16, i32)");
    out->pos = t->pos;
    if (!(out->dtype = ident(P, t))) return gp_nomem();
    P->i++;
    sm_status s = expect(P, '[', "'[' and the shape");
    while (!s) {
        if (out->ndim == SM_MAX_DIMS)
            return gp_error(P->c, tok(P, 0)->pos, SM_ERR_FORMAT, "more than %d dims; tensors have 1 to %d",
                            SM_MAX_DIMS, SM_MAX_DIMS);
        if ((s = parse_expr(P, &out->dims[out->ndim++]))) return s;
        if (punct(tok(P, 0), ']')) {
            P->i++;
            return SM_OK;
        }
        s = expect(P, ',', "',' or ']'");
    }
    return s;
}

/* key '=' expr: the key is a plain name. */
static sm_status parse_kv(parser *P, gp_kv *kv)
{
    gp_token *t = tok(P, 0);
    if (t->kind != GT_NAME || t->interp || !punct(tok(P, 1), '=')) return expected(P, "key=value");
    kv->pos = t->pos;
    if (!(kv->key = ident(P, t))) return gp_nomem();
    P->i += 2;
    return parse_expr(P, &kv->val);
}

/* Options after a declaration or a call, up to the end of the line. */
static sm_status parse_opts(parser *P, gp_stmt *st)
{
    int cap = 0;
    while (!line_end(tok(P, 0)) && !punct(tok(P, 0), '}')) {
        gp_kv *kv = push(P, (void **)&st->opts, &st->n_opts, &cap, sizeof *kv);
        if (!kv) return gp_nomem();
        sm_status s = parse_kv(P, kv);
        if (s) return s;
    }
    return SM_OK;
}

/* ---- statements ---- */

static sm_status parse_block(parser *P, gp_stmt **out, int *n_out, int nest);

/* NAME [':' type] '=' op '(' args ')' opts    or    NAME [':' type] '=' NAME */
static sm_status parse_assign(parser *P, gp_stmt *st)
{
    sm_status s = parse_name(P, &st->lhs);
    if (!s && punct(tok(P, 0), ':')) {
        P->i++;
        st->has_type = true;
        s = parse_type(P, &st->type);
    }
    if (!s) s = expect(P, '=', st->has_type ? "'='" : "':' or '='");
    if (s) return s;
    gp_token *t = tok(P, 0);
    int cap = 0;
    if (is_name(t) && !punct(tok(P, 1), '(')) {
        st->kind = GS_ALIAS;
        gp_name *a = push(P, (void **)&st->args, &st->n_args, &cap, sizeof *a);
        return a ? parse_name(P, a) : gp_nomem();
    }
    if (t->kind != GT_NAME || t->interp) return expected(P, "an op call like add(a, b), or a name");
    st->kind = GS_VALUE;
    st->op_pos = t->pos;
    if (!(st->op = ident(P, t))) return gp_nomem();
    P->i += 2;
    int acap = 0;
    while (!punct(tok(P, 0), ')')) {
        if (tok(P, 0)->kind == GT_NAME && punct(tok(P, 1), '=')) {
            gp_kv *kv = push(P, (void **)&st->attrs, &st->n_attrs, &acap, sizeof *kv);
            if (!kv) return gp_nomem();
            if ((s = parse_kv(P, kv))) return s;
        } else if (is_name(tok(P, 0))) {
            if (st->n_attrs)
                return gp_error(P->c, tok(P, 0)->pos, SM_ERR_FORMAT,
                                "tensor arguments come before the key=value attributes");
            gp_name *a = push(P, (void **)&st->args, &st->n_args, &cap, sizeof *a);
            if (!a) return gp_nomem();
            if ((s = parse_name(P, a))) return s;
        } else {
            return expected(P, "a tensor name, key=value or ')'");
        }
        if (!punct(tok(P, 0), ')') && (s = expect(P, ',', "',' or ')'"))) return s;
    }
    P->i++;
    return parse_opts(P, st);
}

static sm_status parse_decl(parser *P, gp_stmt *st)
{
    sm_status s = parse_name(P, &st->lhs);
    if (!s) s = expect(P, ':', "':' and a type, as in 'x: f32[B, T]'");
    if (!s) s = parse_type(P, &st->type);
    st->has_type = true;
    return s ? s : parse_opts(P, st);
}

static sm_status parse_repeat(parser *P, gp_stmt *st, int nest)
{
    gp_token *v = tok(P, 0);
    if (v->kind != GT_NAME || v->interp) return expected(P, "a loop variable");
    if (nest >= MAX_REPEAT_NEST)
        return gp_error(P->c, st->pos, SM_ERR_FORMAT, "repeat nested more than %d deep", MAX_REPEAT_NEST);
    st->var_pos = v->pos;
    if (!(st->var = ident(P, v))) return gp_nomem();
    P->i++;
    if (!word(tok(P, 0), "in")) return expected(P, "'in', as in 'repeat l in 0..L {'");
    P->i++;
    sm_status s = parse_expr(P, &st->value);
    if (!s) s = expect(P, '.', "'..', as in 'repeat l in 0..L {'");
    if (!s) s = parse_expr(P, &st->hi);
    if (!s) s = expect(P, '{', "'{'");
    if (!s && tok(P, 0)->kind != GT_NEWLINE) s = expected(P, "end of line after '{'");
    if (!s) s = parse_block(P, &st->body, &st->n_body, nest + 1);
    if (!s) s = expect(P, '}', "'}' closing the repeat");
    return s;
}

static sm_status parse_stmt(parser *P, gp_stmt *st, int nest)
{
    gp_token *t = tok(P, 0), *t1 = tok(P, 1);
    st->pos = t->pos;
    sm_status s;
    bool keyword = t->kind == GT_NAME && !t->interp && is_name(t1);
    if (keyword && word(t, "param")) {
        st->kind = GS_PARAM;
        if (t1->kind != GT_NAME || t1->interp)
            return gp_error(P->c, t1->pos, SM_ERR_FORMAT, "a parameter name is a plain name, like T or n_layer");
        st->var_pos = t1->pos;
        if (!(st->var = ident(P, t1))) return gp_nomem();
        P->i += 2;
        s = expect(P, '=', "'=' and a default value");
        if (!s) s = parse_expr(P, &st->value);
    } else if (keyword && (word(t, "input") || word(t, "weight") || word(t, "tensor"))) {
        st->kind = word(t, "input") ? GS_INPUT : word(t, "weight") ? GS_WEIGHT : GS_TENSOR;
        P->i++;
        s = parse_decl(P, st);
    } else if (keyword && (word(t, "output") || word(t, "checkpoint"))) {
        st->kind = word(t, "output") ? GS_OUTPUT : GS_CHECKPOINT;
        P->i++;
        int cap = 0;
        do {
            gp_name *a = push(P, (void **)&st->args, &st->n_args, &cap, sizeof *a);
            if (!a) return gp_nomem();
            s = parse_name(P, a);
        } while (!s && punct(tok(P, 0), ',') && ++P->i);
    } else if (keyword && word(t, "loss")) {
        st->kind = GS_LOSS;
        P->i++;
        s = parse_name(P, &st->lhs);
    } else if (keyword && word(t, "grad")) {
        st->kind = GS_GRAD;
        P->i++;
        int cap = 0;
        gp_name *a = NULL;
        s = parse_name(P, &st->lhs);
        if (!s) s = expect(P, '=', "'=' and the gradient's name, as in 'grad w = w.grad'");
        if (!s) s = (a = push(P, (void **)&st->args, &st->n_args, &cap, sizeof *a)) ? parse_name(P, a) : gp_nomem();
    } else if (keyword && word(t, "repeat")) {
        st->kind = GS_REPEAT;
        P->i++;
        s = parse_repeat(P, st, nest);
    } else if (is_name(t) && (punct(t1, '=') || punct(t1, ':'))) {
        s = parse_assign(P, st);
    } else if (t->kind == GT_NAME && !t->interp && is_name(t1)) {
        char what[SM_NAME_MAX], hint[SM_NAME_MAX + 32];
        snprintf(what, sizeof what, "%.*s", (int)(t->pos.len < 60 ? t->pos.len : 60), t->text);
        gp_suggest sg;
        gp_suggest_init(&sg, what);
        for (int k = 0; k < N_KEYWORDS; k++) gp_suggest_add(&sg, keywords[k]);
        return gp_error(P->c, t->pos, SM_ERR_FORMAT, "unknown statement '%s'%s", what,
                        gp_suggest_text(&sg, hint, sizeof hint));
    } else {
        return expected(P, "a statement (name = op(...), param, input, weight, output, checkpoint, loss or repeat)");
    }
    if (s) return s;
    if (punct(tok(P, 0), '}') && nest > 0) return SM_OK;
    return expect_line_end(P);
}

/* Makes tok(P, 0) the first token of the next statement (or a '}', or the end of the file), lexing
 * the next statement once every token of this one is used. */
static sm_status skip_blank_lines(parser *P)
{
    for (;;) {
        if (P->i >= P->lx.n) {
            sm_status s = gp_lex_statement(&P->lx);
            if (s) return s;
            P->i = 0;
        }
        if (tok(P, 0)->kind != GT_NEWLINE) return SM_OK;
        P->i++;
    }
}

/* Statements up to end of file (top level) or up to a '}' (repeat body), into a growing heap array
 * *v of *cap. */
static sm_status parse_stmts(parser *P, gp_stmt **v, int *n, int *cap, int nest)
{
    for (;;) {
        sm_status s = skip_blank_lines(P);
        if (s) return s;
        gp_token *t = tok(P, 0);
        if (t->kind == GT_EOF) {
            if (nest > 0) return expected(P, "'}' closing the repeat");
            return SM_OK;
        }
        if (punct(t, '}')) {
            if (nest > 0) return SM_OK;
            return gp_error(P->c, t->pos, SM_ERR_FORMAT, "'}' without a repeat to close");
        }
        if (*n == *cap) {
            if (*cap > INT_MAX / 2) return gp_error(P->c, t->pos, SM_ERR_FORMAT, "more than 2^30 statements");
            int nc = *cap ? *cap * 2 : 16;
            gp_stmt *nv = realloc(*v, (size_t)nc * sizeof *nv);
            if (!nv) return gp_nomem();
            *v = nv;
            *cap = nc;
        }
        gp_stmt *st = &(*v)[(*n)++];
        memset(st, 0, sizeof *st);
        if ((s = parse_stmt(P, st, nest))) return s;
    }
}

/* A block's statements, in the arena at their exact size: they are most of a long file's tree, and
 * an arena array that doubles would leave every smaller copy behind. */
static sm_status parse_block(parser *P, gp_stmt **out, int *n_out, int nest)
{
    gp_stmt *v = NULL;
    int n = 0, cap = 0;
    sm_status s = parse_stmts(P, &v, &n, &cap, nest);
    if (!s && n) {
        *out = sm_pool_alloc(&P->c->arena, (size_t)n * sizeof *v);
        if (*out) memcpy(*out, v, (size_t)n * sizeof *v);
        else s = gp_nomem();
    }
    if (!s) *n_out = n;
    free(v);
    return s;
}

/* smallmind-graph 1 */
static sm_status parse_version(parser *P)
{
    sm_status s = skip_blank_lines(P);
    if (s) return s;
    gp_token *t = tok(P, 0);
    if (!word(t, "smallmind") || !punct(tok(P, 1), '-') || !word(tok(P, 2), "graph") || tok(P, 3)->kind != GT_INT)
        return gp_error(P->c, t->pos, SM_ERR_FORMAT,
                        "a graph file starts with the line 'smallmind-graph 1' (its format version)");
    if (tok(P, 3)->i != 1)
        return gp_error(P->c, tok(P, 3)->pos, SM_ERR_FORMAT,
                        "format version %lld is not supported; this build reads version 1", (long long)tok(P, 3)->i);
    P->i += 4;
    return expect_line_end(P);
}

sm_status gp_parse_file(gp_ctx *c, const gp_src *src, gp_file *out)
{
    parser P = {.c = c, .src = src};
    memset(out, 0, sizeof *out);
    gp_lexer_init(&P.lx, c, src, 0, src->len, 1, 1);
    sm_status s = parse_version(&P);
    if (!s) s = parse_block(&P, &out->stmts, &out->n_stmts, 0);
    gp_lexer_free(&P.lx);
    return s;
}

sm_status gp_parse_define(gp_ctx *c, const gp_src *src, const char **key, gp_pos *key_pos, gp_expr **value)
{
    parser P = {.c = c, .src = src};
    gp_lexer_init(&P.lx, c, src, 0, src->len, 1, 1);
    sm_status s = gp_lex_statement(&P.lx);
    gp_token *t = s ? NULL : tok(&P, 0);
    if (!s && (t->kind != GT_NAME || t->interp || !punct(tok(&P, 1), '=')))
        s = gp_error(c, t->pos, SM_ERR_INVALID_ARG, "a define is KEY=VALUE, like T=4096");
    if (!s) {
        *key_pos = t->pos;
        *key = ident(&P, t);
        s = *key ? SM_OK : gp_nomem();
    }
    if (!s) {
        P.i += 2;
        s = parse_expr(&P, value);
    }
    if (!s && tok(&P, 0)->kind != GT_EOF) s = expected(&P, "end of the define");
    gp_lexer_free(&P.lx);
    return s;
}
