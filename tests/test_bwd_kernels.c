/* test_bwd_kernels.c — the rows autodiff and the optimizer append (fill, sum_to, expand, pad,
 * embedding_bwd, norm_*, gelu_bwd, silu_bwd, softmax_bwd, cross_entropy_bwd, sumsq, adamw): each
 * team kernel against its serial reference, and bitwise the same for 1, 2 and 3 threads. Shapes are
 * odd sizes around the kernels' chunk widths (16 columns, 4096 and 16384 elements). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/op.h"
#include "smallmind.h"

#define OK(call)                                                                                  \
    do {                                                                                          \
        sm_status s_ = (call);                                                                    \
        cr_assert_eq(s_, SM_OK, "%s failed: %s (%s)", #call, sm_status_name(s_), sm_last_error()); \
    } while (0)

static uint64_t rng = 1;
static float rnd(void) /* uniform in [-2, 2) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
}

/* One node of `op` over inputs of the given shapes and dtypes, values random (i32: in [lo, hi)). */
typedef struct {
    int n;
    sm_dtype dt[SM_MAX_INPUTS];
    int ndim[SM_MAX_INPUTS];
    int64_t shape[SM_MAX_INPUTS][SM_MAX_DIMS];
    const float *f32[SM_MAX_INPUTS];   /* fixed values instead of random (NULL: random) */
    int32_t lo, hi;
} inputs;

/* Runs the node's team kernel at 1, 2 and 3 threads (bitwise equal results) and its reference;
 * returns the max |team - reference| / (1 + |reference|). Kernels that write their inputs (adamw)
 * get fresh copies of the inputs for every run. */
static double run_node(sm_op_kind op, const inputs *in, const sm_attrs *attrs)
{
    sm_graph *g;
    OK(sm_graph_create(&g));
    sm_tensor t[SM_MAX_INPUTS], y;
    void *init[SM_MAX_INPUTS];
    for (int i = 0; i < in->n; i++) {
        char name[16];
        snprintf(name, sizeof name, "in%d", i);
        OK(sm_graph_input(g, name, in->dt[i], in->ndim[i], in->shape[i], &t[i]));
        int64_t n = sm_tensor_numel(g, t[i]);
        init[i] = malloc((size_t)n * 4);
        for (int64_t j = 0; j < n; j++) {
            if (in->dt[i] == SM_I32) ((int32_t *)init[i])[j] = in->lo + (int32_t)((rnd() + 2.0f) / 4.0f * (float)(in->hi - in->lo));
            else ((float *)init[i])[j] = in->f32[i] ? in->f32[i][j] : rnd();
        }
    }
    OK(sm_graph_op(g, op, t, in->n, attrs, "y", &y));
    OK(sm_graph_mark_output(g, y));
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.strategy = SM_PLAN_NAIVE;
    po.n_threads = 3;
    sm_plan *plan;
    sm_runtime *rt;
    OK(sm_plan_create(g, &po, &plan));
    OK(sm_runtime_create(g, plan, &rt));
    size_t ybytes = sm_rec_bytes(&g->t[y]);
    /* a mutating kernel's result includes its inputs: compare those too */
    bool mut = sm_op_def_get(op)->mutates_inputs;
    size_t total = ybytes;
    for (int i = 0; mut && i < in->n; i++) total += sm_rec_bytes(&g->t[t[i]]);
    unsigned char *res[4];
    for (int r = 0; r < 4; r++) res[r] = malloc(total);
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < in->n; i++) OK(sm_runtime_set(rt, t[i], init[i], sm_rec_bytes(&g->t[t[i]])));
        void *py;
        OK(sm_runtime_data(rt, y, &py));
        memset(py, 0xff, ybytes);   /* NaN: an element the kernel skips shows */
        if (r < 3) {
            OK(sm_runtime_set_threads(rt, r + 1));
            OK(sm_runtime_run(rt));
        } else {
            sm_kernel_args k = {.node = &g->nodes[0], .out = &g->t[y], .y = py, .n_in = in->n};
            for (int i = 0; i < in->n; i++) {
                k.in[i] = &g->t[t[i]];
                OK(sm_runtime_data(rt, t[i], (void **)&k.x[i]));
            }
            sm_op_def_get(op)->reference(&k);
        }
        size_t off = 0;
        memcpy(res[r], py, ybytes);
        off = ybytes;
        for (int i = 0; mut && i < in->n; i++) {
            OK(sm_runtime_get(rt, t[i], res[r] + off, sm_rec_bytes(&g->t[t[i]])));
            off += sm_rec_bytes(&g->t[t[i]]);
        }
    }
    cr_expect_arr_eq(res[0], res[1], total, "%s: 1 and 2 threads differ", sm_op_name(op));
    cr_expect_arr_eq(res[0], res[2], total, "%s: 1 and 3 threads differ", sm_op_name(op));
    double err = 0;
    const float *a = (const float *)res[0], *b = (const float *)res[3];
    for (size_t j = 0; j < total / 4; j++) {
        double e = fabs((double)a[j] - b[j]) / (1.0 + fabs((double)b[j]));
        err = isnan(e) ? INFINITY : fmax(err, e);
    }
    for (int r = 0; r < 4; r++) free(res[r]);
    for (int i = 0; i < in->n; i++) free(init[i]);
    sm_runtime_free(rt);
    sm_plan_free(plan);
    sm_graph_free(g);
    return err;
}

static inputs shapes(int n, ...)
{
    inputs in;
    memset(&in, 0, sizeof in);
    in.n = n;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        in.dt[i] = (sm_dtype)va_arg(ap, int);
        in.ndim[i] = va_arg(ap, int);
        for (int d = 0; d < in.ndim[i]; d++) in.shape[i][d] = va_arg(ap, int64_t);
    }
    va_end(ap);
    return in;
}
#define D(x) ((int64_t)(x))

Test(bwd_kernels, fill)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_FILL);
    a.i[0] = 3, a.i[1] = 4097, a.f[0] = -1.5f;
    inputs in = {0};
    cr_expect_eq(run_node(SM_OP_FILL, &in, &a), 0.0);
}

Test(bwd_kernels, sum_to)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_SUM_TO);
    /* 64 and more: whole register blocks of 64 columns, with and without a narrower last block;
     * 2100: several chunks of at most 1024 columns */
    int64_t cols[] = {1, 15, 16, 17, 40, 64, 100, 192, 2100};
    for (int i = 0; i < 9; i++) {
        inputs in = shapes(1, SM_F32, 3, D(3), D(37), cols[i]);
        a.i[0] = 1;
        cr_expect_lt(run_node(SM_OP_SUM_TO, &in, &a), 1e-6, "cols %lld", (long long)cols[i]);
        a.i[0] = 2;
        cr_expect_lt(run_node(SM_OP_SUM_TO, &in, &a), 1e-6, "cols %lld, keep 2", (long long)cols[i]);
    }
}

Test(bwd_kernels, expand)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_EXPAND);
    a.i[0] = 3, a.i[1] = 5, a.i[2] = 7, a.f[0] = 0.25f;
    for (int axis = -1; axis < 3; axis++) {
        int64_t n = axis < 0 ? 1 : 3 * 5 * 7 / a.i[axis];
        inputs in = shapes(1, SM_F32, 1, n);
        a.i[4] = axis;
        cr_expect_eq(run_node(SM_OP_EXPAND, &in, &a), 0.0, "axis %d", axis);
    }
}

Test(bwd_kernels, pad)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_PAD);
    for (int axis = 0; axis < 3; axis++) {
        inputs in = shapes(1, SM_F32, 3, D(2), D(3), D(5));
        a.i[0] = axis, a.i[1] = 1, a.i[2] = in.shape[0][axis] + 3;
        cr_expect_eq(run_node(SM_OP_PAD, &in, &a), 0.0, "axis %d", axis);
    }
}

Test(bwd_kernels, embedding_bwd)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_EMBEDDING_BWD);
    a.i[0] = 7;
    int64_t cols[] = {1, 16, 33};
    for (int i = 0; i < 3; i++) {
        inputs in = shapes(2, SM_I32, 2, D(3), D(50), SM_F32, 3, D(3), D(50), cols[i]);
        in.lo = -1, in.hi = 9;   /* some ids out of range: they contribute nothing */
        cr_expect_lt(run_node(SM_OP_EMBEDDING_BWD, &in, &a), 1e-6, "C %lld", (long long)cols[i]);
    }
}

Test(bwd_kernels, norms)
{
    for (int rms = 0; rms < 2; rms++) {
        sm_attrs a = sm_op_default_attrs(SM_OP_NORM_STATS);
        a.i[0] = rms;
        a.f[0] = 1e-5f;
        inputs st = shapes(1, SM_F32, 3, D(2), D(9), D(37));
        cr_expect_lt(run_node(SM_OP_NORM_STATS, &st, &a), 1e-6, "stats rms=%d", rms);
        /* stats must be consistent with x for the closed form to equal the Jacobian: feed real ones */
        float *x = malloc(2 * 9 * 37 * sizeof *x), *s = malloc(2 * 9 * 2 * sizeof *s);
        for (int i = 0; i < 2 * 9 * 37; i++) x[i] = rnd();
        for (int r = 0; r < 18; r++) {
            double m = 0, v = 0;
            for (int j = 0; j < 37; j++) m += rms ? 0 : x[r * 37 + j] / 37.0;
            for (int j = 0; j < 37; j++) v += (x[r * 37 + j] - m) * (x[r * 37 + j] - m) / 37.0;
            s[2 * r] = (float)m, s[2 * r + 1] = (float)(1 / sqrt(v + 1e-5));
        }
        inputs bx = shapes(4, SM_F32, 3, D(2), D(9), D(37), SM_F32, 1, D(37), SM_F32, 3, D(2), D(9), D(37), SM_F32, 3,
                           D(2), D(9), D(2));
        bx.f32[0] = x, bx.f32[3] = s;
        cr_expect_lt(run_node(SM_OP_NORM_BWD_X, &bx, &a), 1e-5, "bwd_x rms=%d", rms);
        inputs bw = shapes(3, SM_F32, 3, D(2), D(9), D(37), SM_F32, 3, D(2), D(9), D(37), SM_F32, 3, D(2), D(9), D(2));
        bw.f32[0] = x, bw.f32[2] = s;
        cr_expect_lt(run_node(SM_OP_NORM_BWD_W, &bw, &a), 1e-6, "bwd_w rms=%d", rms);
        free(x);
        free(s);
    }
}

/* norm_bwd_w over wide rows (200 columns: one chunk per thread; 2100: several chunks of at most
 * 512 columns each) and 37 rows. The stats need not match x here: dw uses them as given. */
Test(bwd_kernels, norm_bwd_w_wide)
{
    int64_t cols[] = {200, 2100};
    for (int i = 0; i < 2; i++) {
        float *s = malloc(37 * 2 * sizeof *s);
        for (int r = 0; r < 37; r++) s[2 * r] = rnd(), s[2 * r + 1] = 0.5f + 0.25f * rnd();
        sm_attrs a = sm_op_default_attrs(SM_OP_NORM_BWD_W);
        inputs bw = shapes(3, SM_F32, 2, D(37), cols[i], SM_F32, 2, D(37), cols[i], SM_F32, 2, D(37), D(2));
        bw.f32[2] = s;
        cr_expect_lt(run_node(SM_OP_NORM_BWD_W, &bw, &a), 1e-6, "cols %lld", (long long)cols[i]);
        free(s);
    }
}

Test(bwd_kernels, activations)
{
    inputs in = shapes(2, SM_F32, 1, D(4096 * 2 + 5), SM_F32, 1, D(4096 * 2 + 5));
    cr_expect_lt(run_node(SM_OP_GELU_BWD, &in, NULL), 1e-6);
    cr_expect_lt(run_node(SM_OP_SILU_BWD, &in, NULL), 1e-6);
}

Test(bwd_kernels, softmax_bwd)
{
    float *y = malloc(5 * 19 * sizeof *y);
    for (int r = 0; r < 5; r++) {   /* a real softmax output: rows of positive values summing to 1 */
        double s = 0;
        for (int j = 0; j < 19; j++) s += y[r * 19 + j] = expf(rnd());
        for (int j = 0; j < 19; j++) y[r * 19 + j] = (float)(y[r * 19 + j] / s);
    }
    inputs in = shapes(2, SM_F32, 2, D(5), D(19), SM_F32, 2, D(5), D(19));
    in.f32[0] = y;
    cr_expect_lt(run_node(SM_OP_SOFTMAX_BWD, &in, NULL), 1e-6);
    free(y);
}

Test(bwd_kernels, cross_entropy_bwd)
{
    inputs in = shapes(3, SM_F32, 3, D(2), D(7), D(13), SM_I32, 2, D(2), D(7), SM_F32, 1, D(1));
    in.lo = -1, in.hi = 13;   /* some rows ignored (-1) */
    cr_expect_lt(run_node(SM_OP_CROSS_ENTROPY_BWD, &in, NULL), 1e-6);
}

Test(bwd_kernels, sumsq)
{
    sm_attrs a = sm_op_default_attrs(SM_OP_SUMSQ);
    inputs in = shapes(3, SM_F32, 1, D(16384 * 3 + 7), SM_F32, 2, D(3), D(5), SM_F32, 1, D(40000));
    cr_expect_lt(run_node(SM_OP_SUMSQ, &in, &a), 1e-6);
    a.i[0] = 1;   /* input 0 is a running total */
    inputs acc = shapes(2, SM_F32, 1, D(1), SM_F32, 1, D(70000));
    cr_expect_lt(run_node(SM_OP_SUMSQ, &acc, &a), 1e-6);
}

Test(bwd_kernels, adamw)
{
    static const float hp[SM_ADAMW_HPARAMS] = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 10.0f, 20.0f, 0.5f};
    float *v = malloc(9000 * sizeof *v), sq = 7.0f;
    for (int i = 0; i < 9000; i++) v[i] = fabsf(rnd());   /* second moments are >= 0 */
    for (int decay = 0; decay < 2; decay++) {
        sm_attrs a = sm_op_default_attrs(SM_OP_ADAMW);
        a.i[0] = decay;
        inputs in = shapes(6, SM_F32, 2, D(3), D(3000), SM_F32, 2, D(3), D(3000), SM_F32, 2, D(3), D(3000), SM_F32, 2,
                           D(3), D(3000), SM_F32, 1, D(SM_ADAMW_HPARAMS), SM_F32, 1, D(1));
        in.f32[3] = v, in.f32[4] = hp, in.f32[5] = &sq;
        cr_expect_lt(run_node(SM_OP_ADAMW, &in, &a), 1e-5, "decay %d", decay);
        in.n = 5;   /* no clipping input */
        cr_expect_lt(run_node(SM_OP_ADAMW, &in, &a), 1e-5, "decay %d, no clip", decay);
    }
    free(v);
}
