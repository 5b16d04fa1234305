/* cross_entropy.h — the per-row math of softmax cross-entropy, shared by the cross_entropy ops and the
 * fused LM head (lm_head.c) so both give bitwise the same loss and gradients.
 *
 * Targets: -1 marks an ignored row (adds nothing, not counted); any other id outside [0, V) makes
 * the row's loss and gradient NaN without being read through. */
#ifndef SM_CROSS_ENTROPY_H
#define SM_CROSS_ENTROPY_H

#include <stdint.h>

/* The mean is summed in SM_CE_BLOCKS fixed blocks of rows (block b = rows [R*b/B, R*(b+1)/B)), each
 * in row order in double, then the blocks in order: independent of the thread count. */
#define SM_CE_BLOCKS 256

/* logsumexp(x) - x[target] of one row x [V], in double; *counted = 0 for an ignored row (loss 0). */
double sm_ce_row_loss(const float *x, int32_t target, int64_t V, int *counted);
/* The mean from the blocks' (loss sum, row count) pairs, part [SM_CE_BLOCKS][2]: 0 when no row counts. */
float sm_ce_mean(const double *part);
/* Rows whose target is not -1. */
int64_t sm_ce_count(const int32_t *targets, int64_t R);
/* d [V] = (softmax(x) - onehot(target)) * scale; d may be x (in place). */
void sm_ce_row_grad(const float *x, int32_t target, int64_t V, float scale, float *d);

#endif
