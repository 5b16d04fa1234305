/* op_table.c — the op table: every op's row, by kind. Each row lives next to its kernels in
 * ops/<op>.c; this file only gathers them and answers questions about them by name. */
#include <string.h>

#include "../graph/error.h"
#include "op.h"
#include "rows.h"

static const sm_op_def *const table[SM_OP_COUNT] = {
    [SM_OP_EMBEDDING] = &sm_op_embedding,
    [SM_OP_ADD] = &sm_op_add,
    [SM_OP_MUL] = &sm_op_mul,
    [SM_OP_SCALE] = &sm_op_scale,
    [SM_OP_MATMUL] = &sm_op_matmul,
    [SM_OP_LINEAR] = &sm_op_linear,
    [SM_OP_LAYERNORM] = &sm_op_layernorm,
    [SM_OP_RMSNORM] = &sm_op_rmsnorm,
    [SM_OP_GELU] = &sm_op_gelu,
    [SM_OP_SILU] = &sm_op_silu,
    [SM_OP_SOFTMAX] = &sm_op_softmax,
    [SM_OP_ATTENTION] = &sm_op_attention,
    [SM_OP_ROPE] = &sm_op_rope,
    [SM_OP_RESHAPE] = &sm_op_reshape,
    [SM_OP_PERMUTE] = &sm_op_permute,
    [SM_OP_SLICE] = &sm_op_slice,
    [SM_OP_CONCAT] = &sm_op_concat,
    [SM_OP_SUM] = &sm_op_sum,
    [SM_OP_MEAN] = &sm_op_mean,
    [SM_OP_CROSS_ENTROPY] = &sm_op_cross_entropy,
    [SM_OP_CAST] = &sm_op_cast,
    /* appended by autodiff and the optimizer */
    [SM_OP_FILL] = &sm_op_fill,
    [SM_OP_SUM_TO] = &sm_op_sum_to,
    [SM_OP_EXPAND] = &sm_op_expand,
    [SM_OP_PAD] = &sm_op_pad,
    [SM_OP_EMBEDDING_BWD] = &sm_op_embedding_bwd,
    [SM_OP_NORM_STATS] = &sm_op_norm_stats,
    [SM_OP_NORM_BWD_X] = &sm_op_norm_bwd_x,
    [SM_OP_NORM_BWD_W] = &sm_op_norm_bwd_w,
    [SM_OP_GELU_BWD] = &sm_op_gelu_bwd,
    [SM_OP_SILU_BWD] = &sm_op_silu_bwd,
    [SM_OP_SOFTMAX_BWD] = &sm_op_softmax_bwd,
    [SM_OP_ATTENTION_BWD] = &sm_op_attention_bwd,
    [SM_OP_CROSS_ENTROPY_BWD] = &sm_op_cross_entropy_bwd,
    [SM_OP_SUMSQ] = &sm_op_sumsq,
    [SM_OP_ADAMW] = &sm_op_adamw,
    [SM_OP_LM_HEAD_CE] = &sm_op_lm_head_ce,
    [SM_OP_LM_HEAD_CE_BWD] = &sm_op_lm_head_ce_bwd,
    [SM_OP_ROWS] = &sm_op_rows,
};

const sm_op_def *sm_op_def_get(sm_op_kind op) { return (unsigned)op < SM_OP_COUNT ? table[op] : NULL; }

const char *sm_op_name(sm_op_kind op) { return (unsigned)op < SM_OP_COUNT ? table[op]->name : "?"; }

sm_status sm_op_lookup(const char *name, sm_op_kind *out)
{
    for (int i = 0; name && i < SM_OP_COUNT; i++)
        if (strcmp(table[i]->name, name) == 0) {
            if (out) *out = (sm_op_kind)i;
            return SM_OK;
        }
    return sm_error(SM_ERR_INVALID_ARG, "unknown op '%s'", name ? name : "(null)");
}

const char *sm_op_iattr_name(sm_op_kind op, int slot)
{
    if ((unsigned)op >= SM_OP_COUNT || slot < 0 || slot >= SM_MAX_IATTRS) return NULL;
    return table[op]->iattr[slot];
}

const char *sm_op_fattr_name(sm_op_kind op, int slot)
{
    if ((unsigned)op >= SM_OP_COUNT || slot < 0 || slot >= SM_MAX_FATTRS) return NULL;
    return table[op]->fattr[slot];
}

sm_attrs sm_op_default_attrs(sm_op_kind op)
{
    sm_attrs a;
    memset(&a, 0, sizeof a);
    if ((unsigned)op >= SM_OP_COUNT) return a;
    memcpy(a.i, table[op]->iattr_default, sizeof a.i);
    memcpy(a.f, table[op]->fattr_default, sizeof a.f);
    return a;
}

/* ---- helpers shared by rows ---- */

sm_status sm_shape_same_as_in0(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    out->ndim = x->ndim;
    memcpy(out->ne, x->ne, sizeof out->ne);
    out->dtype = x->dtype;
    return SM_OK;
}

double sm_flops_per_out_elem(const sm_graph *g, const sm_node *n, double per_elem)
{
    return per_elem * (double)sm_rec_numel(&g->t[n->out]);
}

sm_status sm_shape_check_f32(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i)
{
    const sm_tensor_rec *x = &g->t[n->in[i]];
    if (x->dtype == SM_F32) return SM_OK;
    return sm_error(SM_ERR_SHAPE, "node '%s': %s input %d ('%s') is %s; this op computes on f32 (add a cast)",
                    out->name, sm_op_def_get(n->op)->name, i, x->name, sm_dtype_name(x->dtype));
}
