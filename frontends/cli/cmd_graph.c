/* cmd_graph.c — `smallmind check FILE` (parse and instantiate a graph file, print its first error
 * with the offending line) and `smallmind print MODEL` (the canonical form of a graph file or
 * template: expanded, concrete shapes, ready to diff or hash). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void help_check(void)
{
    printf("usage: smallmind check FILE [-D KEY=VALUE]...\n"
           "  Parses and instantiates the graph file FILE (see docs/graph-format.md) with its parameters,\n"
           "  each overridable with -D (e.g. -D T=4096). On success prints a one-line summary and the\n"
           "  graph's identity hash; on error prints 'file:line:col: error: ...' with the line and a caret\n"
           "  and exits 1.\n");
}

static void help_print(void)
{
    printf("usage: smallmind print MODEL [-D KEY=VALUE]... [-B N] [-T N] [-o OUT]\n"
           "  Prints the canonical form of MODEL (a graph file or a template): every repeat expanded,\n"
           "  every shape concrete, one tensor per line. Loading it gives the same graph; its XXH3 hash is\n"
           "  the graph's identity. -o writes it to OUT atomically, with a checksum line, instead.\n"
           "  models: %s\n", sm_cli_templates_help());
}

/* Options shared by both commands. Returns -1 to go on, else the exit status. */
static int parse(const char *cmd, int argc, char **argv, sm_model_spec *spec, const char **out_path,
                 void (*help)(void))
{
    long long v;
    spec->name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return help(), 0;
        else if (!strcmp(a, "-D")) { if (!sm_cli_define(cmd, spec, val)) return 2; i++; }
        else if (!strncmp(a, "-D", 2)) { if (!sm_cli_define(cmd, spec, a + 2)) return 2; }
        else if (out_path && !strcmp(a, "-o") && val) { *out_path = val; i++; }
        else if (out_path && !strcmp(a, "-B")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 20, &v)) return 2; spec->batch = (int)v; i++; }
        else if (out_path && !strcmp(a, "-T")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return 2; spec->seq = (int)v; i++; }
        else if (a[0] == '-') { fprintf(stderr, "smallmind %s: unknown option '%s' (see --help)\n", cmd, a); return 2; }
        else if (spec->name) { fprintf(stderr, "smallmind %s: one model at a time ('%s' and '%s')\n", cmd, spec->name, a); return 2; }
        else spec->name = a;
    }
    if (!spec->name) {
        fprintf(stderr, "smallmind %s: which file? (see --help)\n", cmd);
        return 2;
    }
    return -1;
}

int sm_cmd_check(int argc, char **argv)
{
    sm_model_spec spec = {0};
    int rc = parse("check", argc, argv, &spec, NULL, help_check);
    if (rc >= 0) return rc;
    if (!sm_model_is_file(spec.name)) { /* a template's name, or a bare name that is no file */
        const char *why = access(spec.name, F_OK) ? strerror(errno) : "it names a template";
        return sm_cli_fail("check", "'%s' is not a graph file (%s); check reads graph files, templates are built in",
                           spec.name, why);
    }
    sm_model m;
    if (sm_model_load(&spec, &m)) {
        /* the diagnostic names the file and line itself */
        fprintf(stderr, "%s\n", sm_last_error());
        return 1;
    }
    int64_t weights = 0;
    int n_weights = 0;
    for (sm_tensor t = 0; t < sm_graph_tensor_count(m.g); t++) {
        sm_role role;
        sm_tensor_info(m.g, t, NULL, NULL, &role, NULL, NULL);
        if (role == SM_ROLE_PARAM) n_weights++, weights += sm_tensor_numel(m.g, t);
    }
    printf("%s: ok: %d tensors, %d nodes, %d weights (%" PRId64 " elements), %s; identity %016" PRIx64 "\n",
           spec.name, sm_graph_tensor_count(m.g), sm_graph_node_count(m.g), n_weights, weights,
           sm_graph_loss(m.g) != SM_NO_TENSOR ? "with a loss" : "no loss", sm_graph_identity(m.g));
    sm_model_free(&m);
    return 0;
}

int sm_cmd_print(int argc, char **argv)
{
    sm_model_spec spec = {0};
    const char *out_path = NULL;
    int rc = parse("print", argc, argv, &spec, &out_path, help_print);
    if (rc >= 0) return rc;
    sm_model m;
    char *text = NULL;
    if (sm_model_load(&spec, &m)) {
        fprintf(stderr, "%s\n", sm_last_error());
        return 1;
    }
    rc = 0;
    if (out_path) {
        if (sm_graph_save_file(m.g, out_path)) rc = sm_cli_fail("print", "%s", sm_last_error());
    } else if (sm_graph_print(m.g, &text)) {
        rc = sm_cli_fail("print", "%s", sm_last_error());
    } else {
        fputs(text, stdout);
    }
    free(text);
    sm_model_free(&m);
    return rc;
}
