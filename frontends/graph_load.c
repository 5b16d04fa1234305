/* graph_load.c — loading graph files: reading the file, verifying the checksum line a saved file
 * carries, parsing the -D defines, then parse + evaluate (graph_parse.c, graph_eval.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

#include "../base/atomic_file.h"
#include "../base/error.h"
#include "graph_eval.h"
#include "graph_parse.h"
#include "graph_print.h"

#define MAX_FILE_BYTES ((size_t)64 << 20)

/* A saved file ends with the line "# smallmind-checksum xxh3:<16 lowercase hex>" over every byte
 * before that line (blank lines may follow it). A file without such a line (written by hand) is
 * taken as it is. Any other line that looks like one — not last, another case, a short hash, spaces —
 * is an error, so that no edit of a saved file slips through a checksum line it made malformed. */
#define CHECKSUM_WORD "smallmind-checksum"
#define CHECKSUM_HEX 16

typedef struct src_line {
    size_t off, len;  /* without the '\n' */
    int line;
} src_line;

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
    return true;
}

/* A comment whose text starts with the checksum word in any case. */
static bool checksum_like(const char *p, size_t n)
{
    size_t i = 0, k = strlen(CHECKSUM_WORD);
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    if (i == n || p[i++] != '#') return false;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    return n - i >= k && strncasecmp(p + i, CHECKSUM_WORD, k) == 0;
}

/* The exact form smallmind writes; *want gets the hash it holds. */
static bool checksum_exact(const char *p, size_t n, uint64_t *want)
{
    size_t tag = strlen(SM_GRAPH_CHECKSUM_TAG);
    if (n != tag + CHECKSUM_HEX || memcmp(p, SM_GRAPH_CHECKSUM_TAG, tag) != 0) return false;
    *want = 0;
    for (size_t i = tag; i < n; i++) {
        int v = p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;
        if (v < 0) return false;
        *want = *want << 4 | (uint64_t)v;
    }
    return true;
}

static sm_status checksum_error(const gp_src *src, src_line at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sm_status checksum_error(const gp_src *src, src_line at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp_pos pos = {.src = src, .line = at.line, .col = 1, .off = at.off, .len = at.len};
    return gp_error(NULL, pos, SM_ERR_FORMAT, "%s; if you edited it on purpose, delete this line", msg);
}

static sm_status verify_checksum(const gp_src *src)
{
    src_line mark = {0};  /* the first checksum-looking line; line 0: none yet */
    int line = 1;
    for (size_t off = 0; off < src->len; line++) {
        const char *p = src->text + off, *nl = memchr(p, '\n', src->len - off);
        size_t n = nl ? (size_t)(nl - p) : src->len - off;
        if (mark.line && !blank(p, n))
            return checksum_error(src, mark, "a checksum line must be the file's last line, and line %d follows "
                                  "it: the file changed after smallmind saved it", line);
        if (checksum_like(p, n)) mark = (src_line){off, n, line};
        off += n + 1;
    }
    if (!mark.line) return SM_OK;
    uint64_t want, got = XXH3_64bits(src->text, mark.off);
    if (!checksum_exact(src->text + mark.off, mark.len, &want))
        return checksum_error(src, mark, "malformed checksum line: smallmind writes '%s' and %d lowercase hex "
                              "digits, alone on the line", SM_GRAPH_CHECKSUM_TAG, CHECKSUM_HEX);
    if (got != want)
        return checksum_error(src, mark, "checksum mismatch (the text hashes to %016" PRIx64 "): the file changed "
                              "after smallmind saved it", got);
    return SM_OK;
}

static sm_status parse_defines(gp_ctx *c, const char *const *defs, int n, bool soft, gp_define *out)
{
    for (int i = 0; i < n; i++) {
        gp_src *src = sm_pool_alloc(&c->arena, sizeof *src);
        if (!src) return gp_nomem();
        if (!defs || !defs[i]) return sm_error(SM_ERR_INVALID_ARG, "define %d is NULL", i);
        src->name = "<command line>";
        src->text = defs[i];
        src->len = strlen(defs[i]);
        out[i].soft = soft;
        sm_status s = gp_parse_define(c, src, &out[i].key, &out[i].pos, &out[i].value);
        if (s) return s == SM_ERR_NOMEM ? s : SM_ERR_INVALID_ARG;
    }
    return SM_OK;
}

static sm_status copy_params(const gp_params *gp, sm_graph_params *out)
{
    size_t bytes = (size_t)gp->n * sizeof *out->v;
    for (int i = 0; i < gp->n; i++) bytes += strlen(gp->v[i].name) + 1;
    out->v = malloc(bytes ? bytes : 1);
    if (!out->v) return gp_nomem();
    char *names = (char *)(out->v + gp->n);
    for (int i = 0; i < gp->n; i++) {
        size_t len = strlen(gp->v[i].name) + 1;
        memcpy(names, gp->v[i].name, len);
        out->v[i] = (sm_graph_param_value){.name = names, .is_float = gp->v[i].val.is_float,
                                           .i = gp->v[i].val.i, .f = gp->v[i].val.f};
        names += len;
    }
    out->n = gp->n;
    return SM_OK;
}

sm_status sm_graph_load_text(const char *text, size_t len, const char *name, const sm_graph_load_opts *o,
                             sm_graph **out, sm_graph_params *params)
{
    static const sm_graph_load_opts none = {0};
    if (!out || (!text && len)) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_load: NULL argument");
    *out = NULL;
    if (params) *params = (sm_graph_params){0};
    if (!o) o = &none;
    if (o->n_defines < 0 || o->n_soft_defines < 0 || o->n_defines > 4096 || o->n_soft_defines > 4096)
        return sm_error(SM_ERR_INVALID_ARG, "sm_graph_load: bad define count");
    gp_src src = {.name = name ? name : "<string>", .text = text ? text : "", .len = len};
    gp_ctx c = {0};
    gp_file f;
    gp_params gparams = {0};
    sm_graph *g = NULL;
    int n_defs = o->n_defines + o->n_soft_defines;
    gp_define *defs = sm_pool_alloc(&c.arena, (size_t)(n_defs ? n_defs : 1) * sizeof *defs);
    sm_status s = defs ? SM_OK : gp_nomem();
    if (!s) s = verify_checksum(&src);
    if (!s) s = parse_defines(&c, o->defines, o->n_defines, false, defs);
    if (!s) s = parse_defines(&c, o->soft_defines, o->n_soft_defines, true, defs + o->n_defines);
    if (!s) s = gp_parse_file(&c, &src, &f);
    if (!s) s = sm_graph_create(&g);
    if (!s)
        s = gp_eval(&c, &f, defs, n_defs, o->max_tensors > 0 ? o->max_tensors : SM_GRAPH_LOAD_MAX_TENSORS,
                    o->max_steps > 0 ? o->max_steps : SM_GRAPH_LOAD_MAX_STEPS, g, &gparams);
    if (!s && params) s = copy_params(&gparams, params);
    sm_pool_free(&c.arena);
    if (s) {
        sm_graph_free(g);
        return s;
    }
    *out = g;
    return SM_OK;
}

void sm_graph_params_free(sm_graph_params *p)
{
    if (!p) return;
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

bool sm_graph_params_int(const sm_graph_params *p, const char *name, int64_t *out)
{
    for (int i = 0; p && i < p->n; i++)
        if (!strcmp(p->v[i].name, name) && !p->v[i].is_float) {
            *out = p->v[i].i;
            return true;
        }
    return false;
}

/* ---- public API ---- */

sm_status sm_graph_load_string(const char *text, const char *name, const char *const *defines, int n_defines,
                               sm_graph **out)
{
    if (!text) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_load_string: text is NULL");
    sm_graph_load_opts o = {.defines = defines, .n_defines = n_defines};
    return sm_graph_load_text(text, strlen(text), name, &o, out, NULL);
}

sm_status sm_graph_read_file(const char *path, char **text, size_t *len)
{
    void *data = NULL;
    *text = NULL;
    *len = 0;
    sm_status s = sm_file_read_all(path, MAX_FILE_BYTES, &data, len);
    if (s) return sm_error_prefix(s, "graph file: ");
    *text = data;
    return SM_OK;
}

sm_status sm_graph_load_file_ex(const char *path, const sm_graph_load_opts *o, sm_graph **out,
                                sm_graph_params *params)
{
    if (!path || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_load_file: NULL argument");
    char *text;
    size_t len;
    sm_status s = sm_graph_read_file(path, &text, &len);
    if (s) return s;
    s = sm_graph_load_text(text, len, path, o, out, params);
    free(text);
    return s;
}

sm_status sm_graph_load_file(const char *path, const char *const *defines, int n_defines, sm_graph **out)
{
    sm_graph_load_opts o = {.defines = defines, .n_defines = n_defines};
    return sm_graph_load_file_ex(path, &o, out, NULL);
}
