/* generate.h — `smallmind generate` with a KV cache (generate_kv.c): the library's inference session
 * (sm_infer) does the work; this is option handling and printing. */
#ifndef SM_CLI_GENERATE_H
#define SM_CLI_GENERATE_H

#include "train.h"

typedef struct sm_generate_kv {
    bool off;                  /* --no-kv-cache: re-run the window for every token (sm_generate_run) */
    const char *file;          /* --kv file:PATH or --kv-file PATH; NULL = RAM */
    bool resume;               /* --continue TEXT: resume the file's session, TEXT goes on from there */
    const char *cont;          /* the TEXT of --continue */
} sm_generate_kv;

/* Generation through an inference session (sm_infer_generate): the prompt is prefilled, then one token
 * per run; past the window T each token re-runs the last T tokens, as the uncached path does, so the
 * output is the uncached path's, token for token. Printing is all this adds. */
int sm_generate_cached(const char *cmd, sm_session *s, const sm_tokenizer *tok, const sm_generate_options *o,
                       const sm_generate_kv *kv);

#endif
