/* test_op_matmul.c — matmul (all transpose combinations, batched, shared 2-D b) and linear (with and
 * without bias) against the serial triple loop.
 * Tolerance: the kernel and the reference each sum K products in float, in different orders; each
 * is within γ_K·Σ_k|a_ik·b_kj| of the exact value (γ_K = K·u/(1-K·u), u = 2^-24; Higham, "Accuracy
 * and Stability of Numerical Algorithms", 3.1), so they differ by at most 2·γ_(K+1)·Σ|a·b| (K+1: the
 * bias add). That bound is computed per element. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "tests/helpers/op_check.h"

static double gamma_k(int64_t K)
{
    double u = ldexp(1.0, -24);
    return (double)K * u / (1.0 - (double)K * u);
}

/* Σ_k |a_ik|·|b_kj| (+ |bias_j|) for output element e of a matmul */
static double tol_matmul(const op_check_result *r, int64_t e)
{
    const sm_tensor_rec *a = &r->g->t[r->in[0]], *b = &r->g->t[r->in[1]], *o = op_check_out_rec(r);
    const sm_attrs *at = &r->g->nodes[0].attrs;
    int ta = (int)at->i[0], tb = (int)at->i[1];
    int64_t M = o->ne[o->ndim - 2], N = o->ne[o->ndim - 1];
    int64_t K = ta ? a->ne[a->ndim - 2] : a->ne[a->ndim - 1];
    int64_t batch = e / (M * N), i = e / N % M, j = e % N;
    const float *A = (const float *)r->x[0] + batch * M * K;
    const float *B = (const float *)r->x[1] + (b->ndim == 2 ? 0 : batch * K * N);
    double s = 0;
    for (int64_t k = 0; k < K; k++)
        s += fabs((double)(ta ? A[k * M + i] : A[i * K + k])) * fabs((double)(tb ? B[j * K + k] : B[k * N + j]));
    return 2.0 * gamma_k(K) * s;
}

static double tol_linear(const op_check_result *r, int64_t e)
{
    const sm_tensor_rec *w = &r->g->t[r->in[1]];
    int64_t N = w->ne[0], K = w->ne[1], i = e / N, j = e % N;
    const float *x = (const float *)r->x[0] + i * K, *W = (const float *)r->x[1] + j * K;
    double s = r->spec->n_in == 3 ? fabs((double)((const float *)r->x[2])[j]) : 0.0;
    for (int64_t k = 0; k < K; k++) s += fabs((double)x[k]) * fabs((double)W[k]);
    return 2.0 * gamma_k(K + 1) * s;
}

static void check_matmul(int nd, const int64_t *batch, int64_t M, int64_t K, int64_t N, int ta, int tb, bool b2d,
                         uint64_t seed)
{
    int64_t as[4], bs[4];
    for (int i = 0; i < nd - 2; i++) as[i] = bs[i] = batch[i];
    as[nd - 2] = ta ? K : M;
    as[nd - 1] = ta ? M : K;
    int bnd = b2d ? 2 : nd, bo = bnd - 2;
    bs[bo] = tb ? N : K;
    bs[bo + 1] = tb ? K : N;
    sm_attrs at = sm_op_default_attrs(SM_OP_MATMUL);
    at.i[0] = ta;
    at.i[1] = tb;
    op_check_spec s = {.op = SM_OP_MATMUL, .n_in = 2, .attrs = &at, .seed = seed, .tol = tol_matmul};
    s.in[0] = op_in_f32(nd, as);
    s.in[1] = op_in_f32(bnd, bs);
    op_check_result *r = op_check_run(&s);
    const sm_tensor_rec *o = op_check_out_rec(r);
    cr_assert_eq(o->ne[nd - 2], M);
    cr_assert_eq(o->ne[nd - 1], N);
    op_check_free(r);
}

Test(op_matmul, transposes_and_odd_sizes)
{
    const int64_t mkn[][3] = {{1, 1, 1}, {3, 7, 5}, {65, 33, 17}, {7, 129, 65}, {1, 65, 3}};
    uint64_t seed = 1;
    for (int c = 0; c < 5; c++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                check_matmul(2, NULL, mkn[c][0], mkn[c][1], mkn[c][2], ta, tb, true, seed++);
}

Test(op_matmul, batched)
{
    check_matmul(3, (int64_t[]){3}, 7, 5, 9, 0, 0, false, 1);
    check_matmul(4, (int64_t[]){2, 3}, 5, 17, 3, 1, 0, false, 2);
    check_matmul(4, (int64_t[]){2, 3}, 5, 17, 3, 0, 1, false, 3);
    check_matmul(3, (int64_t[]){4}, 7, 5, 9, 0, 0, true, 4);    /* b shared by every batch */
    check_matmul(3, (int64_t[]){2}, 7, 5, 9, 1, 1, true, 5);
}

/* independent of the reference: multiplying by the identity is exact in any summation order */
Test(op_matmul, identity_is_exact)
{
    int64_t K = 33, eye_shape[2] = {K, K}, a_shape[2] = {7, K};
    float *eye = calloc((size_t)(K * K), sizeof *eye);
    for (int64_t i = 0; i < K; i++) eye[i * K + i] = 1.0f;
    op_check_spec s = {.op = SM_OP_MATMUL, .n_in = 2, .seed = 9, .exact = true};
    s.in[0] = op_in_f32(2, a_shape);
    s.in[1] = op_in_f32(2, eye_shape);
    s.in[1].data = eye;
    op_check_result *r = op_check_run(&s);
    const float *a = r->x[0], *y = r->y;
    for (int64_t i = 0; i < r->n_out; i++) cr_assert_eq(y[i], a[i]);
    op_check_free(r);
    free(eye);
}

static void check_linear(int nd, const int64_t *xs, int64_t N, bool bias, uint64_t seed)
{
    int64_t K = xs[nd - 1], ws[2] = {N, K}, bs[1] = {N};
    op_check_spec s = {.op = SM_OP_LINEAR, .n_in = bias ? 3 : 2, .seed = seed, .tol = tol_linear};
    s.in[0] = op_in_f32(nd, xs);
    s.in[1] = op_in_f32(2, ws);
    s.in[2] = op_in_f32(1, bs);
    op_check_result *r = op_check_run(&s);
    const sm_tensor_rec *o = op_check_out_rec(r);
    cr_assert_eq(o->ne[nd - 1], N);
    op_check_free(r);
}

Test(op_linear, shapes_with_and_without_bias)
{
    for (int b = 0; b < 2; b++) {
        check_linear(1, (int64_t[]){1}, 1, b, 1);
        check_linear(2, (int64_t[]){7, 3}, 5, b, 2);
        check_linear(3, (int64_t[]){2, 7, 65}, 33, b, 3);
        check_linear(2, (int64_t[]){65, 129}, 7, b, 4);
    }
}
