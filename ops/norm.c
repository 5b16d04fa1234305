/* norm.c — the shape rule and row sums that layernorm and rmsnorm share. */
#include "norm.h"

#include "../base/error.h"

sm_status sm_norm_shape(const sm_graph *g, const sm_node *n, sm_tensor_rec *out, const char *op)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    int64_t C = x->ne[x->ndim - 1];
    for (int i = 1; i < n->n_in; i++) {
        const sm_tensor_rec *p = &g->t[n->in[i]];
        if (p->ndim != 1 || p->ne[0] != C) {
            char sx[64], sp[64];
            return sm_error(SM_ERR_SHAPE, "node '%s': %s of '%s' %s with %s '%s' %s: it must be [%lld], the "
                            "last dim of the input", out->name, op, x->name, sm_shape_str(x, sx, sizeof sx),
                            i == 1 ? "weight" : "bias", p->name, sm_shape_str(p, sp, sizeof sp), (long long)C);
        }
    }
    return sm_shape_same_as_in0(g, n, out);
}

#define LANES 16

double sm_norm_sum(const float *x, int64_t C)
{
    double acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    for (; i < C; i++) acc[i % LANES] += x[i];
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

double sm_norm_sum_sq_dev(const float *x, float hi, float lo, int64_t C)
{
    double acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= C; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = (x[i + j] - hi) - lo;
            acc[j] += d * d;
        }
    for (; i < C; i++) {
        float d = (x[i] - hi) - lo;
        acc[i % LANES] += d * d;
    }
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}
