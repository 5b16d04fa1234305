/* graph_diag.c — diagnostics for graph files: "file:line:col: error: ..." with the source line and a
 * caret, did-you-mean suggestions by edit distance, and the arena the syntax tree lives in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "graph_syntax.h"

sm_status gp_nomem(void) { return sm_error(SM_ERR_NOMEM, "reading a graph file: out of memory"); }

/* ---- error messages ---- */

typedef struct {
    char *buf;
    size_t cap, n;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_buf *o, const char *fmt, ...)
{
    if (o->n + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->buf + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    if (k > 0) o->n = o->n + (size_t)k < o->cap ? o->n + (size_t)k : o->cap - 1;
}

/* Display width of bytes before the caret: a UTF-8 character counts once (continuation bytes do not),
 * and tabs are copied so the caret lines up under a tab-indented line. */
#define ECHO_MAX 160

static void put_source(out_buf *o, gp_pos at)
{
    const char *t = at.src->text;
    size_t n = at.src->len, off = at.off > n ? n : at.off;
    size_t bol = off, eol = off;
    while (bol > 0 && t[bol - 1] != '\n') bol--;
    while (eol < n && t[eol] != '\n' && t[eol] != '\r') eol++;
    /* long lines: show a window around the caret */
    size_t from = bol, to = eol;
    bool cut_left = false, cut_right = false;
    if (to - from > ECHO_MAX) {
        if (off - from > ECHO_MAX / 2) {
            from = off - ECHO_MAX / 2;
            cut_left = true;
        }
        if (to - from > ECHO_MAX) {
            to = from + ECHO_MAX;
            cut_right = true;
        }
    }
    put(o, "\n%5d | %s", at.line, cut_left ? "..." : "");
    for (size_t i = from; i < to; i++) {
        unsigned char ch = (unsigned char)t[i];
        put(o, "%c", ch == '\t' || (ch >= 0x20 && ch != 0x7f) ? (char)ch : '?');
    }
    put(o, "%s\n      | %s", cut_right ? "..." : "", cut_left ? "   " : "");
    for (size_t i = from; i < off && i < to; i++) {
        unsigned char ch = (unsigned char)t[i];
        if ((ch & 0xC0) == 0x80) continue;
        put(o, "%c", ch == '\t' ? '\t' : ' ');
    }
    put(o, "^");
    size_t len = at.len, end = off + len;
    if (end > to) end = to;
    for (size_t i = off + 1; i < end; i++)
        if (((unsigned char)t[i] & 0xC0) != 0x80) put(o, "~");
}

sm_status gp_error(const gp_ctx *c, gp_pos at, sm_status s, const char *fmt, ...)
{
    char msg[2048], full[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out_buf o = {full, sizeof full, 0};
    full[0] = '\0';
    if (!at.src) {
        put(&o, "error: %s", msg);
    } else {
        put(&o, "%s:%d:%d: error: %s", at.src->name, at.line, at.col, msg);
        put_source(&o, at);
    }
    for (int i = c ? c->n_frames - 1 : -1; i >= 0; i--) {
        const gp_frame *f = &c->frames[i];
        put(&o, "\n%s:%d:%d: note: in iteration %s=%lld of this repeat", f->pos.src->name, f->pos.line, f->pos.col,
            f->var, (long long)f->value);
    }
    return sm_error(s, "%s", full);
}

/* ---- did you mean ---- */

/* Optimal string alignment distance (a swap of neighbours counts as one edit), case-insensitive,
 * computed only for short words: names longer than that are not worth guessing at. */
#define SUGGEST_MAX 64

static int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

static int osa(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na >= SUGGEST_MAX || nb >= SUGGEST_MAX) return 1 << 20;
    int d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            int cost = lower(a[i - 1]) != lower(b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb];
}

void gp_suggest_init(gp_suggest *s, const char *word)
{
    s->word = word;
    s->best = NULL;
    size_t n = strlen(word);
    /* about one edit per three letters, at most three; a one-letter word is only matched up
     * to case (any other short word is one edit away, which suggests nothing) */
    s->best_dist = n <= 1 ? 0 : n <= 5 ? 1 : n <= 8 ? 2 : 3;
    s->best_dist++; /* strictly-less comparison below */
}

void gp_suggest_add(gp_suggest *s, const char *cand)
{
    if (!cand || !*cand || strcmp(cand, s->word) == 0) return;
    int d = osa(s->word, cand);
    if (d < s->best_dist) {
        s->best_dist = d;
        s->best = cand;
    }
}

const char *gp_suggest_text(const gp_suggest *s, char *buf, size_t cap)
{
    if (!s->best) snprintf(buf, cap, "%s", "");
    else snprintf(buf, cap, "; did you mean '%s'?", s->best);
    return buf;
}
