/* session.h — what train, generate and eval share: opening tokenizers, reading corpora, building a
 * model with its plan and runtime, and the facts a checkpoint records about its run. */
#ifndef SM_CLI_SESSION_H
#define SM_CLI_SESSION_H

#include "../tokenizer.h"
#include "cli.h"

/* "byte" (default) or "gpt2:VOCAB.json:MERGES.txt". */
sm_status sm_cli_tokenizer_open(const char *spec, sm_tokenizer **out);
/* Tokens of a text file, or of a file of whitespace-separated decimal token ids when ids_file. */
sm_status sm_cli_read_tokens(const char *path, const sm_tokenizer *tok, bool ids_file, int32_t **ids, int64_t *n);

/* A model ready to run: graph, plan and runtime. */
typedef struct sm_session {
    sm_model m;
    sm_plan *plan;
    sm_runtime *rt;
} sm_session;

/* Builds spec's model (training: with backward and AdamW), plans it for `threads` and creates its
 * runtime. */
sm_status sm_session_open(sm_session *s, const sm_model_spec *spec, const sm_adamw_config *adamw, int threads);
/* Plans s->m (already built) for `threads` and creates its runtime; closes s on failure. */
sm_status sm_session_start(sm_session *s, int threads);
void sm_session_close(sm_session *s);

#endif
