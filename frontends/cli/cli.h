/* cli.h — what the smallmind commands share: the command table entries, model selection and
 * small option-parsing helpers. */
#ifndef SM_CLI_H
#define SM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "smallmind.h"

/* Every command: argv[0] is the command name. Returns the process exit status:
 * 0 ok, 1 failure (message printed), 2 usage error. */
typedef int (*sm_cmd_fn)(int argc, char **argv);
typedef struct sm_cmd {
    const char *name;
    const char *summary;
    sm_cmd_fn run;
} sm_cmd;

int sm_cmd_demo(int argc, char **argv);
int sm_cmd_forward(int argc, char **argv);
int sm_cmd_train(int argc, char **argv);
int sm_cmd_generate(int argc, char **argv);
int sm_cmd_eval(int argc, char **argv);
int sm_cmd_plan(int argc, char **argv);
int sm_cmd_fit(int argc, char **argv);
int sm_cmd_sysinfo(int argc, char **argv);
int sm_cmd_check(int argc, char **argv);
int sm_cmd_print(int argc, char **argv);

/* A model as the user names it on the command line: a built-in template ("gpt", "gpt-tiny",
 * "gpt2") or a graph file, with B, T and whether to build the training graph. */
typedef struct sm_model_spec {
    const char *name;     /* template name or graph-file path */
    int batch, seq;       /* 0 = the model's default */
    bool training;        /* append backward + optimizer */
    const sm_adamw_config *adamw;  /* the optimizer's settings (NULL = sm_adamw_config_default) */
    bool inference;       /* no targets and no loss: logits are the output (generation) */
    const char *defines[32];  /* "-D KEY=VALUE" overrides for graph files */
    int n_defines;
    sm_recompute_policy recompute;   /* the plan's recompute policy (zero: none) */
    int loss_scale;       /* training: an sm_loss_scale_mode, or SM_CLI_LOSS_SCALE_AUTO; anything but
                             off builds the backward with a loss scale (sm_graph_backward_scaled) */
    sm_precision precision;          /* the plan's precision policy (zero: fp32) */
} sm_model_spec;

#define SM_CLI_LOSS_SCALE_AUTO (-1)   /* sm_model_storage decides (sm_loss_scale_auto) */

typedef struct sm_model {
    sm_graph *g;
    sm_gpt_config gpt;    /* for templates */
    sm_gpt_tensors io;    /* tokens/targets/logits/loss */
    sm_adamw_tensors opt; /* training graphs: the optimizer's per-step input */
} sm_model;

/* Lists the built-in templates into a string for --help. */
const char *sm_cli_templates_help(void);
/* The 16-bit type the model's saved activations are stored in, which --loss-scale auto follows: the
 * --precision policy's (fp16: f16, bf16: bf16), else f16 when some tensor of its forward graph is f16
 * (a graph file's casts), else f32. */
sm_dtype sm_model_storage(const sm_model_spec *spec, const sm_graph *g);
/* Builds the model; with spec->training also its backward and AdamW step. */
sm_status sm_model_load(const sm_model_spec *spec, sm_model *m);
/* True if name is a graph file rather than a template: not a template name, and it exists, contains
 * a '/' or ends in ".smg". */
bool sm_model_is_file(const char *name);
/* Adds "-D KEY=VALUE" to spec (val is KEY=VALUE); prints a usage error and returns false if full. */
bool sm_cli_define(const char *cmd, sm_model_spec *spec, const char *val);
/* The -D defines as one space-separated string (checkpoint metadata), and back: split keeps
 * pointers into joined, which must outlive the spec. */
void sm_model_spec_join_defines(const sm_model_spec *spec, char *buf, size_t cap);
void sm_model_spec_split_defines(sm_model_spec *spec, char *joined);
void sm_model_free(sm_model *m);

/* Prints "smallmind <cmd>: <message>" to stderr and returns 1. */
int sm_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a positive integer option value; prints a usage error naming the option on failure. */
bool sm_cli_int(const char *cmd, const char *opt, const char *val, long long min, long long max, long long *out);
/* Parses a --budget value: a byte size above 0 (*bytes), or "auto" (*is_auto; *bytes untouched).
 * Prints a usage error naming cmd and returns false otherwise. */
bool sm_cli_budget(const char *cmd, const char *val, uint64_t *bytes, bool *is_auto);
/* What "auto" means here: the smallest of RAM, available RAM and the container limit. */
sm_status sm_cli_budget_auto(uint64_t *out);
/* This process's resident memory now (VmRSS; 0 if unknown): the program, its libraries and whatever
 * it has read so far, which a run holds on top of its plans. */
uint64_t sm_cli_rss(void);

#endif
