/* graph_lex.c — the graph-file lexer: bytes to tokens. Newlines end statements except inside ( ) and
 * [ ], so a long call may span lines. A bare name may carry {expr} interpolations (h{l}.ln1.w); a
 * "quoted name" may hold any bytes (names made by the C API) and is never interpolated. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_syntax.h"

typedef gp_lexer lexer;

static gp_pos pos_at(const lexer *L, size_t off, size_t len)
{
    return (gp_pos){.src = L->src, .line = L->line, .col = (int)(off - L->bol) + 1, .off = off, .len = len};
}

static bool is_alpha(int ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }

static sm_status push(lexer *L, gp_token tk)
{
    if (L->n == L->cap) {
        if (L->cap > INT_MAX / 2) return gp_error(L->c, tk.pos, SM_ERR_FORMAT, "a statement of more than 2^30 tokens");
        int cap = L->cap ? L->cap * 2 : 64;
        gp_token *nt = realloc(L->tok, (size_t)cap * sizeof *nt);
        if (!nt) return gp_nomem();
        L->tok = nt;
        L->cap = cap;
    }
    L->tok[L->n++] = tk;
    return SM_OK;
}

static char peek(const lexer *L, size_t k) { return L->i + k < L->end ? L->t[L->i + k] : '\0'; }

/* A name: [A-Za-z_] then [A-Za-z0-9_.] or {...}; it stops before ".." (a range). */
static sm_status lex_name(lexer *L, gp_token *tk)
{
    size_t s = L->i;
    while (L->i < L->end) {
        char ch = L->t[L->i];
        if (is_alpha(ch) || is_digit(ch)) L->i++;
        else if (ch == '.' && peek(L, 1) != '.') L->i++;
        else if (ch == '{') {
            size_t open = L->i;
            while (L->i < L->end && L->t[L->i] != '}' && L->t[L->i] != '\n') L->i++;
            if (L->i >= L->end || L->t[L->i] != '}')
                return gp_error(L->c, pos_at(L, open, 1), SM_ERR_FORMAT,
                                "unterminated '{' in a name (a block's '{' needs a space before it)");
            L->i++;
            tk->interp = true;
        } else break;
    }
    tk->kind = GT_NAME;
    tk->pos = pos_at(L, s, L->i - s);
    tk->text = L->t + s;
    return SM_OK;
}

static int hexval(char ch)
{
    if (is_digit(ch)) return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Where the quoted name starting at s ends: its closing quote, or where it is cut off. */
static size_t qname_end(const lexer *L, size_t s)
{
    const char *t = L->t;
    size_t i = s + 1;
    while (i < L->end && t[i] != '"' && t[i] != '\n') i += t[i] == '\\' && i + 1 < L->end ? 2 : 1;
    return i;
}

/* "..." with escapes \" \\ \n \t \xHH; one line; no NUL byte. Decoding only shortens, so the
 * name's bytes as written bound its buffer (the rest of the file would make memory quadratic in the
 * number of quoted names). */
static sm_status lex_qname(lexer *L, gp_token *tk)
{
    size_t s = L->i++;
    char *buf = sm_pool_alloc(&L->c->arena, qname_end(L, s) - s + 1);
    if (!buf) return gp_nomem();
    size_t n = 0;
    for (;;) {
        if (L->i >= L->end || L->t[L->i] == '\n')
            return gp_error(L->c, pos_at(L, s, 1), SM_ERR_FORMAT, "unterminated quoted name (close it with '\"')");
        unsigned char ch = (unsigned char)L->t[L->i];
        if (ch == '"') break;
        if (ch < 0x20 || ch == 0x7f)
            return gp_error(L->c, pos_at(L, L->i, 1), SM_ERR_FORMAT,
                            "control character 0x%02x in a quoted name (write it as \\x%02x)", ch, ch);
        if (ch != '\\') {
            buf[n++] = (char)ch;
            L->i++;
            continue;
        }
        char e = peek(L, 1);
        if (e == '"' || e == '\\') buf[n++] = e, L->i += 2;
        else if (e == 'n') buf[n++] = '\n', L->i += 2;
        else if (e == 't') buf[n++] = '\t', L->i += 2;
        else if (e == 'x' && hexval(peek(L, 2)) >= 0 && hexval(peek(L, 3)) >= 0) {
            int v = hexval(peek(L, 2)) * 16 + hexval(peek(L, 3));
            if (v == 0)
                return gp_error(L->c, pos_at(L, L->i, 4), SM_ERR_FORMAT, "a name cannot contain a NUL byte");
            buf[n++] = (char)v;
            L->i += 4;
        } else
            return gp_error(L->c, pos_at(L, L->i, 2), SM_ERR_FORMAT,
                            "unknown escape in a quoted name (use \\\" \\\\ \\n \\t or \\xHH)");
    }
    L->i++;
    buf[n] = '\0';
    tk->kind = GT_QNAME;
    tk->pos = pos_at(L, s, L->i - s);
    tk->text = L->t + s;
    tk->str = buf;
    return SM_OK;
}

/* digits [. digits] [e [+-] digits]; "0..L" lexes as 0, "..", L. */
static sm_status lex_number(lexer *L, gp_token *tk)
{
    size_t s = L->i;
    bool is_float = false;
    while (is_digit(peek(L, 0))) L->i++;
    if (peek(L, 0) == '.' && is_digit(peek(L, 1))) {
        is_float = true;
        L->i++;
        while (is_digit(peek(L, 0))) L->i++;
    }
    if ((peek(L, 0) == 'e' || peek(L, 0) == 'E') &&
        (is_digit(peek(L, 1)) || ((peek(L, 1) == '+' || peek(L, 1) == '-') && is_digit(peek(L, 2))))) {
        is_float = true;
        L->i += 2;
        while (is_digit(peek(L, 0))) L->i++;
    }
    size_t len = L->i - s;
    tk->pos = pos_at(L, s, len);
    tk->text = L->t + s;
    char buf[64];
    if (len >= sizeof buf)
        return gp_error(L->c, tk->pos, SM_ERR_FORMAT, "number is too long (%zu characters)", len);
    memcpy(buf, L->t + s, len);
    buf[len] = '\0';
    errno = 0;
    if (is_float) {
        tk->kind = GT_FLOAT;
        tk->f = strtod(buf, NULL);
        /* an underflow to zero or denormal is fine; an overflow is not */
        if (errno == ERANGE && (tk->f > 1.0 || tk->f < -1.0))
            return gp_error(L->c, tk->pos, SM_ERR_FORMAT, "number %s is out of range", buf);
    } else {
        tk->kind = GT_INT;
        tk->i = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return gp_error(L->c, tk->pos, SM_ERR_FORMAT, "integer %s is out of range (at most %lld)", buf,
                            (long long)INT64_MAX);
    }
    return SM_OK;
}

void gp_lexer_init(gp_lexer *L, gp_ctx *c, const gp_src *src, size_t start, size_t end, int line, int col)
{
    *L = (gp_lexer){.c = c, .src = src, .t = src->text, .i = start, .end = end, .line = line,
                    .bol = start - (size_t)(col - 1)};
}

void gp_lexer_free(gp_lexer *L)
{
    free(L->tok);
    L->tok = NULL;
    L->n = L->cap = 0;
}

sm_status gp_lex_statement(gp_lexer *L)
{
    const char *t = L->t;
    int nest = 0; /* ( and [ depth: newlines inside them do not end a statement */
    sm_status s = SM_OK;
    L->n = 0;
    while (!s) {
        while (L->i < L->end && (t[L->i] == ' ' || t[L->i] == '\t' || t[L->i] == '\r')) L->i++;
        if (L->i < L->end && t[L->i] == '#')
            while (L->i < L->end && t[L->i] != '\n') L->i++;
        gp_token tk = {0};
        if (L->i >= L->end) {
            tk.kind = GT_EOF;
            tk.pos = pos_at(L, L->end, 0);
            return push(L, tk);
        }
        char ch = t[L->i];
        if (ch == '\n') {
            tk.kind = GT_NEWLINE;
            tk.pos = pos_at(L, L->i, 1);
            L->i++;
            L->line++;
            L->bol = L->i;
            if (!nest) return push(L, tk);
            continue;
        }
        if (is_alpha(ch)) s = lex_name(L, &tk);
        else if (is_digit(ch)) s = lex_number(L, &tk);
        else if (ch == '"') s = lex_qname(L, &tk);
        else if (ch == '.' && peek(L, 1) == '.') {
            tk.kind = GT_PUNCT;
            tk.punct = '.';
            tk.pos = pos_at(L, L->i, 2);
            L->i += 2;
        } else if (ch && strchr("=,:()[]{}+-*/%", ch)) {
            tk.kind = GT_PUNCT;
            tk.punct = ch;
            tk.pos = pos_at(L, L->i, 1);
            L->i++;
            if (ch == '(' || ch == '[') nest++;
            if ((ch == ')' || ch == ']') && nest > 0) nest--;
            if (nest > GP_MAX_DEPTH)
                s = gp_error(L->c, tk.pos, SM_ERR_FORMAT, "brackets nested more than %d deep", GP_MAX_DEPTH);
        } else {
            unsigned char u = (unsigned char)ch;
            gp_pos p = pos_at(L, L->i, 1);
            if (u == 0) s = gp_error(L->c, p, SM_ERR_FORMAT, "NUL byte in the text (is this a binary file?)");
            else if (u >= 0x21 && u < 0x7f) s = gp_error(L->c, p, SM_ERR_FORMAT, "unexpected character '%c'", ch);
            else s = gp_error(L->c, p, SM_ERR_FORMAT, "unexpected byte 0x%02x (names outside quotes are ASCII)", u);
        }
        if (!s) s = push(L, tk);
    }
    return s;
}

const char *gp_token_desc(const gp_token *t, char *buf, size_t cap)
{
    int n = t->pos.len > 40 ? 40 : (int)t->pos.len;
    switch (t->kind) {
    case GT_EOF: snprintf(buf, cap, "end of file"); break;
    case GT_NEWLINE: snprintf(buf, cap, "end of line"); break;
    case GT_NAME: snprintf(buf, cap, "name '%.*s'", n, t->text); break;
    case GT_QNAME: snprintf(buf, cap, "quoted name %.*s", n, t->text); break;
    case GT_INT:
    case GT_FLOAT: snprintf(buf, cap, "number %.*s", n, t->text); break;
    case GT_PUNCT: snprintf(buf, cap, t->punct == '.' ? "'..'" : "'%c'", t->punct); break;
    }
    return buf;
}
