/* attention_backward.c — gradient of causal multi-head self-attention, tiled: no T×T matrix.
 *
 * With s = q·k/√D, P = softmax(s) per query, out = P·V and the upstream dO:
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − Δ) with Δ_t = Σ_s P_ts dP_ts = dO_t · out_t,
 *   dQ = dS·K/√D,  dK = dSᵀ·Q/√D.
 * Only qkv and dO are given, so per (batch, head):
 *   pass A  recomputes the forward query tile by query tile (attention_kernel.c) for each query's
 *           log-sum-exp L_t and Δ_t = dO_t·out_t (2·T floats), and zeroes dQ;
 *   pass B  walks key tiles j (KT keys); Kᵀ_j (scaled by 1/√D) and Vᵀ_j are transposed once and dK_j,
 *           dV_j accumulate in two KT×D tiles while the query tiles that see key tile j stream by:
 *             S = Q_i·Kᵀ_j,  P = e^(S − L) (masked),  dP = dO_i·Vᵀ_j,  dS = P ⊙ (dP − Δ)/√D,
 *             dV_j += Pᵀ·dO_i,  dK_j += dSᵀ·Q_i,  dQ_i += dS·K_j  (straight into dqkv);
 *           then dK_j, dV_j are stored.
 * Memory per thread: 2·T floats plus ten 64×64 tiles at D = 64 (≈ 160 KiB): linear in T.
 *
 * Threads. dK/dV collect from many queries and dQ from many keys, so one thread owns a whole
 * (batch, head): `omp for schedule(static)` over B·H. Every element of dqkv is written by that one
 * thread in an order fixed by the shapes, so dqkv is bitwise the same for any thread count.
 */
#include "attention_kernel.h"

#include <math.h>
#include <omp.h>

#include "attention_tile.h"

enum { QT = SM_ATT_QT, KT = SM_ATT_KT };

size_t sm_attention_backward_workspace(int T, int C, int H)
{
    const size_t D = (size_t)(C / H);
    return (2 * sm_att_round16((size_t)T) + 2 * sm_att_round16(D * KT) + 2 * sm_att_round16((size_t)QT * KT) +
            2 * sm_att_round16((size_t)KT * D) + sm_att_round16((size_t)QT * D) + sm_attention_tile_floats((int)D)) *
           sizeof(float);
}

/* P and dS for one (query tile, key tile) pair, row layout [nq, KT]: query t = i0 + r sees key
 * s = j0 + c iff lo(t) ≤ s ≤ t. On entry P holds S and dS holds dP; invisible entries become 0. */
static void probs_grad_tile(float *P, float *dS, int nq, int nk, int i0, int j0, int span, const float *lse,
                            const float *delta, float scale)
{
    for (int r = 0; r < nq; r++) {
        const int t = i0 + r;
        const int ca = sm_att_max(sm_att_key_lo(t, span) - j0, 0), cb = sm_att_min(t - j0 + 1, nk);
        float *p = P + r * KT, *ds = dS + r * KT;
#if defined(__AVX512F__)
        const __m512 L = _mm512_set1_ps(lse[r]), dl = _mm512_set1_ps(delta[r]), sc = _mm512_set1_ps(scale);
        for (int c0 = 0; c0 < nk; c0 += 16) {
            const __mmask16 lanes = sm_att_lanes(0, nk - c0), vis = sm_att_lanes(ca - c0, cb - c0);
            const __m512 pv = _mm512_maskz_mov_ps(vis, sm_att_exp512(_mm512_sub_ps(_mm512_loadu_ps(p + c0), L)));
            const __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(ds + c0), dl), sc);
            _mm512_mask_storeu_ps(p + c0, lanes, pv);
            _mm512_mask_storeu_ps(ds + c0, lanes, _mm512_maskz_mul_ps(vis, pv, g));
        }
#else
        for (int c = 0; c < nk; c++) {
            const int vis = c >= ca && c < cb;
            p[c] = vis ? expf(p[c] - lse[r]) : 0.0f;
            ds[c] = vis ? p[c] * ((ds[c] - delta[r]) * scale) : 0.0f;
        }
#endif
    }
}

/* Both passes for one (batch, head). q, k, v, dq, dk, dv: head columns of row 0, row stride ld (3C);
 * dO: row stride ldo (C). */
static void backward_head(const float *q, const float *k, const float *v, ptrdiff_t ld, const float *dO, ptrdiff_t ldo,
                          float *dq, float *dk, float *dv, int T, int D, int span, float *w)
{
    float *lse = w;                                     /* [T]      log-sum-exp per query */
    float *delta = lse + sm_att_round16((size_t)T);     /* [T]      dO_t · out_t */
    float *Kt = delta + sm_att_round16((size_t)T);      /* [D, KT]  key tile, transposed and scaled */
    float *Vt = Kt + sm_att_round16((size_t)D * KT);    /* [D, KT]  value tile, transposed */
    float *P = Vt + sm_att_round16((size_t)D * KT);     /* [QT, KT] scores, then probabilities */
    float *dS = P + sm_att_round16((size_t)QT * KT);    /* [QT, KT] dP, then dS */
    float *dKa = dS + sm_att_round16((size_t)QT * KT);  /* [KT, D]  dK of the key tile */
    float *dVa = dKa + sm_att_round16((size_t)KT * D);  /* [KT, D]  dV of the key tile */
    float *O = dVa + sm_att_round16((size_t)KT * D);    /* [QT, D]  recomputed output tile */
    float *tw = O + sm_att_round16((size_t)QT * D);     /* forward tile scratch */
    const float scale = 1.0f / sqrtf((float)D);

    for (int i0 = 0; i0 < T; i0 += QT) { /* pass A */
        const int nq = sm_att_min(QT, T - i0);
        sm_attention_tile_forward(q, k, v, ld, i0, nq, D, span, O, D, lse + i0, tw);
        for (int r = 0; r < nq; r++) {
            const float *g = dO + (i0 + r) * ldo, *o = O + r * D;
            float acc = 0.0f;
            for (int d = 0; d < D; d++) acc += g[d] * o[d];
            delta[i0 + r] = acc;
            for (int d = 0; d < D; d++) dq[(i0 + r) * ld + d] = 0.0f;
        }
    }

    for (int j0 = 0; j0 < T; j0 += KT) { /* pass B */
        const int nk = sm_att_min(KT, T - j0);
        sm_att_transpose(nk, D, k + j0 * ld, ld, Kt, KT, scale);
        sm_att_transpose(nk, D, v + j0 * ld, ld, Vt, KT, 1.0f);
        for (ptrdiff_t i = 0; i < (ptrdiff_t)nk * D; i++) dKa[i] = dVa[i] = 0.0f;
        /* Queries that see a key of this tile: j0 .. (last key + span - 1), or to the end. */
        const int tend = span > 0 ? sm_att_min(T, j0 + nk - 1 + span) : T;
        for (int i0 = j0; i0 < tend; i0 += QT) {
            const int nq = sm_att_min(QT, tend - i0);
            const float *qi = q + i0 * ld, *gi = dO + i0 * ldo;
            /* Query i0+r sees key j0+c iff lo ≤ c − r ≤ hi: the band the products skip outside of. */
            const int hi = i0 - j0, lo = span > 0 ? hi - span + 1 : -(1 << 28);
            /* S[nq, nk] = Q_i · Kᵀ_j/√D,  dP[nq, nk] = dO_i · Vᵀ_j */
            sm_att_mm_band(nq, nk, D, qi, ld, 1, Kt, KT, P, KT, 0, SM_ATT_BAND_N, lo, hi);
            sm_att_mm_band(nq, nk, D, gi, ldo, 1, Vt, KT, dS, KT, 0, SM_ATT_BAND_N, lo, hi);
            probs_grad_tile(P, dS, nq, nk, i0, j0, span, lse + i0, delta + i0, scale);
            /* dV_j[nk, D] += Pᵀ · dO_i,  dK_j[nk, D] += dSᵀ · Q_i,  dQ_i[nq, D] += dS · K_j */
            sm_att_mm_band(nk, D, nq, P, 1, KT, gi, ldo, dVa, D, 1, SM_ATT_BAND_K, -hi, -lo);
            sm_att_mm_band(nk, D, nq, dS, 1, KT, qi, ld, dKa, D, 1, SM_ATT_BAND_K, -hi, -lo);
            sm_att_mm_band(nq, D, nk, dS, KT, 1, k + j0 * ld, ld, dq + i0 * ld, ld, 1, SM_ATT_BAND_K, lo, hi);
        }
        for (int c = 0; c < nk; c++)
            for (int d = 0; d < D; d++) {
                dk[(j0 + c) * ld + d] = dKa[c * D + d];
                dv[(j0 + c) * ld + d] = dVa[c * D + d];
            }
    }
}

static void attention_backward_team(const float *qkv, const float *dout, float *dqkv, int B, int T, int C, int H,
                                    int span, void *work)
{
    const int D = C / H;
    float *w = (float *)((char *)work + (size_t)omp_get_thread_num() * sm_attention_backward_workspace(T, C, H));
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        const ptrdiff_t off = (ptrdiff_t)b * T * 3 * C + (ptrdiff_t)h * D; /* k at +C, v at +2C */
        backward_head(qkv + off, qkv + off + C, qkv + off + 2 * C, 3 * (ptrdiff_t)C,
                      dout + (ptrdiff_t)b * T * C + (ptrdiff_t)h * D, C, dqkv + off, dqkv + off + C,
                      dqkv + off + 2 * C, T, D, span, w);
    }
}

void sm_attention_backward(const float *qkv, const float *dout, float *dqkv, int B, int T, int C, int H, int span,
                           void *work)
{
    if (span < 0 || span >= T) span = 0;
    if (omp_get_level() == 0) { /* see sm_attention_forward */
#pragma omp parallel
        attention_backward_team(qkv, dout, dqkv, B, T, C, H, span, work);
    } else {
        attention_backward_team(qkv, dout, dqkv, B, T, C, H, span, work);
    }
}

/* ---- reference --------------------------------------------------------------------------------- */

/* From the formulas above, one query at a time, scores recomputed in double (no allocation):
 * L_t, then Δ_t = Σ_s P_ts dP_ts (the other identity than the kernel's dO·out), then each pair's
 * contribution to dq_t, dk_s, dv_s. */
void sm_attention_backward_ref(const float *qkv, const float *dout, float *dqkv, int B, int T, int C, int H, int span)
{
    const int D = C / H;
    const double scale = 1.0 / sqrt((double)D);
    for (ptrdiff_t i = 0; i < (ptrdiff_t)B * T * 3 * C; i++) dqkv[i] = 0.0f;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const ptrdiff_t base = (ptrdiff_t)b * T * 3 * C + (ptrdiff_t)h * D;
                const float *qt = qkv + base + (ptrdiff_t)t * 3 * C;
                const float *g = dout + ((ptrdiff_t)b * T + t) * C + (ptrdiff_t)h * D;
                float *dqt = dqkv + base + (ptrdiff_t)t * 3 * C;
                const int lo = span > 0 ? (t - span + 1 > 0 ? t - span + 1 : 0) : 0;
                double mx = -INFINITY, sum = 0.0, delta = 0.0;
#define SM_REF_DOT(x, y, out)                                                                        \
    do {                                                                                             \
        double acc_ = 0.0;                                                                           \
        for (int d = 0; d < D; d++) acc_ += (double)(x)[d] * (y)[d];                                \
        (out) = acc_;                                                                                \
    } while (0)
                for (int s = lo; s <= t; s++) {
                    double sc;
                    SM_REF_DOT(qt, qkv + base + (ptrdiff_t)s * 3 * C + C, sc);
                    mx = fmax(mx, sc * scale);
                }
                for (int s = lo; s <= t; s++) {
                    double sc;
                    SM_REF_DOT(qt, qkv + base + (ptrdiff_t)s * 3 * C + C, sc);
                    sum += exp(sc * scale - mx);
                }
                const double lse = mx + log(sum);
                for (int s = lo; s <= t; s++) {
                    double sc, dp;
                    SM_REF_DOT(qt, qkv + base + (ptrdiff_t)s * 3 * C + C, sc);
                    SM_REF_DOT(g, qkv + base + (ptrdiff_t)s * 3 * C + 2 * C, dp);
                    delta += exp(sc * scale - lse) * dp;
                }
                for (int s = lo; s <= t; s++) {
                    const float *ks = qkv + base + (ptrdiff_t)s * 3 * C + C, *vs = ks + C;
                    float *dks = dqkv + base + (ptrdiff_t)s * 3 * C + C, *dvs = dks + C;
                    double sc, dp;
                    SM_REF_DOT(qt, ks, sc);
                    SM_REF_DOT(g, vs, dp);
                    const double p = exp(sc * scale - lse);
                    const float ds = (float)(p * (dp - delta) * scale), pf = (float)p;
                    for (int d = 0; d < D; d++) {
                        dqt[d] += ds * ks[d];
                        dks[d] += ds * qt[d];
                        dvs[d] += pf * g[d];
                    }
                }
#undef SM_REF_DOT
            }
}
