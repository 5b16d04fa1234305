/* attention_kernel.c — causal multi-head self-attention, forward: tiled, online softmax, no T×T matrix.
 *
 * Tiling. A work unit is (batch b, head h, query tile of QT = 64 queries). For one unit:
 *   Qᵀ  [D, QT]   the tile's queries, scaled by 1/√D and transposed once;
 *   for each key tile of KT = 64 keys in lo(i0) .. last query (lo = 0, or t-span+1 for a window):
 *     Sᵀ [KT, QT] = K_tile · Qᵀ            scores with keys along rows and queries along columns, so
 *                                          the per-query softmax runs down columns with queries in
 *                                          the vector lanes: no horizontal reductions;
 *     mask (keys after the query, or before its window), then the online softmax per query:
 *       m' = max(m, max_k s), α = e^(m-m'), P = e^(s-m'), l = α·l + Σ_k P;
 *     O  [QT, D] = α·O + P · V_tile        (P is the Sᵀ tile read through transposing strides);
 *   out = O / l.
 * Both products are one register-blocked kernel (6 rows × 64 columns of zmm accumulators) that
 * broadcasts one operand, so the head dim D is the contiguous vector dim of V and O. Tiles cut by the
 * diagonal (or by a window's lower edge) pass the band lo ≤ key − query ≤ hi to that kernel, which
 * skips the 6-row blocks' fully masked parts: a diagonal tile costs about half a full one.
 *
 * Memory. Per thread (D·QT + KT·QT + QT·D + 3·QT) floats ≈ 48 KiB at D = 64: independent of T,
 * so the forward's memory is its input and output only, linear in T. The backward
 * (attention_backward.c) adds 2 floats per query (log-sum-exp, dO·out) and ~6 more tiles per thread.
 *
 * Threads. The forward is a team call: units are dealt round-robin, in decreasing cost, with an
 * orphaned `omp for schedule(static, 1)` (balances the causal triangle); a unit is computed by one
 * thread in a fixed order, so out is bitwise the same for any thread count. Called outside any
 * parallel region it opens one of omp_get_max_threads() threads; `work` then holds that many slots.
 */
#include "attention_kernel.h"

#include <math.h>
#include <omp.h>

#include "attention_tile.h"

enum { QT = SM_ATT_QT, KT = SM_ATT_KT };

size_t sm_attention_tile_floats(int D)
{
    return sm_att_round16((size_t)D * QT) + sm_att_round16((size_t)KT * QT) + sm_att_round16((size_t)QT * D) +
           sm_att_round16(3 * QT);
}

size_t sm_attention_workspace(int T, int C, int H)
{
    (void)T;
    return sm_attention_tile_floats(C / H) * sizeof(float);
}

/* The online softmax for one key tile, down the columns of St [nk, QT] (keys × queries). Key row c
 * (key s = i0 + off + c) is seen by queries s..s+span-1 (all later ones if span = 0); other entries
 * become -inf, then P = e^(s - m') with m' the new running max. `full`: every entry is visible.
 * m, l: running max and sum per query; al: the factor α the caller rescales O by. */
static void softmax_tile_cols(float *St, int nk, int nq, int off, int span, int full, float *m, float *l, float *al)
{
#if defined(__AVX512F__)
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int r0 = 0; r0 < nq; r0 += 16) {
        const __mmask16 lanes = sm_att_lanes(0, nq - r0);
        __m512 mx = ninf;
        for (int c = 0; c < nk; c++) {
            float *row = St + c * QT + r0;
            __m512 x = _mm512_mask_loadu_ps(ninf, lanes, row);
            if (!full) {
                const int lo = off + c - r0; /* first lane that sees this key */
                const __mmask16 vis = sm_att_lanes(lo, span > 0 ? lo + span : 16);
                x = _mm512_mask_blend_ps(vis, ninf, x);
                _mm512_mask_storeu_ps(row, lanes, x);
            }
            mx = _mm512_max_ps(mx, x);
        }
        const __m512 mold = _mm512_mask_loadu_ps(ninf, lanes, m + r0);
        const __m512 mnew = _mm512_max_ps(mold, mx);
        /* A query that has seen no key yet keeps m = -inf; subtract 0 then so nothing is NaN. */
        const __m512 msub = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(mnew, ninf, _CMP_EQ_OQ), mnew,
                                                 _mm512_setzero_ps());
        const __m512 alpha = sm_att_exp512(_mm512_sub_ps(mold, msub));
        __m512 sum = _mm512_setzero_ps();
        for (int c = 0; c < nk; c++) {
            float *row = St + c * QT + r0;
            const __m512 x = _mm512_mask_loadu_ps(ninf, lanes, row);
            const __mmask16 valid = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_UQ) & lanes;
            const __m512 p = _mm512_maskz_mov_ps(valid, sm_att_exp512(_mm512_sub_ps(x, msub)));
            _mm512_mask_storeu_ps(row, lanes, p);
            sum = _mm512_add_ps(sum, p);
        }
        _mm512_mask_storeu_ps(m + r0, lanes, mnew);
        _mm512_mask_storeu_ps(al + r0, lanes, alpha);
        _mm512_mask_storeu_ps(l + r0, lanes,
                              _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, l + r0), alpha, sum));
    }
#else
    for (int r = 0; r < nq; r++) al[r] = -INFINITY; /* column max of this tile, first */
    for (int c = 0; c < nk; c++) {
        float *row = St + c * QT;
        const int lo = off + c, hi = span > 0 ? lo + span : nq;
        for (int r = 0; r < nq; r++) {
            if (!full && (r < lo || r >= hi)) row[r] = -INFINITY;
            al[r] = fmaxf(al[r], row[r]);
        }
    }
    float sub[QT];
    for (int r = 0; r < nq; r++) {
        const float mnew = fmaxf(m[r], al[r]);
        sub[r] = mnew == -INFINITY ? 0.0f : mnew;
        al[r] = expf(m[r] - sub[r]);
        m[r] = mnew;
        l[r] *= al[r];
    }
    for (int c = 0; c < nk; c++) {
        float *row = St + c * QT;
        for (int r = 0; r < nq; r++) {
            row[r] = row[r] == -INFINITY ? 0.0f : expf(row[r] - sub[r]);
            l[r] += row[r];
        }
    }
#endif
}

void sm_attention_tile_forward(const float *q, const float *k, const float *v, ptrdiff_t ld, int i0, int nq, int D,
                               int span, float *out, ptrdiff_t ldo, float *lse, float *w)
{
    sm_attention_tile_forward_at(q + (ptrdiff_t)i0 * ld, ld, k, v, ld, 0, i0, nq, D, span,
                                 sm_att_key_lo(i0, span), out, ldo, lse, w);
}

/* The body: the same arithmetic wherever the queries and keys live, so a KV cache (queries of the
 * new rows, keys in the cache) gets the bits the full forward gets (ops/kv_attention.c). */
void sm_attention_tile_forward_at(const float *q, ptrdiff_t ldq, const float *k, const float *v, ptrdiff_t ldk,
                                  int kbase, int i0, int nq, int D, int span, int j_begin, float *out, ptrdiff_t ldo,
                                  float *lse, float *w)
{
    float *Qt = w;                                      /* [D, QT]  scaled queries, transposed */
    float *St = Qt + sm_att_round16((size_t)D * QT);    /* [KT, QT] scores, then probabilities */
    float *O = St + sm_att_round16((size_t)KT * QT);    /* [QT, D]  unnormalised output rows */
    float *m = O + sm_att_round16((size_t)QT * D);      /* [QT]     running max of the scores */
    float *l = m + QT, *al = l + QT;                    /* [QT]     running sum; rescale factor */

    sm_att_transpose(nq, D, q, ldq, Qt, QT, 1.0f / sqrtf((float)D));
    for (int r = 0; r < nq; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    for (ptrdiff_t i = 0; i < (ptrdiff_t)nq * D; i++) O[i] = 0.0f;

    const int last = i0 + nq - 1, lo_last = sm_att_key_lo(last, span);
    for (int j0 = j_begin; j0 <= last; j0 += KT) {
        const int nk = sm_att_min(KT, last + 1 - j0);
        /* Query i0+r sees key j0+c iff lo ≤ c − r ≤ hi: the band the products skip outside of. */
        const int hi = i0 - j0, lo = span > 0 ? hi - span + 1 : -(1 << 28);
        /* Sᵀ[nk, nq] = K[j0.., :D] · Qᵀ[:D, :nq] */
        sm_att_mm_band(nk, nq, D, k + (ptrdiff_t)(j0 - kbase) * ldk, ldk, 1, Qt, QT, St, QT, 0, SM_ATT_BAND_N, -hi, -lo);
        const int full = j0 + nk - 1 <= i0 && j0 >= lo_last;
        softmax_tile_cols(St, nk, nq, j0 - i0, span, full, m, l, al);
        for (int r = 0; r < nq; r++)
            if (al[r] != 1.0f)
                for (int d = 0; d < D; d++) O[r * D + d] *= al[r];
        /* O[nq, D] += P[nq, nk] · V[j0.., :D], P(r, c) = Sᵀ[c, r] */
        sm_att_mm_band(nq, D, nk, St, 1, QT, v + (ptrdiff_t)(j0 - kbase) * ldk, ldk, O, D, 1, SM_ATT_BAND_K, lo, hi);
    }
    for (int r = 0; r < nq; r++) {
        const float inv = 1.0f / l[r];
        for (int d = 0; d < D; d++) out[r * ldo + d] = O[r * D + d] * inv;
        if (lse) lse[r] = m[r] + logf(l[r]);
    }
}

static void attention_forward_team(const float *qkv, float *out, int B, int T, int C, int H, int span, void *work)
{
    const int D = C / H, nqt = (T + QT - 1) / QT;
    float *w = (float *)((char *)work + (size_t)omp_get_thread_num() * sm_attention_workspace(T, C, H));
    const long units = (long)B * H * nqt;
    /* Units in decreasing cost: the last query tile of every (b, h) first (it sees the most keys),
     * then the one before, ... Dealt round-robin, each thread gets an equal share of every cost level
     * (B·H units per level), where (b, h)-major order would give the odd query tiles, the larger ones,
     * all to thread 1 of 2. */
#pragma omp for schedule(static, 1)
    for (long u = 0; u < units; u++) {
        const int qt = nqt - 1 - (int)(u / ((long)B * H)), h = (int)(u % H), b = (int)(u / H % B);
        const int i0 = qt * QT, nq = sm_att_min(QT, T - i0);
        const float *q = qkv + (ptrdiff_t)b * T * 3 * C + (ptrdiff_t)h * D; /* k = q + C, v = q + 2C */
        float *o = out + ((ptrdiff_t)b * T + i0) * C + (ptrdiff_t)h * D;
        sm_attention_tile_forward(q, q + C, q + 2 * C, 3 * (ptrdiff_t)C, i0, nq, D, span, o, C, NULL, w);
    }
}

void sm_attention_forward(const float *qkv, float *out, int B, int T, int C, int H, int span, void *work)
{
    if (span < 0 || span >= T) span = 0; /* a window as long as the sequence is plain causal */
    /* omp_get_level, not omp_in_parallel: inside an inactive 1-thread region the caller's work holds
     * one slot, so we must not open a bigger team there. */
    if (omp_get_level() == 0) {
#pragma omp parallel
        attention_forward_team(qkv, out, B, T, C, H, span, work);
    } else {
        attention_forward_team(qkv, out, B, T, C, H, span, work);
    }
}

/* ---- reference --------------------------------------------------------------------------------- */

/* Straight from the definition, one query at a time: scores in double, max, sum, weighted sum of v.
 * It recomputes each score instead of storing a row, so it needs no allocation. */
void sm_attention_forward_ref(const float *qkv, float *out, int B, int T, int C, int H, int span)
{
    const int D = C / H;
    const double scale = 1.0 / sqrt((double)D);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                const float *base = qkv + (ptrdiff_t)b * T * 3 * C + (ptrdiff_t)h * D;
                const float *qt = base + (ptrdiff_t)t * 3 * C;
                float *o = out + ((ptrdiff_t)b * T + t) * C + (ptrdiff_t)h * D;
                const int lo = span > 0 ? (t - span + 1 > 0 ? t - span + 1 : 0) : 0;
                double mx = -INFINITY, sum = 0.0;
                for (int s = lo; s <= t; s++) {
                    const float *ks = base + (ptrdiff_t)s * 3 * C + C;
                    double dot = 0.0;
                    for (int d = 0; d < D; d++) dot += (double)qt[d] * ks[d];
                    mx = fmax(mx, dot * scale);
                }
                for (int s = lo; s <= t; s++) {
                    const float *ks = base + (ptrdiff_t)s * 3 * C + C;
                    double dot = 0.0;
                    for (int d = 0; d < D; d++) dot += (double)qt[d] * ks[d];
                    sum += exp(dot * scale - mx);
                }
                for (int d = 0; d < D; d++) o[d] = 0.0f;
                for (int s = lo; s <= t; s++) {
                    const float *ks = base + (ptrdiff_t)s * 3 * C + C, *vs = ks + C;
                    double dot = 0.0;
                    for (int d = 0; d < D; d++) dot += (double)qt[d] * ks[d];
                    const float p = (float)(exp(dot * scale - mx) / sum);
                    for (int d = 0; d < D; d++) o[d] += p * vs[d];
                }
            }
}
