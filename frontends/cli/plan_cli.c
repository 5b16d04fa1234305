/* plan_cli.c — options shared by `smallmind plan` and `smallmind fit`. */
#include <stdio.h>
#include <string.h>

#include "../../base/buf.h"
#include "../../base/error.h"
#include "plan_cli.h"

const char *sm_plan_cli_help(void)
{
    return "  --infer            plan the inference graph: forward, no targets or loss, the logits are the\n"
           "                     output (default)\n"
           "  --train            plan the training graph (forward, backward, AdamW)\n"
           "  -B N, -T N         batch size and sequence length (default: the model's)\n"
           "  -D KEY=VALUE       set a parameter of a graph-file model (repeatable)\n"
           "  --threads N        threads the workspace is sized for (default: OpenMP's, here %d)\n"
           "  --strategy S       naive (no reuse, the baseline) or packed (default)\n"
           "  --budget BYTES     a memory budget: 123456, 512M, 8G (=GiB), 8GB (=10^9), or auto\n"
           "                     (auto: the smallest of RAM, available RAM and the container limit)\n"
           "  --recompute P      recomputation (gradient checkpointing) for training: none (default),\n"
           "                     every:K (keep every K-th block boundary), sqrt, selective (recompute\n"
           "                     cheap ops), budget:BYTES (least extra FLOPs that fits), auto (= the\n"
           "                     --budget, else the machine's auto budget)\n"
           "  --precision P      fp32 (default), bf16 or fp16: the storage type of the activations a\n"
           "                     training step saves for its backward; of the weights for inference\n"
           "                     (docs/mixed-precision.md)\n";
}

const char *sm_plan_cli_json_name(const char *name)
{
    static char out[6 * 1024 + 3];   /* a path of up to 1k bytes, each escaped to at most 6 */
    sm_buf b = {0};
    sm_buf_json_string(&b, name, strnlen(name, 1024));
    snprintf(out, sizeof out, "%s", b.failed ? "null" : b.data);
    sm_buf_free(&b);
    return out;
}

const char *sm_plan_cli_mode(const sm_plan_cli *o) { return o->spec.training ? "training" : "inference"; }

int sm_plan_cli_option(const char *cmd, sm_plan_cli *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    long long v;
    if (!strcmp(a, "--train")) o->spec.training = true, o->spec.inference = false;
    else if (!strcmp(a, "--infer")) o->spec.training = false, o->spec.inference = true;
    else if (!strcmp(a, "-B")) {
        if (!sm_cli_int(cmd, a, val, 1, 1 << 20, &v)) return -1;
        o->spec.batch = (int)v;
        ++*i;
    } else if (!strcmp(a, "-T")) {
        if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return -1;
        o->spec.seq = (int)v;
        ++*i;
    } else if (!strcmp(a, "-D")) {
        if (!sm_cli_define(cmd, &o->spec, val)) return -1;
        ++*i;
    } else if (!strncmp(a, "-D", 2) && a[2]) {
        if (!sm_cli_define(cmd, &o->spec, a + 2)) return -1;
    } else if (!strcmp(a, "--threads")) {
        if (!sm_cli_int(cmd, a, val, 1, 4096, &v)) return -1;
        o->po.n_threads = (int)v;
        ++*i;
    } else if (!strcmp(a, "--strategy")) {
        if (val && !strcmp(val, "naive")) o->po.strategy = SM_PLAN_NAIVE;
        else if (val && !strcmp(val, "packed")) o->po.strategy = SM_PLAN_PACKED;
        else {
            fprintf(stderr, "smallmind %s: --strategy is naive or packed, got '%s'\n", cmd, val ? val : "(nothing)");
            return -1;
        }
        ++*i;
    } else if (!strcmp(a, "--recompute")) {
        if (!val || sm_recompute_parse(val, &o->po.recompute)) {
            fprintf(stderr, "smallmind %s: --recompute: %s\n", cmd, val ? sm_last_error() : "needs a policy (none, "
                    "every:K, sqrt, selective, budget:BYTES or auto)");
            return -1;
        }
        ++*i;
    } else if (!strcmp(a, "--precision")) {
        if (!val || sm_precision_parse(val, &o->po.precision)) {
            fprintf(stderr, "smallmind %s: --precision: %s\n", cmd, val ? sm_last_error() : "needs fp32, bf16 or fp16");
            return -1;
        }
        ++*i;
    } else if (!strcmp(a, "--budget")) {
        if (!sm_cli_budget(cmd, val, &o->budget, &o->budget_auto)) return -1;
        ++*i;
    } else {
        return 0;
    }
    return 1;
}

int sm_plan_cli_resolve_budget(const char *cmd, sm_plan_cli *o)
{
    if (o->budget_auto && sm_cli_budget_auto(&o->budget)) return sm_cli_fail(cmd, "--budget auto: %s", sm_last_error());
    return 0;
}

sm_status sm_plan_cli_build(const sm_plan_cli *o, sm_model *m, sm_plan **plan)
{
    *plan = NULL;
    sm_status s = sm_model_load(&o->spec, m);
    if (s) return s;
    sm_plan_options po = o->po;
    if (po.recompute.kind == SM_RECOMPUTE_BUDGET && !po.recompute.budget) po.recompute.budget = o->budget;
    s = sm_plan_create(m->g, &po, plan);
    if (s) sm_model_free(m);
    return s;
}
