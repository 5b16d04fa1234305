/* graph_syntax.h — what the graph-file lexer, parser, evaluator and diagnostics share: source
 * positions, tokens, the syntax tree and the arena it lives in. Internal to frontends/graph_*.c;
 * the format itself is documented in docs/graph-format.md. */
#ifndef SM_GRAPH_SYNTAX_H
#define SM_GRAPH_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pool.h"
#include "smallmind.h"

/* ---- sources and positions ---- */

typedef struct gp_src {
    const char *name;     /* file name as the user gave it, or "<command line>" */
    const char *text;     /* the whole text; not NUL-terminated necessarily */
    size_t len;
} gp_src;

typedef struct gp_pos {
    const gp_src *src;
    int line, col;        /* 1-based; col counts bytes */
    size_t off, len;      /* byte span in src->text, for the caret and its underline */
} gp_pos;

/* Everything the parser makes lives in one sm_pool (base/pool.h), freed at once: no leaks on any error path. */

/* ---- tokens ---- */

typedef enum gp_tok_kind {
    GT_EOF = 0,
    GT_NEWLINE,
    GT_NAME,              /* bare name, maybe with {expr} interpolations: raw span in text/len */
    GT_QNAME,             /* "quoted name": decoded bytes in str */
    GT_INT,
    GT_FLOAT,
    GT_PUNCT              /* one of = , : ( ) [ ] { } + - * / %, or '.' standing for ".." */
} gp_tok_kind;

typedef struct gp_token {
    gp_tok_kind kind;
    gp_pos pos;
    const char *text;     /* raw span (pos.len bytes) */
    char punct;
    bool interp;          /* GT_NAME containing '{' */
    int64_t i;
    double f;
    const char *str;      /* GT_QNAME: decoded, NUL-terminated */
} gp_token;

/* ---- syntax tree ---- */

typedef enum gp_expr_kind { GE_INT, GE_FLOAT, GE_NAME, GE_NEG, GE_BIN, GE_CALL } gp_expr_kind;

typedef struct gp_expr gp_expr;
struct gp_expr {
    gp_expr_kind kind;
    gp_pos pos;
    char op;              /* GE_BIN: + - * / % */
    int64_t i;
    double f;
    const char *name;     /* GE_NAME, GE_CALL */
    gp_expr *a, *b;       /* GE_NEG: a; GE_BIN: a op b */
    gp_expr **args;       /* GE_CALL */
    int n_args;
};

/* A tensor name: literal pieces and {expr} pieces, concatenated when evaluated. */
typedef struct gp_name_part {
    const char *lit;      /* NULL for an expression part */
    size_t len;
    gp_expr *expr;
} gp_name_part;

typedef struct gp_name {
    gp_pos pos;
    int n_parts;
    gp_name_part *parts;
} gp_name;

typedef struct gp_kv {
    const char *key;
    gp_pos pos;           /* of the key */
    gp_expr *val;
} gp_kv;

typedef struct gp_type {
    gp_pos pos;           /* of the dtype name */
    const char *dtype;
    int ndim;
    gp_expr *dims[SM_MAX_DIMS];
} gp_type;

typedef enum gp_stmt_kind {
    GS_PARAM, GS_INPUT, GS_WEIGHT, GS_TENSOR, GS_VALUE, GS_ALIAS, GS_OUTPUT, GS_CHECKPOINT, GS_LOSS, GS_GRAD, GS_REPEAT
} gp_stmt_kind;

typedef struct gp_stmt gp_stmt;
struct gp_stmt {
    gp_stmt_kind kind;
    gp_pos pos;           /* of the statement's first token */
    gp_name lhs;          /* the name declared or bound (GS_GRAD: the parameter) */
    bool has_type;
    gp_type type;
    const char *op;       /* GS_VALUE */
    gp_pos op_pos;
    gp_name *args;        /* GS_VALUE: positional tensors; GS_OUTPUT, GS_CHECKPOINT: the names; GS_ALIAS/GS_GRAD: args[0] */
    int n_args;
    gp_kv *attrs;         /* GS_VALUE: key=value inside the call */
    int n_attrs;
    gp_kv *opts;          /* key=value after a declaration or call */
    int n_opts;
    const char *var;      /* GS_PARAM: its name; GS_REPEAT: the loop variable */
    gp_pos var_pos;
    gp_expr *value, *hi;  /* GS_PARAM: value; GS_REPEAT: value..hi */
    gp_stmt *body;        /* GS_REPEAT */
    int n_body;
};

typedef struct gp_file {
    gp_stmt *stmts;
    int n_stmts;
} gp_file;

/* ---- context shared by the passes ---- */

typedef struct gp_frame {  /* one active repeat iteration, for "in iteration l=3" notes */
    gp_pos pos;
    const char *var;
    int64_t value;
} gp_frame;

#define GP_MAX_DEPTH 64    /* expression and repeat nesting */

typedef struct gp_ctx {
    sm_pool arena;
    int depth;
    gp_frame frames[GP_MAX_DEPTH];
    int n_frames;
} gp_ctx;

/* Sets the last error to "file:line:col: error: msg", the source line with a caret under the span,
 * and a note per active repeat iteration; returns s. */
sm_status gp_error(const gp_ctx *c, gp_pos at, sm_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
sm_status gp_nomem(void);

/* Did-you-mean: feed candidates, then read the closest one within a small edit distance (or NULL). */
typedef struct gp_suggest {
    const char *word;
    const char *best;
    int best_dist;
} gp_suggest;
void gp_suggest_init(gp_suggest *s, const char *word);
void gp_suggest_add(gp_suggest *s, const char *cand);
/* "; did you mean 'x'?" or "" — for appending to a message. buf needs SM_NAME_MAX + 24 bytes. */
const char *gp_suggest_text(const gp_suggest *s, char *buf, size_t cap);

/* The lexer hands out one statement's tokens at a time, so its memory is a statement's, not the
 * file's (a 2^20-line file made 16M tokens). */
typedef struct gp_lexer {
    gp_ctx *c;
    const gp_src *src;
    const char *t;        /* src->text */
    size_t i, end;        /* next byte; end of the range lexed */
    int line;
    size_t bol;           /* offset the current line starts at (column base) */
    gp_token *tok;        /* the current statement's tokens (malloc'd, reused) */
    int n, cap;
} gp_lexer;

/* Lexes src->text[start, end), whose first byte sits at (line, col). */
void gp_lexer_init(gp_lexer *L, gp_ctx *c, const gp_src *src, size_t start, size_t end, int line, int col);
/* Replaces tok[0, n) with the next statement's tokens: up to and including its end of line (newlines
 * inside ( ) and [ ] do not end it), or up to the end of the range, marked by a GT_EOF token. */
sm_status gp_lex_statement(gp_lexer *L);
void gp_lexer_free(gp_lexer *L);
/* "'='", "end of line", "name 'x'" — for "expected X, found Y". */
const char *gp_token_desc(const gp_token *t, char *buf, size_t cap);

/* Parses a whole file / a "-D KEY=VALUE" define. */
sm_status gp_parse_file(gp_ctx *c, const gp_src *src, gp_file *out);
sm_status gp_parse_define(gp_ctx *c, const gp_src *src, const char **key, gp_pos *key_pos, gp_expr **value);

#endif
