/* test_plan_rss.c — the memory a run really takes matches its plan: the rise of the peak resident set
 * size (VmHWM, /proc/self/status) over a run must be within 5% of the plan's arenas.
 *
 * How the baseline is kept honest: the measurement runs in a freshly forked child (nothing else of
 * the test runner's in it). The child first starts the OpenMP team (thread stacks, runtime state)
 * and builds the graph and plan (small tables), then resets the kernel's peak RSS to the current RSS
 * (/proc/self/clear_refs) and reads it: that is the baseline. Then it creates the runtime (one
 * committed allocation per arena), initialises the parameters, sets the inputs and runs twice; the
 * peak over all that minus the baseline is what running the plan cost. A whole first cycle (create,
 * init, one run, free) runs before the baseline, so the code pages it touches (kernels, libm) and the
 * workers' stack pages count as the process's, not the plan's. What is left out is said in
 * docs/memory.md: the process's code, libc and OpenMP runtimes, thread stacks, the graph and plan
 * tables (counted by sm_plan_estimate). */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/rng.h"
#include "memory/sysinfo.h"
#include "smallmind.h"

typedef struct measure {
    int ok;
    char msg[512];
    uint64_t baseline, peak, arenas, estimate;
} measure;

/* An MLP stack: x [R, C] -> (linear C->F, scale, linear F->C, add residual) x L. Big weights, small
 * activations: the weights arena dominates, the activations arena is reused. */
static sm_status build_mlp(sm_graph *g, sm_tensor *in, int *n_in)
{
    sm_tensor xt, yt, *x = &xt, *y = &yt;
    enum { R = 16, C = 512, F = 2048, L = 4 };
    int64_t xs[2] = {R, C}, w1[2] = {F, C}, w2[2] = {C, F};
    sm_status s = sm_graph_input(g, "x", SM_F32, 2, xs, x);
    sm_tensor h = *x;
    char name[32];
    for (int l = 0; !s && l < L; l++) {
        sm_tensor a, b, f1, f2;
        snprintf(name, sizeof name, "w1_%d", l);
        s = sm_graph_param(g, name, SM_F32, 2, w1, SM_INIT_NORMAL, 0.02f, &a);
        snprintf(name, sizeof name, "w2_%d", l);
        if (!s) s = sm_graph_param(g, name, SM_F32, 2, w2, SM_INIT_NORMAL, 0.02f, &b);
        if (!s) s = sm_linear(g, h, a, SM_NO_TENSOR, NULL, &f1);
        if (!s) s = sm_scale(g, f1, 0.5f, NULL, &f1);
        if (!s) s = sm_linear(g, f1, b, SM_NO_TENSOR, NULL, &f2);
        if (!s) s = sm_add(g, h, f2, NULL, &h);
    }
    if (!s) s = sm_graph_mark_output(g, h);
    *y = h;
    in[0] = *x;
    *n_in = 1;
    return s;
}

/* A training step (forward, backward, AdamW) of a small GPT: L=2 C=384 H=6 V=256, B=1 T=16: about
 * 3.7M parameters, so weights, gradients and the two moments are ~59 MB, activations ~3 MB. */
static sm_status build_gpt_train(sm_graph *g, sm_tensor *in, int *n_in)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.n_layer = 2, c.batch = 1, c.seq = 16, c.context = 16;
    sm_gpt_tensors io;
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    sm_adamw_config_default(&ac);
    sm_status s = sm_gpt_build(g, &c, &io);
    if (!s) s = sm_graph_backward(g, io.loss);
    if (!s) s = sm_graph_adamw(g, &ac, &opt);
    if (s) return s;
    in[0] = io.tokens, in[1] = io.targets, in[2] = opt.hparams;
    *n_in = 3;
    return SM_OK;
}

typedef sm_status (*builder)(sm_graph *g, sm_tensor *in, int *n_in);

static measure child(builder build)
{
    measure m = {0};
    /* start the OpenMP team before the baseline: its threads and stacks are process overhead */
    volatile int sink = 0;
#pragma omp parallel
    sink += omp_get_thread_num() >= 0;
    (void)sink;
    sm_graph *g;
    sm_plan *p;
    sm_runtime *rt;
    sm_tensor in_t[4];
    int n_in = 0;
    sm_status s = sm_graph_create(&g);
    if (!s) s = build(g, in_t, &n_in);
    if (s || sm_plan_create(g, NULL, &p)) {
        snprintf(m.msg, sizeof m.msg, "setup: %s", sm_last_error());
        return m;
    }
    /* inputs: small values that are valid as floats and as token ids (the GPT's vocab is 256) */
    void *in[4];
    size_t in_bytes[4];
    for (int k = 0; k < n_in; k++) {
        int64_t n = sm_tensor_numel(g, in_t[k]);
        in_bytes[k] = 4 * (size_t)n;
        in[k] = malloc(in_bytes[k]);
        sm_dtype dt;
        sm_tensor_info(g, in_t[k], NULL, &dt, NULL, NULL, NULL);
        for (int64_t i = 0; i < n; i++) {
            if (dt == SM_I32) ((int32_t *)in[k])[i] = (int32_t)(sm_rng_mix(5 + (uint64_t)i) % 256);
            else ((float *)in[k])[i] = k == 2 ? 1e-4f : (float)sm_rng_normal(5, (uint64_t)i);
        }
    }
    /* Cycle 0 warms up what is process overhead, not the plan's: the code pages of the kernels and
     * of libm (file-backed, counted in RSS once touched), the workers' stack pages. Its arenas are
     * unmapped again at sm_runtime_free. Cycle 1 is measured. */
    for (int cycle = 0; cycle < 2; cycle++) {
        if (cycle == 1 && (sm_sysinfo_reset_peak_rss() || sm_sysinfo_rss(NULL, &m.baseline, NULL))) {
            snprintf(m.msg, sizeof m.msg, "reading RSS: %s", sm_last_error());
            return m;
        }
        s = sm_runtime_create(g, p, &rt);
        /* one thread: the arenas are committed at creation whatever runs, and a 2-thread team on a
         * loaded 2-core machine waits at every barrier */
        if (s || sm_runtime_set_threads(rt, 1) || sm_runtime_init_params(rt, 1)) {
            snprintf(m.msg, sizeof m.msg, "runtime: %s", sm_last_error());
            return m;
        }
        for (int r = 0; r < 1 + cycle; r++) {
            for (int k = 0; k < n_in && !s; k++) s = sm_runtime_set(rt, in_t[k], in[k], in_bytes[k]);
            if (s || sm_runtime_run(rt)) {
                snprintf(m.msg, sizeof m.msg, "run: %s", sm_last_error());
                return m;
            }
        }
        if (cycle == 1 && sm_sysinfo_rss(NULL, NULL, &m.peak)) {
            snprintf(m.msg, sizeof m.msg, "reading RSS: %s", sm_last_error());
            return m;
        }
        sm_runtime_free(rt);
    }
    m.arenas = sm_plan_total_bytes(p);
    m.estimate = sm_plan_estimate(p);
    m.ok = 1;
    sm_plan_free(p);
    sm_graph_free(g);
    for (int k = 0; k < n_in; k++) free(in[k]);
    return m;
}

static measure measure_in_child(builder build)
{
    measure m = {0};
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        m = child(build);
        ssize_t k = write(fd[1], &m, sizeof m);
        _exit(k == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fd[1]);
    ssize_t k = read(fd[0], &m, sizeof m);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert_eq(k, (ssize_t)sizeof m, "the child died (status %d)", status);
    cr_assert(m.ok, "%s", m.msg);
    return m;
}

static void expect_within_5_percent(const measure *m, const char *what)
{
    double rise = (double)(m->peak - m->baseline), plan = (double)m->arenas;
    cr_log_info("%s: peak RSS rose by %.0f bytes; the plan's arenas are %.0f bytes (ratio %.4f)", what, rise, plan,
                rise / plan);
    cr_assert_gt(plan, 32e6, "the test graph should be big enough to measure (%.0f bytes)", plan);
    cr_assert(rise >= 0.95 * plan && rise <= 1.05 * plan, "%s: peak RSS rose by %.0f bytes, the plan says %.0f "
              "(ratio %.4f)", what, rise, plan, rise / plan);
}

Test(plan_rss, inference_run_peak_matches_plan)
{
    measure m = measure_in_child(build_mlp);
    expect_within_5_percent(&m, "MLP inference");
}

Test(plan_rss, training_run_peak_matches_plan)
{
    measure m = measure_in_child(build_gpt_train);
    expect_within_5_percent(&m, "GPT training step");
}
