/* attention.c — the attention row: causal multi-head self-attention on packed qkv, on the tiled
 * kernels of attention_kernel.c (no T×T matrix is ever stored).
 *   qkv [B, T, 3C] (q | k | v), attrs n_head H (C % H == 0), span (0 = full causal, else the last
 *   `span` keys) -> out [B, T, C] */
#include "../base/error.h"
#include "attention_kernel.h"
#include "backward.h"
#include "rows.h"

static sm_status shape_attention(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    char sx[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    int64_t H = n->attrs.i[SM_IATTR_ATTENTION_N_HEAD], span = n->attrs.i[SM_IATTR_ATTENTION_SPAN];
    if (x->ndim != 3 || x->ne[2] % 3)
        return sm_error(SM_ERR_SHAPE, "node '%s': attention input '%s' is %s; it must be packed qkv [B, T, 3C]",
                        out->name, x->name, sm_shape_str(x, sx, sizeof sx));
    int64_t C = x->ne[2] / 3;
    if (H < 1 || C % H)
        return sm_error(SM_ERR_SHAPE, "node '%s': n_head %lld does not divide C = %lld (qkv '%s' %s)", out->name,
                        (long long)H, (long long)C, x->name, sm_shape_str(x, sx, sizeof sx));
    if (span < 0)
        return sm_error(SM_ERR_SHAPE, "node '%s': span %lld; use 0 for full causal attention or a window > 0",
                        out->name, (long long)span);
    out->ndim = 3;
    out->ne[0] = x->ne[0];
    out->ne[1] = x->ne[1];
    out->ne[2] = C;
    out->dtype = SM_F32;
    return SM_OK;
}

#define DIMS(k) int B = (int)(k)->in[0]->ne[0], T = (int)(k)->in[0]->ne[1], C = (int)((k)->in[0]->ne[2] / 3), \
                H = (int)(k)->node->attrs.i[SM_IATTR_ATTENTION_N_HEAD],                                  \
                span = (int)(k)->node->attrs.i[SM_IATTR_ATTENTION_SPAN]

static void attention_forward(const sm_kernel_args *k)
{
    DIMS(k);
    sm_attention_forward(k->x[0], k->y, B, T, C, H, span, k->work);
}

static void attention_reference(const sm_kernel_args *k)
{
    DIMS(k);
    sm_attention_forward_ref(k->x[0], k->y, B, T, C, H, span);
}

static size_t work_attention(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    return sm_attention_workspace((int)x->ne[1], (int)(x->ne[2] / 3), (int)n->attrs.i[SM_IATTR_ATTENTION_N_HEAD]);
}

/* Causal: about half of the T×T scores; QKᵀ and PV at 2 FLOPs per multiply-add each. */
static double flops_attention(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    double B = (double)x->ne[0], T = (double)x->ne[1], C = (double)(x->ne[2] / 3);
    int64_t span = n->attrs.i[SM_IATTR_ATTENTION_SPAN];
    double keys = span > 0 && span < x->ne[1] ? (double)span : (T + 1) / 2;
    return 4.0 * B * T * keys * C;
}

const sm_op_def sm_op_attention = {
    .name = "attention", .min_in = 1, .max_in = 1, .iattr = {"n_head", "span"}, .iattr_default = {1, 0},
    .shape = shape_attention, .flops = flops_attention, .workspace = work_attention,
    .forward = attention_forward, .reference = attention_reference, .backward = sm_backward_attention,
};
