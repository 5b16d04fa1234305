/* train_args.c — `smallmind train`'s options, and the command itself. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../checkpoint.h"
#include "train.h"

static void help(void)
{
    printf("usage: smallmind train [MODEL] --data FILE [options]\n"
           "  Trains MODEL (a template or a graph file; default gpt) on a text file with AdamW.\n"
           "  Batches are random windows of T+1 tokens from the first 90%% of the file; the last 10%% is\n"
           "  held out for validation. Ctrl-C or SIGTERM finishes the current step, saves (with --save) and\n"
           "  exits with status 130 (SIGTERM: 143); a second one stops at once, except during a save.\n"
           "  Before step 1 the whole run (training plan, validation model, this process with its data) is\n"
           "  checked against the memory budget, and the --save path is checked.\n"
           "  Under `mpirun -np N` (built with MPI) it trains data-parallel: each rank runs B/N rows of\n"
           "  the batch B, gradients are averaged across ranks, rank 0 prints and saves (docs/distributed.md).\n\n"
           "  --data FILE          training text (required)\n"
           "  --tokenizer SPEC     byte (default) or gpt2:VOCAB.json:MERGES.txt\n"
           "  -B N, -T N           batch size and sequence length (default: the model's)\n"
           "  -D KEY=VALUE         graph-file parameter override (repeatable)\n"
           "  --steps N            train up to step N (default 1000)\n"
           "  --until N            stop after step N (the schedule still runs to --steps)\n"
           "  --time SECONDS       stop early after this long\n"
           "  --lr X --min-lr X    peak and final learning rate (default 1e-3, 1e-4; cosine decay)\n"
           "  --warmup N           linear warmup steps (default 20)\n"
           "  --wd X --clip X      weight decay (0.1), gradient-norm clip (1.0; 0 = off)\n"
           "  --seed N             seed of initialisation and batches (default 1)\n"
           "  --threads N          OpenMP threads (default: all)\n"
           "  --recompute P        recompute activations in the backward instead of keeping them: none\n"
           "                       (default), every:K, sqrt, selective, budget:BYTES, auto (see `smallmind\n"
           "                       plan --help`); the results are bitwise the same\n"
           "  --precision P        fp32 (default), bf16 or fp16: storage of the activations saved for\n"
           "                       the backward (docs/mixed-precision.md)\n"
           "  --budget BYTES|auto  the run's memory limit (512M, 8G); default auto: the smallest of RAM,\n"
           "                       available RAM and the container limit\n"
           "  --val-every N        validation loss every N steps (default 100; 0 = never, and no\n"
           "                       validation model in memory)\n"
           "  --val-batches N      batches per validation (default 8)\n"
           "  --log-every N        a progress line every N steps (default 10)\n"
           "  --save FILE          checkpoint (safetensors) at the end and on Ctrl-C; refused at the start\n"
           "                       if FILE cannot be written or is one of the run's input files\n"
           "  --save-every N       also every N steps\n"
           "  --resume FILE        continue a checkpoint: model, B, T, tokenizer, seed, the optimizer\n"
           "                       schedule and the loss scaler come from it; the run continues\n"
           "                       bit-identically\n"
           "  --loss-scale MODE    auto (default: dynamic for an f16 model, else off), dynamic, off, or a\n"
           "                       fixed scale VALUE; gradients are computed for loss x scale, steps whose\n"
           "                       gradients overflow (Inf/NaN) are skipped (docs/mixed-precision.md)\n"
           "  --loss-scale-init X  dynamic: the initial scale (default 65536; >= 1)\n"
           "  --loss-scale-interval N  dynamic: double the scale after N steps without overflow\n"
           "                       (default 2000); it halves on every overflow, down to 1\n"
           "  models: %s\n", sm_cli_templates_help());
}

static bool num(const char *cmd, const char *opt, const char *val, double lo, double *out)
{
    char *end;
    double v = val ? strtod(val, &end) : 0;
    if (!val || *end || end == val || !(v >= lo)) {
        fprintf(stderr, "smallmind %s: %s needs a number >= %g, got '%s'\n", cmd, opt, lo, val ? val : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}

/* --loss-scale auto|dynamic|off|VALUE (a fixed scale: finite, > 0). */
static bool parse_loss_scale(const char *cmd, const char *val, sm_train_options *o)
{
    static const char *const names[] = {"off", "fixed", "dynamic"};
    o->loss_scale_given = true;
    if (val && !strcmp(val, "auto")) {
        o->spec.loss_scale = SM_CLI_LOSS_SCALE_AUTO;
        return true;
    }
    for (int m = 0; val && m < 3; m++)
        if (m != SM_LOSS_SCALE_FIXED && !strcmp(val, names[m])) {
            o->spec.loss_scale = m;
            return true;
        }
    char *end;
    double v = val ? strtod(val, &end) : 0;
    if (!val || *end || end == val || !(v > 0) || !(v <= FLT_MAX)) {
        fprintf(stderr, "smallmind %s: --loss-scale needs auto, dynamic, off or a fixed scale (a number > 0 up to %g), "
                "got '%s'\n", cmd, FLT_MAX, val ? val : "(nothing)");
        return false;
    }
    o->spec.loss_scale = SM_LOSS_SCALE_FIXED;
    o->loss_scale_fixed = (float)v;
    return true;
}

/* Fills the run-defining options from a checkpoint's metadata (strings are kept in static storage:
 * there is one resume per process). */
static int from_checkpoint(const char *cmd, sm_train_options *o)
{
    static sm_run_facts rf;   /* the spec points into it */
    if (sm_run_facts_read(o->resume, &rf)) return sm_cli_fail(cmd, "%s", sm_last_error());
    if (!rf.complete)
        return sm_cli_fail(cmd, "%s is not a training checkpoint of smallmind (no model/batch/seq/tokenizer/seed "
                           "metadata): resume needs a file written by `smallmind train --save`", o->resume);
    o->spec.name = rf.model;
    o->spec.batch = rf.batch;
    o->spec.seq = rf.seq;
    o->tokenizer = rf.tokenizer;
    o->seed = rf.seed;
    sm_model_spec_split_defines(&o->spec, rf.defines);
    if (rf.has_adamw) o->adamw = rf.adamw;
    /* The loss scaler continues as saved; loss-scale options given now start a new one, which keeps
     * the skipped count (AdamW's bias correction counts the updates applied). */
    if (rf.has_loss_scaler) {
        o->resumed = rf.loss_scaler;
        o->has_resumed = true;
        if (!o->loss_scale_given) o->spec.loss_scale = (int)rf.loss_scaler.mode;
    }
    /* The schedule is the checkpoint's; a new --steps extends (or shortens) its cosine. */
    if (o->steps_given) o->adamw.total_steps = o->steps;
    else o->steps = o->adamw.total_steps;
    return -1;
}

int sm_train_parse(const char *cmd, int argc, char **argv, sm_train_options *o)
{
    long long v;
    double d;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define INT(opt, lo, hi, dst) else if (!strcmp(a, opt)) { if (!sm_cli_int(cmd, a, val, lo, hi, &v)) return 2; dst = v; i++; }
#define NUM(opt, lo, dst) else if (!strcmp(a, opt)) { if (!num(cmd, a, val, lo, &d)) return 2; dst = d; i++; }
#define STR(opt, dst) else if (!strcmp(a, opt)) { if (!val) { fprintf(stderr, "smallmind %s: %s needs a value\n", cmd, a); return 2; } dst = val; i++; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return help(), 0;
        INT("-B", 1, 1 << 20, o->spec.batch)
        INT("-T", 1, 1 << 24, o->spec.seq)
        INT("--steps", 1, INT64_MAX, o->steps)
        INT("--until", 1, INT64_MAX, o->until)
        INT("--warmup", 0, INT64_MAX, o->adamw.warmup_steps)
        INT("--seed", 0, INT64_MAX, o->seed)
        INT("--threads", 1, 4096, o->threads)
        INT("--val-every", 0, 1 << 30, o->val_every)
        INT("--val-batches", 1, 1 << 20, o->val_batches)
        INT("--log-every", 1, 1 << 30, o->log_every)
        INT("--save-every", 0, 1 << 30, o->save_every)
        NUM("--time", 0, o->max_seconds)
        NUM("--lr", 0, o->adamw.lr)
        NUM("--min-lr", 0, o->adamw.min_lr)
        NUM("--wd", 0, o->adamw.weight_decay)
        NUM("--clip", 0, o->adamw.grad_clip)
        STR("--data", o->data)
        STR("--tokenizer", o->tokenizer)
        STR("--save", o->save)
        STR("--resume", o->resume)
        else if (!strcmp(a, "-D")) {
            if (!sm_cli_define(cmd, &o->spec, val)) return 2;
            i++;
        }
        else if (!strcmp(a, "--budget")) {
            bool is_auto;
            uint64_t bytes = 0;
            if (!sm_cli_budget(cmd, val, &bytes, &is_auto)) return 2;
            o->budget = is_auto ? 0 : bytes;
            i++;
        }
        else if (!strcmp(a, "--loss-scale")) {
            if (!parse_loss_scale(cmd, val, o)) return 2;
            i++;
        }
        else if (!strcmp(a, "--loss-scale-init")) {
            if (!num(cmd, a, val, 1, &d)) return 2;
            if (!(d <= FLT_MAX)) {
                fprintf(stderr, "smallmind %s: %s %s is above the largest float %g\n", cmd, a, val, FLT_MAX);
                return 2;
            }
            o->loss_scale_init = (float)d;
            o->loss_scale_given = true;
            i++;
        }
        else if (!strcmp(a, "--loss-scale-interval")) {
            if (!sm_cli_int(cmd, a, val, 1, INT64_MAX, &v)) return 2;
            o->loss_scale_interval = v;
            o->loss_scale_given = true;
            i++;
        }
        else if (!strcmp(a, "--precision")) {
            if (!val || sm_precision_parse(val, &o->spec.precision)) {
                fprintf(stderr, "smallmind %s: --precision: %s\n", cmd, val ? sm_last_error() : "needs fp32, bf16 or fp16");
                return 2;
            }
            i++;
        }
        else if (!strcmp(a, "--recompute")) {
            if (!val || sm_recompute_parse(val, &o->spec.recompute)) {
                fprintf(stderr, "smallmind %s: --recompute: %s\n", cmd, val ? sm_last_error() : "needs a policy");
                return 2;
            }
            i++;
        }
        else if (a[0] == '-') { fprintf(stderr, "smallmind %s: unknown option '%s' (see --help)\n", cmd, a); return 2; }
        else o->spec.name = a;
#undef INT
#undef NUM
#undef STR
    }
    for (int i = 1; i < argc; i++) o->steps_given |= !strcmp(argv[i], "--steps");
    if (!o->data) {
        fprintf(stderr, "smallmind %s: --data FILE is required (see --help)\n", cmd);
        return 2;
    }
    if (o->adamw.min_lr > o->adamw.lr) o->adamw.min_lr = o->adamw.lr;
    o->adamw.total_steps = o->steps;
    return o->resume ? from_checkpoint(cmd, o) : -1;
}

int sm_cmd_train(int argc, char **argv)
{
    sm_train_options o;
    sm_train_result r;
    sm_train_options_default(&o);
    int rc = sm_train_parse("train", argc, argv, &o);
    return rc >= 0 ? rc : sm_train_run("train", &o, &r);
}
