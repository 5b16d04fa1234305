/* attention_bwd.c — backward of causal self-attention:
 *   (qkv [B,T,3C], gy [B,T,C]; n_head, span) -> dqkv [B,T,3C]
 * on the tiled kernel of attention_kernel.h, which recomputes the probabilities tile by tile from
 * qkv (no T×T matrix is stored, as in the forward). */
#include "../base/error.h"
#include "attention_kernel.h"
#include "backward.h"
#include "rows.h"

static sm_status shape_attention_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *qkv = &g->t[n->in[0]], *gy = &g->t[n->in[1]];
    char a[64], b[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (!s) s = sm_shape_check_f32(g, n, out, 1);
    if (s) return s;
    bool ok = qkv->ndim == 3 && gy->ndim == 3 && qkv->ne[0] == gy->ne[0] && qkv->ne[1] == gy->ne[1] &&
              qkv->ne[2] == 3 * gy->ne[2];
    if (!ok)
        return sm_error(SM_ERR_SHAPE, "node '%s': attention_bwd of qkv '%s' %s and gradient '%s' %s: they must "
                        "be [B,T,3C] and [B,T,C]", out->name, qkv->name, sm_shape_str(qkv, a, sizeof a), gy->name,
                        sm_shape_str(gy, b, sizeof b));
    int64_t H = n->attrs.i[SM_IATTR_ATTENTION_N_HEAD];
    if (H < 1 || gy->ne[2] % H)
        return sm_error(SM_ERR_SHAPE, "node '%s': attention_bwd with %lld heads does not divide C = %lld",
                        out->name, (long long)H, (long long)gy->ne[2]);
    return sm_shape_same_as_in0(g, n, out);
}

static void dims(const sm_kernel_args *k, int *B, int *T, int *C, int *H, int *span)
{
    *B = (int)k->in[1]->ne[0];
    *T = (int)k->in[1]->ne[1];
    *C = (int)k->in[1]->ne[2];
    *H = (int)k->node->attrs.i[SM_IATTR_ATTENTION_N_HEAD];
    *span = (int)k->node->attrs.i[SM_IATTR_ATTENTION_SPAN];
}

static void attention_bwd_forward(const sm_kernel_args *k)
{
    int B, T, C, H, span;
    dims(k, &B, &T, &C, &H, &span);
    sm_attention_backward(k->x[0], k->x[1], k->y, B, T, C, H, span, k->work);
}

static void attention_bwd_reference(const sm_kernel_args *k)
{
    int B, T, C, H, span;
    dims(k, &B, &T, &C, &H, &span);
    sm_attention_backward_ref(k->x[0], k->x[1], k->y, B, T, C, H, span);
}

static size_t work_attention_bwd(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *gy = &g->t[n->in[1]];
    return sm_attention_backward_workspace((int)gy->ne[1], (int)gy->ne[2], (int)n->attrs.i[SM_IATTR_ATTENTION_N_HEAD]);
}

/* Recomputing the scores and probabilities (2 matmuls) plus the 3 gradient matmuls, causal: about
 * half of the T×T products are needed. */
static double flops_attention_bwd(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *gy = &g->t[n->in[1]];
    double B = (double)gy->ne[0], T = (double)gy->ne[1], C = (double)gy->ne[2];
    return 5.0 * 2.0 * B * T * T * C / 2.0;
}

const sm_op_def sm_op_attention_bwd = {
    .name = "attention_bwd", .min_in = 2, .max_in = 2, .iattr = {"n_head", "span"},
    .shape = shape_attention_bwd, .flops = flops_attention_bwd, .workspace = work_attention_bwd,
    .forward = attention_bwd_forward, .reference = attention_bwd_reference,
};

SM_BACKWARD_RULE(attention)
{
    if (!need[0]) return SM_OK;
    sm_node n = g->nodes[node];
    sm_attrs a = sm_op_default_attrs(SM_OP_ATTENTION_BWD);
    a.i[SM_IATTR_ATTENTION_N_HEAD] = n.attrs.i[SM_IATTR_ATTENTION_N_HEAD];
    a.i[SM_IATTR_ATTENTION_SPAN] = n.attrs.i[SM_IATTR_ATTENTION_SPAN];
    sm_tensor in[2] = {n.in[0], gy};
    return sm_bwd_op(g, SM_OP_ATTENTION_BWD, in, 2, &a, &gx[0]);
}
