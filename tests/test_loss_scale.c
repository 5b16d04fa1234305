/* test_loss_scale.c — dynamic loss scaling: the scaler's rules (PyTorch GradScaler's: init 2^16,
 * x2 after exactly growth_interval clean steps, x0.5 on overflow with the counter reset, the floor),
 * the found_inf op (the seed's HasGradientOverflow cases: +-Inf and NaN anywhere in any gradient are
 * found; large finite values, denormals and zeros are not; 1 and 2 threads; against its reference),
 * the optimizer on a scaled graph (an overflowed step leaves weights and moments bitwise unchanged
 * and does not advance the bias correction; unscaled updates match a double reference; the scaled
 * adamw kernel at 1, 2 and 3 threads against its reference; a power-of-two scale gives bitwise the
 * weights of no scaling, at 1 and 2 threads), the scaler in checkpoint metadata, and `smallmind train
 * --loss-scale` (progress line, options, and exact resume across forced overflows). */
#include <float.h>
#include <stdlib.h>
#include <unistd.h>

#include "frontends/checkpoint.h"
#include "grad_check.h"
#include "helpers/cli_run.h"
#include "helpers/op_check.h"

/* ---- the scaler's rules ------------------------------------------------------------------------ */

Test(loss_scaler, pytorch_defaults)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    cr_expect_eq(s.mode, SM_LOSS_SCALE_DYNAMIC);
    cr_expect_eq(s.scale, 65536.0f, "init_scale 2^16");
    cr_expect_eq(s.growth_factor, 2.0f);
    cr_expect_eq(s.backoff_factor, 0.5f);
    cr_expect_eq(s.growth_interval, 2000);
    cr_expect_eq(s.min_scale, 1.0f, "the documented floor");
    cr_expect_eq(s.growth_tracker, 0);
    cr_expect_eq(s.skipped, 0);
    GC_OK(sm_loss_scaler_check(&s));
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_OFF);
    cr_expect_eq(s.scale, 1.0f, "off: the scale is 1");
    GC_OK(sm_loss_scaler_check(&s));
}

Test(loss_scaler, grows_after_exactly_interval_clean_steps)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    for (int i = 1; i < 2000; i++) {
        GC_OK(sm_loss_scaler_update(&s, 0));
        cr_assert_eq(s.scale, 65536.0f, "no growth after %d clean steps", i);
        cr_assert_eq(s.growth_tracker, i);
    }
    GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 131072.0f, "x2 after the 2000th clean step");
    cr_expect_eq(s.growth_tracker, 0, "the counter starts again");
    for (int i = 0; i < 1999; i++) GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 131072.0f);
    GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 262144.0f, "and again 2000 steps later");
    cr_expect_eq(s.skipped, 0, "clean steps skip nothing");
}

Test(loss_scaler, backoff_on_overflow_resets_the_counter)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    for (int i = 0; i < 1500; i++) GC_OK(sm_loss_scaler_update(&s, 0));
    GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 32768.0f, "x0.5 on overflow");
    cr_expect_eq(s.growth_tracker, 0, "the clean-step counter is reset");
    cr_expect_eq(s.skipped, 1);
    /* the 500 steps that would have completed the old interval do not grow it */
    for (int i = 0; i < 1999; i++) GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 32768.0f, "1999 clean steps after the overflow: no growth yet");
    GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 65536.0f, "2000 clean steps after the overflow: x2");
    GC_OK(sm_loss_scaler_update(&s, 1));
    GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 16384.0f, "consecutive overflows halve each time");
    cr_expect_eq(s.skipped, 3);
}

Test(loss_scaler, floor)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    for (int i = 0; i < 16; i++) GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 1.0f, "16 overflows from 2^16 reach the floor 1");
    GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 1.0f, "never below the floor");
    cr_expect_eq(s.skipped, 17, "overflowed steps at the floor are still skipped");
    s.scale = 1.5f;
    GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 1.0f, "a backoff that would cross the floor stops at it");
    s.min_scale = 0x1p-24f;   /* a caller's own floor */
    GC_OK(sm_loss_scaler_update(&s, 1));
    cr_expect_eq(s.scale, 0.5f);
}

Test(loss_scaler, growth_that_overflows_keeps_the_scale)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    s.scale = 0x1p127f;
    s.growth_interval = 1;
    GC_OK(sm_loss_scaler_update(&s, 0));
    cr_expect_eq(s.scale, 0x1p127f, "2^128 is not a float: kept, as PyTorch does");
    cr_expect_eq(s.growth_tracker, 0);
}

Test(loss_scaler, fixed_and_off_never_change_the_scale)
{
    sm_loss_scaler f, o;
    sm_loss_scaler_init(&f, SM_LOSS_SCALE_FIXED);
    sm_loss_scaler_init(&o, SM_LOSS_SCALE_OFF);
    f.scale = 1024.0f;
    f.growth_interval = 3;
    for (int i = 0; i < 10; i++) {
        GC_OK(sm_loss_scaler_update(&f, i % 4 == 0));
        GC_OK(sm_loss_scaler_update(&o, i % 4 == 0));
    }
    cr_expect_eq(f.scale, 1024.0f);
    cr_expect_eq(o.scale, 1.0f);
    cr_expect_eq(f.skipped, 3, "overflowed steps are counted in every mode");
    cr_expect_eq(o.skipped, 3);
}

Test(loss_scaler, check_names_what_is_wrong)
{
    sm_loss_scaler s, d;
    sm_loss_scaler_init(&d, SM_LOSS_SCALE_DYNAMIC);
#define BAD(stmt, word)                                                                                    \
    do {                                                                                                   \
        s = d;                                                                                             \
        stmt;                                                                                              \
        cr_expect_eq(sm_loss_scaler_check(&s), SM_ERR_INVALID_ARG, "%s accepted", #stmt);                  \
        cr_expect(strstr(sm_last_error(), word), "%s: message '%s' does not name %s", #stmt, sm_last_error(), word); \
        cr_expect_eq(sm_loss_scaler_update(&s, 0), SM_ERR_INVALID_ARG, "update with %s", #stmt);            \
    } while (0)
    BAD(s.scale = 0, "scale");
    BAD(s.scale = INFINITY, "scale");
    BAD(s.scale = NAN, "scale");
    BAD(s.scale = 0.5f, "min_scale");
    BAD(s.min_scale = 0, "min_scale");
    BAD(s.growth_factor = 1, "growth_factor");
    BAD(s.backoff_factor = 1, "backoff_factor");
    BAD(s.backoff_factor = 0, "backoff_factor");
    BAD(s.growth_interval = 0, "growth_interval");
    BAD(s.growth_tracker = 2000, "growth_tracker");
    BAD(s.growth_tracker = -1, "growth_tracker");
    BAD(s.skipped = -1, "skipped");
    BAD(s.mode = (sm_loss_scale_mode)7, "mode");
    BAD((s.mode = SM_LOSS_SCALE_OFF, s.scale = 2), "off");
#undef BAD
    cr_expect_eq(sm_loss_scaler_check(NULL), SM_ERR_INVALID_ARG);
}

Test(loss_scaler, auto_mode)
{
    cr_expect_eq(sm_loss_scale_auto(SM_F16), SM_LOSS_SCALE_DYNAMIC, "f16: 5 exponent bits, small gradients underflow");
    cr_expect_eq(sm_loss_scale_auto(SM_BF16), SM_LOSS_SCALE_OFF, "bf16 has f32's exponent range");
    cr_expect_eq(sm_loss_scale_auto(SM_F32), SM_LOSS_SCALE_OFF);
}

/* The learning rate follows the step number, the bias corrections the updates applied. */
Test(loss_scaler, hparams_of_a_run_with_skipped_steps)
{
    sm_adamw_config c;
    sm_adamw_config_default(&c);
    c.warmup_steps = 10;
    c.total_steps = 100;
    float a[SM_ADAMW_HPARAMS], b[SM_ADAMW_HPARAMS], z[SM_ADAMW_HPARAMS];
    GC_OK(sm_adamw_hparams_skipped(&c, 7, 3, a));
    GC_OK(sm_adamw_hparams(&c, 7, b));
    GC_OK(sm_adamw_hparams(&c, 4, z));
    cr_expect_eq(a[SM_ADAMW_LR], b[SM_ADAMW_LR], "lr of step 7");
    cr_expect_eq(a[SM_ADAMW_BC1], z[SM_ADAMW_BC1], "bias corrections of the 5th update (t = 7 - 3 + 1)");
    cr_expect_eq(a[SM_ADAMW_BC2], z[SM_ADAMW_BC2]);
    GC_OK(sm_adamw_hparams_skipped(&c, 7, 0, a));
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "nothing skipped: sm_adamw_hparams");
    GC_OK(sm_adamw_hparams_skipped(&c, 7, 7, a));
    cr_expect_eq(sm_adamw_hparams_skipped(&c, 7, 8, a), SM_ERR_INVALID_ARG, "more skipped than steps");
    cr_expect_eq(sm_adamw_hparams_skipped(&c, 7, -1, a), SM_ERR_INVALID_ARG);
}

/* ---- the scaler in checkpoint metadata --------------------------------------------------------- */

/* A file holding one tiny tensor and the metadata pair loss_scale = value (no checksum: read as a
 * file from before checksums). */
static sm_status scaler_from_meta(const char *value, sm_loss_scaler *out, bool *found)
{
    char path[] = "/tmp/sm_loss_scale_meta_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    float one = 1.0f;
    sm_st_entry e = {.name = "t", .dtype = SM_ST_F32, .ndim = 1, .shape = {1}, .data = &one};
    sm_st_kv kv = {SM_CKPT_KEY_LOSS_SCALE, value};
    GC_OK(sm_st_write(path, &e, 1, &kv, value ? 1 : 0, 0));
    sm_st_file *f;
    GC_OK(sm_checkpoint_open(path, &f));
    sm_status s = sm_checkpoint_meta_scaler(f, out, found);
    sm_st_close(f);
    unlink(path);
    return s;
}

/* Every field reads back as the same bits (9 significant digits identify a float), including
 * values that need all of them. */
Test(loss_scaler, checkpoint_metadata_round_trip)
{
    sm_loss_scaler s;
    sm_loss_scaler_init(&s, SM_LOSS_SCALE_DYNAMIC);
    const float scales[] = {65536.0f, 3.0000002e38f, FLT_MAX, 1.0f, 4.6e18f, 1.1754944e-38f};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++) {
        s.min_scale = scales[i] < 1 ? scales[i] : 1.0f;
        s.scale = scales[i];
        s.growth_factor = 1.0000001f;
        s.backoff_factor = 0.33333334f;
        s.growth_interval = 123456789012LL;
        s.growth_tracker = 123456789011LL;
        s.skipped = 987654321LL;
        char buf[SM_CKPT_LOSS_SCALE_MAX];
        sm_checkpoint_scaler_format(&s, buf, sizeof buf);
        sm_loss_scaler r;
        bool found;
        memset(&r, 0x55, sizeof r);
        GC_OK(scaler_from_meta(buf, &r, &found));
        cr_expect(found);
        cr_expect(r.mode == s.mode && !memcmp(&r.scale, &s.scale, 4) && !memcmp(&r.min_scale, &s.min_scale, 4) &&
                  !memcmp(&r.growth_factor, &s.growth_factor, 4) && !memcmp(&r.backoff_factor, &s.backoff_factor, 4) &&
                  r.growth_interval == s.growth_interval && r.growth_tracker == s.growth_tracker &&
                  r.skipped == s.skipped, "'%s' read back differently", buf);
    }
    sm_loss_scaler keep;
    sm_loss_scaler_init(&keep, SM_LOSS_SCALE_FIXED);
    bool found = true;
    GC_OK(scaler_from_meta(NULL, &keep, &found));
    cr_expect(!found, "no pair: not found");
    cr_expect_eq(keep.mode, SM_LOSS_SCALE_FIXED, "and left as it was");
}

Test(loss_scaler, checkpoint_metadata_refused)
{
    const char *bad[] = {
        "",
        "mode=dynamic",
        "mode=sometimes scale=2 growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=inf growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=0.5 growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=2 growth=1 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=2 growth=2 backoff=1.5 interval=2000 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=2 growth=2 backoff=0.5 interval=0 min=1 tracker=0 skipped=0",
        "mode=dynamic scale=2 growth=2 backoff=0.5 interval=2000 min=1 tracker=2000 skipped=0",
        "mode=dynamic scale=2 growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=-1",
        "mode=dynamic scale=2 growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0 extra",
        "mode=off scale=2 growth=2 backoff=0.5 interval=2000 min=1 tracker=0 skipped=0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sm_loss_scaler r;
        sm_loss_scaler_init(&r, SM_LOSS_SCALE_DYNAMIC);
        bool found;
        cr_expect_eq(scaler_from_meta(bad[i], &r, &found), SM_ERR_FORMAT, "'%s' accepted", bad[i]);
        cr_expect(strstr(sm_last_error(), SM_CKPT_KEY_LOSS_SCALE), "'%s': the message names the key: %s", bad[i],
                  sm_last_error());
        cr_expect_eq(r.scale, 65536.0f, "'%s': the scaler is left as it was", bad[i]);
    }
}

/* ---- found_inf: HasGradientOverflow ------------------------------------------------------------ */

#define NX 3
static const int64_t sizes[NX] = {40000, 1, 16385};   /* chunks of 16384: several per thread */

/* found_inf over three "gradients" (plus a running flag when acc), with v at element `at` of input
 * `which` (which < 0: nowhere); the op harness checks 1 and 2 threads and the reference. */
static float found_inf_with(float v, int which, int64_t at, int acc, float flag)
{
    static float data[NX][40000];
    float fl = flag;
    for (int i = 0; i < NX; i++)
        for (int64_t j = 0; j < sizes[i]; j++) data[i][j] = (float)((i * 7919 + j * 104729) % 2001 - 1000) * 1e-3f;
    if (which >= 0) data[which][at] = v;
    op_check_spec s = {.op = SM_OP_FOUND_INF, .n_in = NX + acc, .seed = 1, .exact = true};
    sm_attrs a = sm_op_default_attrs(SM_OP_FOUND_INF);
    a.i[SM_IATTR_FOUND_INF_ACC] = acc;
    s.attrs = &a;
    if (acc) {
        int64_t one = 1;
        s.in[0] = op_in_f32(1, &one);
        s.in[0].data = &fl;
    }
    for (int i = 0; i < NX; i++) {
        s.in[acc + i] = op_in_f32(1, &sizes[i]);
        s.in[acc + i].data = data[i];
    }
    op_check_result *r = op_check_run(&s);
    float y = *(const float *)r->y;
    op_check_free(r);
    return y;
}

Test(found_inf, inf_and_nan_anywhere_in_any_gradient, .timeout = 120)
{
    const float bad[] = {INFINITY, -INFINITY, NAN, -NAN};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
        for (int which = 0; which < NX; which++) {
            int64_t at[3] = {0, sizes[which] / 2, sizes[which] - 1};   /* first, middle, last element */
            for (int k = 0; k < 3; k++)
                cr_expect_eq(found_inf_with(bad[b], which, at[k], 0, 0), 1.0f, "%g at element %lld of gradient %d",
                             (double)bad[b], (long long)at[k], which);
        }
}

Test(found_inf, finite_values_are_no_overflow, .timeout = 120)
{
    const float good[] = {FLT_MAX, -FLT_MAX, 3e38f, 1e30f, FLT_MIN, FLT_TRUE_MIN, -FLT_TRUE_MIN, 1e-40f, 0.0f, -0.0f};
    cr_expect_eq(found_inf_with(0, -1, 0, 0, 0), 0.0f, "ordinary gradients");
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++)
        for (int which = 0; which < NX; which++) {
            int64_t at[3] = {0, sizes[which] / 2, sizes[which] - 1};
            for (int k = 0; k < 3; k++)
                cr_expect_eq(found_inf_with(good[g], which, at[k], 0, 0), 0.0f, "%g at element %lld of gradient %d",
                             (double)good[g], (long long)at[k], which);
        }
}

Test(found_inf, all_zero_gradients)
{
    static float z[40000];
    int64_t n = 40000;
    op_check_spec s = {.op = SM_OP_FOUND_INF, .n_in = 1, .seed = 1, .exact = true};
    s.in[0] = op_in_f32(1, &n);
    s.in[0].data = z;
    op_check_result *r = op_check_run(&s);
    cr_expect_eq(*(const float *)r->y, 0.0f);
    op_check_free(r);
}

Test(found_inf, running_flag)
{
    cr_expect_eq(found_inf_with(0, -1, 0, 1, 0.0f), 0.0f, "flag 0, finite gradients");
    cr_expect_eq(found_inf_with(0, -1, 0, 1, 1.0f), 1.0f, "a flag set earlier in the chain carries");
    cr_expect_eq(found_inf_with(NAN, 2, 5, 1, 0.0f), 1.0f, "flag 0, a NaN here");
}

/* ---- the scaled adamw node: team kernel at 1, 2 and 3 threads against its reference ------------ */

#define AN 9000   /* several chunks of 4096 */

typedef struct adamw_io {
    float p[AN], g[AN], m[AN], v[AN];
} adamw_io;

/* One adamw node (decay 1) on copies of io with sumsq (when clip), and, when scaled, the scale and
 * found_inf inputs; out[0..2] get the team kernel's results at 1, 2, 3 threads, out[3] the
 * reference's. */
static void run_adamw(const adamw_io *io, bool clip, bool scaled, float scale, float found, adamw_io out[4])
{
    static const float hp[SM_ADAMW_HPARAMS] = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 10.0f, 20.0f, 0.5f};
    float sq = 0;
    for (int i = 0; i < AN; i++) sq += io->g[i] * io->g[i];   /* the scaled gradients' */
    sm_graph *g;
    GC_OK(sm_graph_create(&g));
    int64_t n = AN, nh = SM_ADAMW_HPARAMS, one = 1;
    sm_tensor t[8], y;
    const char *names[8] = {"p", "g", "m", "v", "hp", "sumsq", "scale", "found"};
    const void *data[8] = {io->p, io->g, io->m, io->v, hp, &sq, &scale, &found};
    int k = 0, map[8];
    for (int i = 0; i < 8; i++) {
        if ((i == 5 && !clip) || (i >= 6 && !scaled)) continue;
        GC_OK(sm_graph_input(g, names[i], SM_F32, 1, i < 4 ? &n : i == 4 ? &nh : &one, &t[k]));
        map[k++] = i;
    }
    sm_attrs a = sm_op_default_attrs(SM_OP_ADAMW);
    a.i[SM_IATTR_ADAMW_DECAY] = 1;
    a.i[SM_IATTR_ADAMW_SCALED] = scaled;
    GC_OK(sm_graph_op(g, SM_OP_ADAMW, t, k, &a, "y", &y));
    GC_OK(sm_graph_mark_output(g, y));
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.strategy = SM_PLAN_NAIVE;
    po.n_threads = 3;
    sm_plan *plan;
    sm_runtime *rt;
    GC_OK(sm_plan_create(g, &po, &plan));
    GC_OK(sm_runtime_create(g, plan, &rt));
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < k; i++) GC_OK(sm_runtime_set(rt, t[i], data[map[i]], sm_rec_bytes(&g->t[t[i]])));
        if (r < 3) {
            GC_OK(sm_runtime_set_threads(rt, r + 1));
            GC_OK(sm_runtime_run(rt));
        } else {
            void *py;
            GC_OK(sm_runtime_data(rt, y, &py));
            sm_kernel_args ka = {.node = &g->nodes[0], .out = &g->t[y], .y = py, .n_in = k};
            for (int i = 0; i < k; i++) {
                ka.in[i] = &g->t[t[i]];
                GC_OK(sm_runtime_data(rt, t[i], (void **)&ka.x[i]));
            }
            sm_op_def_get(SM_OP_ADAMW)->reference(&ka);
        }
        GC_OK(sm_runtime_get(rt, t[0], out[r].p, sizeof out[r].p));
        GC_OK(sm_runtime_get(rt, t[1], out[r].g, sizeof out[r].g));
        GC_OK(sm_runtime_get(rt, t[2], out[r].m, sizeof out[r].m));
        GC_OK(sm_runtime_get(rt, t[3], out[r].v, sizeof out[r].v));
    }
    sm_runtime_free(rt);
    sm_plan_free(plan);
    sm_graph_free(g);
}

static double rel_err(const adamw_io *a, const adamw_io *b)
{
    const float *x = (const float *)a, *y = (const float *)b;
    double e = 0;
    for (size_t i = 0; i < sizeof *a / sizeof(float); i++) {
        double d = fabs((double)x[i] - y[i]) / (1.0 + fabs((double)y[i]));
        e = isnan(d) ? INFINITY : fmax(e, d);
    }
    return e;
}

Test(scaled_adamw, kernel_threads_and_reference, .timeout = 120)
{
    static adamw_io io, scaled_io, out[4], base[4];
    for (int i = 0; i < AN; i++) {
        io.p[i] = (float)((i * 37 % 1001) - 500) * 1e-3f;
        io.g[i] = (float)((i * 91 % 997) - 498) * 1e-4f;
        io.m[i] = (float)((i * 13 % 101) - 50) * 1e-5f;
        io.v[i] = (float)(i * 17 % 103) * 1e-8f;
    }
    const float scales[] = {1.0f, 1024.0f, 3.0f, 0x1p-10f};
    for (int clip = 0; clip <= 1; clip++) {
        run_adamw(&io, clip, false, 1.0f, 0.0f, base);   /* the unscaled node */
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            scaled_io = io;
            for (int i = 0; i < AN; i++) scaled_io.g[i] = io.g[i] * scales[s];
            run_adamw(&scaled_io, clip, true, scales[s], 0.0f, out);
            for (int r = 1; r < 3; r++)
                cr_expect_eq(memcmp(&out[0], &out[r], sizeof out[0]), 0, "scale %g clip %d: 1 and %d threads differ",
                             (double)scales[s], clip, r + 1);
            cr_expect_lt(rel_err(&out[0], &out[3]), 1e-5, "scale %g clip %d: kernel vs reference", (double)scales[s], clip);
            /* the moments and parameter against the unscaled node (the gradient input itself differs) */
            for (int r = 0; r < 4 && scales[s] != 3.0f; r += 3) {   /* powers of two */
                bool same = !memcmp(out[r].p, base[r].p, sizeof base[r].p) && !memcmp(out[r].m, base[r].m, sizeof base[r].m) &&
                            !memcmp(out[r].v, base[r].v, sizeof base[r].v);
                cr_expect(same, "scale %g (a power of two), clip %d, %s: not bitwise the unscaled update",
                          (double)scales[s], clip, r ? "reference" : "kernel");
            }
            /* found_inf set, or an unusable scale: nothing changes, in the kernel and the reference */
            const float found[3] = {1.0f, 0.0f, 0.0f}, bad_scale[3] = {scales[s], 0.0f, INFINITY};
            for (int f = 0; f < 3; f++) {
                run_adamw(&scaled_io, clip, true, bad_scale[f], found[f], out);
                for (int r = 0; r < 4; r++)
                    cr_expect(!memcmp(out[r].p, scaled_io.p, sizeof io.p) && !memcmp(out[r].m, scaled_io.m, sizeof io.m) &&
                              !memcmp(out[r].v, scaled_io.v, sizeof io.v), "found %g scale %g clip %d run %d: changed",
                              (double)found[f], (double)bad_scale[f], clip, r);
            }
        }
    }
}

/* ---- the optimizer on a scaled graph ----------------------------------------------------------- */

/* y = x ⊙ d + b (d an input the test sets: an Inf in it makes an Inf gradient of x), loss Σ w·y, the
 * backward seeded with the loss scale S. */
typedef struct toy {
    gc_case c;
    sm_tensor x, b, d, mx, vx, mb, vb;
    sm_adamw_tensors opt;
    sm_adamw_config cfg;
    float data[6], scale, hp[SM_ADAMW_HPARAMS];
} toy;

static void toy_build(toy *t, float clip, int threads)
{
    memset(t, 0, sizeof *t);
    gc_case *c = &t->c;
    gc_begin(c);
    int64_t sx[2] = {2, 3}, sb = 3, one = 1;
    sm_tensor xd, y;
    t->x = gc_param(c, "x", 2, sx, 1);
    t->b = gc_param(c, "b", 1, &sb, 1);
    t->d = gc_input(c, "d", SM_F32, 2, sx, t->data);
    GC_OK(sm_mul(c->g, t->x, t->d, "xd", &xd));
    GC_OK(sm_add(c->g, xd, t->b, "y", &y));
    int64_t row[2] = {1, 6};
    sm_tensor y2, l2;
    GC_OK(sm_graph_param(c->g, "gc.w", SM_F32, 2, row, SM_INIT_ZEROS, 0, &c->w));
    GC_OK(sm_graph_set_trainable(c->g, c->w, 0));
    GC_OK(sm_reshape(c->g, y, 2, row, "gc.y2", &y2));
    GC_OK(sm_linear(c->g, y2, c->w, SM_NO_TENSOR, "gc.l2", &l2));
    GC_OK(sm_reshape(c->g, l2, 1, &one, "gc.loss", &c->loss));
    GC_OK(sm_graph_set_loss(c->g, c->loss));
    sm_tensor scale;
    GC_OK(sm_graph_backward_scaled(c->g, c->loss, &scale));
    sm_adamw_config_default(&t->cfg);
    t->cfg.lr = 0.05f;
    t->cfg.grad_clip = clip;
    GC_OK(sm_graph_adamw(c->g, &t->cfg, &t->opt));
    cr_assert_eq(t->opt.loss_scale, scale, "sm_graph_adamw uses the backward's scale");
    cr_assert_neq(t->opt.found_inf, SM_NO_TENSOR);
    cr_assert(c->n_inputs + 2 <= GC_MAX_INPUTS);
    c->in[c->n_inputs] = t->opt.hparams;
    c->in_data[c->n_inputs++] = t->hp;
    c->in[c->n_inputs] = scale;
    c->in_data[c->n_inputs++] = &t->scale;
    GC_OK(sm_graph_find(c->g, "adam.m.x", &t->mx));
    GC_OK(sm_graph_find(c->g, "adam.v.x", &t->vx));
    GC_OK(sm_graph_find(c->g, "adam.m.b", &t->mb));
    GC_OK(sm_graph_find(c->g, "adam.v.b", &t->vb));
    gc_compile(c, threads, 3);
    for (int i = 0; i < 6; i++) t->data[i] = 0.5f + 0.25f * (float)i;
}

/* One step at step number `step` with `skipped` skipped before it; returns found_inf. */
static float toy_step(toy *t, int64_t step, int64_t skipped)
{
    GC_OK(sm_adamw_hparams_skipped(&t->cfg, step, skipped, t->hp));
    gc_run(&t->c);
    float f;
    GC_OK(sm_runtime_get(t->c.rt, t->opt.found_inf, &f, sizeof f));
    return f;
}

/* Params and moments, 27 floats. */
static void toy_state(toy *t, float out[27])
{
    sm_tensor ts[6] = {t->x, t->b, t->mx, t->vx, t->mb, t->vb};
    int at = 0;
    for (int i = 0; i < 6; i++) {
        int64_t n = sm_tensor_numel(t->c.g, ts[i]);
        memcpy(out + at, gc_data(&t->c, ts[i]), sizeof(float) * (size_t)n);
        at += (int)n;
    }
}

/* An Inf or NaN in a gradient: found_inf is 1 and nothing changes, bit for bit; with clipping on and
 * off, at 1 and 2 threads. */
Test(scaled_adamw, overflowed_step_changes_nothing)
{
    const float bad[] = {INFINITY, -INFINITY, NAN};
    for (int threads = 1; threads <= 2; threads++)
        for (int clip = 0; clip <= 1; clip++)
            for (size_t k = 0; k < 3; k++) {
                toy t;
                toy_build(&t, clip ? 1.0f : 0.0f, threads);
                t.scale = 1024.0f;
                cr_assert_eq(toy_step(&t, 0, 0), 0.0f, "a clean step");
                float before[27], after[27];
                toy_state(&t, before);
                t.data[(k * 2 + 1) % 6] = bad[k];
                cr_expect_eq(toy_step(&t, 1, 0), 1.0f, "%g in the input: found", (double)bad[k]);
                toy_state(&t, after);
                cr_expect_eq(memcmp(before, after, sizeof before), 0, "weights and moments unchanged (%g, clip %d, %d "
                             "threads)", (double)bad[k], clip, threads);
                gc_free(&t.c);
            }
}

/* A scale so large that the scaled gradients overflow f32 (the squares first, with clipping): the
 * step is skipped. */
Test(scaled_adamw, huge_scale_overflows)
{
    toy t;
    toy_build(&t, 1.0f, 2);
    t.scale = 0x1p120f;
    float before[27], after[27];
    toy_state(&t, before);
    cr_expect_eq(toy_step(&t, 0, 0), 1.0f, "2^120: the sum of squares of the scaled gradients overflows");
    toy_state(&t, after);
    cr_expect_eq(memcmp(before, after, sizeof before), 0);
    t.scale = 0x1p16f;
    cr_expect_eq(toy_step(&t, 1, 1), 0.0f, "2^16 is fine");
    toy_state(&t, after);
    cr_expect_neq(memcmp(before, after, sizeof before), 0, "and updates");
    gc_free(&t.c);
}

/* Three steps with the second overflowed: the result is a double reference of two AdamW updates
 * (t = 1, 2) on the unscaled gradients, with a scale that is not a power of two. */
Test(scaled_adamw, skipped_step_matches_reference)
{
    toy t;
    toy_build(&t, 0.0f, 2);
    t.scale = 1000.0f;
    double p[9], m[9] = {0}, v[9] = {0}, g[9];
    for (int i = 0; i < 6; i++) p[i] = gc_data(&t.c, t.x)[i];
    for (int i = 0; i < 3; i++) p[6 + i] = gc_data(&t.c, t.b)[i];
    const float *w = gc_data(&t.c, t.c.w);
    int64_t skipped = 0, applied = 0;
    for (int step = 0; step < 3; step++) {
        bool overflow = step == 1;
        float saved = t.data[2];
        if (overflow) t.data[2] = INFINITY;
        float f = toy_step(&t, step, skipped);
        t.data[2] = saved;
        cr_assert_eq(f, overflow ? 1.0f : 0.0f);
        if (overflow) {
            skipped++;
            continue;
        }
        for (int i = 0; i < 6; i++) g[i] = (double)w[i] * t.data[i];
        for (int j = 0; j < 3; j++) g[6 + j] = (double)w[j] + w[3 + j];
        double tt = (double)++applied, lr = sm_adamw_lr(&t.cfg, step);
        double bc1 = 1 / (1 - pow(t.cfg.beta1, tt)), bc2 = 1 / (1 - pow(t.cfg.beta2, tt));
        for (int i = 0; i < 9; i++) {
            m[i] = t.cfg.beta1 * m[i] + (1 - t.cfg.beta1) * g[i];
            v[i] = t.cfg.beta2 * v[i] + (1 - t.cfg.beta2) * g[i] * g[i];
            double wd = i < 6 ? t.cfg.weight_decay * p[i] : 0;
            p[i] -= lr * (m[i] * bc1 / (sqrt(v[i] * bc2) + t.cfg.eps) + wd);
        }
    }
    const float *x = gc_data(&t.c, t.x), *b = gc_data(&t.c, t.b);
    for (int i = 0; i < 9; i++) {
        double got = i < 6 ? x[i] : b[i - 6];
        cr_expect(fabs(got - p[i]) <= 2e-6 * (1 + fabs(p[i])), "param %d: %.9g, reference %.9g", i, got, p[i]);
    }
    gc_free(&t.c);
}

/* ---- a GPT: scaling by a power of two changes no bit ------------------------------------------- */

typedef struct run_out {
    float *state;   /* every parameter and moment */
    size_t n;
    float found[6];
} run_out;

static run_out train_gpt(bool scaled, float scale, int threads, float clip, int steps)
{
    sm_gpt_config c = {.vocab = 64, .context = 16, .n_layer = 2, .n_head = 2, .n_embd = 32, .mlp_ratio = 4,
                       .tied_embeddings = 1, .batch = 2, .seq = 16, .with_loss = 1};
    sm_graph *g;
    sm_gpt_tensors io;
    sm_adamw_tensors opt;
    sm_adamw_config ac;
    sm_adamw_config_default(&ac);
    ac.lr = 3e-3f;
    ac.grad_clip = clip;
    GC_OK(sm_graph_create(&g));
    GC_OK(sm_gpt_build(g, &c, &io));
    GC_OK(scaled ? sm_graph_backward_scaled(g, io.loss, NULL) : sm_graph_backward(g, io.loss));
    GC_OK(sm_graph_adamw(g, &ac, &opt));
    cr_assert_eq(opt.found_inf != SM_NO_TENSOR, scaled);
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = threads;
    sm_plan *p;
    sm_runtime *rt;
    GC_OK(sm_plan_create(g, &po, &p));
    GC_OK(sm_runtime_create(g, p, &rt));
    GC_OK(sm_runtime_set_threads(rt, threads));
    GC_OK(sm_runtime_init_params(rt, 11));
    run_out r = {0};
    int32_t tok[2 * 32];
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < 64; i++) tok[i] = (int32_t)((step * 131 + i * 37 + (i * i) % 7) % 64);
        float hp[SM_ADAMW_HPARAMS];
        GC_OK(sm_adamw_hparams(&ac, step, hp));
        GC_OK(sm_runtime_set(rt, io.tokens, tok, sizeof(int32_t) * 32));
        GC_OK(sm_runtime_set(rt, io.targets, tok + 32, sizeof(int32_t) * 32));
        GC_OK(sm_runtime_set(rt, opt.hparams, hp, sizeof hp));
        if (scaled) GC_OK(sm_runtime_set(rt, opt.loss_scale, &scale, sizeof scale));
        GC_OK(sm_runtime_run(rt));
        if (scaled) GC_OK(sm_runtime_get(rt, opt.found_inf, &r.found[step], sizeof(float)));
    }
    for (int i = 0; i < sm_graph_tensor_count(g); i++) {
        sm_role role;
        sm_tensor_info(g, i, NULL, NULL, &role, NULL, NULL);
        if (role == SM_ROLE_PARAM || role == SM_ROLE_OPTIM) r.n += (size_t)sm_tensor_numel(g, i);
    }
    r.state = malloc(sizeof(float) * r.n);
    size_t at = 0;
    for (int i = 0; i < sm_graph_tensor_count(g); i++) {
        sm_role role;
        sm_tensor_info(g, i, NULL, NULL, &role, NULL, NULL);
        if (role != SM_ROLE_PARAM && role != SM_ROLE_OPTIM) continue;
        size_t k = (size_t)sm_tensor_numel(g, i);
        GC_OK(sm_runtime_get(rt, i, r.state + at, sizeof(float) * k));
        at += k;
    }
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
    return r;
}

/* A power-of-two scale multiplies every backward value exactly and 1/S takes it back exactly (nothing
 * here comes near f32's overflow or denormals), so 6 steps give bitwise the weights and moments of
 * the unscaled graph: with clipping (the norm is unscaled too) and without, at 1 and 2 threads. A
 * scale of 1 is bitwise the same too (what --loss-scale off would be on a scaled graph). */
Test(scaled_gpt, power_of_two_scale_is_bitwise_no_scaling, .timeout = 300)
{
    for (int clip = 0; clip <= 1; clip++) {
        run_out base = train_gpt(false, 1.0f, 2, clip ? 1.0f : 0.0f, 6);
        const float scales[] = {1.0f, 0x1p16f, 0x1p30f};
        for (int k = 0; k < 3; k++)
            for (int threads = 1; threads <= 2; threads++) {
                run_out r = train_gpt(true, scales[k], threads, clip ? 1.0f : 0.0f, 6);
                cr_assert_eq(r.n, base.n);
                for (int s = 0; s < 6; s++) cr_expect_eq(r.found[s], 0.0f, "no overflow at step %d", s);
                size_t diff = 0;
                for (size_t i = 0; i < r.n; i++) diff += memcmp(&r.state[i], &base.state[i], sizeof(float)) != 0;
                cr_expect_eq(diff, 0, "scale %g, clip %d, %d threads: %zu of %zu values differ from no scaling",
                             (double)scales[k], clip, threads, diff, r.n);
                free(r.state);
            }
        free(base.state);
    }
}

/* A scale too large for the model's gradients (2^120: the squares of the scaled gradients overflow
 * f32, if the gradients themselves do not): every step is skipped, so the weights and moments stay bitwise those of the initialisation (0 steps), at
 * 1 and 2 threads. */
Test(scaled_gpt, overflowing_scale_skips_every_step, .timeout = 120)
{
    run_out init = train_gpt(true, 1.0f, 2, 1.0f, 0);
    for (int threads = 1; threads <= 2; threads++) {
        run_out r = train_gpt(true, 0x1p120f, threads, 1.0f, 6);
        for (int s = 0; s < 6; s++) cr_expect_eq(r.found[s], 1.0f, "step %d overflows (%d threads)", s, threads);
        cr_assert_eq(r.n, init.n);
        cr_expect_eq(memcmp(r.state, init.state, sizeof(float) * r.n), 0, "weights or moments changed (%d threads)",
                     threads);
        free(r.state);
    }
    free(init.state);
}

/* ---- smallmind train --loss-scale -------------------------------------------------------------- */

#define TINY "gpt-tiny -B 2 -T 16 --val-every 0 --log-every 1 --threads 2"
/* a scale near where this model's scaled gradient norm overflows f32's squares, regrown every 2 clean
 * steps: overflows come back every few steps, before and after any save */
#define FORCED "--loss-scale dynamic --loss-scale-init 4.6e18 --loss-scale-interval 2"

static char dir[256];
static const char *at(const char *name) { return sm_test_path(dir, name); }
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_loss_scale_XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }

/* Lines of the log holding `what`. */
static int count_lines(const char *log, const char *what)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* 12 steps straight == 5 steps, save, resume, 7 more steps, bitwise (the whole checkpoint file:
 * weights, moments and the scaler's state), with overflows skipped both before and after the save. */
Test(train_loss_scale, resume_is_exact_across_overflows, .init = setup, .fini = teardown, .timeout = 300)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s train " TINY " " FORCED " --data %s --steps 12 --save %s > %s", cli, data, at("a.st"),
                            at("a.log")), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " " FORCED " --data %s --steps 12 --until 5 --save %s > %s", cli, data,
                            at("b.st"), at("b1.log")), 0);
    cr_assert_eq(sm_test_sh("%s train --data %s --threads 2 --log-every 1 --val-every 0 --resume %s --save %s > %s", cli,
                            data, at("b.st"), at("b.st"), at("b2.log")), 0);
    size_t na, nb, n1, n2;
    char *a = sm_test_read(at("a.st"), &na), *b = sm_test_read(at("b.st"), &nb), *l1 = sm_test_read(at("b1.log"), &n1),
         *l2 = sm_test_read(at("b2.log"), &n2);
    int before = count_lines(l1, "(overflow: skipped)"), after = count_lines(l2, "(overflow: skipped)");
    cr_expect_gt(before, 0, "overflows before the save:\n%s", l1);
    cr_expect_gt(after, 0, "overflows after the resume:\n%s", l2);
    cr_expect(strstr(l2, "loss scaling dynamic"), "the resumed run scales:\n%s", l2);
    cr_expect(na == nb && !memcmp(a, b, na), "the resumed run's checkpoint differs from the straight run's");
    cr_expect(strstr(a + 8, "\"loss_scale\":\"mode=dynamic scale="), "the scaler's state is in the checkpoint");
    /* a loss-scale option on resume starts a new scaler, keeping the skipped count */
    char skipped[64];
    const char *last = strstr(l2, "| skipped "), *p;
    while (last && (p = strstr(last + 1, "| skipped "))) last = p;
    cr_assert(last);
    snprintf(skipped, sizeof skipped, ", %d steps skipped so far", atoi(last + 10));
    cr_assert_eq(sm_test_sh("%s train --data %s --threads 2 --val-every 0 --resume %s --steps 13 --loss-scale 1024 > %s",
                            cli, data, at("b.st"), at("c.log")), 0);
    char *l3 = sm_test_read(at("c.log"), &n1);
    cr_expect(strstr(l3, "loss scaling fixed: scale 1024") && strstr(l3, skipped), "expected '%s':\n%s", skipped, l3);
    free(a), free(b), free(l1), free(l2), free(l3);
}

/* The default (auto: an f32 model is not scaled) and --loss-scale off train exactly as before, with
 * no scaling on the progress line; a fixed power-of-two scale gives the same tensors and shows
 * "scale 1024 | skipped 0". */
Test(train_loss_scale, off_auto_and_power_of_two, .init = setup, .fini = teardown, .timeout = 300)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 4 --save %s > %s", cli, data, at("auto.st"),
                            at("auto.log")), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " --loss-scale off --data %s --steps 4 --save %s > /dev/null", cli, data,
                            at("off.st")), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " --loss-scale 1024 --data %s --steps 4 --save %s > %s", cli, data,
                            at("fixed.st"), at("fixed.log")), 0);
    cr_expect_eq(sm_test_sh("cmp -s %s %s", at("auto.st"), at("off.st")), 0, "auto is off for an f32 model");
    size_t n;
    char *log = sm_test_read(at("auto.log"), &n), *fl = sm_test_read(at("fixed.log"), &n);
    cr_expect_null(strstr(log, "skipped"), "no scaling, nothing on the progress line:\n%s", log);
    cr_expect(strstr(fl, "| scale 1024 | skipped 0"), "the progress line shows the scale and the skipped steps:\n%s", fl);
    /* the tensors: every "sm.xxh3.<name>" checksum of the two files is the same */
    char *x = sm_test_read(at("off.st"), &n), *y = sm_test_read(at("fixed.st"), &n);
    int compared = 0;   /* (the headers start after 8 bytes of length, which hold zeros) */
    for (const char *p = x + 8; (p = strstr(p, "\"sm.xxh3.")); p++) {
        char key[160];
        const char *q = strchr(p + 1, '"');
        const char *end = strchr(q + 3, '"');
        cr_assert(q && end && end - p < (long)sizeof key);
        memcpy(key, p, (size_t)(end - p + 1));
        key[end - p + 1] = 0;
        cr_expect(strstr(y + 8, key), "tensor checksum %s differs with --loss-scale 1024", key);
        compared++;
    }
    cr_expect_gt(compared, 20);
    free(log), free(fl), free(x), free(y);
}

/* auto follows the model's storage: gpt-tiny.smg with its MLP activations cast through f16 (their
 * gradients come back through f16 too) is scaled dynamically; --loss-scale off turns that off. */
Test(train_loss_scale, auto_is_dynamic_for_an_f16_model, .init = setup, .fini = teardown, .timeout = 120)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus(), *ex = getenv("SM_EXAMPLES");
    cr_assert(ex, "SM_EXAMPLES is not set");
    cr_assert_eq(sm_test_sh("sed 's/^    m   = gelu(m)$/    m   = gelu(m)\\n    m16 = cast(m, dtype=f16)\\n    m   = "
                            "cast(m16, dtype=f32)/' %s/gpt-tiny.smg > %s && grep -q m16 %s", ex, at("f16.smg"), at("f16.smg")), 0);
    cr_assert_eq(sm_test_sh("%s train %s -T 16 --val-every 0 --log-every 1 --threads 2 --steps 2 --data %s > %s", cli,
                            at("f16.smg"), data, at("auto.log")), 0);
    cr_assert_eq(sm_test_sh("%s train %s -T 16 --val-every 0 --log-every 1 --threads 2 --steps 2 --loss-scale off "
                            "--data %s > %s", cli, at("f16.smg"), data, at("off.log")), 0);
    size_t n;
    char *a = sm_test_read(at("auto.log"), &n), *o = sm_test_read(at("off.log"), &n);
    cr_expect(strstr(a, "loss scaling dynamic: scale 65536") && strstr(a, "step 2/2") && strstr(a, "| skipped 0"),
              "auto on an f16 model:\n%s", a);
    cr_expect(!strstr(o, "loss scaling") && !strstr(o, "skipped"), "--loss-scale off:\n%s", o);
    free(a), free(o);
}

Test(train_loss_scale, bad_options, .init = setup, .fini = teardown)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    const char *bad[] = {"--loss-scale abc", "--loss-scale 0", "--loss-scale -2", "--loss-scale inf", "--loss-scale nan",
                         "--loss-scale 1e39", "--loss-scale", "--loss-scale-init 0.5", "--loss-scale-init 1e39",
                         "--loss-scale-interval 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sm_test_sh("%s train " TINY " --data %s --steps 1 %s > /dev/null 2> %s", cli, data, bad[i], at("err"));
        cr_expect_eq(rc, 2, "'%s' exits %d", bad[i], rc);
        size_t n;
        char *e = sm_test_read(at("err"), &n);
        cr_expect(strstr(e, "--loss-scale"), "'%s': the message names the option: %s", bad[i], e);
        free(e);
    }
}
