/* fuzz_graph_parse.c — libFuzzer target for the graph-file loader. The input is a graph file; lines
 * after a line "#--defines" are -D defines. Besides crashes, leaks and sanitizer reports, it checks
 * the loader's contract: a failure leaves a "file:line:col: error:" message, and a loaded graph's
 * canonical form loads back to a graph with the same canonical form, also with the checksum line a
 * saved file carries, as does the part of it its outputs depend on (what the CLI runs for inference);
 * and the parser's memory stays linear in the input. Build and run: fuzz/run.sh. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "frontends/graph_parse.h"
#include "frontends/graph_print.h"
#include "frontends/graph_syntax.h"
#include "frontends/graph_prune.h"
#include "graph/graph.h"
#include "smallmind.h"

#define MAX_DEFINES 8

static const char *find(const char *hay, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return hay + i;
    return NULL;
}

static void check(int ok)
{
    if (!ok) __builtin_trap();
}

/* The canonical text with the checksum line sm_graph_save_file adds loads (the strict checksum check
 * accepts what smallmind writes). */
static void check_saved_form_loads(const char *canonical)
{
    size_t n = strlen(canonical);
    char *saved = malloc(n + 64);
    if (!saved) return;
    memcpy(saved, canonical, n);
    snprintf(saved + n, 64, "%s%016" PRIx64 "\n", SM_GRAPH_CHECKSUM_TAG, XXH3_64bits(canonical, n));
    sm_graph *g = NULL;
    check(sm_graph_load_string(saved, "saved", NULL, 0, &g) == SM_OK);
    sm_graph_free(g);
    free(saved);
}

/* The parser's memory grows linearly with the text: 256 bytes of syntax tree per byte is more than
 * any statement needs (a quoted name's buffer once was the rest of the file: quadratic). */
static void check_parse_memory(const char *text, size_t len)
{
    gp_ctx c = {0};
    gp_src src = {.name = "fuzz.smg", .text = text, .len = len};
    gp_file f;
    (void)gp_parse_file(&c, &src, &f);
    check(sm_pool_bytes(&c.arena) <= 256 * len + ((size_t)256 << 10));
    sm_pool_free(&c.arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char marker[] = "\n#--defines\n";
    const char *text = (const char *)data;
    size_t len = size;
    char *defs_buf = NULL;
    const char *defs[MAX_DEFINES];
    int n_defs = 0;
    const char *m = find(text, size, marker, sizeof marker - 1);
    if (m) {
        len = (size_t)(m - text);
        size_t rest = size - len - (sizeof marker - 1);
        defs_buf = malloc(rest + 1);
        if (!defs_buf) return 0;
        memcpy(defs_buf, m + sizeof marker - 1, rest);
        defs_buf[rest] = '\0';
        for (char *p = defs_buf, *nl; p && *p && n_defs < MAX_DEFINES; p = nl ? nl + 1 : NULL) {
            nl = strchr(p, '\n');
            if (nl) *nl = '\0';
            defs[n_defs++] = p;
        }
    }
    /* small limits keep each run fast: a runaway repeat is an error, not a slow unit */
    sm_graph_load_opts o = {.defines = defs, .n_defines = n_defs, .max_tensors = 2048, .max_steps = 1 << 16};
    sm_graph *g = NULL;
    sm_graph_params params;
    check_parse_memory(text, len);
    sm_status s = sm_graph_load_text(text, len, "fuzz.smg", &o, &g, &params);
    if (s) {
        check(g == NULL && sm_last_error()[0] != '\0');
    } else {
        char *t1 = NULL, *t2 = NULL;
        sm_graph *g2 = NULL;
        check(sm_graph_print(g, &t1) == SM_OK);
        check(sm_graph_load_string(t1, "canonical", NULL, 0, &g2) == SM_OK);
        check(sm_graph_print(g2, &t2) == SM_OK);
        check(strcmp(t1, t2) == 0);
        check(sm_graph_identity(g) == sm_graph_identity(g2));
        free(t2);
        sm_graph_free(g2);
        check_saved_form_loads(t1);
        free(t1);
        sm_tensor keep[64];
        int n_keep = 0;
        for (sm_tensor t = 0; t < sm_graph_tensor_count(g) && n_keep < 64; t++)
            if (g->t[t].is_output) keep[n_keep++] = t;
        sm_graph *sub = NULL;
        check(sm_graph_extract(g, keep, n_keep, &sub) == SM_OK);
        check(sm_graph_tensor_count(sub) <= sm_graph_tensor_count(g));
        check(sm_graph_print(sub, &t1) == SM_OK);
        check(sm_graph_load_string(t1, "extracted", NULL, 0, &g2) == SM_OK);
        free(t1);
        sm_graph_free(g2);
        sm_graph_free(sub);
        sm_graph_params_free(&params);
        sm_graph_free(g);
    }
    free(defs_buf);
    return 0;
}
