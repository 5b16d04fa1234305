/* graph_parse.h — the graph-file loader's internal entry points: the public sm_graph_load_* functions
 * plus what the CLI, the tests and the fuzz target need (loading from a byte buffer, soft defines,
 * expansion limits, the parameter values a file was instantiated with). */
#ifndef SM_GRAPH_PARSE_H
#define SM_GRAPH_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

typedef struct sm_graph_load_opts {
    const char *const *defines;       /* "KEY=VALUE": each must name a parameter of the file */
    int n_defines;
    const char *const *soft_defines;  /* "KEY=VALUE" applied only if the file declares KEY (CLI -B/-T) */
    int n_soft_defines;
    int max_tensors;                  /* 0 = SM_GRAPH_LOAD_MAX_TENSORS */
    int64_t max_steps;                /* statements + iterations run while expanding; 0 = the default */
} sm_graph_load_opts;

#define SM_GRAPH_LOAD_MAX_TENSORS (1 << 20)
#define SM_GRAPH_LOAD_MAX_STEPS ((int64_t)1 << 24)

/* The top-level parameters of a file with the values it was instantiated with. */
typedef struct sm_graph_param_value {
    const char *name;
    bool is_float;
    int64_t i;
    double f;
} sm_graph_param_value;

typedef struct sm_graph_params {
    int n;
    sm_graph_param_value *v;  /* one allocation holding the names too */
} sm_graph_params;

/* Loads text[0, len) (NUL bytes are an error, not an end). name appears in diagnostics. params may be
 * NULL; otherwise it is filled on success and must be released with sm_graph_params_free. */
sm_status sm_graph_load_text(const char *text, size_t len, const char *name, const sm_graph_load_opts *o,
                             sm_graph **out, sm_graph_params *params);
/* sm_graph_load_text on a file's contents. */
sm_status sm_graph_load_file_ex(const char *path, const sm_graph_load_opts *o, sm_graph **out,
                                sm_graph_params *params);
/* Reads a whole file (at most 64 MiB) into a malloc'd buffer. */
sm_status sm_graph_read_file(const char *path, char **text, size_t *len);
void sm_graph_params_free(sm_graph_params *p);
/* True and *out set if the file has an integer parameter called name. */
bool sm_graph_params_int(const sm_graph_params *p, const char *name, int64_t *out);

#endif
