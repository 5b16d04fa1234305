/* generate_kv.c — `smallmind generate` with a KV cache in RAM or in a file (generate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../token_stream.h"
#include "generate.h"

/* Is s's model the GPT template with its own config? (A graph file may compute anything: only the
 * template has a decode instance.) The same structure hash says so. */
static bool is_template(const sm_session *s)
{
    sm_gpt_config c = s->m.gpt;
    sm_graph *g;
    sm_gpt_tensors io;
    if (c.mlp_ratio < 1 || sm_graph_create(&g)) return false;
    bool same = !sm_gpt_build(g, &c, &io) && sm_graph_hash(g) == sm_graph_hash(s->m.g);
    sm_graph_free(g);
    return same;
}

/* Prints each token as it comes. */
typedef struct printer {
    const sm_tokenizer *tok;
    sm_decode_stream ds;
    bool raw;
    char *text;
    size_t cap;
} printer;

static sm_status print_token(void *user, int32_t id)
{
    printer *p = user;
    const char *bytes = p->text;
    size_t k;
    sm_status s = p->raw ? sm_tokenizer_token_bytes(p->tok, id, &bytes, &k)
                         : sm_tokenizer_decode_step(p->tok, &p->ds, id, p->text, p->cap, &k);
    if (s == SM_OK) fwrite(bytes, 1, k, stdout);
    fflush(stdout);
    return SM_OK;
}

int sm_generate_cached(const char *cmd, sm_session *s, const sm_tokenizer *tok, const sm_generate_options *o,
                       const sm_generate_kv *kv)
{
    if (!is_template(s)) {
        if (kv->file || kv->resume)
            return sm_cli_fail(cmd, "a KV cache needs a model of the gpt template; this one is a graph file: "
                               "drop --kv/--kv-file/--continue or use --no-kv-cache");
        return sm_generate_run(cmd, s, tok, o);   /* a graph file: the window re-run */
    }
    const int T = s->m.gpt.seq;
    sm_infer_options io;
    sm_infer_options_default(&io);
    io.positions = T;
    io.kv_file = kv->file;
    io.resume = kv->resume;
    sm_infer *inf = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    printer pr = {.tok = tok, .raw = o->raw, .cap = SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(tok))};
    sm_sampling how = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p, .seed = (uint64_t)o->seed};
    int rc = 1;
    if (!(pr.text = malloc(pr.cap))) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    if (sm_infer_create(&s->m.gpt, s->rt, &io, &inf)) goto fail;
    sm_session_close(s);   /* the session holds its own copy of the weights now */
    const char *ptext = kv->resume ? kv->cont : o->prompt;
    if (ptext && *ptext && sm_tokenizer_encode(tok, ptext, strlen(ptext), &prompt, &n_prompt)) goto fail;
    int32_t start = 0;   /* an empty prompt starts after a newline (byte) or <|endoftext|> (GPT-2) */
    if (!n_prompt && !sm_infer_length(inf)) {
        if (sm_tokenizer_token_id(tok, "<|endoftext|>", 13, &start)) start = '\n';
        prompt = malloc(sizeof *prompt);
        if (!prompt) {
            sm_cli_fail(cmd, "out of memory");
            goto out;
        }
        prompt[n_prompt++] = start;
    }
    int64_t have = sm_infer_length(inf), done = 0;
    if (have && have + (int64_t)n_prompt > T) {
        sm_cli_fail(cmd, "the KV cache holds %d positions (-T): %lld filled + %zu new do not fit; start a new file",
                    T, (long long)have, n_prompt);
        goto out;
    }
    if (ptext) fputs(ptext, stdout);
    fflush(stdout);
    sm_decode_stream_init(&pr.ds);
    if (sm_infer_generate(inf, prompt, (int64_t)n_prompt, o->n_tokens, &how, print_token, &pr, &done)) goto fail;
    if (!o->raw) fwrite(pr.text, 1, sm_decode_stream_flush(&pr.ds, pr.text), stdout);
    putchar('\n');
    if (done < o->n_tokens)
        fprintf(stderr, "smallmind %s: the KV file holds %d positions (-T) and is full: stopped after %lld tokens\n",
                cmd, T, (long long)done);
    rc = 0;
    goto out;
fail:
    sm_cli_fail(cmd, "%s", sm_last_error());
out:
    sm_infer_free(inf);
    free(prompt), free(pr.text);
    return rc;
}
