/* lm_head.c — the LM head and its cross-entropy fused, so the logits exist one chunk of rows at a time:
 *   lm_head_ce:     x [R.., C], w [V, C], targets i32 [R..]      -> loss [1]
 *                   = cross_entropy(linear(x, w), targets), without the [R, V] logits tensor
 *   lm_head_ce_bwd: (x, w, targets, gy [1])                      -> [V + R, C]
 *                   rows 0..V-1 are dw, rows V.. are dx (one node computes both: each needs the same
 *                   recomputed chunk of logits); the backward rule hands them out as two `rows` views.
 * At long contexts the logits and their gradient are most of a training plan (B·T·V floats each: 785 MiB
 * apiece for GPT-2 at 4 x 1024); here they cost one chunk of rows, in the shared workspace.
 *
 * Same numbers as the unfused path, bit for bit, for any thread count:
 *  - a chunk's logits are the team gemm's, which sums each element in an order fixed by C alone;
 *  - the rows' losses and gradients are cross_entropy's row functions (cross_entropy.h), and the loss is
 *    reduced over the same fixed blocks of rows;
 *  - dx = dlogits · w sums over V, chunk or not;
 *  - dw = dlogitsᵀ · x sums over the rows, which the unfused gemm cuts into K blocks of
 *    sm_gemm_kblock(R) rows; the chunks are exactly those blocks, accumulated in order (beta = 1 after
 *    the first), so every dw element sees the same additions.
 * The cost: the backward recomputes the logits (one more gemm of R x V x C, a third more head FLOPs).
 * Under the bf16 precision policy the products are bf16 (sm_gemm_policy), as linear's are: the logits and dx
 * are still bitwise the unfused path's, dw equals it up to the grouping of its f32 sums (the chunks are
 * the f32 gemm's K blocks, not the bf16 gemm's, so the workspace is the same under every policy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "cross_entropy.h"
#include "gemm.h"
#include "rows.h"

typedef struct head_dims {
    int64_t R, V, C, rows;   /* rows: the chunk height */
} head_dims;

static head_dims dims_of(const sm_tensor_rec *x, const sm_tensor_rec *w)
{
    head_dims d = {.V = w->ne[0], .C = w->ne[1]};
    d.R = sm_rec_numel(x) / d.C;
    d.rows = sm_gemm_kblock(d.R);
    return d;
}

static sm_status shape_common(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]], *w = &g->t[n->in[1]], *t = &g->t[n->in[2]];
    const char *op = sm_op_def_get(n->op)->name;
    char sx[64], sw[64], st[64];
    for (int i = 0; i < 2; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    if (w->ndim != 2 || w->ne[1] != x->ne[x->ndim - 1])
        return sm_error(SM_ERR_SHAPE, "node '%s': %s of '%s' %s with weight '%s' %s: the weight must be [V, %lld] "
                        "(vocabulary, the input's last dim)", out->name, op, x->name, sm_shape_str(x, sx, sizeof sx),
                        w->name, sm_shape_str(w, sw, sizeof sw), (long long)x->ne[x->ndim - 1]);
    if (t->dtype != SM_I32)
        return sm_error(SM_ERR_SHAPE, "node '%s': %s targets '%s' must be i32 ids, not %s", out->name, op, t->name,
                        sm_dtype_name(t->dtype));
    bool ok = x->ndim >= 2 ? t->ndim == x->ndim - 1 : t->ndim == 1 && t->ne[0] == 1;
    for (int d = 0; ok && d < x->ndim - 1; d++) ok = t->ne[d] == x->ne[d];
    if (!ok)
        return sm_error(SM_ERR_SHAPE, "node '%s': %s of '%s' %s and targets '%s' %s: the targets must have the "
                        "input's shape without the last (feature) dim", out->name, op, x->name,
                        sm_shape_str(x, sx, sizeof sx), t->name, sm_shape_str(t, st, sizeof st));
    return SM_OK;
}

static size_t work_gemm(const sm_graph *g, const sm_node *n)
{
    (void)g, (void)n;
    return sm_gemm_any_workspace();
}

/* ---- forward ---- */

static sm_status shape_head(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = shape_common(g, n, out);
    if (s) return s;
    out->ndim = 1;
    out->ne[0] = 1;
    out->dtype = SM_F32;
    return SM_OK;
}

/* shared: block sums [SM_CE_BLOCKS][2] and row losses [R] (double), then one chunk of logits [rows, V] */
static size_t shared_head(const sm_graph *g, const sm_node *n)
{
    head_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]]);
    return sizeof(double) * (size_t)(2 * SM_CE_BLOCKS + d.R) + sizeof(float) * (size_t)(d.rows * d.V);
}

static void head_forward(const sm_kernel_args *k)
{
    head_dims d = dims_of(k->in[0], k->in[1]);
    const float *x = k->x[0], *w = k->x[1];
    const int32_t *tg = k->x[2];
    double *part = k->shared, *loss = part + 2 * SM_CE_BLOCKS;
    float *logits = (float *)(loss + d.R);
    for (int64_t r0 = 0; r0 < d.R; r0 += d.rows) {
        int64_t m = d.R - r0 < d.rows ? d.R - r0 : d.rows;
        sm_gemm_policy(k->bf16, 0, 1, m, d.V, d.C, x + r0 * d.C, SM_F32, d.C, w, SM_F32, d.C, 0.0f, logits, d.V,
                       k->work);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < m; i++) {
            int counted;
            loss[r0 + i] = sm_ce_row_loss(logits + i * d.V, tg[r0 + i], d.V, &counted);
        }
    }
    /* cross_entropy's reduction: each block's rows in order, then the blocks in order */
#pragma omp for schedule(static)
    for (int64_t b = 0; b < SM_CE_BLOCKS; b++) {
        double s = 0, c = 0;
        for (int64_t r = d.R * b / SM_CE_BLOCKS; r < d.R * (b + 1) / SM_CE_BLOCKS; r++) {
            s += loss[r];
            c += tg[r] != -1;
        }
        part[2 * b] = s;
        part[2 * b + 1] = c;
    }
#pragma omp single
    *(float *)k->y = sm_ce_mean(part);
}

/* Row by row in double: each logit a dot product, then log-sum-exp minus the target's logit. */
static void head_reference(const sm_kernel_args *k)
{
    head_dims d = dims_of(k->in[0], k->in[1]);
    const float *x = k->x[0], *w = k->x[1];
    const int32_t *tg = k->x[2];
    double total = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < d.R; r++) {
        if (tg[r] == -1) continue;
        count++;
        if (tg[r] < 0 || tg[r] >= d.V) {
            total = NAN;
            continue;
        }
        double m = -INFINITY, s = 0, target = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t v = 0; v < d.V; v++) {
                double z = 0;
                for (int64_t c = 0; c < d.C; c++) z += (double)x[r * d.C + c] * w[v * d.C + c];
                if (pass == 0) m = z > m ? z : m;
                else s += exp(z - m);
                if (v == tg[r]) target = z;
            }
        total += m + log(s) - target;
    }
    *(float *)k->y = count ? (float)(total / (double)count) : 0.0f;
}

/* the linear (2 per multiply-add) and cross-entropy's 4 per logit */
static double flops_head(const sm_graph *g, const sm_node *n)
{
    head_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]]);
    return (double)d.R * (double)d.V * (2.0 * (double)d.C + 4.0);
}

const sm_op_def sm_op_lm_head_ce = {
    .name = "lm_head_ce", .keeps_f32 = true, .min_in = 3, .max_in = 3, .shape = shape_head, .flops = flops_head,
    .workspace = work_gemm, .shared_workspace = shared_head, .forward = head_forward,
    .reference = head_reference, .backward = sm_backward_lm_head_ce,
};

/* ---- backward ---- */

static sm_status shape_head_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    sm_status s = shape_common(g, n, out);
    if (!s) s = sm_shape_check_f32(g, n, out, 3);
    if (s) return s;
    if (sm_rec_numel(&g->t[n->in[3]]) != 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': lm_head_ce_bwd gradient '%s' must be one value", out->name,
                        g->t[n->in[3]].name);
    head_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]]);
    out->ndim = 2;
    out->ne[0] = d.V + d.R;
    out->ne[1] = d.C;
    out->dtype = SM_F32;
    return SM_OK;
}

/* shared: one chunk of logits [rows, V], turned into their gradient in place */
static size_t shared_head_bwd(const sm_graph *g, const sm_node *n)
{
    head_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]]);
    return sizeof(float) * (size_t)(d.rows * d.V);
}

static void head_bwd_forward(const sm_kernel_args *k)
{
    head_dims d = dims_of(k->in[0], k->in[1]);
    const float *x = k->x[0], *w = k->x[1];
    const int32_t *tg = k->x[2];
    float *dw = k->y, *dx = dw + d.V * d.C, *dl = k->shared;
    int64_t n = sm_ce_count(tg, d.R);   /* each thread counts: cheaper than a barrier */
    float scale = n ? *(const float *)k->x[3] / (float)n : 0.0f;
    for (int64_t r0 = 0; r0 < d.R; r0 += d.rows) {
        int64_t m = d.R - r0 < d.rows ? d.R - r0 : d.rows;
        sm_gemm_policy(k->bf16, 0, 1, m, d.V, d.C, x + r0 * d.C, SM_F32, d.C, w, SM_F32, d.C, 0.0f, dl, d.V, k->work);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < m; i++) sm_ce_row_grad(dl + i * d.V, tg[r0 + i], d.V, scale, dl + i * d.V);
        sm_gemm_policy(k->bf16, 0, 0, m, d.C, d.V, dl, SM_F32, d.V, w, SM_F32, d.C, 0.0f, dx + r0 * d.C, d.C, k->work);
        sm_gemm_policy(k->bf16, 1, 0, d.V, d.C, m, dl, SM_F32, d.V, x + r0 * d.C, SM_F32, d.C, r0 ? 1.0f : 0.0f, dw, d.C,
                       k->work);
    }
}

/* In double, row by row: p = softmax(x·wᵀ), g = (p - onehot)·gy/n, dx[r] = g·w, dw += gᵀ·x[r]. */
static void head_bwd_reference(const sm_kernel_args *k)
{
    head_dims d = dims_of(k->in[0], k->in[1]);
    const float *x = k->x[0], *w = k->x[1];
    const int32_t *tg = k->x[2];
    float *dw = k->y, *dx = dw + d.V * d.C;
    int64_t n = 0;
    for (int64_t r = 0; r < d.R; r++) n += tg[r] != -1;
    double gy = *(const float *)k->x[3] / (double)(n ? n : 1);
    double *z = malloc(sizeof *z * (size_t)d.V), *acc = calloc((size_t)(d.V * d.C), sizeof *acc),
           *ax = malloc(sizeof *ax * (size_t)d.C);
    if (!z || !acc || !ax) {   /* the tests' reference: say so in the output rather than crash */
        for (int64_t i = 0; i < (d.V + d.R) * d.C; i++) dw[i] = NAN;
        free(z), free(acc), free(ax);
        return;
    }
    for (int64_t r = 0; r < d.R; r++) {
        const float *xr = x + r * d.C;
        bool bad = tg[r] != -1 && (tg[r] < 0 || tg[r] >= d.V);
        double m = -INFINITY, s = 0;
        for (int64_t v = 0; v < d.V; v++) {
            z[v] = 0;
            for (int64_t c = 0; c < d.C; c++) z[v] += (double)xr[c] * w[v * d.C + c];
            m = z[v] > m ? z[v] : m;
        }
        for (int64_t v = 0; v < d.V; v++) s += exp(z[v] - m);
        for (int64_t c = 0; c < d.C; c++) ax[c] = 0;
        for (int64_t v = 0; v < d.V; v++) {
            double gv = tg[r] == -1 ? 0 : bad ? NAN : (exp(z[v] - m) / s - (v == tg[r])) * gy;
            for (int64_t c = 0; c < d.C; c++) {
                ax[c] += gv * w[v * d.C + c];
                acc[v * d.C + c] += gv * xr[c];
            }
        }
        for (int64_t c = 0; c < d.C; c++) dx[r * d.C + c] = (float)ax[c];
    }
    for (int64_t i = 0; i < d.V * d.C; i++) dw[i] = (float)acc[i];
    free(z), free(acc), free(ax);
}

/* three gemms (the logits again, dx, dw) and cross_entropy_bwd's 6 per logit */
static double flops_head_bwd(const sm_graph *g, const sm_node *n)
{
    head_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]]);
    return (double)d.R * (double)d.V * (6.0 * (double)d.C + 6.0);
}

const sm_op_def sm_op_lm_head_ce_bwd = {
    .name = "lm_head_ce_bwd", .min_in = 4, .max_in = 4, .shape = shape_head_bwd, .flops = flops_head_bwd,
    .workspace = work_gemm, .shared_workspace = shared_head_bwd, .forward = head_bwd_forward,
    .reference = head_bwd_reference,
};

/* rows [start, start + len) of the packed gradient, as a view (no copy) */
static sm_status rows_of(sm_graph *g, sm_tensor packed, int64_t start, int64_t len, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_ROWS);
    at.i[SM_IATTR_ROWS_START] = start;
    at.i[SM_IATTR_ROWS_LEN] = len;
    return sm_bwd_op(g, SM_OP_ROWS, &packed, 1, &at, out);
}

SM_BACKWARD_RULE(lm_head_ce)
{
    if (!need[0] && !need[1]) return SM_OK;
    sm_node n = g->nodes[node];
    head_dims d = dims_of(&g->t[n.in[0]], &g->t[n.in[1]]);
    sm_tensor in[4] = {n.in[0], n.in[1], n.in[2], gy}, packed, dx;
    sm_status s = sm_bwd_op(g, SM_OP_LM_HEAD_CE_BWD, in, 4, NULL, &packed);
    if (!s && need[1]) s = rows_of(g, packed, 0, d.V, &gx[1]);
    if (!s && need[0]) s = rows_of(g, packed, d.V, d.R, &dx);
    if (!s && need[0]) s = sm_bwd_reshape_like(g, dx, n.in[0], &gx[0]);
    return s;
}
