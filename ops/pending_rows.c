/* pending_rows.c — rows whose kernels are not written yet: they build (shape = input 0's) but the
 * executor refuses to run them. Each row moves to its own file when its kernels land. */
#include "rows.h"

#define PENDING(var, nm, lo, hi) \
    const sm_op_def var = {.name = nm, .min_in = lo, .max_in = hi, .shape = sm_shape_same_as_in0}

PENDING(sm_op_layernorm, "layernorm", 3, 3);
PENDING(sm_op_rmsnorm, "rmsnorm", 2, 2);
PENDING(sm_op_gelu, "gelu", 1, 1);
PENDING(sm_op_silu, "silu", 1, 1);
PENDING(sm_op_softmax, "softmax", 1, 1);
PENDING(sm_op_attention, "attention", 1, 1);
PENDING(sm_op_rope, "rope", 1, 1);
PENDING(sm_op_permute, "permute", 1, 1);
PENDING(sm_op_slice, "slice", 1, 1);
PENDING(sm_op_concat, "concat", 1, SM_MAX_INPUTS);
PENDING(sm_op_sum, "sum", 1, 1);
PENDING(sm_op_mean, "mean", 1, 1);
PENDING(sm_op_cross_entropy, "cross_entropy", 2, 2);
PENDING(sm_op_cast, "cast", 1, 1);
