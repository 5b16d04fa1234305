/* plan_cli.h — what `plan` and `fit` share: the model/mode/budget options and building a plan for
 * a model at a given B and T (graph and plan only: nothing large is allocated). */
#ifndef SM_PLAN_CLI_H
#define SM_PLAN_CLI_H

#include "cli.h"

typedef struct sm_plan_cli {
    sm_model_spec spec;
    sm_plan_options po;   /* budget stays 0 here: commands compare against `budget` themselves */
    uint64_t budget;      /* 0 = none */
    bool budget_auto;     /* --budget auto: the smallest of RAM, available RAM and the cgroup limit */
    bool json;
    const char *svg, *save;
} sm_plan_cli;

/* Parses argv[i] (and its value) if it is a shared option. Returns 1 if consumed (i advanced past
 * any value), 0 if not a shared option, -1 on a usage error (printed). */
int sm_plan_cli_option(const char *cmd, sm_plan_cli *o, int argc, char **argv, int *i);
/* Help lines for the shared options. */
const char *sm_plan_cli_help(void);
/* Resolves --budget auto (reads the system); 0 ok, 1 failure (printed). */
int sm_plan_cli_resolve_budget(const char *cmd, sm_plan_cli *o);
/* Loads the model at the spec's B and T and plans it. The caller frees both (m->g, *plan). */
sm_status sm_plan_cli_build(const sm_plan_cli *o, sm_model *m, sm_plan **plan);
/* name as a quoted JSON string (sm_buf_json_string) in a static buffer: for the one user-given string
 * the JSON outputs carry, the model's name or path. */
const char *sm_plan_cli_json_name(const char *name);
/* "training" or "inference". */
const char *sm_plan_cli_mode(const sm_plan_cli *o);

#endif
