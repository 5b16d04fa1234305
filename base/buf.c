/* buf.c — the growable string buffer every writer of text uses (reports, JSON, SVG, graph files). */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sm_buf_init(sm_buf *b) { memset(b, 0, sizeof *b); }

void sm_buf_free(sm_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool buf_reserve(sm_buf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void sm_buf_append(sm_buf *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sm_buf_puts(sm_buf *b, const char *s) { sm_buf_append(b, s, strlen(s)); }

void sm_buf_printf(sm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sm_buf_json_string(sm_buf *b, const char *s, size_t n)
{
    sm_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied verbatim are appended in runs */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        }
        if (!esc) continue;
        sm_buf_append(b, s + run, i - run);
        sm_buf_puts(b, esc);
        run = i + 1;
    }
    sm_buf_append(b, s + run, n - run);
    sm_buf_append(b, "\"", 1);
}

void sm_buf_json_number(sm_buf *b, double x, int decimals)
{
    if (isfinite(x)) sm_buf_printf(b, "%.*f", decimals, x);
    else sm_buf_puts(b, "null");
}
