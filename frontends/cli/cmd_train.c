/* cmd_train.c — `smallmind train`: train a model on a text file with AdamW, with a live progress
 * line, periodic validation, atomic checkpoints every N steps and on Ctrl-C or SIGTERM, and
 * bit-identical resume (batches and the learning rate depend only on the seed and the step number).
 * Before step 1 it checks what would otherwise fail late: the --save path, and the whole run's memory
 * against the budget. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "../../base/atomic_file.h"
#include "../../base/error.h"
#include "../checkpoint.h"
#include "../dataset.h"
#include "dist.h"
#include "train.h"

static volatile sig_atomic_t stop_signal;   /* SIGINT or SIGTERM arrived: finish the step, save, exit */
static volatile sig_atomic_t saving;        /* a checkpoint is being written */

static void set_stop_handlers(void (*handler)(int))
{
    struct sigaction sa = {.sa_flags = SA_RESTART};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The first SIGINT or SIGTERM asks to stop after the current step; a second one stops at once,
 * except while a checkpoint is being written: that always finishes, so its temp file is renamed or
 * removed, never left behind. The signals stay caught during a save rather than blocked, because a
 * signal blocked in this thread goes to an OpenMP worker thread, where the default action would still
 * end the process. */
static void on_stop(int sig)
{
    stop_signal = sig;
    if (!saving) set_stop_handlers(SIG_DFL);
}

/* sm_train_save with the stop signals caught for its duration (see on_stop). */
static sm_status save_checkpoint(const sm_train_options *o, sm_session *s, const sm_loss_scaler *sc,
                                 long long next_step)
{
    saving = 1;
    set_stop_handlers(on_stop);
    sm_status st = sm_train_save(o, s, sc, o->save, next_step);
    saving = 0;
    if (stop_signal) set_stop_handlers(SIG_DFL);
    return st;
}

/* --save, checked before the run rather than at its end: the path must take a new file (its
 * directory exists and is writable; nothing but a regular file is there) and must not be a file the
 * run reads, which saving would replace. The --resume checkpoint may be saved over: continuing a run
 * into its own checkpoint is how a run is extended, and the rename keeps the old one whole until the
 * new one is complete. */
static int check_save_path(const char *cmd, const sm_train_options *o)
{
    if (sm_file_check_writable(o->save)) return sm_cli_fail(cmd, "--save: %s", sm_last_error());
    char tok[1024];
    snprintf(tok, sizeof tok, "%s", o->tokenizer);
    char *vocab = !strncmp(tok, "gpt2:", 5) ? tok + 5 : NULL, *merges = vocab ? strchr(vocab, ':') : NULL;
    if (merges) *merges++ = '\0';
    const char *inputs[] = {o->data, sm_model_is_file(o->spec.name) ? o->spec.name : NULL, vocab, merges};
    const char *what[] = {"the training data (--data)", "the model's graph file", "the tokenizer's vocabulary",
                          "the tokenizer's merges"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        if (sm_file_same(o->save, inputs[i]))
            return sm_cli_fail(cmd, "--save %s is %s '%s': saving would replace it; choose another path", o->save,
                               what[i], inputs[i]);
    return 0;
}

/* The run's memory: what this process holds already (the program, the tokenizer, the training data)
 * plus the training plan plus the validation model's plan. */
typedef struct run_memory {
    uint64_t budget;   /* 0 = none could be told */
    uint64_t held;     /* resident before the models were built */
    uint64_t data;     /* of which the training tokens */
    uint64_t val;      /* the validation model's plan (0 without validation) */
    uint64_t comm;     /* the gradient exchange's receive buffer (0 on one rank) */
} run_memory;

/* Refuses, before anything large is allocated, a run that would not fit its budget (inside a
 * container, the alternative is to be killed mid-run with no message). Returns 1 (printed) or 0. */
static int check_budget(const char *cmd, const sm_train_options *o, const run_memory *rm, const sm_plan *train)
{
    uint64_t plan = sm_plan_estimate(train), need = rm->held + plan + rm->val + rm->comm;
    char b[7][SM_BYTES_STR_MAX], val[160] = "";
    if (!rm->budget || need <= rm->budget) return 0;
    int n = 0;
    if (rm->val)
        n = snprintf(val, sizeof val, ", the validation model %s", sm_format_bytes(rm->val, b[2], sizeof b[2]));
    if (rm->comm)
        snprintf(val + n, sizeof val - (size_t)n, ", the gradient exchange %s", sm_format_bytes(rm->comm, b[6], sizeof b[6]));
    return sm_cli_fail(cmd, "the run needs %s but the budget is %s%s: the training plan %s (largest term: %s)%s, this "
                       "process %s (of which the training data %s). To fit: lower the batch or the sequence length "
                       "(-B, -T), recompute activations (--recompute auto), drop validation (--val-every 0), or give "
                       "a larger --budget",
                       sm_format_bytes(need, b[0], sizeof b[0]), sm_format_bytes(rm->budget, b[1], sizeof b[1]),
                       o->budget ? "" : " (auto: the smallest of RAM, available RAM and the container limit)",
                       sm_format_bytes(plan, b[3], sizeof b[3]), sm_arena_role_label(sm_plan_dominant(train)), val,
                       sm_format_bytes(rm->held, b[4], sizeof b[4]), sm_format_bytes(rm->data, b[5], sizeof b[5]));
}

/* Plans the validation model (ev, NULL without validation) and the training model (tr, built), checks
 * both with this process against the budget, and only then allocates them. Returns 1 (printed) or 0. */
static int start_sessions(const char *cmd, const sm_train_options *o, run_memory *rm, sm_session *tr, sm_session *ev)
{
    sm_model_spec es = o->spec;
    es.training = false;
    /* the validation model evaluates the f32 master weights in f32 */
    es.precision = SM_PRECISION_FP32;
    if (ev && (sm_session_load(ev, &es, NULL) || sm_session_plan(ev, o->threads)))
        return sm_cli_fail(cmd, "%s", sm_last_error());
    rm->val = ev ? sm_plan_estimate(ev->plan) : 0;
    /* recompute auto aims at what the budget leaves the training plan */
    char aimed[160] = "";
    if (rm->budget && tr->recompute.kind == SM_RECOMPUTE_BUDGET && !tr->recompute.budget) {
        char b[3][SM_BYTES_STR_MAX];
        tr->recompute.budget = rm->budget > rm->held + rm->val ? rm->budget - rm->held - rm->val : 1;
        snprintf(aimed, sizeof aimed, " (of the %s budget, this process holds %s and the validation model takes %s)",
                 sm_format_bytes(rm->budget, b[0], sizeof b[0]), sm_format_bytes(rm->held, b[1], sizeof b[1]),
                 sm_format_bytes(rm->val, b[2], sizeof b[2]));
    }
    if (sm_session_plan(tr, o->threads)) return sm_cli_fail(cmd, "%s%s", sm_last_error(), aimed);
    if (check_budget(cmd, o, rm, tr->plan)) return 1;
    if (sm_session_alloc(tr) || (ev && sm_session_alloc(ev))) return sm_cli_fail(cmd, "%s", sm_last_error());
    return 0;
}

void sm_train_options_default(sm_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->spec.name = "gpt";
    o->tokenizer = "byte";
    o->steps = 1000;
    o->seed = 1;
    o->val_every = 100;
    o->val_batches = 8;
    o->log_every = 10;
    o->ranks = 1;
    sm_adamw_config_default(&o->adamw);
    o->adamw.lr = 1e-3f;
    o->adamw.min_lr = 1e-4f;
    o->adamw.warmup_steps = 20;
    o->adamw.weight_decay = 0.1f;
    o->spec.loss_scale = SM_CLI_LOSS_SCALE_AUTO;
    o->loss_scale_init = 65536.0f;
    o->loss_scale_interval = 2000;
}

/* The run's loss scaler: the checkpoint's as it was saved, else a new one for the mode the model
 * was built with (auto has become dynamic or off there: a graph with a loss scale input is scaled),
 * which keeps a resumed run's skipped count. */
static sm_status start_scaler(const sm_train_options *o, const sm_session *s, long long start_step,
                              sm_loss_scaler *sc)
{
    bool scaled = s->m.opt.loss_scale != SM_NO_TENSOR;
    if (o->has_resumed && !o->loss_scale_given) *sc = o->resumed;
    else {
        int mode = !scaled ? SM_LOSS_SCALE_OFF : o->spec.loss_scale == SM_CLI_LOSS_SCALE_AUTO ? SM_LOSS_SCALE_DYNAMIC
                                                                                              : o->spec.loss_scale;
        sm_loss_scaler_init(sc, (sm_loss_scale_mode)mode);
        if (mode == SM_LOSS_SCALE_DYNAMIC) {
            sc->scale = o->loss_scale_init;
            sc->growth_interval = o->loss_scale_interval;
        } else if (mode == SM_LOSS_SCALE_FIXED) {
            sc->scale = o->loss_scale_fixed;
            sc->min_scale = sc->scale < 1.0f ? sc->scale : 1.0f;   /* the floor is dynamic's; a fixed scale is as given */
        }
        sc->skipped = o->has_resumed ? o->resumed.skipped : 0;
    }
    sm_status st = sm_loss_scaler_check(sc);
    if (!st && (sc->mode != SM_LOSS_SCALE_OFF) != scaled)
        st = sm_error(SM_ERR_STATE, "loss scaling is %s but the training graph was built %s a loss scale",
                      sc->mode != SM_LOSS_SCALE_OFF ? "on" : "off", scaled ? "with" : "without");
    if (!st && sc->skipped > start_step)
        st = sm_error(SM_ERR_FORMAT, "%s: its loss scaler counts %lld skipped steps, but %lld steps were run: the file "
                      "was edited or damaged", o->resume ? o->resume : "the checkpoint", (long long)sc->skipped, start_step);
    return st;
}

static double unigram_entropy(const int32_t *tok, int64_t n, int V)
{
    int64_t *count = calloc((size_t)V, sizeof *count);
    double h = 0;
    if (!count) return NAN;
    for (int64_t i = 0; i < n; i++) count[tok[i]]++;
    for (int v = 0; v < V; v++)
        if (count[v]) h -= (double)count[v] / (double)n * log((double)count[v] / (double)n);
    free(count);
    return h;
}

static sm_status run_batch(sm_session *s, const int32_t *x, const int32_t *y, size_t n, float *loss)
{
    sm_status st = sm_runtime_set(s->rt, s->m.io.tokens, x, n * sizeof *x);
    if (!st) st = sm_runtime_set(s->rt, s->m.io.targets, y, n * sizeof *y);
    if (!st) st = sm_runtime_run(s->rt);
    if (!st) st = sm_runtime_get(s->rt, s->m.io.loss, loss, sizeof *loss);
    return st;
}

/* The mean loss of the first `batches` validation batches of B rows; this rank runs its rows of each
 * (dist.h), weighted by the tokens they score (the last batch may be padded). */
static sm_status validate(sm_session *train, sm_session *eval, const sm_dataset *d, sm_dist *dist, int B, int T,
                          int batches, double *out)
{
    sm_status s = sm_runtime_copy_params(eval->rt, train->rt);
    const size_t rows = (size_t)(B / dist->size) * (size_t)T, mine = (size_t)dist->rank * rows;
    int32_t *x = malloc(sizeof *x * (size_t)B * (size_t)T * 2), *y = x + (size_t)B * T;
    if (!x) return SM_ERR_NOMEM;
    double sum = 0, scored = 0;
    for (int k = 0; !s && k < batches; k++) {
        float loss;
        if (!sm_dataset_seq_batch(d, d->n_train, d->n, k, B, T, x, y)) break;
        double n = 0;
        for (size_t i = 0; i < rows; i++) n += y[mine + i] >= 0;
        s = run_batch(eval, x + mine, y + mine, rows, &loss);
        if (n > 0) sum += loss * n, scored += n;
    }
    free(x);
    if (!s) s = sm_dist_mean(dist, scored > 0 ? sum / scored : 0, scored, out);
    return s;
}

static void fmt_time(double s, char *buf, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

sm_status sm_train_save(const sm_train_options *o, sm_session *s, const sm_loss_scaler *sc, const char *path,
                        long long next_step)
{
    char step[32], seed[32], B[16], T[16];
    snprintf(step, sizeof step, "%lld", next_step);
    snprintf(seed, sizeof seed, "%lld", o->seed);
    snprintf(B, sizeof B, "%d", s->m.gpt.batch * o->ranks);   /* the global batch: resume on any number of ranks */
    snprintf(T, sizeof T, "%d", s->m.gpt.seq);
    char adamw[256];
    snprintf(adamw, sizeof adamw, "lr=%g min_lr=%g warmup=%lld total=%lld beta1=%g beta2=%g eps=%g wd=%g clip=%g",
             o->adamw.lr, o->adamw.min_lr, (long long)o->adamw.warmup_steps, (long long)o->adamw.total_steps,
             o->adamw.beta1, o->adamw.beta2, o->adamw.eps, o->adamw.weight_decay, o->adamw.grad_clip);
    char defines[1024], model[PATH_MAX];
    sm_model_spec_join_defines(&o->spec, defines, sizeof defines);
    /* a graph file by its absolute path, so the checkpoint opens from any directory */
    if (!sm_model_is_file(o->spec.name) || !realpath(o->spec.name, model)) snprintf(model, sizeof model, "%s", o->spec.name);
    char scaler[SM_CKPT_LOSS_SCALE_MAX];
    sm_checkpoint_scaler_format(sc, scaler, sizeof scaler);
    sm_st_kv meta[] = {{"model", model}, {"batch", B}, {"seq", T}, {"tokenizer", o->tokenizer},
                       {"step", step}, {"seed", seed}, {"adamw", adamw}, {"defines", defines},
                       {SM_CKPT_KEY_LOSS_SCALE, scaler}};
    return sm_checkpoint_save(s->rt, path, SM_SAVE_OPTIMIZER, meta, (int)(sizeof meta / sizeof meta[0]));
}

int sm_train_run(const char *cmd, sm_train_options *o, sm_train_result *res)
{
    sm_tokenizer *tok = NULL;
    sm_session tr = {0}, ev = {0};
    sm_dataset d = {0};
    sm_dist dist;
    int32_t *ids = NULL, *x = NULL;
    int64_t n_ids = 0;
    int rc = 1;
    long long start_step = 0;
    memset(res, 0, sizeof *res);
    res->val_loss = NAN;

    if (sm_dist_open(&dist)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    o->ranks = dist.size;
    if (o->save && !dist.rank && check_save_path(cmd, o)) goto out;   /* rank 0 alone writes */
    run_memory rm = {.budget = o->budget};
    if (!rm.budget && sm_cli_budget_auto(&rm.budget))
        fprintf(stderr, "smallmind %s: --budget auto: %s; the run is not checked against a budget\n", cmd,
                sm_last_error());
    if (sm_cli_tokenizer_open(o->tokenizer, &tok) || sm_cli_read_tokens(o->data, tok, false, &ids, &n_ids)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    rm.held = sm_cli_rss();
    rm.data = (uint64_t)n_ids * sizeof *ids;
    o->spec.training = true;
    /* this rank's share of the global batch (dist.h) */
    if (sm_dist_split_batch(&o->spec, dist.size) || sm_session_load(&tr, &o->spec, &o->adamw)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    rm.comm = sm_dist_buffer_bytes(tr.m.g, dist.size);
    /* B: the global batch; this rank runs rows [rank * Bl, (rank + 1) * Bl) of it */
    int Bl = tr.m.gpt.batch, B = Bl * dist.size, T = tr.m.gpt.seq, V = tr.m.gpt.vocab;
    if (sm_tokenizer_check_vocab(tok, V, o->spec.name)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    if (sm_dataset_init(&d, ids, n_ids, 0.1, T)) {
        ids = NULL;
        sm_cli_fail(cmd, "%s: %s", o->data, sm_last_error());
        goto out;
    }
    ids = NULL;
    bool have_val = d.n > d.n_train && o->val_every > 0;
    if (start_sessions(cmd, o, &rm, &tr, have_val ? &ev : NULL)) goto out;
    if (sm_dist_attach(&dist, tr.rt)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    if (o->resume) {
        sm_st_file *meta;
        if (sm_checkpoint_load(tr.rt, o->resume, SM_SAVE_OPTIMIZER, &meta)) {
            sm_cli_fail(cmd, "%s", sm_last_error());
            goto out;
        }
        sm_status bad = sm_checkpoint_meta_int(meta, "step", 0, LLONG_MAX, &start_step);   /* absent: 0 */
        sm_st_close(meta);
        if (bad) {
            sm_cli_fail(cmd, "%s", sm_last_error());
            goto out;
        }
        printf("resumed from %s at step %lld\n", o->resume, start_step);
    } else if (sm_runtime_init_params(tr.rt, (uint64_t)o->seed)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    sm_loss_scaler sc;
    if (start_scaler(o, &tr, start_step, &sc)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    res->unigram_entropy = unigram_entropy(d.tokens, d.n_train, V);
    char mem[SM_BYTES_STR_MAX];
    printf("model %s: L=%d C=%d H=%d V=%d, B=%d T=%d, %d threads; plan %s, %.1f GFLOP per step\n", o->spec.name,
           tr.m.gpt.n_layer, tr.m.gpt.n_embd, tr.m.gpt.n_head, V, B, T, o->threads ? o->threads : omp_get_max_threads(),
           sm_format_bytes(sm_plan_total_bytes(tr.plan), mem, sizeof mem), sm_plan_flops(tr.plan) / 1e9);
    if (dist.size > 1)
        printf("data parallel: %d ranks of B=%d each (figures above: per rank); gradient exchange buffer %s\n",
               dist.size, Bl, sm_format_bytes(rm.comm, mem, sizeof mem));
    sm_plan_recompute_info ri;
    if (!sm_plan_recompute(tr.plan, &ri) && ri.kind != SM_RECOMPUTE_NONE) {
        char pol[64], a[SM_BYTES_STR_MAX];
        printf("recompute %s: every:%d%s, %d tensors recomputed (+%.1f%% FLOPs); activations %s (%s without)\n",
               sm_recompute_str(&ri.asked, pol, sizeof pol), ri.every, ri.kind == SM_RECOMPUTE_SELECTIVE ? " + costly" : "",
               ri.n_recomputed, 100.0 * ri.extra_flops / ri.flops, sm_format_bytes(ri.act, mem, sizeof mem),
               sm_format_bytes(ri.act_none, a, sizeof a));
    }
    printf("data %s: %lld tokens (%lld train, %lld validation); unigram entropy %.4f nats/token\n", o->data,
           (long long)d.n, (long long)d.n_train, (long long)(d.n - d.n_train), res->unigram_entropy);
    if (sc.mode != SM_LOSS_SCALE_OFF)
        printf("loss scaling %s: scale %g%s, %lld steps skipped so far\n", sc.mode == SM_LOSS_SCALE_FIXED ? "fixed" : "dynamic",
               sc.scale, sc.mode == SM_LOSS_SCALE_DYNAMIC ? " (halved on overflow, doubled after a run of clean steps)" : "",
               (long long)sc.skipped);
    if (rm.budget) {
        char need[SM_BYTES_STR_MAX], budget[SM_BYTES_STR_MAX];
        printf("memory: %s of the %s budget (plans and this process)\n",
               sm_format_bytes(rm.held + sm_plan_estimate(tr.plan) + rm.val + rm.comm, need, sizeof need),
               sm_format_bytes(rm.budget, budget, sizeof budget));
    }
    fflush(stdout);

    x = malloc(sizeof *x * (size_t)B * (size_t)T * 2);
    if (!x) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    int32_t *y = x + (size_t)B * T;
    stop_signal = 0;
    set_stop_handlers(on_stop);
    bool tty = isatty(STDOUT_FILENO);
    double t0 = omp_get_wtime();
    long long step = start_step, saved = -1;   /* the step of the last checkpoint written */
    long long last = o->until > 0 && o->until < o->steps ? o->until : o->steps;
    const size_t rows = (size_t)Bl * T, mine = (size_t)dist.rank * rows;
    const sm_train_tensors tt = {tr.m.io.tokens, tr.m.io.targets, tr.m.io.loss, tr.m.opt};
    /* every rank stops at the same step: on the signal or the time-out they agreed on (dist.h) */
    sm_dist_vote v = {0};
    for (; step < last && !v.signal && !v.time_up; step++) {
        sm_train_step_result r;
        sm_dataset_train_batch(&d, (uint64_t)o->seed, step, B, T, x, y);
        if (sm_train_step(tr.rt, &tt, &o->adamw, step, &sc, x + mine, y + mine, rows, &r)) {
            sm_cli_fail(cmd, "step %lld: %s", step, sm_last_error());
            goto out;
        }
        v = (sm_dist_vote){r.loss, stop_signal, o->max_seconds > 0 && omp_get_wtime() - t0 >= o->max_seconds};
        if (sm_dist_agree(&dist, &v)) {
            sm_cli_fail(cmd, "step %lld: %s", step, sm_last_error());
            goto out;
        }
        float loss = (float)v.loss;
        if (!isfinite(loss)) {
            sm_cli_fail(cmd, "step %lld: the loss is %f: lower the learning rate (--lr)", step, loss);
            goto out;
        }
        if (step == start_step) res->first_loss = loss;
        res->last_loss = loss;
        res->skipped += r.skipped;
        char scaling[96] = "";
        if (sc.mode != SM_LOSS_SCALE_OFF)
            snprintf(scaling, sizeof scaling, " | scale %g%s | skipped %lld", r.scale, r.skipped ? " (overflow: skipped)" : "",
                     (long long)sc.skipped);
        double el = omp_get_wtime() - t0, per = el / (double)(step - start_step + 1);
        uint64_t peak = 0;
        sm_peak_rss(&peak);
        char e1[48], e2[48];
        fmt_time(el, e1, sizeof e1);
        fmt_time(per * (double)(o->steps - step - 1), e2, sizeof e2);
        bool log_line = (step + 1) % o->log_every == 0 || step + 1 == o->steps;
        if (tty || log_line)
            printf("%sstep %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | elapsed %s | ETA %s | peak %s%s%s",
                   tty ? "\r\033[K" : "", step + 1, o->steps, loss, r.hparams[SM_ADAMW_LR], (double)B * T / per, e1, e2,
                   sm_format_bytes(peak, mem, sizeof mem), scaling, log_line ? "\n" : "");
        fflush(stdout);
        if (have_val && (step + 1) % o->val_every == 0) {
            double vl;
            if (validate(&tr, &ev, &d, &dist, B, T, o->val_batches, &vl)) {
                sm_cli_fail(cmd, "validation: %s", sm_last_error());
                goto out;
            }
            res->val_loss = vl;
            printf("%sstep %lld: validation loss %.4f\n", tty ? "\r\033[K" : "", step + 1, vl);
        }
        if (o->save && !dist.rank && o->save_every && (step + 1) % o->save_every == 0 && step + 1 < o->steps) {
            if (save_checkpoint(o, &tr, &sc, step + 1)) {
                sm_cli_fail(cmd, "saving: %s", sm_last_error());
                goto out;
            }
            saved = step + 1;
        }
    }
    int stop = v.signal ? v.signal : stop_signal;   /* one that came after the last step counts too */
    res->steps = step - start_step;
    res->seconds = omp_get_wtime() - t0;
    if (have_val && step % o->val_every != 0 && res->steps > 0) {   /* the final model's validation loss */
        if (validate(&tr, &ev, &d, &dist, B, T, o->val_batches, &res->val_loss)) {
            sm_cli_fail(cmd, "validation: %s", sm_last_error());
            goto out;
        }
        printf("%sstep %lld: validation loss %.4f\n", tty ? "\r\033[K" : "", step, res->val_loss);
    }
    if (stop) printf("\ninterrupted (%s): step %lld finished\n", stop == SIGTERM ? "SIGTERM" : "SIGINT", step);
    if (o->save && !dist.rank) {
        if (saved != step && save_checkpoint(o, &tr, &sc, step)) {
            sm_cli_fail(cmd, "saving: %s", sm_last_error());
            goto out;
        }
        printf("saved %s (step %lld; resume with --resume %s)\n", o->save, step, o->save);
    }
    rc = stop ? 128 + stop : 0;
out:
    set_stop_handlers(SIG_DFL);
    sm_dist_close(&dist, rc == 1);
    free(x);
    free(ids);
    sm_dataset_free(&d);
    sm_session_close(&ev);
    sm_session_close(&tr);
    sm_tokenizer_free(tok);
    return rc;
}
