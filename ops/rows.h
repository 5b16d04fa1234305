/* rows.h — the op table's rows, one per op, each defined next to its kernels. */
#ifndef SM_ROWS_H
#define SM_ROWS_H

#include "op.h"

extern const sm_op_def sm_op_embedding, sm_op_add, sm_op_mul, sm_op_scale, sm_op_matmul, sm_op_linear,
    sm_op_layernorm, sm_op_rmsnorm, sm_op_gelu, sm_op_silu, sm_op_softmax, sm_op_attention, sm_op_rope,
    sm_op_reshape, sm_op_permute, sm_op_slice, sm_op_concat, sm_op_sum, sm_op_mean, sm_op_cross_entropy,
    sm_op_cast;

#endif
