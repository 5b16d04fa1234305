/* cross_entropy_bwd.c — backward of the fused softmax + cross-entropy loss:
 *   (logits [R,V], targets i32 [R], gy [1]) -> dlogits [R,V]
 *   dlogits[r] = (softmax(logits[r]) - onehot(targets[r])) · gy / n,
 * where n counts the rows whose target is not -1, as the forward's mean does. Rows with target -1
 * (ignored) get a zero gradient; a target outside [0, V) otherwise makes the forward's loss NaN, and
 * its row's gradient NaN too. Rows are independent: split across threads. */
#include <math.h>

#include "../base/error.h"
#include "backward.h"
#include "cross_entropy.h"
#include "rows.h"
#include "vmath.h"

static sm_status shape_ce_bwd(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *lg = &g->t[n->in[0]], *tg = &g->t[n->in[1]], *gy = &g->t[n->in[2]];
    char a[64], b[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (!s) s = sm_shape_check_f32(g, n, out, 2);
    if (s) return s;
    if (tg->dtype != SM_I32 || sm_rec_numel(tg) * lg->ne[lg->ndim - 1] != sm_rec_numel(lg))
        return sm_error(SM_ERR_SHAPE, "node '%s': cross_entropy_bwd targets '%s' %s %s must be i32 with one "
                        "entry per row of logits '%s' %s", out->name, tg->name, sm_dtype_name(tg->dtype),
                        sm_shape_str(tg, a, sizeof a), lg->name, sm_shape_str(lg, b, sizeof b));
    if (sm_rec_numel(gy) != 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': cross_entropy_bwd gradient '%s' must be one value", out->name,
                        gy->name);
    return sm_shape_same_as_in0(g, n, out);
}

int64_t sm_ce_count(const int32_t *t, int64_t R)
{
    int64_t n = 0;
    for (int64_t r = 0; r < R; r++) n += t[r] != -1;
    return n;
}

/* The softmax as the forward computes it (vmath.h's max and exp, sum in 16 double lanes). In place
 * (d == x) is safe: the max is taken first, then each exp overwrites the logit it came from. */
void sm_ce_row_grad(const float *x, int32_t t, int64_t V, float scale, float *d)
{
    if (t < 0 || t >= V) {
        float v = t == -1 ? 0.0f : NAN;
        for (int64_t j = 0; j < V; j++) d[j] = v;
        return;
    }
    float inv = (float)(1.0 / sm_vexp_sum_row(x, sm_vmax_row(x, V), d, V)) * scale;
    for (int64_t j = 0; j < V; j++) d[j] *= inv;
    d[t] -= scale;
}

/* logits [R,V], targets [R], gy [1] -> dlogits [R,V] */
static void ce_bwd_forward(const sm_kernel_args *k)
{
    const int32_t *t = k->x[1];
    int64_t V = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / V;
    int64_t n = sm_ce_count(t, R);   /* each thread counts: cheaper than a barrier */
    float scale = n ? *(const float *)k->x[2] / (float)n : 0.0f;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) sm_ce_row_grad((const float *)k->x[0] + r * V, t[r], V, scale, (float *)k->y + r * V);
}

static void ce_bwd_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    const int32_t *t = k->x[1];
    int64_t V = k->out->ne[k->out->ndim - 1], R = sm_rec_numel(k->out) / V, n = 0;
    for (int64_t r = 0; r < R; r++) n += t[r] != -1;
    double gy = *(const float *)k->x[2];
    for (int64_t r = 0; r < R; r++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < V; j++) mx = fmax(mx, x[r * V + j]);
        for (int64_t j = 0; j < V; j++) sum += exp(x[r * V + j] - mx);
        for (int64_t j = 0; j < V; j++) {
            double p = exp(x[r * V + j] - mx) / sum - (j == t[r] ? 1.0 : 0.0);
            ((float *)k->y)[r * V + j] = t[r] == -1 ? 0.0f : t[r] < 0 || t[r] >= V ? NAN : (float)(p * gy / (double)n);
        }
    }
}

static double flops_ce_bwd(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 6); }

const sm_op_def sm_op_cross_entropy_bwd = {
    .name = "cross_entropy_bwd", .min_in = 3, .max_in = 3, .shape = shape_ce_bwd, .flops = flops_ce_bwd,
    .forward = ce_bwd_forward, .reference = ce_bwd_reference,
};

SM_BACKWARD_RULE(cross_entropy)
{
    if (!need[0]) return SM_OK;
    sm_node n = g->nodes[node];
    sm_tensor in[3] = {n.in[0], n.in[1], gy};
    return sm_bwd_op(g, SM_OP_CROSS_ENTROPY_BWD, in, 3, NULL, &gx[0]);
}
