/* rope.c — rotary position embedding on a packed qkv:
 *   qkv [B, T, 3C] (q | k | v, each C = H·D wide; head h owns dims [h·D, (h+1)·D) of its part)
 *   -> y [B, T, 3C]: in q and k, each pair (2i, 2i+1) of every head is rotated by the angle
 *      t · base^(-2i/D) (position t, i < D/2); v is copied unchanged.
 * Attributes: n_head (iattr 0), inverse (iattr 1: rotate by minus the angle, the exact inverse, which
 * is what the backward rule applies to the gradient), base (fattr 0, default 10000). */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_rope(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    char sx[64];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (s) return s;
    int64_t H = n->attrs.i[SM_IATTR_ROPE_N_HEAD];
    if (x->ndim != 3 || x->ne[2] % 3)
        return sm_error(SM_ERR_SHAPE, "node '%s': rope of '%s' %s: it must be a packed qkv [B, T, 3C]", out->name,
                        x->name, sm_shape_str(x, sx, sizeof sx));
    int64_t C = x->ne[2] / 3;
    if (H < 1 || C % H || (C / H) % 2)
        return sm_error(SM_ERR_SHAPE, "node '%s': rope of '%s' %s with n_head %lld: C = %lld must split into "
                        "n_head heads of an even size", out->name, x->name, sm_shape_str(x, sx, sizeof sx),
                        (long long)H, (long long)C);
    float base = n->attrs.f[SM_FATTR_ROPE_BASE];
    int64_t inverse = n->attrs.i[SM_IATTR_ROPE_INVERSE];
    if (!(base > 0.0f) || inverse < 0 || inverse > 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': rope base %g must be > 0 and inverse (%lld) 0 or 1", out->name,
                        (double)base, (long long)inverse);
    return sm_shape_same_as_in0(g, n, out);
}

/* The pair frequencies base^(-2i/D), i < D/2, in double. */
static void rope_freqs(double *f, int64_t D, double base)
{
    for (int64_t i = 0; i < D / 2; i++) f[i] = pow(base, -(double)(2 * i) / (double)D);
}

/* cos and sin of the angles t·f[i] for one position, computed in double so that large positions keep
 * their precision; sign = -1 gives the inverse rotation. cs: [D/2][2] */
static void rope_angles(float *cs, const double *f, int64_t t, int64_t D, double sign)
{
    for (int64_t i = 0; i < D / 2; i++) {
        double a = (double)t * f[i];
        cs[2 * i] = (float)cos(a);
        cs[2 * i + 1] = (float)(sign * sin(a));
    }
}

/* one row: x, y [3C]; q and k (2C dims, 2H heads of D) rotated, v copied. y may be x. */
static void rope_row(const float *x, float *y, const float *cs, int64_t C, int64_t D)
{
    for (int64_t h = 0; h < 2 * C / D; h++) {
        const float *xh = x + h * D;
        float *yh = y + h * D;
        for (int64_t i = 0; i < D / 2; i++) {
            float x0 = xh[2 * i], x1 = xh[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
            yh[2 * i] = x0 * c - x1 * s;
            yh[2 * i + 1] = x0 * s + x1 * c;
        }
    }
    if (y != x) memcpy(y + 2 * C, x + 2 * C, (size_t)C * sizeof *y);
}

/* Positions t are split across threads; the angles of a position (its cos/sin table, in the thread's
 * scratch) are computed once and applied to the B rows at that position. */
static void rope_forward(const sm_kernel_args *k)
{
    int64_t B = k->out->ne[0], T = k->out->ne[1], C = k->out->ne[2] / 3, D = C / k->node->attrs.i[SM_IATTR_ROPE_N_HEAD];
    double sign = k->node->attrs.i[SM_IATTR_ROPE_INVERSE] ? -1.0 : 1.0;
    double *f = (double *)((char *)k->work + (size_t)omp_get_thread_num() * k->work_bytes);
    float *cs = (float *)(f + D / 2);
    rope_freqs(f, D, k->node->attrs.f[SM_FATTR_ROPE_BASE]);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; t++) {
        rope_angles(cs, f, t, D, sign);
        for (int64_t b = 0; b < B; b++) {
            int64_t r = b * T + t;
            rope_row((const float *)k->x[0] + r * 3 * C, (float *)k->y + r * 3 * C, cs, C, D);
        }
    }
}

/* Straight from the definition, in double, one element pair at a time. */
static void rope_reference(const sm_kernel_args *k)
{
    const float *x = k->x[0];
    float *y = k->y;
    int64_t B = k->out->ne[0], T = k->out->ne[1], C = k->out->ne[2] / 3;
    int64_t H = k->node->attrs.i[SM_IATTR_ROPE_N_HEAD], D = C / H;
    double base = k->node->attrs.f[SM_FATTR_ROPE_BASE], sign = k->node->attrs.i[SM_IATTR_ROPE_INVERSE] ? -1.0 : 1.0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *xr = x + (b * T + t) * 3 * C;
            float *yr = y + (b * T + t) * 3 * C;
            for (int64_t part = 0; part < 3; part++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t i = 0; i < D / 2; i++) {
                        int64_t j = part * C + h * D + 2 * i;
                        double theta = sign * (double)t / pow(base, (double)(2 * i) / (double)D);
                        double x0 = xr[j], x1 = xr[j + 1];
                        if (part == 2) theta = 0;   /* v passes through */
                        yr[j] = (float)(x0 * cos(theta) - x1 * sin(theta));
                        yr[j + 1] = (float)(x0 * sin(theta) + x1 * cos(theta));
                    }
        }
}

static size_t work_rope(const sm_graph *g, const sm_node *n)
{
    int64_t C = g->t[n->in[0]].ne[2] / 3, D = C / n->attrs.i[SM_IATTR_ROPE_N_HEAD];
    return (size_t)(D / 2) * sizeof(double) + (size_t)D * sizeof(float);   /* freqs + cos/sin */
}

/* 6 per rotated pair of q and k (2C dims = C pairs), plus D/2 sincos per row (ignored) */
static double flops_rope(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 2.0); }

const sm_op_def sm_op_rope = {
    .name = "rope", .min_in = 1, .max_in = 1, .iattr = {"n_head", "inverse"}, .iattr_default = {1, 0},
    .fattr = {"base"}, .fattr_default = {10000.0f}, .shape = shape_rope, .flops = flops_rope,
    .workspace = work_rope, .inplace = true, .forward = rope_forward, .reference = rope_reference,
    .backward = sm_backward_rope,
};
