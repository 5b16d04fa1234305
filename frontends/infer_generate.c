/* infer_generate.c — generation through an inference session (sm_infer_generate, smallmind.h): prefill,
 * then draw, hand over and append one token at a time. The CLI's `generate` is this plus printing. */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "sampler.h"

/* Runs the next token: appended, or, once a linear cache is full, the last `cap` tokens of the history
 * again from position 0 (the uncached path's window). */
static sm_status advance(sm_infer *s, const int32_t *hist, int64_t h, int64_t cap, float *logits)
{
    if (sm_infer_length(s) < cap) return sm_infer_append(s, hist + h - 1, 1, logits, 0);
    sm_status st = sm_infer_clear(s);
    return st ? st : sm_infer_append(s, hist + h - cap, cap, logits, 0);
}

sm_status sm_infer_generate(sm_infer *s, const int32_t *prompt, int64_t n_prompt, int64_t n_new,
                            const sm_sampling *how, sm_infer_token_fn fn, void *user, int64_t *n_done)
{
    if (n_done) *n_done = 0;
    if (!s || !how || n_prompt < 0 || n_new < 0 || (n_prompt && !prompt))
        return sm_error(SM_ERR_INVALID_ARG, "sm_infer_generate: bad argument");
    sm_sampler smp = {.temperature = how->temperature, .top_k = how->top_k, .top_p = how->top_p, .seed = how->seed};
    sm_status st = sm_sampler_check(&smp);
    if (st) return st;
    const int V = sm_infer_vocab(s);
    const int64_t cap = sm_infer_capacity(s), had = sm_infer_length(s);
    if (!n_prompt && !had)
        return sm_error(SM_ERR_INVALID_ARG, "generation: the session is empty and the prompt too: give a prompt");
    if (!n_prompt && sm_infer_last_token(s) < 0)
        return sm_error(SM_ERR_INVALID_ARG, "generation: the session's last token is not known (it was rewound): "
                        "give a prompt");
    if (n_prompt > INT64_MAX / 2 || n_new > INT64_MAX / 2 - n_prompt - 1)
        return sm_error(SM_ERR_INVALID_ARG, "generation: %lld + %lld tokens is too many", (long long)n_prompt,
                        (long long)n_new);
    int32_t *hist = malloc(sizeof *hist * (size_t)(n_prompt + n_new + 1));
    float *logits = malloc(sizeof *logits * (size_t)V);
    void *work = malloc(SM_SAMPLER_WORK(V));
    if (!hist || !logits || !work) {
        st = sm_error(SM_ERR_NOMEM, "generation: out of memory for %lld tokens", (long long)(n_prompt + n_new));
        goto out;
    }
    int64_t h = 0;
    if (!n_prompt) {
        /* the logits after the last token: run it again */
        hist[h++] = sm_infer_last_token(s);
        if (!(st = sm_infer_rewind(s, had - 1))) st = sm_infer_append(s, hist, 1, logits, 0);
    } else {
        /* a fresh session and a prompt longer than the cache: its last cap tokens, as uncached */
        int64_t skip = !had && n_prompt > cap ? n_prompt - cap : 0;
        memcpy(hist, prompt + skip, sizeof *hist * (size_t)(n_prompt - skip));
        h = n_prompt - skip;
        st = sm_infer_append(s, hist, h, logits, 0);
    }
    for (int64_t i = 0; !st && i < n_new; i++) {
        int32_t next;
        if ((st = sm_sampler_pick(&smp, logits, V, (uint64_t)i, work, &next))) break;
        if (fn && (st = fn(user, next))) break;
        hist[h++] = next;
        if (n_done) *n_done = i + 1;
        if (had && sm_infer_length(s) >= cap) break;   /* full, and the earlier tokens are unknown */
        st = advance(s, hist, h, cap, logits);
    }
out:
    free(hist), free(logits), free(work);
    return st;
}
