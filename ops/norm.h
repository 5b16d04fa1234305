/* norm.h — what layernorm and rmsnorm share: the shape rule and the row sums. */
#ifndef SM_NORM_H
#define SM_NORM_H

#include "rows.h"

/* x [.., C] f32; every other input (w, and b for layernorm) f32 [C]. Output: x's shape. */
sm_status sm_norm_shape(const sm_graph *g, const sm_node *n, sm_tensor_rec *out, const char *op);

/* Row sums in 16 double lanes: vectorised, and summed in an order fixed by C alone. */
double sm_norm_sum(const float *x, int64_t C);
/* Σ ((x[i] - hi) - lo)², the squared deviations from the centre hi + lo (two floats, see layernorm) */
double sm_norm_sum_sq_dev(const float *x, float hi, float lo, int64_t C);

#endif
