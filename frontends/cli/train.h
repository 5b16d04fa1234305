/* train.h — the training loop behind `smallmind train` and `smallmind demo`. */
#ifndef SM_CLI_TRAIN_H
#define SM_CLI_TRAIN_H

#include "session.h"

typedef struct sm_train_options {
    sm_model_spec spec;
    const char *data;          /* text file */
    const char *tokenizer;     /* "byte" or "gpt2:VOCAB:MERGES" */
    long long steps;           /* the schedule's length: train up to this step number */
    int steps_given;           /* --steps was on the command line */
    long long until;           /* stop after this step (0 = at steps) */
    double max_seconds;        /* stop early after this much time (0 = no limit) */
    long long seed;
    int threads;
    sm_adamw_config adamw;
    int val_every, val_batches, log_every;
    const char *save;          /* checkpoint path (NULL = do not save) */
    int save_every;            /* steps between checkpoints (0 = only at the end / on Ctrl-C) */
    const char *resume;        /* checkpoint to resume from */
    uint64_t budget;           /* --budget: the run's memory limit in bytes; 0 = auto (the default) */
    int ranks;                 /* processes sharing each batch (mpirun -np N; dist.h): set by sm_train_run */
    /* --loss-scale: the mode is spec.loss_scale (default SM_CLI_LOSS_SCALE_AUTO) */
    float loss_scale_fixed;    /* the VALUE of --loss-scale VALUE */
    float loss_scale_init;     /* --loss-scale-init: dynamic's initial scale (65536) */
    long long loss_scale_interval;   /* --loss-scale-interval: dynamic's growth interval (2000) */
    bool loss_scale_given;     /* one of those options was on the command line */
    sm_loss_scaler resumed;    /* --resume: the checkpoint's scaler (continued as it is unless
                                  loss_scale_given: then only its skipped count carries over) */
    bool has_resumed;          /* the checkpoint had one */
} sm_train_options;

typedef struct sm_train_result {
    double unigram_entropy, first_loss, last_loss, val_loss, seconds;
    long long steps;
    long long skipped;         /* steps skipped by loss scaling in this run (overflowed gradients) */
} sm_train_result;

void sm_train_options_default(sm_train_options *o);
/* Parses train's options (argv[0] is the command); returns -1 to go on, else an exit status. */
int sm_train_parse(const char *cmd, int argc, char **argv, sm_train_options *o);
/* Trains; prints progress; returns the exit status: 0, 1 on failure (before step 1 when --save or the
 * budget would not do), 128 + the signal when stopped by SIGINT (130) or SIGTERM (143), after saving. */
int sm_train_run(const char *cmd, sm_train_options *o, sm_train_result *res);
/* The training checkpoint after next_step steps, with the loss scaler's state sc. */
sm_status sm_train_save(const sm_train_options *o, sm_session *s, const sm_loss_scaler *sc, const char *path,
                        long long next_step);

/* Generation shared by generate and demo: streams n tokens after the prompt to stdout. */
typedef struct sm_generate_options {
    const char *prompt;
    int n_tokens;
    float temperature, top_p;
    int top_k;
    long long seed;
    bool raw;                  /* each token's bytes as they are, not made into valid UTF-8 */
} sm_generate_options;
int sm_generate_run(const char *cmd, sm_session *s, const sm_tokenizer *tok, const sm_generate_options *o);

#endif
