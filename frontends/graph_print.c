/* graph_print.c — the canonical printer: any graph (built by the C API or loaded) as a graph file
 * with no parameters, no repeats and concrete shapes, one tensor per line in tensor-id order, so that
 * loading it gives back the same tensors with the same ids. Its XXH3 hash is the graph's identity.
 * Saving writes it atomically with a checksum line. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../base/atomic_file.h"
#include "../base/buf.h"
#include "../base/error.h"
#include "../graph/graph.h"
#include "graph_print.h"

static bool bare_ok(const char *s)
{
    bool alpha0 = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_';
    if (!alpha0) return false;
    for (const char *p = s + 1; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                  (*p == '.' && p[1] != '.');
        if (!ok) return false;
    }
    return true;
}

/* A name as the lexer reads it back: bare where it can be, else quoted with escapes. */
static void put_name(sm_buf *b, const char *s)
{
    if (bare_ok(s)) {
        sm_buf_printf(b, "%s", s);
        return;
    }
    sm_buf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') sm_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) sm_buf_printf(b, "\\x%02x", *p);
        else sm_buf_printf(b, "%c", *p);
    }
    sm_buf_printf(b, "\"");
}

static void put_type(sm_buf *b, const sm_tensor_rec *r)
{
    sm_buf_printf(b, "%s[", sm_dtype_name(r->dtype));
    for (int i = 0; i < r->ndim; i++) sm_buf_printf(b, i ? ", %lld" : "%lld", (long long)r->ne[i]);
    sm_buf_printf(b, "]");
}

static void put_int(sm_buf *b, int64_t v)
{
    if (v == INT64_MIN) sm_buf_printf(b, "(-9223372036854775807 - 1)");
    else sm_buf_printf(b, "%lld", (long long)v);
}

/* The shortest decimal that reads back (as the loader reads it: strtod, then to float) to the same
 * float, always with a '.' or an exponent so it reads back as a float. */
static void put_float(sm_buf *b, float f)
{
    if (isnan(f)) {
        sm_buf_printf(b, "nan");
        return;
    }
    if (isinf(f)) {
        sm_buf_printf(b, f < 0 ? "-inf" : "inf");
        return;
    }
    char buf[48];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        float back = (float)strtod(buf, NULL);
        if (back == f && signbit(back) == signbit(f)) break;
    }
    sm_buf_printf(b, "%s%s", buf, strpbrk(buf, ".e") ? "" : ".0");
}

static bool is_dtype_attr(const char *name) { return !strcmp(name, "dtype") || !strcmp(name, "to"); }

static void put_attrs(sm_buf *b, const sm_node *n, bool first)
{
    for (int k = 0; k < SM_MAX_IATTRS; k++) {
        const char *nm = sm_op_iattr_name(n->op, k);
        if (!nm) continue;
        sm_buf_printf(b, "%s%s=", first ? "" : ", ", nm);
        first = false;
        int64_t v = n->attrs.i[k];
        if (is_dtype_attr(nm) && v >= 0 && v < SM_DTYPE_COUNT) sm_buf_printf(b, "%s", sm_dtype_name((sm_dtype)v));
        else put_int(b, v);
    }
    for (int k = 0; k < SM_MAX_FATTRS; k++) {
        const char *nm = sm_op_fattr_name(n->op, k);
        if (!nm) continue;
        sm_buf_printf(b, "%s%s=", first ? "" : ", ", nm);
        first = false;
        put_float(b, n->attrs.f[k]);
    }
}

static sm_status put_leaf(sm_buf *b, const sm_tensor_rec *r)
{
    static const char *const inits[] = {"zeros", "ones", "normal"};
    const char *kw = r->role == SM_ROLE_INPUT ? "input" : r->role == SM_ROLE_PARAM ? "weight" : "tensor";
    sm_buf_printf(b, "%s ", kw);
    put_name(b, r->name);
    sm_buf_printf(b, ": ");
    put_type(b, r);
    if (r->role == SM_ROLE_PARAM) {
        if ((unsigned)r->init > SM_INIT_NORMAL)
            return sm_error(SM_ERR_INVALID_ARG, "printing the graph: parameter '%s' has unknown init %d", r->name,
                            (int)r->init);
        sm_buf_printf(b, " init=%s", inits[r->init]);
        if (r->init == SM_INIT_NORMAL) {
            sm_buf_printf(b, "(");
            put_float(b, r->init_std);
            sm_buf_printf(b, ")");
        }
        if (r->trainable != (r->dtype != SM_I32)) sm_buf_printf(b, " trainable=%s", r->trainable ? "true" : "false");
    } else if (r->role != SM_ROLE_INPUT) {
        sm_buf_printf(b, " role=%s", sm_role_name(r->role));
    }
    sm_buf_printf(b, "\n");
    return SM_OK;
}

static sm_status put_node(sm_buf *b, const sm_graph *g, sm_tensor t)
{
    const sm_tensor_rec *r = &g->t[t];
    if (r->node >= g->n_nodes || g->nodes[r->node].out != t)
        return sm_error(SM_ERR_INTERNAL, "printing the graph: tensor '%s' and its node disagree", r->name);
    const sm_node *n = &g->nodes[r->node];
    put_name(b, r->name);
    sm_buf_printf(b, ": ");
    put_type(b, r);
    sm_buf_printf(b, " = %s(", sm_op_name(n->op));
    for (int i = 0; i < n->n_in; i++) {
        if (!sm_graph_valid(g, n->in[i]) || n->in[i] >= t)
            return sm_error(SM_ERR_UNSUPPORTED,
                            "printing the graph: node '%s' reads a tensor made after it; the canonical form "
                            "lists tensors in the order they were made",
                            r->name);
        if (i) sm_buf_printf(b, ", ");
        put_name(b, g->t[n->in[i]].name);
    }
    put_attrs(b, n, n->n_in == 0);
    sm_buf_printf(b, ")");
    /* the loader makes a value an activation, and marking it as an output makes it an output; any
     * other role is written out */
    sm_role expect = r->is_output ? SM_ROLE_OUTPUT : SM_ROLE_ACTIVATION;
    if (r->role != expect) sm_buf_printf(b, " role=%s", sm_role_name(r->role));
    sm_buf_printf(b, "\n");
    return SM_OK;
}

sm_status sm_graph_print(const sm_graph *g, char **out_text)
{
    if (!g || !out_text) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_print: NULL argument");
    *out_text = NULL;
    sm_buf b = {0};
    sm_status s = SM_OK;
    sm_buf_printf(&b, "smallmind-graph 1\n");
    for (sm_tensor t = 0; !s && t < g->n_t; t++) {
        const sm_tensor_rec *r = &g->t[t];
        if ((unsigned)r->dtype >= SM_DTYPE_COUNT || (unsigned)r->role >= SM_ROLE_COUNT)
            s = sm_error(SM_ERR_INTERNAL, "printing the graph: tensor '%s' has a bad dtype or role", r->name);
        else s = r->node < 0 ? put_leaf(&b, r) : put_node(&b, g, t);
    }
    for (sm_tensor t = 0; !s && t < g->n_t; t++)
        if (g->t[t].is_output && t != g->loss) {
            sm_buf_printf(&b, "output ");
            put_name(&b, g->t[t].name);
            sm_buf_printf(&b, "\n");
        }
    for (sm_tensor t = 0; !s && t < g->n_t; t++)
        if (g->t[t].checkpoint) {
            sm_buf_printf(&b, "checkpoint ");
            put_name(&b, g->t[t].name);
            sm_buf_printf(&b, "\n");
        }
    if (!s && sm_graph_valid(g, g->loss)) {
        sm_buf_printf(&b, "loss ");
        put_name(&b, g->t[g->loss].name);
        sm_buf_printf(&b, "\n");
    }
    for (sm_tensor t = 0; !s && t < g->n_t; t++)
        if (sm_graph_valid(g, g->t[t].grad)) {
            sm_buf_printf(&b, "grad ");
            put_name(&b, g->t[t].name);
            sm_buf_printf(&b, " = ");
            put_name(&b, g->t[g->t[t].grad].name);
            sm_buf_printf(&b, "\n");
        }
    if (!s && b.failed) s = sm_error(SM_ERR_NOMEM, "printing the graph: out of memory");
    if (s) {
        free(b.data);
        return s;
    }
    *out_text = b.data;
    return SM_OK;
}

uint64_t sm_graph_identity(const sm_graph *g)
{
    char *text;
    if (sm_graph_print(g, &text)) return 0;
    uint64_t h = XXH3_64bits(text, strlen(text));
    free(text);
    return h;
}

/* ---- atomic save ---- */

/* temp file in the same directory, write, fsync, rename over the target, fsync the directory */
sm_status sm_graph_save_file(const sm_graph *g, const char *path)
{
    if (!g || !path || !*path) return sm_error(SM_ERR_INVALID_ARG, "sm_graph_save_file: NULL argument");
    char *text;
    sm_status s = sm_graph_print(g, &text);
    if (s) return s;
    char line[64];
    size_t len = strlen(text);
    snprintf(line, sizeof line, "%s%016" PRIx64 "\n", SM_GRAPH_CHECKSUM_TAG, XXH3_64bits(text, len));
    /* atomic, and never over a symlink, pipe or device (base/atomic_file.h) */
    s = sm_file_write_atomic(path, (const void *[]){text, line}, (size_t[]){len, strlen(line)}, 2);
    free(text);
    return s;
}
