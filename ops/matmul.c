/* matmul.c — matmul and linear, both on the blocked gemm (gemm.c).
 *   matmul: a [..., M, K] (or [..., K, M] with trans_a), b [..., K, N] (or [..., N, K] with trans_b)
 *           -> [..., M, N]; b may also be 2-D and is then shared by every batch.
 *   linear: x [..., K], w [N, K], bias [N] (optional) -> x·wᵀ + bias  [..., N]  (PyTorch's layout) */
#include <string.h>

#include "../base/error.h"
#include "gemm.h"
#include "rows.h"

/* ---- the one gemm call ----
 * Every product of matmul and linear goes through here, team or serial; A and B may be stored f32,
 * f16 or bf16 (the precision pass hands them 16-bit saved activations and weights). Under the bf16
 * policy (k->bf16) the products are bf16 (ops/gemm_bf16*.c: f32 operands rounded while packing, f32
 * accumulation), about twice the f32 gemm's speed on CPUs with AVX-512 BF16; otherwise 16-bit
 * operands are widened exactly in the f32 gemm's packing. */
static void mm_gemm(const sm_kernel_args *k, bool team, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A,
                    sm_dtype at, int64_t lda, const void *B, sm_dtype bt, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (team) sm_gemm_policy(k->bf16, ta, tb, M, N, K, A, at, lda, B, bt, ldb, beta, C, ldc, k->work);
    else if (k->bf16) sm_gemm_bf16_ref(ta, tb, M, N, K, A, at, lda, B, bt, ldb, beta, C, ldc);
    else sm_gemm_f32_mixed_ref(ta, tb, M, N, K, A, at, lda, B, bt, ldb, beta, C, ldc);
}

/* Element offset i of x stored as dtype t. */
static const void *at_elem(const void *x, sm_dtype t, int64_t i) { return (const char *)x + (size_t)i * sm_dtype_size(t); }

/* ---- matmul ---- */

static void mm_dims(const sm_tensor_rec *a, const sm_tensor_rec *b, const sm_attrs *at, int64_t *M, int64_t *N,
                    int64_t *K, int64_t *Kb)
{
    int64_t ar = a->ne[a->ndim - 2], ac = a->ne[a->ndim - 1];
    int64_t br = b->ne[b->ndim - 2], bc = b->ne[b->ndim - 1];
    *M = at->i[SM_IATTR_MATMUL_TRANS_A] ? ac : ar;
    *K = at->i[SM_IATTR_MATMUL_TRANS_A] ? ar : ac;
    *Kb = at->i[SM_IATTR_MATMUL_TRANS_B] ? bc : br;
    *N = at->i[SM_IATTR_MATMUL_TRANS_B] ? br : bc;
}

static sm_status shape_matmul(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *a = &g->t[n->in[0]], *b = &g->t[n->in[1]];
    char sa[64], sb[64];
    sm_status s = sm_shape_check_float(g, n, out, 0);
    if (!s) s = sm_shape_check_float(g, n, out, 1);
    if (s) return s;
    if (a->ndim < 2 || b->ndim < 2)
        return sm_error(SM_ERR_SHAPE, "node '%s': matmul needs inputs of at least 2 dims, got '%s' %s and '%s' %s",
                        out->name, a->name, sm_shape_str(a, sa, sizeof sa), b->name, sm_shape_str(b, sb, sizeof sb));
    int64_t M, N, K, Kb;
    mm_dims(a, b, &n->attrs, &M, &N, &K, &Kb);
    bool batch_ok = b->ndim == 2 || b->ndim == a->ndim;
    for (int i = 0; batch_ok && b->ndim > 2 && i < a->ndim - 2; i++) batch_ok = a->ne[i] == b->ne[i];
    if (K != Kb || !batch_ok)
        return sm_error(SM_ERR_SHAPE,
                        "node '%s': matmul of '%s' %s%s and '%s' %s%s: %s", out->name, a->name,
                        sm_shape_str(a, sa, sizeof sa), n->attrs.i[SM_IATTR_MATMUL_TRANS_A] ? "ᵀ" : "", b->name,
                        sm_shape_str(b, sb, sizeof sb), n->attrs.i[SM_IATTR_MATMUL_TRANS_B] ? "ᵀ" : "",
                        K != Kb ? "inner dims differ" : "batch dims differ (b may also be 2-D)");
    out->ndim = a->ndim;
    memcpy(out->ne, a->ne, sizeof out->ne);
    out->ne[a->ndim - 2] = M;
    out->ne[a->ndim - 1] = N;
    out->dtype = SM_F32;
    return SM_OK;
}

/* One gemm per batch; every thread walks the batches together (gemm is a team call). */
static void matmul_run(const sm_kernel_args *k, bool team)
{
    const sm_tensor_rec *a = k->in[0], *b = k->in[1];
    int ta = (int)k->node->attrs.i[SM_IATTR_MATMUL_TRANS_A], tb = (int)k->node->attrs.i[SM_IATTR_MATMUL_TRANS_B];
    int64_t M, N, K, Kb;
    mm_dims(a, b, &k->node->attrs, &M, &N, &K, &Kb);
    int64_t batches = sm_rec_numel(a) / (M * K);
    int64_t lda = ta ? M : K, ldb = tb ? K : N;
    for (int64_t i = 0; i < batches; i++) {
        const void *A = at_elem(k->x[0], a->dtype, i * M * K);
        const void *B = at_elem(k->x[1], b->dtype, b->ndim == 2 ? 0 : i * K * N);
        mm_gemm(k, team, ta, tb, M, N, K, A, a->dtype, lda, B, b->dtype, ldb, 0.0f, (float *)k->y + i * M * N, N);
    }
}

static void matmul_forward(const sm_kernel_args *k) { matmul_run(k, true); }
static void matmul_reference(const sm_kernel_args *k) { matmul_run(k, false); }

static double flops_matmul(const sm_graph *g, const sm_node *n)
{
    const sm_tensor_rec *a = &g->t[n->in[0]], *b = &g->t[n->in[1]];
    int64_t M, N, K, Kb;
    mm_dims(a, b, &n->attrs, &M, &N, &K, &Kb);
    return 2.0 * (double)sm_rec_numel(&g->t[n->out]) * (double)K;
}

static size_t work_gemm(const sm_graph *g, const sm_node *n)
{
    (void)g, (void)n;
    return sm_gemm_any_workspace();
}

const sm_op_def sm_op_matmul = {
    .name = "matmul", .min_in = 2, .max_in = 2, .iattr = {"trans_a", "trans_b"},
    .shape = shape_matmul, .flops = flops_matmul, .workspace = work_gemm, .half_inputs = 3u,
    .forward = matmul_forward, .reference = matmul_reference, .backward = sm_backward_matmul,
};

/* ---- linear ---- */

static sm_status shape_linear(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]], *w = &g->t[n->in[1]];
    char sx[64], sw[64];
    for (int i = 0; i < n->n_in; i++) {
        sm_status s = i < 2 ? sm_shape_check_float(g, n, out, i) : sm_shape_check_f32(g, n, out, i);
        if (s) return s;
    }
    if (w->ndim != 2 || w->ne[1] != x->ne[x->ndim - 1])
        return sm_error(SM_ERR_SHAPE, "node '%s': linear of '%s' %s with weight '%s' %s: the weight must be "
                        "[N, %lld] (out features, in features)", out->name, x->name, sm_shape_str(x, sx, sizeof sx),
                        w->name, sm_shape_str(w, sw, sizeof sw), (long long)x->ne[x->ndim - 1]);
    if (n->n_in == 3) {
        const sm_tensor_rec *b = &g->t[n->in[2]];
        if (b->ndim != 1 || b->ne[0] != w->ne[0])
            return sm_error(SM_ERR_SHAPE, "node '%s': linear bias '%s' is %s; it must be [%lld]", out->name,
                            b->name, sm_shape_str(b, sx, sizeof sx), (long long)w->ne[0]);
    }
    sm_shape_same_as_in0(g, n, out);
    out->ne[x->ndim - 1] = w->ne[0];
    out->dtype = SM_F32;
    return SM_OK;
}

/* y [M,N] = x [M,K] · w [N,K]ᵀ + bias [N]: bias first (if any), then gemm accumulates onto it.
 * x and w may be stored f32, f16 or bf16 (mm_gemm); the bias and y are f32. */
static void linear_run(const sm_kernel_args *k, bool team)
{
    const void *x = k->x[0], *w = k->x[1];
    const float *bias = k->n_in == 3 ? k->x[2] : NULL;
    sm_dtype xt = k->in[0]->dtype, wt = k->in[1]->dtype;
    float *y = k->y;
    int64_t N = k->in[1]->ne[0], K = k->in[1]->ne[1], M = sm_rec_numel(k->in[0]) / K;
    if (!bias) {
        mm_gemm(k, team, 0, 1, M, N, K, x, xt, K, w, wt, K, 0.0f, y, N);
        return;
    }
    if (team) {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < M; i++) memcpy(y + i * N, bias, (size_t)N * sizeof *y);
    } else {
        for (int64_t i = 0; i < M; i++) memcpy(y + i * N, bias, (size_t)N * sizeof *y);
    }
    mm_gemm(k, team, 0, 1, M, N, K, x, xt, K, w, wt, K, 1.0f, y, N);
}

static void linear_forward(const sm_kernel_args *k) { linear_run(k, true); }
static void linear_reference(const sm_kernel_args *k) { linear_run(k, false); }

static double flops_linear(const sm_graph *g, const sm_node *n)
{
    return 2.0 * (double)sm_rec_numel(&g->t[n->out]) * (double)g->t[n->in[1]].ne[1];
}

const sm_op_def sm_op_linear = {
    .name = "linear", .min_in = 2, .max_in = 3, .shape = shape_linear, .flops = flops_linear,
    .workspace = work_gemm, .half_inputs = 3u, .forward = linear_forward, .reference = linear_reference,
    .backward = sm_backward_linear,
};
