/* dataset.h — a tokenised corpus split into training and validation parts, and the batches the
 * trainer and evaluator draw from it. */
#ifndef SM_DATASET_H
#define SM_DATASET_H

#include <stdint.h>

#include "smallmind.h"

typedef struct sm_dataset {
    int32_t *tokens;
    int64_t n;            /* all tokens */
    int64_t n_train;      /* tokens [0, n_train) train, [n_train, n) validate */
} sm_dataset;

/* Splits off the last val_fraction of the tokens for validation (at least T+1 tokens each side
 * when there are enough). Takes ownership of tokens. */
sm_status sm_dataset_init(sm_dataset *d, int32_t *tokens, int64_t n, double val_fraction, int T);
void sm_dataset_free(sm_dataset *d);

/* B random windows of T+1 tokens from the training part: inputs x[b,t] and targets y[b,t] =
 * the next token. Window starts depend only on (seed, step), never on anything else. */
void sm_dataset_train_batch(const sm_dataset *d, uint64_t seed, int64_t step, int B, int T, int32_t *x, int32_t *y);

/* Batch k of consecutive non-overlapping windows over [begin, end): windows b*T.. of the range,
 * B at a time. Returns how many of the B rows are real (the rest are padded with target -1,
 * which cross-entropy ignores). */
int sm_dataset_seq_batch(const sm_dataset *d, int64_t begin, int64_t end, int64_t k, int B, int T, int32_t *x,
                         int32_t *y);

#endif
