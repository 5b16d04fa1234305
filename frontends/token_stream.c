/* token_stream.c — reading a file's tokens a piece at a time (see token_stream.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../base/atomic_file.h"
#include "token_stream.h"

typedef struct stream {
    const char *path;
    const sm_tokenizer *tok;
    int ids_file;
    int64_t line, count;  /* ids files: the line reached and the ids read, for messages */
    int32_t *ids;         /* ids files: one piece's ids */
    sm_token_sink fn;
    void *ctx;
} stream;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Where a piece of buf[0..len) may end so that what follows encodes alone as it would in place:
 * text: before a printable ASCII character that starts a line (GPT-2's pre-tokenizer always splits
 * there: the newline before it is whitespace that no pattern joins to it); ids: after whitespace.
 * 0 if there is no such place. */
static size_t cut(const stream *s, const char *buf, size_t len)
{
    for (size_t i = len; i > 0; i--) {
        if (s->ids_file ? is_space(buf[i - 1]) : buf[i - 1] == '\n' && i < len && buf[i] > ' ' && buf[i] < 0x7f)
            return i;
    }
    return 0;
}

static sm_status parse_ids(stream *s, char *text, size_t len)
{
    int64_t k = 0, vocab = sm_tokenizer_vocab_size(s->tok);
    char saved = text[len];   /* the next piece's first byte, or the byte the buffer has to spare */
    sm_status st = SM_OK;
    text[len] = '\0';        /* so strtoll stops at the piece's end */
    for (char *p = text; p < text + len;) {
        if (is_space(*p)) {
            s->line += *p++ == '\n';
            continue;
        }
        char *e;
        errno = 0;
        long long x = strtoll(p, &e, 10);
        if (e == p || errno || x < 0 || x > INT32_MAX || (e < text + len && !is_space(*e))) {
            st = sm_error(SM_ERR_FORMAT, "%s:%lld: expected a token id (a decimal number >= 0)", s->path,
                          (long long)s->line);
            break;
        }
        if (x >= vocab) {
            st = sm_error(SM_ERR_FORMAT, "%s: token id %lld at position %lld is outside the vocabulary (%lld)",
                          s->path, x, (long long)(s->count + k), (long long)vocab);
            break;
        }
        s->ids[k++] = (int32_t)x;
        p = e;
    }
    text[len] = saved;
    s->count += k;
    return st ? st : k ? s->fn(s->ctx, s->ids, k) : SM_OK;
}

static sm_status emit(stream *s, char *text, size_t len)
{
    if (s->ids_file) return parse_ids(s, text, len);
    int32_t *ids = NULL;
    size_t n = 0;
    sm_status st = sm_tokenizer_encode(s->tok, text, len, &ids, &n);
    if (!st && n) st = s->fn(s->ctx, ids, (int64_t)n);
    free(ids);
    return st;
}

sm_status sm_token_stream_file(const char *path, const sm_tokenizer *tok, int ids_file, size_t chunk,
                               sm_token_sink fn, void *ctx)
{
    if (!path || !tok || !fn || chunk < 1)
        return sm_error(SM_ERR_INVALID_ARG, "sm_token_stream_file: path, tok and fn must be given and chunk >= 1");
    sm_status st = sm_file_check_input(path);
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return sm_error(SM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    stream s = {.path = path, .tok = tok, .ids_file = ids_file, .line = 1, .fn = fn, .ctx = ctx};
    size_t cap = chunk, len = 0;
    char *buf = NULL;
    for (int eof = 0; !st && !eof;) {
        if (!buf || len == cap) {   /* the first piece, or a line longer than the piece: grow */
            if (buf) cap *= 2;
            char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap + 1) : NULL;
            int32_t *ni = ids_file ? realloc(s.ids, sizeof *ni * (cap / 2 + 1)) : NULL;
            if (ni) s.ids = ni;
            if (!nb || (ids_file && !ni)) {
                free(nb ? nb : buf);
                buf = NULL;
                st = sm_error(SM_ERR_NOMEM, "reading '%s': out of memory for a piece of %zu bytes", path, cap);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0 && ferror(f)) st = sm_error(SM_ERR_IO, "reading '%s': %s", path, strerror(errno));
        eof = feof(f);
        size_t at = eof ? len : cut(&s, buf, len);
        if (!st && at) {
            st = emit(&s, buf, at);
            memmove(buf, buf + at, len - at);
            len -= at;
        }
    }
    free(buf);
    free(s.ids);
    fclose(f);
    return st;
}
