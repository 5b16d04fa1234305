/* test_kv_attention.c — the kv_attention op: its kernel against its plain reference (every cache
 * layout: linear, ring (keys in place and wrapping), ring with sinks (the window in one run of rows
 * and in two); one token and chunks; positions across the 64-query tiles),
 * bitwise equality across thread counts, against the attention op on the same rows (bitwise), and its
 * shape rule's refusals. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops/op.h"

#define OK(x) cr_assert_eq((x), SM_OK, "%s", sm_last_error())

static uint64_t rng_state = 7;
static float rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(rng_state >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

typedef struct kv_case {
    int T, C, H, span, sink, ring;
    int64_t P;
    int pos;    /* positions[0] of the run */
} kv_case;

/* One kv_attention node: qkv [1,T,3C] random, caches [1,P,C] holding random earlier rows. */
typedef struct kv_graph {
    sm_graph *g;
    sm_tensor qkv, kc, vc, pos, out;
} kv_graph;

static kv_graph make(const kv_case *c)
{
    kv_graph k;
    OK(sm_graph_create(&k.g));
    int64_t sq[3] = {1, c->T, 3 * c->C}, sc[3] = {1, c->P, c->C}, sp[2] = {1, c->T};
    OK(sm_graph_input(k.g, "qkv", SM_F32, 3, sq, &k.qkv));
    OK(sm_graph_kv(k.g, "k_cache", SM_F32, 3, sc, &k.kc));
    OK(sm_graph_kv(k.g, "v_cache", SM_F32, 3, sc, &k.vc));
    OK(sm_graph_input(k.g, "positions", SM_I32, 2, sp, &k.pos));
    sm_kv_layout lay = {.n_head = c->H, .span = c->span, .sink = c->sink, .ring = c->ring};
    OK(sm_kv_attention(k.g, k.qkv, k.kc, k.vc, k.pos, &lay, "att", &k.out));
    OK(sm_graph_mark_output(k.g, k.out));
    return k;
}

/* Runs the node through a plan at n_threads; returns the output and the caches after the run. */
static void run(const kv_case *c, int n_threads, const float *qkv, const float *kc0, const float *vc0, float *y,
                float *kc, float *vc)
{
    kv_graph k = make(c);
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = n_threads;
    sm_plan *p;
    sm_runtime *rt;
    OK(sm_plan_create(k.g, &o, &p));
    OK(sm_runtime_create(k.g, p, &rt));
    size_t nq = (size_t)c->T * 3 * c->C, nc = (size_t)c->P * c->C, ny = (size_t)c->T * c->C;
    int32_t *pos = malloc(sizeof *pos * (size_t)c->T);
    for (int t = 0; t < c->T; t++) pos[t] = c->pos + t;
    OK(sm_runtime_set(rt, k.qkv, qkv, nq * 4));
    OK(sm_runtime_set(rt, k.kc, kc0, nc * 4));
    OK(sm_runtime_set(rt, k.vc, vc0, nc * 4));
    OK(sm_runtime_set(rt, k.pos, pos, sizeof *pos * (size_t)c->T));
    OK(sm_runtime_run(rt));
    OK(sm_runtime_get(rt, k.out, y, ny * 4));
    OK(sm_runtime_get(rt, k.kc, kc, nc * 4));
    OK(sm_runtime_get(rt, k.vc, vc, nc * 4));
    free(pos);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(k.g);
}

/* The row's reference kernel on copies of the same inputs. */
static void reference(const kv_case *c, const float *qkv, float *kc, float *vc, float *y)
{
    kv_graph k = make(c);
    int32_t *pos = malloc(sizeof *pos * (size_t)c->T);
    for (int t = 0; t < c->T; t++) pos[t] = c->pos + t;
    const sm_node *n = &k.g->nodes[k.g->t[k.out].node];
    sm_kernel_args a = {.node = n, .out = &k.g->t[k.out], .y = y, .n_in = 4};
    const sm_tensor ins[4] = {k.qkv, k.kc, k.vc, k.pos};
    const void *xs[4] = {qkv, kc, vc, pos};
    for (int i = 0; i < 4; i++) {
        a.in[i] = &k.g->t[ins[i]];
        a.x[i] = xs[i];
    }
    sm_op_def_get(SM_OP_KV_ATTENTION)->reference(&a);
    free(pos);
    sm_graph_free(k.g);
}

static float *randv(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = rnd();
    return x;
}

static const kv_case CASES[] = {
    {1, 32, 2, 0, 0, 0, 200, 0},    {1, 32, 2, 0, 0, 0, 200, 63},  {1, 32, 2, 0, 0, 0, 200, 150},
    {17, 48, 3, 0, 0, 0, 200, 60},  {70, 32, 2, 0, 0, 0, 200, 100}, {1, 32, 2, 40, 0, 0, 200, 150},
    {9, 32, 2, 40, 0, 0, 200, 120}, {1, 32, 2, 40, 0, 1, 40, 150},  {9, 32, 2, 40, 0, 1, 48, 130},
    {1, 32, 2, 40, 4, 1, 44, 150},  {1, 32, 2, 40, 4, 1, 44, 20},   {5, 32, 2, 30, 3, 1, 40, 200},
    {64, 64, 4, 50, 0, 1, 113, 300}, {1, 32, 2, 40, 0, 1, 200, 150}, {1, 32, 2, 40, 4, 1, 44, 123},
};

Test(kv_attention, kernel_matches_reference_and_threads)
{
    for (size_t ci = 0; ci < sizeof CASES / sizeof CASES[0]; ci++) {
        const kv_case *c = &CASES[ci];
        size_t nq = (size_t)c->T * 3 * c->C, nc = (size_t)c->P * c->C, ny = (size_t)c->T * c->C;
        float *qkv = randv(nq), *kc0 = randv(nc), *vc0 = randv(nc);
        float *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *yr = malloc(ny * 4);
        float *k1 = malloc(nc * 4), *v1 = malloc(nc * 4), *k2 = malloc(nc * 4), *v2 = malloc(nc * 4);
        float *kr = malloc(nc * 4), *vr = malloc(nc * 4);
        memcpy(kr, kc0, nc * 4);
        memcpy(vr, vc0, nc * 4);
        run(c, 1, qkv, kc0, vc0, y1, k1, v1);
        run(c, 2, qkv, kc0, vc0, y2, k2, v2);
        reference(c, qkv, kr, vr, yr);
        cr_assert(!memcmp(y1, y2, ny * 4), "case %zu: 1 and 2 threads differ", ci);
        cr_assert(!memcmp(k1, kr, nc * 4) && !memcmp(v1, vr, nc * 4), "case %zu: the caches differ from the "
                  "reference's", ci);
        cr_assert(!memcmp(k1, k2, nc * 4));
        for (size_t i = 0; i < ny; i++)
            cr_assert(fabsf(y1[i] - yr[i]) <= 2e-5f + 2e-5f * fabsf(yr[i]), "case %zu: out[%zu] = %g, reference %g",
                      ci, i, y1[i], yr[i]);
        free(qkv), free(kc0), free(vc0), free(y1), free(y2), free(yr), free(k1), free(v1), free(k2), free(v2);
        free(kr), free(vr);
    }
}

/* The attention op over a whole sequence of N rows, and kv_attention fed the same rows in runs of T
 * (linear and ring caches): the outputs agree bit for bit. */
static void same_as_attention(int N, int C, int H, int span, int T, int ring)
{
    size_t nq = (size_t)N * 3 * C;
    float *qkv = randv(nq), *full = malloc((size_t)N * C * 4);
    sm_graph *g;
    sm_tensor x, y;
    int64_t sq[3] = {1, N, 3 * C};
    OK(sm_graph_create(&g));
    OK(sm_graph_input(g, "qkv", SM_F32, 3, sq, &x));
    OK(sm_attention(g, x, H, span, "att", &y));
    OK(sm_graph_mark_output(g, y));
    sm_plan_options o;
    sm_plan_options_default(&o);
    sm_plan *p;
    sm_runtime *rt;
    OK(sm_plan_create(g, &o, &p));
    OK(sm_runtime_create(g, p, &rt));
    OK(sm_runtime_set(rt, x, qkv, nq * 4));
    OK(sm_runtime_run(rt));
    OK(sm_runtime_get(rt, y, full, (size_t)N * C * 4));
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);

    kv_case c = {T, C, H, span, 0, ring, ring ? span + T - 1 : N, 0};
    kv_graph k = make(&c);
    OK(sm_plan_create(k.g, &o, &p));
    OK(sm_runtime_create(k.g, p, &rt));
    float *out = malloc((size_t)T * C * 4);
    int32_t *pos = malloc(sizeof *pos * (size_t)T);
    for (int i = 0; i + T <= N; i += T) {
        for (int t = 0; t < T; t++) pos[t] = i + t;
        OK(sm_runtime_set(rt, k.qkv, qkv + (size_t)i * 3 * C, (size_t)T * 3 * C * 4));
        OK(sm_runtime_set(rt, k.pos, pos, sizeof *pos * (size_t)T));
        OK(sm_runtime_run(rt));
        OK(sm_runtime_get(rt, k.out, out, (size_t)T * C * 4));
        cr_assert(!memcmp(out, full + (size_t)i * C, (size_t)T * C * 4), "N %d span %d T %d ring %d: rows %d.. "
                  "differ from the attention op's", N, span, T, ring, i);
    }
    free(out), free(pos), free(qkv), free(full);
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(k.g);
}

Test(kv_attention, bitwise_equal_to_attention)
{
    same_as_attention(200, 32, 2, 0, 1, 0);
    same_as_attention(200, 48, 3, 0, 8, 0);
    same_as_attention(192, 32, 2, 0, 64, 0);
    same_as_attention(200, 32, 2, 37, 1, 0);
    same_as_attention(200, 32, 2, 37, 1, 1);
    same_as_attention(200, 32, 2, 70, 5, 1);
}

Test(kv_attention, shape_errors)
{
    sm_graph *g;
    OK(sm_graph_create(&g));
    int64_t sq[3] = {1, 4, 96}, sc[3] = {1, 10, 32}, sp[2] = {1, 4}, sbad[3] = {1, 10, 16};
    sm_tensor qkv, kc, vc, vbad, pos, inp, out;
    OK(sm_graph_input(g, "qkv", SM_F32, 3, sq, &qkv));
    OK(sm_graph_kv(g, "k", SM_F32, 3, sc, &kc));
    OK(sm_graph_kv(g, "v", SM_F32, 3, sc, &vc));
    OK(sm_graph_kv(g, "vbad", SM_F32, 3, sbad, &vbad));
    OK(sm_graph_input(g, "inp", SM_F32, 3, sc, &inp));
    OK(sm_graph_input(g, "pos", SM_I32, 2, sp, &pos));
    sm_kv_layout lay = {.n_head = 2};
    cr_assert_eq(sm_kv_attention(g, qkv, kc, vbad, pos, &lay, "a", &out), SM_ERR_SHAPE);
    cr_assert(strstr(sm_last_error(), "vbad"), "%s", sm_last_error());
    cr_assert_eq(sm_kv_attention(g, qkv, kc, inp, pos, &lay, "b", &out), SM_ERR_SHAPE);
    cr_assert(strstr(sm_last_error(), "KV tensor"), "%s", sm_last_error());
    sm_kv_layout ring = {.n_head = 2, .span = 8, .ring = 1};
    cr_assert_eq(sm_kv_attention(g, qkv, kc, vc, pos, &ring, "c", &out), SM_ERR_SHAPE);   /* 10 < 8 + 4 - 1 */
    cr_assert(strstr(sm_last_error(), "sink + span + T - 1 = 11"), "%s", sm_last_error());
    sm_kv_layout sink = {.n_head = 2, .sink = 2};
    cr_assert_eq(sm_kv_attention(g, qkv, kc, vc, pos, &sink, "d", &out), SM_ERR_SHAPE);
    OK(sm_kv_attention(g, qkv, kc, vc, pos, &lay, "e", &out));
    sm_graph_free(g);
}

/* A run whose positions would overflow a linear cache writes nothing and gives NaN rows. */
Test(kv_attention, out_of_range_positions_write_nothing)
{
    kv_case c = {4, 32, 2, 0, 0, 0, 10, 8};
    size_t nq = (size_t)c.T * 3 * c.C, nc = (size_t)c.P * c.C, ny = (size_t)c.T * c.C;
    float *qkv = randv(nq), *kc0 = randv(nc), *vc0 = randv(nc), *y = malloc(ny * 4), *kc = malloc(nc * 4),
          *vc = malloc(nc * 4);
    run(&c, 2, qkv, kc0, vc0, y, kc, vc);
    cr_assert(!memcmp(kc, kc0, nc * 4) && !memcmp(vc, vc0, nc * 4));
    for (size_t i = 0; i < ny; i++) cr_assert(isnan(y[i]));
    free(qkv), free(kc0), free(vc0), free(y), free(kc), free(vc);
}
