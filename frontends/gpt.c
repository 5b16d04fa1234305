/* gpt.c — the GPT-2-style model template: learned positions, pre-LN blocks, GELU MLP, optional tied
 * embeddings. Parameter names are the canonical ones the weight importers produce ("wte", "wpe",
 * "h3.attn.qkv.w", ...). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/error.h"
#include "../graph/graph.h"

void sm_gpt_config_default(sm_gpt_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab = 256;
    c->context = 256;
    c->n_layer = 6;
    c->n_head = 6;
    c->n_embd = 384;
    c->mlp_ratio = 4;
    c->tied_embeddings = 1;
    c->batch = 8;
    c->seq = 256;
    c->with_loss = 1;
}

#define DIM_MAX ((int64_t)1 << 40)     /* the most one dim of a graph tensor may be (graph.c) */
#define NUMEL_MAX ((int64_t)1 << 61)   /* the most values of one f32 tensor, so its bytes fit an int64 */

static int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* a * b, or INT64_MAX when that overflows (so it is over every limit). */
static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

/* The tensors the template makes stay within the graph's limits, checked here so that the message
 * names the setting that is too large rather than a dim of some tensor deep inside the model. */
static sm_status check_sizes(const sm_gpt_config *c)
{
    int64_t R = (int64_t)c->batch * c->seq, C = c->n_embd, F = (int64_t)c->mlp_ratio * C;
    if (F > DIM_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: the MLP width mlp_ratio %d x n_embd %d = %lld is too large: a "
                        "tensor dim is at most 2^40 = %lld", c->mlp_ratio, c->n_embd, (long long)F, (long long)DIM_MAX);
    /* the fused head's backward packs the weight and input gradients into one [vocab + B*T, C] tensor */
    if (c->with_loss && !c->full_logits && R + c->vocab > DIM_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: batch %d x seq %d = %lld tokens per run is too many: the "
                        "loss head's gradient has vocab + tokens = %lld rows, and a tensor dim is at most 2^40 = %lld; "
                        "lower batch or seq", c->batch, c->seq, (long long)R, (long long)(R + c->vocab),
                        (long long)DIM_MAX);
    int64_t wide = max3(c->vocab, F, 3 * C);   /* the widest activation row: logits, MLP or qkv */
    if (mul_sat(R, wide) > NUMEL_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: batch %d x seq %d = %lld tokens per run, with rows of %lld "
                        "values, is more than one tensor may hold (2^61 = %lld values); lower batch or seq", c->batch,
                        c->seq, (long long)R, (long long)wide, (long long)NUMEL_MAX);
    int64_t tall = max3(c->vocab, c->context, F);   /* the weight matrix with the most rows of n_embd */
    if (mul_sat(tall, C) > NUMEL_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: a weight matrix of %lld x n_embd %d values is more than one "
                        "tensor may hold (2^61 = %lld values); lower n_embd, vocab, context or mlp_ratio", (long long)tall,
                        c->n_embd, (long long)NUMEL_MAX);
    return SM_OK;
}

static sm_status check_config(const sm_gpt_config *c)
{
    if (c->vocab < 1 || c->context < 1 || c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->mlp_ratio < 1 ||
        c->batch < 1 || c->seq < 1)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: vocab, context, layers, heads, embd, mlp_ratio, batch "
                        "and seq must all be >= 1");
    if (c->n_embd % c->n_head)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: n_embd %d is not divisible by n_head %d", c->n_embd,
                        c->n_head);
    if (c->span < 0 || c->kv_positions < 0 || c->kv_sink < 0 || c->kv_ring < 0 || c->kv_ring > 1)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: span %d, kv_positions %d, kv_sink %d must be >= 0 and kv_ring %d "
                        "0 or 1", c->span, c->kv_positions, c->kv_sink, c->kv_ring);
    if (c->kv_positions && c->with_loss)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: a decode instance (kv_positions %d) has no loss: set "
                        "with_loss = 0", c->kv_positions);
    if (c->kv_positions && !c->kv_ring && c->kv_positions > c->context)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: a KV cache of %d positions exceeds the context %d the "
                        "positions are learned for", c->kv_positions, c->context);
    if (c->seq > c->context)
        return sm_error(SM_ERR_INVALID_ARG, "GPT config: seq %d exceeds the context %d the positions are "
                        "learned for", c->seq, c->context);
    return check_sizes(c);
}

/* A builder that stops at the first error: each helper checks and sets *s. */
typedef struct {
    sm_graph *g;
    sm_status s;
    char name[SM_NAME_MAX];
} bld;

static sm_tensor param(bld *b, const char *name, int ndim, int64_t d0, int64_t d1, sm_init init, float std)
{
    sm_tensor t = SM_NO_TENSOR;
    int64_t shape[2] = {d0, d1};
    if (!b->s) b->s = sm_graph_param(b->g, name, SM_F32, ndim, shape, init, std, &t);
    return t;
}

static const char *nm(bld *b, int layer, const char *what)
{
    if (layer < 0) snprintf(b->name, sizeof b->name, "%s", what);
    else snprintf(b->name, sizeof b->name, "h%d.%s", layer, what);
    return b->name;
}

/* The attention of block l: over the run's own rows, or (a decode instance) over the layer's KV
 * cache, which kv_attention fills with the run's rows first. */
static sm_tensor attend(bld *b, const sm_gpt_config *c, int l, sm_tensor qkv, sm_tensor positions)
{
    sm_tensor att = SM_NO_TENSOR;
    if (!c->kv_positions) {
        b->s = sm_attention(b->g, qkv, c->n_head, c->span, nm(b, l, "attn"), &att);
        return att;
    }
    int64_t shape[3] = {c->batch, c->kv_positions, c->n_embd};
    sm_tensor kc = SM_NO_TENSOR, vc = SM_NO_TENSOR;
    sm_kv_layout lay = {.n_head = c->n_head, .span = c->span, .sink = c->kv_sink, .ring = c->kv_ring};
    if (!b->s) b->s = sm_graph_kv(b->g, nm(b, l, "k_cache"), SM_F32, 3, shape, &kc);
    if (!b->s) b->s = sm_graph_kv(b->g, nm(b, l, "v_cache"), SM_F32, 3, shape, &vc);
    if (!b->s) b->s = sm_kv_attention(b->g, qkv, kc, vc, positions, &lay, nm(b, l, "attn"), &att);
    return att;
}

static sm_tensor block(bld *b, const sm_gpt_config *c, int l, sm_tensor x, sm_tensor positions)
{
    int64_t C = c->n_embd, F = (int64_t)c->mlp_ratio * C;
    /* GPT-2 scales the residual projections' init by 1/sqrt(2L) so the residual stream's variance
     * does not grow with depth. */
    float std = 0.02f, std_res = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    sm_tensor ln1w = param(b, nm(b, l, "ln1.w"), 1, C, 1, SM_INIT_ONES, 0);
    sm_tensor ln1b = param(b, nm(b, l, "ln1.b"), 1, C, 1, SM_INIT_ZEROS, 0);
    sm_tensor qkvw = param(b, nm(b, l, "attn.qkv.w"), 2, 3 * C, C, SM_INIT_NORMAL, std);
    sm_tensor qkvb = param(b, nm(b, l, "attn.qkv.b"), 1, 3 * C, 1, SM_INIT_ZEROS, 0);
    sm_tensor projw = param(b, nm(b, l, "attn.proj.w"), 2, C, C, SM_INIT_NORMAL, std_res);
    sm_tensor projb = param(b, nm(b, l, "attn.proj.b"), 1, C, 1, SM_INIT_ZEROS, 0);
    sm_tensor ln2w = param(b, nm(b, l, "ln2.w"), 1, C, 1, SM_INIT_ONES, 0);
    sm_tensor ln2b = param(b, nm(b, l, "ln2.b"), 1, C, 1, SM_INIT_ZEROS, 0);
    sm_tensor fcw = param(b, nm(b, l, "mlp.fc.w"), 2, F, C, SM_INIT_NORMAL, std);
    sm_tensor fcb = param(b, nm(b, l, "mlp.fc.b"), 1, F, 1, SM_INIT_ZEROS, 0);
    sm_tensor fpw = param(b, nm(b, l, "mlp.proj.w"), 2, C, F, SM_INIT_NORMAL, std_res);
    sm_tensor fpb = param(b, nm(b, l, "mlp.proj.b"), 1, C, 1, SM_INIT_ZEROS, 0);
    sm_tensor h, qkv, att, res, fc;
    if (b->s) return SM_NO_TENSOR;
    if ((b->s = sm_layernorm(b->g, x, ln1w, ln1b, 1e-5f, nm(b, l, "ln1"), &h))) return SM_NO_TENSOR;
    if ((b->s = sm_linear(b->g, h, qkvw, qkvb, nm(b, l, "qkv"), &qkv))) return SM_NO_TENSOR;
    if ((att = attend(b, c, l, qkv, positions)) == SM_NO_TENSOR) return SM_NO_TENSOR;
    if ((b->s = sm_linear(b->g, att, projw, projb, nm(b, l, "attn_proj"), &att))) return SM_NO_TENSOR;
    if ((b->s = sm_add(b->g, x, att, nm(b, l, "res1"), &res))) return SM_NO_TENSOR;
    if ((b->s = sm_layernorm(b->g, res, ln2w, ln2b, 1e-5f, nm(b, l, "ln2"), &h))) return SM_NO_TENSOR;
    if ((b->s = sm_linear(b->g, h, fcw, fcb, nm(b, l, "fc"), &fc))) return SM_NO_TENSOR;
    if ((b->s = sm_gelu(b->g, fc, nm(b, l, "gelu"), &fc))) return SM_NO_TENSOR;
    if ((b->s = sm_linear(b->g, fc, fpw, fpb, nm(b, l, "mlp_proj"), &fc))) return SM_NO_TENSOR;
    if ((b->s = sm_add(b->g, res, fc, nm(b, l, "res2"), &res))) return SM_NO_TENSOR;
    return res;
}

sm_status sm_gpt_build(sm_graph *g, const sm_gpt_config *c, sm_gpt_tensors *out)
{
    if (!g || !c || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_gpt_build: NULL argument");
    sm_status s = check_config(c);
    if (s) return s;
    bld b = {.g = g};
    int64_t B = c->batch, T = c->seq, C = c->n_embd, V = c->vocab;
    int64_t bt[2] = {B, T};
    sm_gpt_tensors o = {SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR, SM_NO_TENSOR};
    if ((s = sm_graph_input(g, "tokens", SM_I32, 2, bt, &o.tokens))) return s;
    if (c->kv_positions && (s = sm_graph_input(g, "positions", SM_I32, 2, bt, &o.positions))) return s;
    if (c->with_loss && (s = sm_graph_input(g, "targets", SM_I32, 2, bt, &o.targets))) return s;

    sm_tensor wte = param(&b, "wte", 2, V, C, SM_INIT_NORMAL, 0.02f);
    sm_tensor wpe = param(&b, "wpe", 2, c->context, C, SM_INIT_NORMAL, 0.01f);
    sm_tensor x, pos = wpe;
    if (b.s) return b.s;
    /* A decode instance looks its positions up (the same rows, so the same sums as the slice). */
    if (c->kv_positions) {
        if ((s = sm_embedding(g, o.positions, wpe, "pos", &pos))) return s;
    } else if (T < c->context && (s = sm_slice(g, wpe, 0, 0, T, "pos", &pos))) return s;
    if ((s = sm_embedding(g, o.tokens, wte, "tok_emb", &x))) return s;
    if ((s = sm_add(g, x, pos, "emb", &x))) return s;
    for (int l = 0; l < c->n_layer; l++)
        if ((x = block(&b, c, l, x, o.positions)) == SM_NO_TENSOR) return b.s;

    sm_tensor lnfw = param(&b, "lnf.w", 1, C, 1, SM_INIT_ONES, 0);
    sm_tensor lnfb = param(&b, "lnf.b", 1, C, 1, SM_INIT_ZEROS, 0);
    sm_tensor head = c->tied_embeddings ? wte : param(&b, "lm_head.w", 2, V, C, SM_INIT_NORMAL, 0.02f);
    if (b.s) return b.s;
    if ((s = sm_layernorm(g, x, lnfw, lnfb, 1e-5f, "lnf", &x))) return s;
    /* With a loss the logits are only an intermediate, so by default they never exist whole (the fused
     * head makes them a chunk of rows at a time); without, the caller reads them. */
    if (c->with_loss && !c->full_logits) {
        if ((s = sm_lm_head_ce(g, x, head, o.targets, "loss", &o.loss))) return s;
    } else {
        if ((s = sm_linear(g, x, head, SM_NO_TENSOR, "logits", &o.logits))) return s;
        if (!c->with_loss && (s = sm_graph_mark_output(g, o.logits))) return s;
        if (c->with_loss && (s = sm_cross_entropy(g, o.logits, o.targets, "loss", &o.loss))) return s;
    }
    if (c->with_loss && (s = sm_graph_set_loss(g, o.loss))) return s;
    *out = o;
    return SM_OK;
}
