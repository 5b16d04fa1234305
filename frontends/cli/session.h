/* session.h — what train, generate and eval share: opening tokenizers, reading corpora, building a
 * model with its plan and runtime, and the facts a checkpoint records about its run. */
#ifndef SM_CLI_SESSION_H
#define SM_CLI_SESSION_H

#include "../tokenizer.h"
#include "cli.h"

/* "byte" (default) or "gpt2:VOCAB.json:MERGES.txt". */
sm_status sm_cli_tokenizer_open(const char *spec, sm_tokenizer **out);
/* Bytes read at a time: the memory a streaming reader (eval) holds for its file. */
#define SM_CLI_READ_PIECE ((size_t)1 << 20)
/* Tokens of a text file, or of a file of whitespace-separated decimal token ids when ids_file. */
sm_status sm_cli_read_tokens(const char *path, const sm_tokenizer *tok, bool ids_file, int32_t **ids, int64_t *n);

/* A model ready to run: graph, plan and runtime. */
typedef struct sm_session {
    sm_model m;
    sm_plan *plan;
    sm_runtime *rt;
    sm_recompute_policy recompute;   /* the plan's (sm_session_open takes the spec's) */
    sm_precision precision;          /* the plan's (sm_session_open takes the spec's) */
} sm_session;

/* Builds spec's model (training: with backward and AdamW), plans it for `threads` and creates its
 * runtime. */
sm_status sm_session_open(sm_session *s, const sm_model_spec *spec, const sm_adamw_config *adamw, int threads);
/* Plans s->m (already built) for `threads` and creates its runtime; closes s on failure. */
sm_status sm_session_start(sm_session *s, int threads);
/* The same in steps, so the plans can be checked against a budget before anything large is
 * allocated: load builds the model (no plan, no runtime yet), plan plans it (closes s on failure),
 * alloc creates the runtime (closes s on failure). */
sm_status sm_session_load(sm_session *s, const sm_model_spec *spec, const sm_adamw_config *adamw);
sm_status sm_session_plan(sm_session *s, int threads);
sm_status sm_session_alloc(sm_session *s);
void sm_session_close(sm_session *s);

/* What a checkpoint written by `smallmind train --save` records about its run (its metadata). */
typedef struct sm_run_facts {
    char model[4096], tokenizer[1024], defines[1024];
    int batch, seq;
    long long seed, step;
    sm_adamw_config adamw;
    bool has_adamw;       /* adamw was there */
    sm_loss_scaler loss_scaler;   /* the run's loss scaling, and its state at the save */
    bool has_loss_scaler; /* loss_scale was there (else: a run without loss scaling) */
    bool complete;        /* model, batch, seq, tokenizer and seed were all there */
} sm_run_facts;

/* Reads the facts (verifying the metadata checksum); missing ones are left empty/0 (tokenizer:
 * "byte"). A fact that is there must be well-formed and in range (batch and seq as -B and -T take
 * them, seed and step >= 0, adamw's nine settings as AdamW takes them, the loss scaler's settings and
 * counters as sm_loss_scaler_check takes them and with skipped <= step, defines KEY=VALUE, strings
 * that fit), else the error names the file, the key and what it must be. */
sm_status sm_run_facts_read(const char *path, sm_run_facts *f);

#endif
