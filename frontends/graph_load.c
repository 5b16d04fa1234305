/* graph_load.c — loading graph files: reading the file, verifying the checksum line a saved file
 * carries, parsing the -D defines, then parse + evaluate (graph_parse.c, graph_eval.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../base/error.h"
#include "graph_eval.h"
#include "graph_parse.h"
#include "graph_print.h"

#define MAX_FILE_BYTES ((size_t)64 << 20)

/* A saved file ends with "# smallmind-checksum xxh3:<16 hex>\n" over every byte before that line.
 * A file without the line (written by hand) is taken as it is; one whose line does not match was
 * changed after it was saved. */
static sm_status verify_checksum(const gp_src *src)
{
    size_t n = src->len, tag = strlen(SM_GRAPH_CHECKSUM_TAG);
    while (n > 0 && (src->text[n - 1] == '\n' || src->text[n - 1] == '\r')) n--;
    size_t bol = n;
    while (bol > 0 && src->text[bol - 1] != '\n') bol--;
    if (n - bol != tag + 16 || memcmp(src->text + bol, SM_GRAPH_CHECKSUM_TAG, tag) != 0) return SM_OK;
    char hex[17];
    memcpy(hex, src->text + bol + tag, 16);
    hex[16] = '\0';
    uint64_t want = 0;
    for (int i = 0; i < 16; i++) {
        char ch = hex[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return SM_OK; /* not our line */
        want = want << 4 | (uint64_t)v;
    }
    uint64_t got = XXH3_64bits(src->text, bol);
    if (got == want) return SM_OK;
    int line = 1;
    for (size_t i = 0; i < bol; i++) line += src->text[i] == '\n';
    gp_pos at = {.src = src, .line = line, .col = 1, .off = bol, .len = n - bol};
    return gp_error(NULL, at, SM_ERR_FORMAT,
                    "checksum mismatch (the text hashes to %016" PRIx64 "): the file changed after smallmind saved "
                    "it; if you edited it on purpose, delete this line",
                    got);
}

static sm_status parse_defines(gp_ctx *c, const char *const *defs, int n, bool soft, gp_define *out)
{
    for (int i = 0; i < n; i++) {
        gp_src *src = gp_alloc(&c->arena, sizeof *src);
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
    gp_define *defs = gp_alloc(&c.arena, (size_t)(n_defs ? n_defs : 1) * sizeof *defs);
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
    gp_arena_free(&c.arena);
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
    *text = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sm_error(SM_ERR_IO, "cannot open graph file '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    sm_status s = buf ? SM_OK : gp_nomem();
    while (!s) {
        if (n == cap) {
            char *nb = cap >= MAX_FILE_BYTES ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                s = cap >= MAX_FILE_BYTES ? sm_error(SM_ERR_FORMAT, "graph file '%s' is larger than %zu MiB", path,
                                                     MAX_FILE_BYTES >> 20)
                                          : gp_nomem();
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, fp);
        n += k;
        if (k == 0) {
            if (ferror(fp)) s = sm_error(SM_ERR_IO, "reading graph file '%s' failed", path);
            break;
        }
    }
    fclose(fp);
    if (s) {
        free(buf);
        return s;
    }
    *text = buf;
    *len = n;
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
