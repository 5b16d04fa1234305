/* sampler.h — choosing the next token from logits: temperature, top-k, top-p (nucleus). */
#ifndef SM_SAMPLER_H
#define SM_SAMPLER_H

#include <stdint.h>

#include "smallmind.h"

typedef struct sm_sampler {
    float temperature;    /* 0 = greedy (argmax) */
    int top_k;            /* keep the k most likely tokens; 0 = all */
    float top_p;          /* keep the smallest set whose probability reaches top_p; 1 = all */
    uint64_t seed;
} sm_sampler;

#define SM_SAMPLER_WORK(V) ((size_t)(V) * 12)

void sm_sampler_default(sm_sampler *s);   /* temperature 0.8, top_k 40, top_p 0.95, seed 1 */
/* SM_ERR_INVALID_ARG naming the first option out of its range: temperature a finite number >= 0,
 * top_k >= 0, top_p in (0, 1]. */
sm_status sm_sampler_check(const sm_sampler *s);
/* The token drawn for draw number `draw` from logits[0..V): deterministic in (seed, draw).
 * work: SM_SAMPLER_WORK(V) bytes of scratch. Options out of range (sm_sampler_check) or a NaN logit
 * are SM_ERR_INVALID_ARG. */
sm_status sm_sampler_pick(const sm_sampler *s, const float *logits, int V, uint64_t draw, void *work, int32_t *out);

#endif
