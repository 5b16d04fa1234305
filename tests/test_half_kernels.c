/* test_half_kernels.c — the kernels that read f16/bf16 inputs directly (the precision pass's
 * half_inputs): the gemm's widening pack (sm_gemm_f32_mixed), matmul and linear (16-bit a/x and b/w),
 * gelu_bwd and silu_bwd (16-bit x). For each, with bf16 and f16:
 *   1. the 16-bit path is bitwise the f32 path on the widened values (widening is exact and the
 *      kernels convert on load, so nothing else may differ) — forward kernels at 1, 2, 3 threads and
 *      the reference kernels (op_check runs both, and the forward against the reference);
 *   2. against the f32 reference on the ORIGINAL (unrounded) f32 values, within a stated tolerance:
 *      rounding an operand to the 16-bit type changes it by a relative u_h at most (u_h = 2^-8 for
 *      bf16, 2^-11 for f16: half an ulp of 8 and 11 significant bits), so a product of a rounded
 *      and an exact factor moves by u_h·|a·b| and of two rounded ones by (2u_h + u_h²)·|a·b|; a sum
 *      of K such products moves by at most that times Σ|a·b|, plus the f32 summation error of both
 *      sides, 2·γ_K·Σ|a·b| (γ_K = K·u/(1-K·u), u = 2^-24; Higham 3.1). gelu_bwd/silu_bwd: rounding
 *      x moves f'(x) by at most max|f''|·|x|·u_h (bound_act). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/fp16.h"
#include "ops/gemm.h"
#include "tests/helpers/op_check.h"

static uint64_t rng_state;
static float randn(void)
{
    /* xorshift + Box-Muller: deterministic, independent of the library's rng */
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        u[i] = ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static double unit_of(sm_dtype t) { return t == SM_BF16 ? ldexp(1.0, -8) : t == SM_F16 ? ldexp(1.0, -11) : 0.0; }

static double gamma_k(int64_t K)
{
    double u = ldexp(1.0, -24);
    return (double)K * u / (1.0 - (double)K * u);
}

/* n values: exact f32 originals, their 16-bit rounding (t), and that widened back */
typedef struct vals {
    float *orig, *wide;
    uint16_t *half;
} vals;

static vals make_vals(int64_t n, sm_dtype t, float scale)
{
    vals v = {malloc(sizeof(float) * (size_t)n), malloc(sizeof(float) * (size_t)n), malloc(2 * (size_t)n)};
    for (int64_t i = 0; i < n; i++) {
        v.orig[i] = scale * randn();
        v.half[i] = t == SM_BF16 ? sm_f32_to_bf16(v.orig[i]) : sm_f32_to_f16(v.orig[i]);
        v.wide[i] = t == SM_BF16 ? sm_bf16_to_f32(v.half[i]) : sm_f16_to_f32(v.half[i]);
    }
    return v;
}

static void free_vals(vals *v) { free(v->orig), free(v->wide), free(v->half); }

/* ---- the gemm ---- */

static void gemm_team(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A, sm_dtype at,
                      const void *B, sm_dtype bt, float *C)
{
    size_t ws = sm_gemm_workspace();
    void *work = aligned_alloc(64, ws * (size_t)threads);
    memset(work, 0xFF, ws * (size_t)threads);   /* NaN: stale scratch cannot hide */
    int64_t lda = ta ? M : K, ldb = tb ? K : N;
#pragma omp parallel num_threads(threads)
    sm_gemm_f32_mixed(ta, tb, M, N, K, A, at, lda, B, bt, ldb, 0.0f, C, N, work);
    free(work);
}

/* 16-bit A and/or B: bitwise the f32 gemm on the widened values, at 1, 2 and 3 threads, over shapes
 * with several K blocks (K > 384), several B blocks, and ragged edges. */
Test(half_kernels, gemm_widening_pack_is_exact, .timeout = 120)
{
    static const int64_t shapes[][3] = {{37, 45, 70}, {13, 611, 800}, {100, 33, 1}, {1, 1, 5}, {61, 77, 390}};
    static const sm_dtype types[] = {SM_BF16, SM_F16};
    rng_state = 0x9E3779B97F4A7C15ull;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int ti = 0; ti < 2; ti++)
            for (int mode = 1; mode < 4; mode++)   /* bit 0: A 16-bit, bit 1: B 16-bit */
                for (int tr = 0; tr < 4; tr++) {
                    int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                    int ta = tr & 1, tb = tr >> 1;
                    sm_dtype t = types[ti], at = mode & 1 ? t : SM_F32, bt = mode & 2 ? t : SM_F32;
                    vals a = make_vals(M * K, t, 1.0f), b = make_vals(K * N, t, 1.0f);
                    float *ref = malloc(sizeof(float) * (size_t)(M * N)), *c = malloc(sizeof(float) * (size_t)(M * N));
                    /* a 16-bit operand: its 16 bits, against its widening; an f32 one: the originals */
                    const void *A = mode & 1 ? (const void *)a.half : a.orig, *B = mode & 2 ? (const void *)b.half : b.orig;
                    const float *Aw = mode & 1 ? a.wide : a.orig, *Bw = mode & 2 ? b.wide : b.orig;
                    gemm_team(1, ta, tb, M, N, K, Aw, SM_F32, Bw, SM_F32, ref);
                    for (int th = 1; th <= 3; th++) {
                        gemm_team(th, ta, tb, M, N, K, A, at, B, bt, c);
                        cr_assert(!memcmp(c, ref, sizeof(float) * (size_t)(M * N)),
                                  "gemm %lldx%lldx%lld ta=%d tb=%d A %s B %s, %d threads: differs from the f32 gemm "
                                  "on the widened values", (long long)M, (long long)N, (long long)K, ta, tb,
                                  sm_dtype_name(at), sm_dtype_name(bt), th);
                    }
                    /* the serial reference reads 16 bits the same way */
                    float *r16 = malloc(sizeof(float) * (size_t)(M * N)), *r32 = malloc(sizeof(float) * (size_t)(M * N));
                    sm_gemm_f32_mixed_ref(ta, tb, M, N, K, A, at, ta ? M : K, B, bt, tb ? K : N, 0.0f, r16, N);
                    sm_gemm_f32_ref(ta, tb, M, N, K, Aw, ta ? M : K, Bw, tb ? K : N, 0.0f, r32, N);
                    cr_assert(!memcmp(r16, r32, sizeof(float) * (size_t)(M * N)), "the reference's 16-bit path");
                    /* against the f32 product of the unrounded values */
                    sm_gemm_f32_ref(ta, tb, M, N, K, a.orig, ta ? M : K, b.orig, tb ? K : N, 0.0f, r32, N);
                    double uh = unit_of(t), rel = (mode == 3 ? 2 * uh + uh * uh : uh) + 2 * gamma_k(K);
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double s = 0;
                            for (int64_t k = 0; k < K; k++)
                                s += fabs((double)a.orig[ta ? k * M + i : i * K + k]) *
                                     fabs((double)b.orig[tb ? j * K + k : k * N + j]);
                            cr_assert(fabs((double)c[i * N + j] - (double)r32[i * N + j]) <= rel * s,
                                      "gemm vs f32 on unrounded values at (%lld,%lld): %g vs %g, bound %g", (long long)i,
                                      (long long)j, (double)c[i * N + j], (double)r32[i * N + j], rel * s);
                        }
                    free(ref), free(c), free(r16), free(r32);
                    free_vals(&a), free_vals(&b);
                }
}

/* ---- ops, through op_check (planner + executor at 1 and 2 threads, team calls at 1-3 threads,
 * the reference kernel) ---- */

typedef struct op_case {
    sm_op_kind op;
    int n_in;
    int ndim[3];
    int64_t shape[3][4];
    unsigned half;        /* inputs given in 16 bits */
    const sm_attrs *attrs;
} op_case;

/* Bound of |y - ref| for element e given Σ|terms| per element in user[0] (filled by the caller). */
static double tol_from_user(const op_check_result *r, int64_t e) { return ((const double *)r->spec->user)[e]; }

static int64_t numel(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= s[i];
    return n;
}

/* Runs c with its 16-bit inputs as (1) 16-bit data and (2) the widened f32 data: outputs bitwise
 * equal; then (3) the f32 inputs' unrounded originals through the f32 reference, within bound(e),
 * which the caller computes from the originals. */
static void check_op(const op_case *c, sm_dtype t, double (*bound)(const op_case *, vals *, int64_t, double), double scale)
{
    vals v[3];
    op_check_spec s16 = {.op = c->op, .n_in = c->n_in, .attrs = c->attrs, .seed = 11};
    op_check_spec s32 = s16, sorig = s16;
    for (int i = 0; i < c->n_in; i++) {
        int64_t n = numel(c->ndim[i], c->shape[i]);
        v[i] = make_vals(n, t, i == c->n_in - 1 && c->op == SM_OP_LINEAR && c->n_in == 3 ? 0.5f : (float)scale);
        op_check_in in = op_in_f32(c->ndim[i], c->shape[i]);
        bool half = c->half & (1u << i);
        /* a 16-bit input: its 16 bits / their widening / the unrounded originals; an f32 one: the
         * originals in all three runs */
        in.dtype = half ? t : SM_F32;
        in.data = half ? (const void *)v[i].half : v[i].orig;
        s16.in[i] = in;
        in.dtype = SM_F32;
        in.data = half ? v[i].wide : v[i].orig;
        s32.in[i] = in;
        in.data = v[i].orig;
        sorig.in[i] = in;
    }
    /* the forward against the reference, both on the 16-bit inputs: the f32 op's own tolerance,
     * which bound(e, 0) gives (no rounding term) */
    int64_t n_out;
    {
        op_check_result *probe = op_check_run(&(op_check_spec){.op = c->op, .n_in = c->n_in, .attrs = c->attrs,
                                                               .in = {s32.in[0], s32.in[1], s32.in[2]}, .rtol = 1,
                                                               .atol = 1e30});
        n_out = probe->n_out;
        op_check_free(probe);
    }
    double *tol0 = malloc(sizeof(double) * (size_t)n_out), *tol1 = malloc(sizeof(double) * (size_t)n_out);
    for (int64_t e = 0; e < n_out; e++) tol0[e] = bound(c, v, e, 0.0), tol1[e] = bound(c, v, e, unit_of(t));
    s16.tol = s32.tol = tol_from_user, s16.user = s32.user = tol0;
    sorig.tol = tol_from_user, sorig.user = tol1;
    op_check_result *r16 = op_check_run(&s16), *r32 = op_check_run(&s32), *ro = op_check_run(&sorig);
    cr_assert(!memcmp(r16->y, r32->y, sizeof(float) * (size_t)n_out), "%s, inputs %#x in %s: the 16-bit path differs "
              "from the f32 path on the widened values", sm_op_name(c->op), c->half, sm_dtype_name(t));
    cr_assert(!memcmp(r16->ref, r32->ref, sizeof(float) * (size_t)n_out), "%s: the reference's 16-bit path differs",
              sm_op_name(c->op));
    /* (3): the 16-bit output against the f32 reference on the unrounded inputs */
    const float *y = r16->y, *ref = ro->ref;
    for (int64_t e = 0; e < n_out; e++)
        cr_assert(fabs((double)y[e] - (double)ref[e]) <= tol1[e], "%s, inputs %#x in %s, element %lld: %g vs the f32 "
                  "reference %g on unrounded inputs, bound %g", sm_op_name(c->op), c->half, sm_dtype_name(t),
                  (long long)e, (double)y[e], (double)ref[e], tol1[e]);
    op_check_free(r16), op_check_free(r32), op_check_free(ro);
    free(tol0), free(tol1);
    for (int i = 0; i < c->n_in; i++) free_vals(&v[i]);
}

/* matmul / linear: (rounding term + 2·γ_(K+1))·Σ|a·b| (+ |bias|) */
static double bound_mm(const op_case *c, vals *v, int64_t e, double uh)
{
    bool lin = c->op == SM_OP_LINEAR;
    int ta = lin ? 0 : (int)c->attrs->i[0], tb = lin ? 1 : (int)c->attrs->i[1];
    const int64_t *as = c->shape[0], *bs = c->shape[1];
    int nda = c->ndim[0];
    int64_t K = lin ? bs[1] : ta ? as[nda - 2] : as[nda - 1];
    int64_t M = lin ? numel(nda, as) / K : ta ? as[nda - 1] : as[nda - 2];
    int64_t N = lin ? bs[0] : tb ? bs[0] : bs[1];
    int64_t batch = e / (M * N), i = e / N % M, j = e % N;
    const float *A = v[0].orig + batch * M * K, *B = v[1].orig + (c->ndim[1] == 2 ? 0 : batch * K * N);
    double s = 0;
    for (int64_t k = 0; k < K; k++)
        s += fabs((double)(ta ? A[k * M + i] : A[i * K + k])) * fabs((double)(tb ? B[j * K + k] : B[k * N + j]));
    double round = (c->half & 1) && (c->half & 2) ? 2 * uh + uh * uh : (c->half & 3) ? uh : 0;
    double bias = lin && c->n_in == 3 ? fabs((double)v[2].orig[j]) : 0;
    return (round + 2 * gamma_k(K + 1)) * (s + bias);
}

Test(half_kernels, matmul_and_linear, .timeout = 300)
{
    static const sm_dtype types[] = {SM_BF16, SM_F16};
    rng_state = 0x1234567ull;
    for (int ti = 0; ti < 2; ti++)
        for (unsigned half = 1; half < 4; half++) {
            for (int tr = 0; tr < 4; tr++) {
                sm_attrs at = sm_op_default_attrs(SM_OP_MATMUL);
                at.i[0] = tr & 1, at.i[1] = tr >> 1;
                int64_t M = 13, K = 40, N = 35;
                op_case c = {.op = SM_OP_MATMUL, .n_in = 2, .ndim = {3, 2}, .half = half, .attrs = &at};
                int64_t a[4] = {2, at.i[0] ? K : M, at.i[0] ? M : K}, b[4] = {at.i[1] ? N : K, at.i[1] ? K : N};
                memcpy(c.shape[0], a, sizeof a), memcpy(c.shape[1], b, sizeof b);
                check_op(&c, types[ti], bound_mm, 1.0);
            }
            op_case lin = {.op = SM_OP_LINEAR, .n_in = 3, .ndim = {3, 2, 1},
                           .shape = {{2, 7, 48}, {29, 48}, {29}}, .half = half};
            check_op(&lin, types[ti], bound_mm, 1.0);
            lin.n_in = 2;
            check_op(&lin, types[ti], bound_mm, 1.0);
        }
}

/* gelu_bwd / silu_bwd with x rounded: dx = gy·f'(x). |f''| <= 0.8 (gelu'' = φ(x)(2 - x²) up to the
 * tanh form's few 1e-4, largest at 0: 2φ(0) = 0.798; silu'' largest at 0: 0.5), so rounding x moves
 * dx by at most |gy|·0.8·|x|·u_h (the mean value theorem; |x̃ - x| <= u_h|x|). On top, the f32
 * kernel's own error against its double reference: |f'| <= 1.13 and the kernel (sm_vexpf's exp,
 * the σ(2u) form) is within some f32 ulps of it: 1e-5·1.2·|gy| + 1e-7 (measured: up to 1.3e-6
 * relative on these inputs, |x| up to ~12). */
static double bound_act(const op_case *c, vals *v, int64_t e, double uh)
{
    (void)c;
    double x = v[0].orig[e], gy = v[1].orig[e];
    return fabs(gy) * 0.8 * fabs(x) * uh + 1e-5 * 1.2 * fabs(gy) + 1e-7;
}

Test(half_kernels, gelu_silu_bwd, .timeout = 120)
{
    static const sm_dtype types[] = {SM_BF16, SM_F16};
    static const sm_op_kind ops[] = {SM_OP_GELU_BWD, SM_OP_SILU_BWD};
    rng_state = 0xABCDEFull;
    for (int ti = 0; ti < 2; ti++)
        for (int oi = 0; oi < 2; oi++) {
            op_case c = {.op = ops[oi], .n_in = 2, .ndim = {2, 2}, .shape = {{37, 301}, {37, 301}}, .half = 1};
            check_op(&c, types[ti], bound_act, 3.0);
        }
}
