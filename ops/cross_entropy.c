/* cross_entropy.c — mean cross-entropy of logits against target ids, softmax fused:
 *   logits [R.., V] f32, targets [R..] i32 -> loss [1] f32
 *   loss = mean over rows r with targets[r] != -1 of  logsumexp(logits[r]) - logits[r, targets[r]]
 * The probabilities are never stored: each row is one max pass and one exp-sum pass over V.
 * Targets: -1 marks an ignored row (padding; like PyTorch's ignore_index=-1): it adds nothing and is
 * not counted. Any other id outside [0, V) is never read through: it makes the loss NaN, so a bad
 * batch cannot pass unnoticed. When every row is ignored the loss is 0 (nothing to learn from; a NaN
 * would poison the run). The backward rule must use the same count of non-ignored rows.
 *
 * Determinism: rows are cut into NBLOCKS fixed blocks (independent of the thread count); threads
 * compute whole blocks (the rows of a block summed in order, in double) into a shared table in the
 * workspace, then one thread adds the blocks in order. */
#include <math.h>

#include "../base/error.h"
#include "cross_entropy.h"
#include "rows.h"
#include "vmath.h"

#define NBLOCKS SM_CE_BLOCKS

static sm_status shape_cross_entropy(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]], *t = &g->t[n->in[1]];
    char sx[64], st[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    if (t->dtype != SM_I32)
        return sm_error(SM_ERR_SHAPE, "node '%s': cross_entropy targets '%s' must be i32 ids, not %s", out->name,
                        t->name, sm_dtype_name(t->dtype));
    bool ok = x->ndim >= 2 ? t->ndim == x->ndim - 1 : t->ndim == 1 && t->ne[0] == 1;
    for (int d = 0; ok && d < x->ndim - 1; d++) ok = t->ne[d] == x->ne[d];
    if (!ok)
        return sm_error(SM_ERR_SHAPE, "node '%s': cross_entropy of logits '%s' %s and targets '%s' %s: the targets "
                        "must have the logits' shape without the last (vocabulary) dim", out->name, x->name,
                        sm_shape_str(x, sx, sizeof sx), t->name, sm_shape_str(t, st, sizeof st));
    out->ndim = 1;
    out->ne[0] = 1;
    out->dtype = SM_F32;
    return SM_OK;
}

double sm_ce_row_loss(const float *x, int32_t target, int64_t V, int *counted)
{
    *counted = target != -1;
    if (target == -1) return 0.0;
    if (target < 0 || target >= V) return NAN;
    float m = sm_vmax_row(x, V);
    return (double)m + log(sm_vexp_sum_row(x, m, NULL, V)) - (double)x[target];
}

static void cross_entropy_forward(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    const int32_t *tg = k->x[1];
    int64_t V = k->in[0]->ne[k->in[0]->ndim - 1], R = sm_rec_numel(k->in[0]) / V;
    double *part = k->work;   /* [NBLOCKS][2]: loss sum, row count; shared, each block written once */
#pragma omp for schedule(static)
    for (int64_t b = 0; b < NBLOCKS; b++) {
        double s = 0, n = 0;
        for (int64_t r = R * b / NBLOCKS; r < R * (b + 1) / NBLOCKS; r++) {
            int c;
            s += sm_ce_row_loss(x + r * V, tg[r], V, &c);
            n += c;
        }
        part[2 * b] = s;
        part[2 * b + 1] = n;
    }
#pragma omp single
    *(float *)k->y = sm_ce_mean(part);
}

float sm_ce_mean(const double *part)
{
    double s = 0, n = 0;
    for (int b = 0; b < NBLOCKS; b++) {
        s += part[2 * b];
        n += part[2 * b + 1];
    }
    return n > 0 ? (float)(s / n) : 0.0f;
}

/* Row by row in double: the log of the softmax probability of the target. */
static void cross_entropy_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    const int32_t *tg = k->x[1];
    int64_t V = k->in[0]->ne[k->in[0]->ndim - 1], R = sm_rec_numel(k->in[0]) / V;
    double total = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < R; r++, x += V) {
        if (tg[r] == -1) continue;
        count++;
        if (tg[r] < 0 || tg[r] >= V) {
            total = NAN;
            continue;
        }
        double m = -INFINITY, s = 0;
        for (int64_t i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
        for (int64_t i = 0; i < V; i++) s += exp(x[i] - m);
        total += log(s) - (x[tg[r]] - m);
    }
    *(float *)k->y = count ? (float)(total / (double)count) : 0.0f;
}

static size_t work_cross_entropy(const sm_graph *g, const sm_node *n)
{
    (void)g, (void)n;
    return NBLOCKS * 2 * sizeof(double);
}

/* per logit: max, sub, exp, add (exp counted as one op, as everywhere in the table) */
static double flops_cross_entropy(const sm_graph *g, const sm_node *n)
{
    return 4.0 * (double)sm_rec_numel(&g->t[n->in[0]]);
}

const sm_op_def sm_op_cross_entropy = {
    .name = "cross_entropy", .keeps_f32 = true, .min_in = 2, .max_in = 2, .shape = shape_cross_entropy,
    .flops = flops_cross_entropy, .workspace = work_cross_entropy,
    .forward = cross_entropy_forward, .reference = cross_entropy_reference,
    .backward = sm_backward_cross_entropy,
};
