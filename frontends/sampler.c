/* sampler.c — temperature, then top-k, then top-p over the sorted distribution, then one uniform
 * draw keyed by (seed, draw) so a generation is reproducible token by token. */
#include <math.h>
#include <stdlib.h>

#include "../base/error.h"
#include "../base/rng.h"
#include "sampler.h"

void sm_sampler_default(sm_sampler *s)
{
    s->temperature = 0.8f;
    s->top_k = 40;
    s->top_p = 0.95f;
    s->seed = 1;
}

typedef struct {
    float logit;
    int32_t id;
} cand;

static int by_logit_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;   /* ties: lower id first, so the order is total */
}

sm_status sm_sampler_check(const sm_sampler *s)
{
    if (!s) return sm_error(SM_ERR_INVALID_ARG, "sampler: NULL options");
    if (!(s->temperature >= 0 && isfinite(s->temperature)))
        return sm_error(SM_ERR_INVALID_ARG, "sampler: temperature is %g; it must be a finite number >= 0 (0 = greedy)",
                        s->temperature);
    if (s->top_k < 0)
        return sm_error(SM_ERR_INVALID_ARG, "sampler: top_k is %d; it must be >= 0 (0 = all tokens)", s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return sm_error(SM_ERR_INVALID_ARG, "sampler: top_p is %g; it must be in (0, 1] (1 = no nucleus cut)", s->top_p);
    return SM_OK;
}

/* The most likely token; a NaN logit is an error (every comparison with it is false, so it would
 * otherwise pass for token 0). */
static sm_status argmax(const float *logits, int V, int32_t *best)
{
    *best = 0;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i]))
            return sm_error(SM_ERR_INVALID_ARG, "sampler: the logit of token %d is NaN: the model computed no number "
                            "(are its weights damaged?)", i);
        if (logits[i] > logits[*best]) *best = i;
    }
    return SM_OK;
}

sm_status sm_sampler_pick(const sm_sampler *s, const float *logits, int V, uint64_t draw, void *work, int32_t *out)
{
    if (!s || !logits || V < 1 || !work || !out) return sm_error(SM_ERR_INVALID_ARG, "sampler: bad argument");
    int32_t best;
    sm_status st = sm_sampler_check(s);
    if (!st) st = argmax(logits, V, &best);
    if (st) return st;
    if (s->temperature == 0) {
        *out = best;
        return SM_OK;
    }
    cand *c = work;
    float *p = (float *)(c + V);
    for (int i = 0; i < V; i++) c[i] = (cand){logits[i], i};
    qsort(c, (size_t)V, sizeof *c, by_logit_desc);
    int k = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double total = 0;
    for (int i = 0; i < k; i++) total += p[i] = expf((c[i].logit - logits[best]) / s->temperature);
    /* nucleus: the shortest prefix of the sorted list holding top_p of the mass */
    double mass = 0;
    int n = 0;
    while (n < k && mass < s->top_p * total) mass += p[n++];
    double u = sm_rng_uniform(s->seed, draw) * mass, acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += p[i]) >= u || i == n - 1) {
            *out = c[i].id;
            return SM_OK;
        }
    *out = best;
    return SM_OK;
}
