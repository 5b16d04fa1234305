/* op_check.c — see op_check.h. */
#include "op_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "base/rng.h"
#include "ops/op.h"
#include "scheduler/plan.h"

op_check_in op_in_f32(int ndim, const int64_t *shape)
{
    op_check_in in = {.dtype = SM_F32, .ndim = ndim};
    memcpy(in.shape, shape, (size_t)ndim * sizeof *shape);
    return in;
}

op_check_in op_in_i32(int ndim, const int64_t *shape, int32_t lo, int32_t hi)
{
    op_check_in in = op_in_f32(ndim, shape);
    in.dtype = SM_I32;
    in.id_lo = lo;
    in.id_hi = hi;
    return in;
}

const sm_tensor_rec *op_check_out_rec(const op_check_result *r) { return &r->g->t[r->out]; }

const char *op_check_shape(const sm_tensor_rec *rec)
{
    static char buf[8][64];
    static int next;
    char *b = buf[next++ % 8];
    return sm_shape_str(rec, b, 64);
}

static void fill(const op_check_in *in, uint64_t key, void *dst, int64_t n)
{
    if (in->data) {
        memcpy(dst, in->data, (size_t)n * sm_dtype_size(in->dtype));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits = sm_rng_mix(key ^ sm_rng_mix((uint64_t)i));
        switch (in->dtype) {
        case SM_F32:
            ((float *)dst)[i] = (float)(in->offset + (in->scale ? in->scale : 1.0) * sm_rng_normal(key, (uint64_t)i));
            break;
        case SM_F16:   /* a random finite f16: exponent field 31 (inf/NaN) folded onto 30 */
            ((uint16_t *)dst)[i] = (uint16_t)(((bits & 0x7C00) == 0x7C00 ? bits & ~0x0400u : bits) & 0xFFFF);
            break;
        case SM_BF16:  /* a random finite bf16 */
            ((uint16_t *)dst)[i] = (uint16_t)(((bits & 0x7F80) == 0x7F80 ? bits & ~0x0080u : bits) & 0xFFFF);
            break;
        default: {
            int32_t lo = in->id_lo, hi = in->id_hi;
            if (lo == 0 && hi == 0) hi = 16;
            ((int32_t *)dst)[i] = (int32_t)((int64_t)lo + (int64_t)(bits % (uint64_t)((int64_t)hi - lo)));
        }
        }
    }
}

static void run_threads(op_check_result *r, sm_runtime *rt, int threads, void *dst, size_t bytes, bool view)
{
    const op_check_spec *s = r->spec;
    cr_assert_eq(sm_runtime_set_threads(rt, threads), SM_OK, "%s", sm_last_error());
    for (int i = 0; i < s->n_in; i++)
        cr_assert_eq(sm_runtime_set(rt, r->in[i], r->x[i], sm_rec_bytes(&r->g->t[r->in[i]])), SM_OK, "%s",
                     sm_last_error());
    if (!view) {   /* NaN bytes everywhere, so an element the kernel never writes cannot pass */
        void *p;
        cr_assert_eq(sm_runtime_data(rt, r->out, &p), SM_OK);
        memset(p, 0xFF, bytes);
    }
    cr_assert_eq(sm_runtime_run(rt), SM_OK, "%s: run at %d threads: %s", sm_op_name(s->op), threads,
                 sm_last_error());
    cr_assert_eq(sm_runtime_get(rt, r->out, dst, bytes), SM_OK, "%s", sm_last_error());
}

static int64_t first_diff(const void *a, const void *b, int64_t n, size_t es)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)a + (size_t)i * es, (const char *)b + (size_t)i * es, es)) return i;
    return -1;
}

static void compare_ref(op_check_result *r)
{
    const op_check_spec *s = r->spec;
    const sm_tensor_rec *o = op_check_out_rec(r);
    const char *op = sm_op_name(s->op);
    if (s->exact || o->dtype != SM_F32) {
        int64_t i = first_diff(r->y, r->ref, r->n_out, sm_dtype_size(o->dtype));
        if (i >= 0) {
            uint32_t a = 0, b = 0;
            memcpy(&a, (char *)r->y + (size_t)i * sm_dtype_size(o->dtype), sm_dtype_size(o->dtype));
            memcpy(&b, (char *)r->ref + (size_t)i * sm_dtype_size(o->dtype), sm_dtype_size(o->dtype));
            cr_assert_fail("%s %s seed %llu: element %lld differs from the reference: bits 0x%x, reference 0x%x",
                           op, op_check_shape(o), (unsigned long long)s->seed, (long long)i, a, b);
        }
        return;
    }
    const float *y = r->y, *ref = r->ref;
    for (int64_t i = 0; i < r->n_out; i++) {
        double tol = s->tol ? s->tol(r, i) : s->atol + s->rtol * fabs((double)ref[i]);
        bool ok;
        if (isnan(ref[i])) ok = isnan(y[i]);
        else if (isinf(ref[i])) ok = y[i] == ref[i];
        else {
            double e = fabs((double)y[i] - (double)ref[i]);
            ok = e <= tol;   /* false for a NaN y */
            if (ok && tol > 0 && e / tol > r->worst) r->worst = e / tol;
        }
        if (!ok)
            cr_assert_fail("%s %s seed %llu: element %lld is %.9g, the reference %.9g (tolerance %.3g)", op,
                           op_check_shape(o), (unsigned long long)s->seed, (long long)i, (double)y[i],
                           (double)ref[i], tol);
    }
}

/* The forward kernel called as a team directly, at 1, 2 and 3 threads, with fresh scratch full of NaN
 * bytes: a kernel that reads scratch it did not write this call (which the executor's reused arena
 * would hide), or that splits its work by thread count, gives other bits than the executor's run. */
static void direct_runs(op_check_result *r, sm_kernel_args *a, size_t bytes)
{
    const sm_op_def *d = sm_op_def_get(r->spec->op);
    for (int threads = 1; threads <= 3; threads++) {
        size_t wb = a->work_bytes * (size_t)threads + 64, sb = a->shared_bytes + 64;
        void *work = aligned_alloc(64, wb), *shared = aligned_alloc(64, sb), *y = malloc(bytes);
        cr_assert(work && shared && y);
        memset(work, 0xFF, wb);
        memset(shared, 0xFF, sb);
        memset(y, 0xFF, bytes);
        sm_kernel_args t = *a;
        t.work = work;
        t.shared = shared;
        t.y = y;
#pragma omp parallel num_threads(threads)
        d->forward(&t);
        int64_t i = first_diff(r->y, y, r->n_out, sm_dtype_size(t.out->dtype));
        cr_assert(i < 0, "%s %s seed %llu: element %lld differs between the executor's run and a direct team call "
                  "at %d threads", sm_op_name(r->spec->op), op_check_shape(t.out), (unsigned long long)r->spec->seed,
                  (long long)i, threads);
        free(work);
        free(shared);
        free(y);
    }
}

op_check_result *op_check_run(const op_check_spec *s)
{
    op_check_result *r = calloc(1, sizeof *r);
    cr_assert(r);
    r->spec = s;
    const char *op = sm_op_name(s->op);
    cr_assert_eq(sm_graph_create(&r->g), SM_OK);
    for (int i = 0; i < s->n_in; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        cr_assert_eq(sm_graph_input(r->g, name, s->in[i].dtype, s->in[i].ndim, s->in[i].shape, &r->in[i]), SM_OK,
                     "%s", sm_last_error());
        int64_t n = sm_tensor_numel(r->g, r->in[i]);
        r->x[i] = malloc((size_t)n * sm_dtype_size(s->in[i].dtype) + 1);
        cr_assert(r->x[i]);
        fill(&s->in[i], sm_rng_mix(s->seed * 0x100 + (uint64_t)i), r->x[i], n);
    }
    cr_assert_eq(sm_graph_op(r->g, s->op, r->in, s->n_in, s->attrs, "y", &r->out), SM_OK, "%s: %s", op,
                 sm_last_error());
    cr_assert_eq(sm_graph_mark_output(r->g, r->out), SM_OK);
    const sm_tensor_rec *o = op_check_out_rec(r);
    const sm_op_def *d = sm_op_def_get(s->op);
    r->n_out = sm_rec_numel(o);
    size_t bytes = sm_rec_bytes(o);

    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = 2;
    sm_plan *p;
    sm_runtime *rt;
    cr_assert_eq(sm_plan_create(r->g, &po, &p), SM_OK, "%s", sm_last_error());
    if (d->flops) {
        double f = sm_plan_flops(p);
        cr_assert(f >= 0 && isfinite(f), "%s: FLOPs %g", op, f);
    }
    cr_assert_eq(sm_runtime_create(r->g, p, &rt), SM_OK, "%s", sm_last_error());
    r->y = malloc(bytes);
    void *y2 = malloc(bytes);
    cr_assert(r->y && y2);
    run_threads(r, rt, 1, r->y, bytes, d->is_view);
    run_threads(r, rt, 2, y2, bytes, d->is_view);
    int64_t i = first_diff(r->y, y2, r->n_out, sm_dtype_size(o->dtype));
    cr_assert(i < 0, "%s %s seed %llu: element %lld differs between 1 and 2 threads", op, op_check_shape(o),
              (unsigned long long)s->seed, (long long)i);
    free(y2);
    sm_runtime_free(rt);
    sm_plan_free(p);

    if (d->is_view) return r;
    sm_kernel_args a = {.node = &r->g->nodes[0], .out = o, .n_in = s->n_in};
    for (int j = 0; j < s->n_in; j++) {
        a.in[j] = &r->g->t[r->in[j]];
        a.x[j] = r->x[j];
    }
    a.work_bytes = d->workspace ? (d->workspace(r->g, a.node) + 63) / 64 * 64 : 0;
    a.shared_bytes = d->shared_workspace ? (d->shared_workspace(r->g, a.node) + 63) / 64 * 64 : 0;
    direct_runs(r, &a, bytes);
    if (!d->reference) return r;
    /* the reference kernel, called directly on the same inputs, with its own scratch */
    a.work = aligned_alloc(64, a.work_bytes + 64);
    r->ref = malloc(bytes);
    cr_assert(a.work && r->ref);
    memset(r->ref, 0xFF, bytes);
    a.y = r->ref;
    d->reference(&a);
    free(a.work);
    compare_ref(r);
    if (getenv("OP_CHECK_VERBOSE"))   /* for choosing tolerances: how close to its bound each case came */
        fprintf(stderr, "op_check %s %s: worst error / tolerance %.3g\n", op, op_check_shape(o), r->worst);
    return r;
}

void op_check_free(op_check_result *r)
{
    if (!r) return;
    for (int i = 0; i < SM_MAX_INPUTS; i++) free(r->x[i]);
    free(r->y);
    free(r->ref);
    sm_graph_free(r->g);
    free(r);
}
