/* kv_attention.c — attention of new rows against a KV cache: the decode step of a transformer.
 *   qkv [B, T, 3C] the new rows' packed q | k | v; k_cache, v_cache [B, P, C] (positions x heads x
 *   head_dim); positions i32 [B, T], row b at positions[b, 0] + t (the session writes it, and the
 *   position embedding reads the same tensor). attrs n_head, span (0 = full causal, else the last
 *   span keys), sink and ring (see below).  -> out [B, T, C]
 * The kernel first writes the new rows' k and v into the caches (the node mutates inputs 1 and 2),
 * then each new query attends over the cached keys it may see.
 *
 * Bitwise equal to the full forward. Query p of the full forward (ops/attention_kernel.c) is
 * computed by the tile routine with its key tiles starting at sm_att_key_lo(i0) of its query tile
 * (i0 = 64·floor(p/64)); its result depends only on those tile starts and on the keys it sees
 * (attention_tile.h). Here queries are grouped by the same 64-query tiles and the key tiles start
 * at the same place, and k, v, q are the same floats (the gemm sums every output element in an
 * order independent of the row count), so the outputs are bit for bit the full forward's.
 *
 * Layouts. ring = 0: position p is row p; P bounds the positions (the session checks, and a run
 * with positions[b,0] + T > P writes nothing and gives NaN rows for b). ring = 1: a sliding-window
 * cache for span > 0: the first `sink` positions keep rows 0..sink-1, the later ones cycle through
 * the other P - sink rows (sm_kv_slot), so memory is O(span + sink) for any number of positions.
 * P - sink >= span + T - 1, so a run's new rows never overwrite keys its own queries still see.
 * With sink = 0 a query sees keys p-span+1..p, as the attention op with the same span; the key tiles
 * start where the full forward's do (up to 63 masked keys earlier, read from whatever rows hold them:
 * only their finiteness matters), read in place, or gathered into scratch when those rows wrap around
 * the ring, so the bits are the same. With sink > 0 a query at p sees the sinks and the last span keys
 * (StreamingLLM): until p - span + 1 reaches the sinks that is every key 0..p, as causal attention;
 * after, the sinks and the window's (at most two) runs of rows are attended separately, in place, and
 * merged by their log-sum-exps (within rounding of the reference, not bitwise anything).
 *
 * Threads: the row writes are split by rows, then (b, head, query tile) units are dealt round-robin;
 * every output element is computed by one thread in a fixed order, so any thread count gives the
 * same bits. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../base/error.h"
#include "attention_tile.h"
#include "kv_attention.h"
#include "rows.h"

enum { QT = SM_ATT_QT };

typedef struct kv_dims {
    int B, T, C, H, D, span, sink, ring;
    int64_t P;
} kv_dims;

static kv_dims dims_of(const sm_tensor_rec *x, const sm_tensor_rec *kc, const sm_node *n)
{
    kv_dims d;
    d.B = (int)x->ne[0];
    d.T = (int)x->ne[1];
    d.C = (int)(x->ne[2] / 3);
    d.H = (int)n->attrs.i[SM_IATTR_KV_ATTENTION_N_HEAD];
    d.D = d.H > 0 ? d.C / d.H : 0;
    d.span = (int)n->attrs.i[SM_IATTR_KV_ATTENTION_SPAN];
    d.sink = (int)n->attrs.i[SM_IATTR_KV_ATTENTION_SINK];
    d.ring = (int)n->attrs.i[SM_IATTR_KV_ATTENTION_RING];
    d.P = kc->ne[1];
    return d;
}

static sm_status shape_kv_attention(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]], *kc = &g->t[n->in[1]], *vc = &g->t[n->in[2]], *ps = &g->t[n->in[3]];
    char sx[64], sk[64];
    for (int i = 0; i < 3; i++) {
        sm_status s = sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    if (x->ndim != 3 || x->ne[2] % 3)
        return sm_error(SM_ERR_SHAPE, "node '%s': kv_attention input '%s' is %s; it must be packed qkv [B, T, 3C]",
                        out->name, x->name, sm_shape_str(x, sx, sizeof sx));
    int64_t B = x->ne[0], T = x->ne[1], C = x->ne[2] / 3, H = n->attrs.i[SM_IATTR_KV_ATTENTION_N_HEAD];
    int64_t span = n->attrs.i[SM_IATTR_KV_ATTENTION_SPAN], sink = n->attrs.i[SM_IATTR_KV_ATTENTION_SINK];
    int64_t ring = n->attrs.i[SM_IATTR_KV_ATTENTION_RING];
    if (H < 1 || C % H)
        return sm_error(SM_ERR_SHAPE, "node '%s': n_head %lld does not divide C = %lld (qkv '%s' %s)", out->name,
                        (long long)H, (long long)C, x->name, sm_shape_str(x, sx, sizeof sx));
    for (const sm_tensor_rec *c = kc; c; c = c == kc ? vc : NULL)
        if (c->ndim != 3 || c->ne[0] != B || c->ne[2] != C || c->role != SM_ROLE_KV)
            return sm_error(SM_ERR_SHAPE, "node '%s': cache '%s' is %s (role %s); it must be a KV tensor [B, P, C] = "
                            "[%lld, P, %lld] for qkv '%s' %s", out->name, c->name, sm_shape_str(c, sk, sizeof sk),
                            sm_role_name(c->role), (long long)B, (long long)C, x->name,
                            sm_shape_str(x, sx, sizeof sx));
    if (vc->ne[1] != kc->ne[1])
        return sm_error(SM_ERR_SHAPE, "node '%s': k cache '%s' has %lld positions, v cache '%s' %lld", out->name,
                        kc->name, (long long)kc->ne[1], vc->name, (long long)vc->ne[1]);
    if (ps->dtype != SM_I32 || ps->ndim != 2 || ps->ne[0] != B || ps->ne[1] != T)
        return sm_error(SM_ERR_SHAPE, "node '%s': positions '%s' is %s %s; it must be i32 [B, T] = [%lld, %lld]",
                        out->name, ps->name, sm_dtype_name(ps->dtype), sm_shape_str(ps, sx, sizeof sx), (long long)B,
                        (long long)T);
    if (span < 0 || sink < 0 || ring < 0 || ring > 1)
        return sm_error(SM_ERR_SHAPE, "node '%s': span %lld, sink %lld, ring %lld: span and sink must be >= 0 and "
                        "ring 0 or 1", out->name, (long long)span, (long long)sink, (long long)ring);
    if (ring && (span < 1 || kc->ne[1] < sink + span + T - 1))
        return sm_error(SM_ERR_SHAPE, "node '%s': a ring cache needs a window span >= 1 and at least sink + span + "
                        "T - 1 = %lld rows; cache '%s' has %lld (span %lld, sink %lld, T %lld)", out->name,
                        (long long)(sink + span + T - 1), kc->name, (long long)kc->ne[1], (long long)span,
                        (long long)sink, (long long)T);
    if (!ring && sink)
        return sm_error(SM_ERR_SHAPE, "node '%s': sink %lld needs a ring cache (ring = 1)", out->name, (long long)sink);
    if (kc->ne[1] > INT32_MAX / 2 || span > INT32_MAX / 2 || sink > INT32_MAX / 2)
        return sm_error(SM_ERR_SHAPE, "node '%s': cache '%s' of %lld positions (span %lld, sink %lld): at most 2^30",
                        out->name, kc->name, (long long)kc->ne[1], (long long)span, (long long)sink);
    out->ndim = 3;
    out->ne[0] = B;
    out->ne[1] = T;
    out->ne[2] = C;
    out->dtype = SM_F32;
    return SM_OK;
}

/* Rows of scratch per thread for a ring: without sinks, the keys a wrapping window is gathered into
 * (the window and a query tile of slack at each end: the key tiles start up to 63 keys before the
 * window; a query tile adds up to 64 queries); with sinks, the runs' outputs (sinks_and_window). */
static int64_t gather_rows(const kv_dims *d) { return d->ring ? (d->sink ? 2 : (int64_t)d->span + 2 * QT) : 0; }

static size_t work_kv_attention(const sm_graph *g, const sm_node *n)
{
    kv_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]], n);
    return (sm_attention_tile_floats(d.D) + 2 * sm_att_round16((size_t)(gather_rows(&d) * d.D))) * sizeof(float);
}

/* Whether batch row b's positions fit the cache. */
static int pos_ok(const kv_dims *d, int64_t pos)
{
    if (pos < 0 || pos > INT32_MAX / 2) return 0;
    return d->ring || pos + d->T <= d->P;
}

/* Copies the keys (values) of positions lo..hi-1 of head h into dst [hi-lo, D] from their cache rows. */
static void gather(const kv_dims *d, const float *cache, int h, int64_t lo, int64_t hi, float *dst)
{
    for (int64_t j = lo; j < hi; j++)
        memcpy(dst + (j - lo) * d->D, cache + sm_kv_slot(j, d->sink, d->ring, d->P) * d->C + (int64_t)h * d->D,
               sizeof(float) * (size_t)d->D);
}

/* Query position p of head h against the sinks and its window, in place: the keys are in up to three
 * runs of consecutive rows (the sinks; the window, cut in two where it wraps around the ring). Each
 * run's attention comes with its log-sum-exp, and the runs are merged by their softmax weights:
 * out = sum_r e^(lse_r - M) out_r / sum_r e^(lse_r - M). seg: 4·D floats of scratch. */
static void sinks_and_window(const kv_dims *d, const float *q, const float *kb, const float *vb, int h, int p,
                             float *o, float *w, float *seg)
{
    const int C = d->C, D = d->D;
    const int64_t a = (int64_t)p - d->span + 1, sa = sm_kv_slot(a, d->sink, 1, d->P),
                  sb = sm_kv_slot(p, d->sink, 1, d->P);
    int64_t lo[3] = {0, sa, 0}, n[3] = {d->sink, 0, 0};
    if (sa <= sb) {
        n[1] = sb - sa + 1;
    } else {
        n[1] = d->P - sa;
        lo[2] = d->sink;
        n[2] = sb - d->sink + 1;
    }
    float lse[3], m = -INFINITY;
    int runs = 0;
    for (int r = 0; r < 3; r++) {
        if (!n[r]) continue;
        const int64_t off = lo[r] * C + (int64_t)h * D;
        sm_attention_tile_forward_at(q, 3 * (ptrdiff_t)C, kb + off, vb + off, C, 0, (int)n[r] - 1, 1, D, 0, 0,
                                     seg + runs * D, D, &lse[runs], w);
        m = fmaxf(m, lse[runs]);
        runs++;
    }
    float wt[3], sum = 0.0f;
    for (int r = 0; r < runs; r++) sum += wt[r] = expf(lse[r] - m);
    for (int e = 0; e < D; e++) {
        float acc = 0.0f;
        for (int r = 0; r < runs; r++) acc += wt[r] * seg[r * D + e];
        o[e] = acc / sum;
    }
}

static void kv_team(const sm_kernel_args *k, const kv_dims *d)
{
    const float *qkv = k->x[0];
    float *kc = (float *)k->x[1], *vc = (float *)k->x[2], *y = k->y;
    const int32_t *positions = k->x[3];
    const int B = d->B, T = d->T, C = d->C, H = d->H, D = d->D;
    const int64_t P = d->P;
    float *w = (float *)((char *)k->work + (size_t)omp_get_thread_num() * k->work_bytes);
    float *kg = w + sm_attention_tile_floats(D), *vg = kg + sm_att_round16((size_t)(gather_rows(d) * D));

    /* 1. the new rows' k and v into the caches */
#pragma omp for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        const int b = (int)(r / T), t = (int)(r % T);
        const int64_t pos = positions[(int64_t)b * T];
        if (!pos_ok(d, pos)) continue;
        const int64_t row = (int64_t)b * P + sm_kv_slot(pos + t, d->sink, d->ring, P);
        memcpy(kc + row * C, qkv + r * 3 * C + C, sizeof(float) * (size_t)C);
        memcpy(vc + row * C, qkv + r * 3 * C + 2 * C, sizeof(float) * (size_t)C);
    }
    /* (the implicit barrier: every row is in the cache before any query reads it) */

    /* 2. the queries. Sink rings take one query per unit (each has its own gathered keys); the other
     * layouts take the full forward's 64-query tiles (ng per batch row at most). */
    const int per_query = d->ring && d->sink > 0;
    const int ng = per_query ? T : (T + QT - 1) / QT + 1;
    const long units = (long)B * H * ng;
#pragma omp for schedule(static, 1)
    for (long u = 0; u < units; u++) {
        const int g = (int)(u / ((long)B * H)), h = (int)(u % H), b = (int)(u / H % B);
        const int64_t pos = positions[(int64_t)b * T];
        if (!pos_ok(d, pos)) {
            if (h == 0 && g == 0)
                for (int64_t i = 0; i < (int64_t)T * C; i++) y[(int64_t)b * T * C + i] = NAN;
            continue;
        }
        int i0, i1;
        if (per_query) {
            i0 = (int)pos + g;
            i1 = i0 + 1;
        } else {
            const int tile = (int)(pos / QT) + g;
            i0 = sm_att_max((int)pos, tile * QT);
            i1 = sm_att_min((int)pos + T, (tile + 1) * QT);
            if (i0 >= i1) continue;
        }
        const int nq = i1 - i0;
        const float *q = qkv + ((int64_t)b * T + (i0 - pos)) * 3 * C + (int64_t)h * D;
        float *o = y + ((int64_t)b * T + (i0 - pos)) * C + (int64_t)h * D;
        const float *kb = kc + (int64_t)b * P * C, *vb = vc + (int64_t)b * P * C;
        if (!d->ring) {
            const int j_begin = sm_att_key_lo(i0 / QT * QT, d->span);
            sm_attention_tile_forward_at(q, 3 * (ptrdiff_t)C, kb + h * D, vb + h * D, C, 0, i0, nq, D, d->span, j_begin,
                                         o, C, NULL, w);
        } else if (!d->sink) {
            /* the keys from where the full forward's tiles start: in place when their rows do not wrap
             * around the ring (the same floats either way, so the same bits) */
            const int j_begin = sm_att_key_lo(i0 / QT * QT, d->span);
            const int64_t R = P, s0 = sm_kv_slot(j_begin, 0, 1, R);
            if (j_begin / R == (i1 - 1) / R) {
                sm_attention_tile_forward_at(q, 3 * (ptrdiff_t)C, kb + s0 * C + h * D, vb + s0 * C + h * D, C, j_begin,
                                             i0, nq, D, d->span, j_begin, o, C, NULL, w);
            } else {
                gather(d, kb, h, j_begin, i1, kg);
                gather(d, vb, h, j_begin, i1, vg);
                sm_attention_tile_forward_at(q, 3 * (ptrdiff_t)C, kg, vg, D, j_begin, i0, nq, D, d->span, j_begin, o,
                                             C, NULL, w);
            }
        } else if (i0 - d->span + 1 <= d->sink) {
            /* the window reaches the sinks: every key 0..i0, each still in row = position (i0 < P) */
            sm_attention_tile_forward_at(q, 3 * (ptrdiff_t)C, kb + h * D, vb + h * D, C, 0, i0, 1, D, 0, 0, o, C, NULL,
                                         w);
        } else {
            sinks_and_window(d, q, kb, vb, h, i0, o, w, kg);
        }
    }
}

static void kv_attention_forward(const sm_kernel_args *k)
{
    const kv_dims d = dims_of(k->in[0], k->in[1], k->node);
    /* omp_get_level, not omp_in_parallel: see sm_attention_forward */
    if (omp_get_level() == 0) {
#pragma omp parallel
        kv_team(k, &d);
    } else {
        kv_team(k, &d);
    }
}

/* ---- reference --------------------------------------------------------------------------------- */

/* Whether query position p sees key position j. */
static int visible(const kv_dims *d, int64_t p, int64_t j)
{
    if (j > p) return 0;
    if (d->span == 0 || j > p - d->span) return 1;
    return d->ring && j < d->sink;
}

/* From the definition: write the rows, then per query and head the scores in double over the keys
 * it sees, read from their cache rows. */
static void kv_attention_reference(const sm_kernel_args *k)
{
    const kv_dims d = dims_of(k->in[0], k->in[1], k->node);
    const float *qkv = k->x[0];
    float *kc = (float *)k->x[1], *vc = (float *)k->x[2], *y = k->y;
    const int32_t *positions = k->x[3];
    const int C = d.C, D = d.D;
    const double scale = 1.0 / sqrt((double)D);
    for (int b = 0; b < d.B; b++) {
        const int64_t pos = positions[(int64_t)b * d.T];
        float *yb = y + (int64_t)b * d.T * C;
        if (!pos_ok(&d, pos)) {
            for (int64_t i = 0; i < (int64_t)d.T * C; i++) yb[i] = NAN;
            continue;
        }
        const float *kb = kc + (int64_t)b * d.P * C, *vb = vc + (int64_t)b * d.P * C;
        for (int t = 0; t < d.T; t++) {
            const int64_t row = sm_kv_slot(pos + t, d.sink, d.ring, d.P);
            for (int c = 0; c < C; c++) {
                kc[((int64_t)b * d.P + row) * C + c] = qkv[((int64_t)b * d.T + t) * 3 * C + C + c];
                vc[((int64_t)b * d.P + row) * C + c] = qkv[((int64_t)b * d.T + t) * 3 * C + 2 * C + c];
            }
        }
        for (int t = 0; t < d.T; t++)
            for (int h = 0; h < d.H; h++) {
                const int64_t p = pos + t;
                const float *q = qkv + ((int64_t)b * d.T + t) * 3 * C + (int64_t)h * D;
                double mx = -INFINITY, sum = 0.0;
                for (int pass = 0; pass < 2; pass++)
                    for (int64_t j = 0; j <= p; j++) {
                        if (!visible(&d, p, j)) continue;
                        const float *kj = kb + sm_kv_slot(j, d.sink, d.ring, d.P) * C + (int64_t)h * D;
                        double dot = 0.0;
                        for (int e = 0; e < D; e++) dot += (double)q[e] * kj[e];
                        if (pass == 0) mx = fmax(mx, dot * scale);
                        else sum += exp(dot * scale - mx);
                    }
                float *o = yb + (int64_t)t * C + (int64_t)h * D;
                for (int e = 0; e < D; e++) o[e] = 0.0f;
                for (int64_t j = 0; j <= p; j++) {
                    if (!visible(&d, p, j)) continue;
                    const int64_t r = sm_kv_slot(j, d.sink, d.ring, d.P) * C + (int64_t)h * D;
                    double dot = 0.0;
                    for (int e = 0; e < D; e++) dot += (double)q[e] * kb[r + e];
                    const float pr = (float)(exp(dot * scale - mx) / sum);
                    for (int e = 0; e < D; e++) o[e] += pr * vb[r + e];
                }
            }
    }
}

/* Per query about the keys it may see: P/2 for a linear cache (the mean over a filling cache),
 * sink + span for a window; QKᵀ and PV at 2 FLOPs per multiply-add each. */
static double flops_kv_attention(const sm_graph *g, const sm_node *n)
{
    const kv_dims d = dims_of(&g->t[n->in[0]], &g->t[n->in[1]], n);
    double keys = d.span ? (double)d.span + d.sink : (double)d.P / 2;
    return 4.0 * d.B * d.T * keys * d.C;
}

const sm_op_def sm_op_kv_attention = {
    .name = "kv_attention", .min_in = 4, .max_in = 4, .iattr = {"n_head", "span", "sink", "ring"},
    .iattr_default = {1, 0, 0, 0}, .shape = shape_kv_attention, .flops = flops_kv_attention,
    .workspace = work_kv_attention, .mutates_inputs = true, .forward = kv_attention_forward,
    .reference = kv_attention_reference,
};
