/* rows.h — the op table's rows, one per op, each defined next to its kernels. */
#ifndef SM_ROWS_H
#define SM_ROWS_H

#include "backward.h"   /* the backward rules rows point at */
#include "op.h"

extern const sm_op_def sm_op_embedding, sm_op_add, sm_op_mul, sm_op_scale, sm_op_matmul, sm_op_linear,
    sm_op_layernorm, sm_op_rmsnorm, sm_op_gelu, sm_op_silu, sm_op_softmax, sm_op_attention, sm_op_rope,
    sm_op_reshape, sm_op_permute, sm_op_slice, sm_op_concat, sm_op_sum, sm_op_mean, sm_op_cross_entropy,
    sm_op_cast, sm_op_lm_head_ce, sm_op_rows;

/* appended by autodiff and the optimizer */
extern const sm_op_def sm_op_fill, sm_op_sum_to, sm_op_expand, sm_op_pad, sm_op_embedding_bwd, sm_op_norm_stats,
    sm_op_norm_bwd_x, sm_op_norm_bwd_w, sm_op_gelu_bwd, sm_op_silu_bwd, sm_op_softmax_bwd, sm_op_attention_bwd,
    sm_op_cross_entropy_bwd, sm_op_sumsq, sm_op_adamw, sm_op_lm_head_ce_bwd;

#endif
