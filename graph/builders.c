/* builders.c — the typed builder wrappers of the public API: each sets an op's attributes and calls
 * sm_graph_op, which checks shapes. */
#include <string.h>

#include "../ops/attrs.h"
#include "../base/error.h"
#include "graph.h"

static sm_status op1(sm_graph *g, sm_op_kind op, sm_tensor x, const sm_attrs *a, const char *name, sm_tensor *out)
{
    return sm_graph_op(g, op, &x, 1, a, name, out);
}

static sm_status op2(sm_graph *g, sm_op_kind op, sm_tensor x, sm_tensor y, const sm_attrs *a, const char *name,
                     sm_tensor *out)
{
    sm_tensor in[2] = {x, y};
    return sm_graph_op(g, op, in, 2, a, name, out);
}

sm_status sm_embedding(sm_graph *g, sm_tensor ids, sm_tensor table, const char *name, sm_tensor *out)
{
    return op2(g, SM_OP_EMBEDDING, ids, table, NULL, name, out);
}

sm_status sm_add(sm_graph *g, sm_tensor a, sm_tensor b, const char *name, sm_tensor *out)
{
    return op2(g, SM_OP_ADD, a, b, NULL, name, out);
}

sm_status sm_mul(sm_graph *g, sm_tensor a, sm_tensor b, const char *name, sm_tensor *out)
{
    return op2(g, SM_OP_MUL, a, b, NULL, name, out);
}

sm_status sm_scale(sm_graph *g, sm_tensor a, float s, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_SCALE);
    at.f[SM_FATTR_SCALE_S] = s;
    return op1(g, SM_OP_SCALE, a, &at, name, out);
}

sm_status sm_matmul(sm_graph *g, sm_tensor a, sm_tensor b, int trans_a, int trans_b, const char *name,
                    sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_MATMUL);
    at.i[SM_IATTR_MATMUL_TRANS_A] = trans_a != 0;
    at.i[SM_IATTR_MATMUL_TRANS_B] = trans_b != 0;
    return op2(g, SM_OP_MATMUL, a, b, &at, name, out);
}

sm_status sm_linear(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor b, const char *name, sm_tensor *out)
{
    sm_tensor in[3] = {x, w, b};
    return sm_graph_op(g, SM_OP_LINEAR, in, b == SM_NO_TENSOR ? 2 : 3, NULL, name, out);
}

sm_status sm_layernorm(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor b, float eps, const char *name,
                       sm_tensor *out)
{
    sm_tensor in[3] = {x, w, b};
    sm_attrs at = sm_op_default_attrs(SM_OP_LAYERNORM);
    at.f[SM_FATTR_NORM_EPS] = eps;
    return sm_graph_op(g, SM_OP_LAYERNORM, in, 3, &at, name, out);
}

sm_status sm_rmsnorm(sm_graph *g, sm_tensor x, sm_tensor w, float eps, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_RMSNORM);
    at.f[SM_FATTR_NORM_EPS] = eps;
    return op2(g, SM_OP_RMSNORM, x, w, &at, name, out);
}

sm_status sm_gelu(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out)
{
    return op1(g, SM_OP_GELU, x, NULL, name, out);
}

sm_status sm_silu(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out)
{
    return op1(g, SM_OP_SILU, x, NULL, name, out);
}

sm_status sm_softmax(sm_graph *g, sm_tensor x, const char *name, sm_tensor *out)
{
    return op1(g, SM_OP_SOFTMAX, x, NULL, name, out);
}

sm_status sm_attention(sm_graph *g, sm_tensor qkv, int n_head, int span, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_ATTENTION);
    at.i[SM_IATTR_ATTENTION_N_HEAD] = n_head;
    at.i[SM_IATTR_ATTENTION_SPAN] = span;
    return op1(g, SM_OP_ATTENTION, qkv, &at, name, out);
}

sm_status sm_kv_attention(sm_graph *g, sm_tensor qkv, sm_tensor k_cache, sm_tensor v_cache, sm_tensor positions,
                          const sm_kv_layout *layout, const char *name, sm_tensor *out)
{
    if (!layout) return sm_error(SM_ERR_INVALID_ARG, "sm_kv_attention: NULL layout");
    sm_attrs at = sm_op_default_attrs(SM_OP_KV_ATTENTION);
    at.i[SM_IATTR_KV_ATTENTION_N_HEAD] = layout->n_head;
    at.i[SM_IATTR_KV_ATTENTION_SPAN] = layout->span;
    at.i[SM_IATTR_KV_ATTENTION_SINK] = layout->sink;
    at.i[SM_IATTR_KV_ATTENTION_RING] = layout->ring;
    sm_tensor in[4] = {qkv, k_cache, v_cache, positions};
    return sm_graph_op(g, SM_OP_KV_ATTENTION, in, 4, &at, name, out);
}

sm_status sm_rope(sm_graph *g, sm_tensor qkv, int n_head, float base, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_ROPE);
    at.i[SM_IATTR_ROPE_N_HEAD] = n_head;
    at.f[SM_FATTR_ROPE_BASE] = base;
    return op1(g, SM_OP_ROPE, qkv, &at, name, out);
}

sm_status sm_reshape(sm_graph *g, sm_tensor x, int ndim, const int64_t *shape, const char *name, sm_tensor *out)
{
    if (ndim < 1 || ndim > SM_MAX_DIMS || !shape)
        return sm_error(SM_ERR_SHAPE, "reshape%s%s: %d dims; give 1 to %d", name ? " " : "", name ? name : "",
                        ndim, SM_MAX_DIMS);
    sm_attrs at = sm_op_default_attrs(SM_OP_RESHAPE);
    for (int i = 0; i < ndim; i++) at.i[i] = shape[i];
    return op1(g, SM_OP_RESHAPE, x, &at, name, out);
}

sm_status sm_permute(sm_graph *g, sm_tensor x, const int *perm, const char *name, sm_tensor *out)
{
    if (!perm) return sm_error(SM_ERR_INVALID_ARG, "permute: perm is NULL");
    sm_attrs at = sm_op_default_attrs(SM_OP_PERMUTE);
    int nd = sm_graph_valid(g, x) ? g->t[x].ndim : SM_MAX_DIMS;
    for (int i = 0; i < nd; i++) at.i[i] = perm[i];
    return op1(g, SM_OP_PERMUTE, x, &at, name, out);
}

sm_status sm_transpose(sm_graph *g, sm_tensor x, int dim0, int dim1, const char *name, sm_tensor *out)
{
    if (!sm_graph_valid(g, x)) return sm_error(SM_ERR_INVALID_ARG, "transpose: not a tensor of this graph");
    int nd = g->t[x].ndim, perm[SM_MAX_DIMS] = {0, 1, 2, 3};
    if (dim0 < 0 || dim0 >= nd || dim1 < 0 || dim1 >= nd)
        return sm_error(SM_ERR_SHAPE, "transpose of '%s': dims %d and %d; it has %d dims", g->t[x].name, dim0,
                        dim1, nd);
    perm[dim0] = dim1;
    perm[dim1] = dim0;
    return sm_permute(g, x, perm, name, out);
}

sm_status sm_slice(sm_graph *g, sm_tensor x, int axis, int64_t start, int64_t len, const char *name,
                   sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_SLICE);
    at.i[SM_IATTR_SLICE_AXIS] = axis;
    at.i[SM_IATTR_SLICE_START] = start;
    at.i[SM_IATTR_SLICE_LEN] = len;
    return op1(g, SM_OP_SLICE, x, &at, name, out);
}

sm_status sm_concat(sm_graph *g, const sm_tensor *xs, int n, int axis, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_CONCAT);
    at.i[SM_IATTR_CONCAT_AXIS] = axis;
    return sm_graph_op(g, SM_OP_CONCAT, xs, n, &at, name, out);
}

sm_status sm_sum(sm_graph *g, sm_tensor x, int axis, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_SUM);
    at.i[SM_IATTR_REDUCE_AXIS] = axis;
    return op1(g, SM_OP_SUM, x, &at, name, out);
}

sm_status sm_mean(sm_graph *g, sm_tensor x, int axis, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_MEAN);
    at.i[SM_IATTR_REDUCE_AXIS] = axis;
    return op1(g, SM_OP_MEAN, x, &at, name, out);
}

sm_status sm_cross_entropy(sm_graph *g, sm_tensor logits, sm_tensor targets, const char *name, sm_tensor *out)
{
    return op2(g, SM_OP_CROSS_ENTROPY, logits, targets, NULL, name, out);
}

sm_status sm_lm_head_ce(sm_graph *g, sm_tensor x, sm_tensor w, sm_tensor targets, const char *name,
                        sm_tensor *out)
{
    sm_tensor in[3] = {x, w, targets};
    return sm_graph_op(g, SM_OP_LM_HEAD_CE, in, 3, NULL, name, out);
}

sm_status sm_cast(sm_graph *g, sm_tensor x, sm_dtype to, const char *name, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_CAST);
    at.i[SM_IATTR_CAST_DTYPE] = to;
    return op1(g, SM_OP_CAST, x, &at, name, out);
}
