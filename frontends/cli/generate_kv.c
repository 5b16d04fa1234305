/* generate_kv.c — `smallmind generate` with a KV cache in RAM or in a file (generate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sampler.h"
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

static void emit(const sm_tokenizer *tok, sm_decode_stream *ds, int32_t id, bool raw, char *text, size_t cap)
{
    const char *bytes = text;
    size_t k;
    sm_status s = raw ? sm_tokenizer_token_bytes(tok, id, &bytes, &k) : sm_tokenizer_decode_step(tok, ds, id, text, cap, &k);
    if (s == SM_OK) fwrite(bytes, 1, k, stdout);
    fflush(stdout);
}

/* Appends one token; once the window T is full, re-runs the last T tokens instead (from position 0:
 * learned positions cannot slide), as the uncached path does. */
static sm_status step(sm_infer *inf, const int32_t *ctx, size_t n, int T, float *logits)
{
    if (sm_infer_length(inf) + 1 <= T) return sm_infer_append(inf, ctx + n - 1, 1, logits, 0);
    sm_status st = sm_infer_clear(inf);
    return st ? st : sm_infer_append(inf, ctx + n - T, T, logits, 0);
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
    const int T = s->m.gpt.seq, V = s->m.gpt.vocab;
    sm_infer_options io;
    sm_infer_options_default(&io);
    io.positions = T;
    io.kv_file = kv->file;
    io.resume = kv->resume;
    sm_infer *inf = NULL;
    int32_t *ctx = NULL, *prompt = NULL;
    float *logits = malloc(sizeof *logits * (size_t)V);
    size_t cap = SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(tok)), n_prompt = 0;
    char *text = malloc(cap);
    void *work = malloc(SM_SAMPLER_WORK(V));
    sm_sampler smp = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p, .seed = (uint64_t)o->seed};
    int rc = 1;
    if (!logits || !text || !work) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    if (sm_infer_create(&s->m.gpt, s->rt, &io, &inf)) goto fail;
    /* the session holds its own copy of the weights now */
    sm_session_close(s);
    const char *ptext = kv->resume ? kv->cont : o->prompt;
    if (ptext && *ptext && sm_tokenizer_encode(tok, ptext, strlen(ptext), &prompt, &n_prompt)) goto fail;
    size_t have = (size_t)sm_infer_length(inf);
    int32_t start = 0;   /* an empty prompt starts after a newline (byte) or <|endoftext|> (GPT-2) */
    if (!n_prompt && !have && sm_tokenizer_token_id(tok, "<|endoftext|>", 13, &start)) start = '\n';
    /* ctx: what this run runs (the cache's earlier positions are in the file, not here) */
    size_t n = n_prompt ? n_prompt : 1, total = n + (size_t)o->n_tokens;
    if (!(ctx = malloc(sizeof *ctx * total))) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    if (n_prompt) memcpy(ctx, prompt, sizeof *ctx * n_prompt);
    else if (have) ctx[0] = sm_infer_last_token(inf);
    else ctx[0] = start;
    if (!n_prompt && have) {
        /* --continue with no text: the logits after the last token, by running it again */
        if (ctx[0] < 0 || sm_infer_rewind(inf, (int64_t)have - 1)) goto fail;
    }
    if (!have && n > (size_t)T) {   /* a prompt longer than the window: its last T tokens, as uncached */
        memmove(ctx, ctx + n - T, sizeof *ctx * (size_t)T);
        n = (size_t)T;
    }
    if (have + n > (size_t)T) {
        sm_cli_fail(cmd, "the KV cache holds %d positions (-T): %zu filled + %zu new do not fit; start a new file",
                    T, have, n);
        goto out;
    }
    if (ptext) fputs(ptext, stdout);
    fflush(stdout);
    if (sm_infer_append(inf, ctx, (int64_t)n, logits, 0)) goto fail;
    sm_decode_stream ds;
    sm_decode_stream_init(&ds);
    for (int i = 0; i < o->n_tokens; i++) {
        int32_t next;
        if (sm_sampler_pick(&smp, logits, V, (uint64_t)i, work, &next)) goto fail;
        ctx[n++] = next;
        emit(tok, &ds, next, o->raw, text, cap);
        /* the last token goes into the cache too, so a resumed session goes on after it */
        if (kv->file || i + 1 < o->n_tokens) {
            if (have && sm_infer_length(inf) + 1 > T) {   /* a resumed file is full: stop here */
                if (i + 1 < o->n_tokens)
                    fprintf(stderr, "\nsmallmind %s: the KV file holds %d positions (-T) and is full: stopped after "
                            "%d tokens\n", cmd, T, i + 1);
                else
                    fprintf(stderr, "\nsmallmind %s: the KV file holds %d positions (-T) and is full: the last token "
                            "is not in it\n", cmd, T);
                break;
            }
            if (step(inf, ctx, n, T, logits)) goto fail;
        }
    }
    if (!o->raw) fwrite(text, 1, sm_decode_stream_flush(&ds, text), stdout);
    putchar('\n');
    rc = 0;
    goto out;
fail:
    sm_cli_fail(cmd, "%s", sm_last_error());
out:
    sm_infer_free(inf);
    free(ctx), free(prompt), free(logits), free(text), free(work);
    return rc;
}
