/* test_plan_rss.c — the memory a run really takes matches its plan: the rise of the peak resident set
 * size (VmHWM, /proc/self/status) over a run must be within 5% of the plan's arenas.
 *
 * How the baseline is kept honest: the measurement runs in a freshly forked child (nothing else of
 * the test runner's in it). The child first starts the OpenMP team (thread stacks, runtime state)
 * and builds the graph and plan (small tables), then resets the kernel's peak RSS to the current RSS
 * (/proc/self/clear_refs) and reads it: that is the baseline. Then it creates the runtime (one
 * committed allocation per arena), initialises the parameters, sets the inputs and runs twice; the
 * peak over all that minus the baseline is what running the plan cost. What is left out is said
 * in docs/memory.md: the process's code, libc and OpenMP runtimes, thread stacks, the graph and plan
 * tables (counted by sm_plan_estimate). */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/rng.h"
#include "memory/sysinfo.h"
#include "smallmind.h"

typedef struct measure {
    int ok;
    char msg[512];
    uint64_t baseline, peak, arenas, estimate;
} measure;

/* An MLP stack: x [R, C] -> (linear C->F, scale, linear F->C, add residual) x L. Big weights, small
 * activations: the weights arena dominates, the activations arena is reused. */
static sm_status build_mlp(sm_graph *g, sm_tensor *x, sm_tensor *y)
{
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
    return s;
}

static measure child(void)
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
    sm_tensor x, y;
    if (sm_graph_create(&g) || build_mlp(g, &x, &y) || sm_plan_create(g, NULL, &p)) {
        snprintf(m.msg, sizeof m.msg, "setup: %s", sm_last_error());
        return m;
    }
    int64_t n = sm_tensor_numel(g, x);
    float *in = malloc(sizeof *in * (size_t)n);
    for (int64_t i = 0; i < n; i++) in[i] = (float)sm_rng_normal(5, (uint64_t)i);
    if (sm_sysinfo_reset_peak_rss() || sm_sysinfo_rss(NULL, &m.baseline, NULL)) {
        snprintf(m.msg, sizeof m.msg, "reading RSS: %s", sm_last_error());
        return m;
    }
    if (sm_runtime_create(g, p, &rt) || sm_runtime_init_params(rt, 1)) {
        snprintf(m.msg, sizeof m.msg, "runtime: %s", sm_last_error());
        return m;
    }
    for (int r = 0; r < 2; r++)
        if (sm_runtime_set(rt, x, in, sizeof *in * (size_t)n) || sm_runtime_run(rt)) {
            snprintf(m.msg, sizeof m.msg, "run: %s", sm_last_error());
            return m;
        }
    if (sm_sysinfo_rss(NULL, NULL, &m.peak)) {
        snprintf(m.msg, sizeof m.msg, "reading RSS: %s", sm_last_error());
        return m;
    }
    m.arenas = sm_plan_total_bytes(p);
    m.estimate = sm_plan_estimate(p);
    m.ok = 1;
    sm_runtime_free(rt);
    sm_plan_free(p);
    sm_graph_free(g);
    free(in);
    return m;
}

Test(plan_rss, run_peak_matches_plan)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        measure m = child();
        ssize_t k = write(fd[1], &m, sizeof m);
        _exit(k == (ssize_t)sizeof m ? 0 : 1);
    }
    close(fd[1]);
    measure m;
    ssize_t k = read(fd[0], &m, sizeof m);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_assert_eq(k, (ssize_t)sizeof m, "the child died (status %d)", status);
    cr_assert(m.ok, "%s", m.msg);
    double rise = (double)(m.peak - m.baseline), plan = (double)m.arenas;
    cr_log_info("peak RSS rose by %.0f bytes; the plan's arenas are %.0f bytes (ratio %.4f)", rise, plan, rise / plan);
    cr_assert_gt(plan, 32e6, "the test graph should be big enough to measure (%.0f bytes)", plan);
    cr_assert(rise >= 0.95 * plan && rise <= 1.05 * plan, "peak RSS rose by %.0f bytes, the plan says %.0f (ratio %.4f)",
              rise, plan, rise / plan);
}
