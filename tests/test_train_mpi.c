/* test_train_mpi.c — data-parallel training end to end: `mpirun -np 2 smallmind train` gives the loss
 * trace of one process on the same global batch (within the tolerance below), rank 0 alone prints
 * and saves, the checkpoint holds the global batch so a run resumes on another number of ranks, and a
 * batch that does not split over the ranks is refused.
 *
 * Needs Open MPI (CMake passes its mpirun as $SM_MPIRUN); without it the tests skip, saying so.
 * mpirun refuses root unless told (--allow-run-as-root and the two OMPI_ALLOW_RUN_AS_ROOT variables),
 * and refuses more ranks than cores unless --oversubscribe: CI machines have 2 cores and run as root.
 * --bind-to none: each rank's OpenMP threads may use any core. -x passes the sanitizer options
 * CMakeLists.txt sets for this test (Open MPI's leaks suppressed) on to the ranks.
 *
 * Tolerance: a rank's gradient is the mean over its rows and the ranks' gradients are averaged, so
 * the sums are grouped differently from one process's; the losses agree to 1e-6 relative in
 * practice. The printed losses (4 decimals) must agree within 2e-4 and the weights after the run
 * within 1e-5. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/safetensors.h"
#include "tests/helpers/cli_run.h"

#define TINY "gpt-tiny -B 4 -T 32 --threads 1 --log-every 1 --val-every 3 --val-batches 2 --steps 6"
#define LOSS_TOL 2e-4
#define WEIGHT_TOL 1e-5
#define MAX_LINES 64

static char dir[256];
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_train_mpi_XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(train_mpi, .init = setup, .fini = teardown, .timeout = 300);

/* The mpirun command line for n ranks, or skips the test when Open MPI was not found at build time. */
static const char *mpirun(int n)
{
    static char cmd[1024];
    const char *m = getenv("SM_MPIRUN");
    if (!m || !*m) cr_skip_test("Open MPI is not installed (apt-get install libopenmpi-dev openmpi-bin, rebuild)");
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s --allow-run-as-root --oversubscribe "
             "--bind-to none -x OMP_WAIT_POLICY -x ASAN_OPTIONS -x LSAN_OPTIONS -np %d",
             m, n);
    return cmd;
}

/* The losses a run printed: every "loss X" and "validation loss X", in order. */
static int read_losses(const char *log, double *out)
{
    FILE *f = fopen(log, "r");
    cr_assert(f, "%s", log);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < MAX_LINES) {
        const char *p = strstr(line, "loss ");
        if (p) out[n++] = atof(p + 5);
    }
    fclose(f);
    return n;
}

static void assert_same_losses(const char *a, const char *b)
{
    double x[MAX_LINES], y[MAX_LINES];
    int n = read_losses(a, x), m = read_losses(b, y);
    cr_assert_eq(n, m, "%s has %d losses, %s %d", a, n, b, m);
    cr_assert_geq(n, 6);
    for (int i = 0; i < n; i++)
        cr_assert_leq(fabs(x[i] - y[i]), LOSS_TOL, "loss %d: %.4f vs %.4f", i, x[i], y[i]);
}

/* Every tensor of a and b within WEIGHT_TOL, and the same step and global batch. */
static void assert_close_checkpoints(const char *a, const char *b)
{
    sm_st_file *fa, *fb;
    cr_assert_eq(sm_st_open(a, &fa), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_st_open(b, &fb), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_st_count(fa), sm_st_count(fb));
    cr_assert_gt(sm_st_count(fa), 10);
    for (int i = 0; i < sm_st_count(fa); i++) {
        const sm_st_tensor *ta = sm_st_at(fa, i), *tb = sm_st_find(fb, ta->name);
        cr_assert(tb, "%s missing", ta->name);
        cr_assert_eq(ta->nbytes, tb->nbytes);
        const float *u = ta->data, *v = tb->data;
        for (size_t k = 0; k < ta->nbytes / sizeof(float); k++)
            cr_assert_leq(fabsf(u[k] - v[k]), WEIGHT_TOL, "%s[%zu]: %g vs %g", ta->name, k, u[k], v[k]);
    }
    cr_assert_str_eq(sm_st_metadata_get(fa, "step"), sm_st_metadata_get(fb, "step"));
    cr_assert_str_eq(sm_st_metadata_get(fa, "batch"), sm_st_metadata_get(fb, "batch"));
    sm_st_close(fa);
    sm_st_close(fb);
}

static int count_in_file(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

Test(train_mpi, two_ranks_give_the_loss_trace_of_one)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus(), *mpi = mpirun(2);
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --save %s/one.st >%s/one.log", cli, data, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s %s train " TINY " --data %s --save %s/two.st >%s/two.log", mpi, cli, data, dir, dir), 0,
                 "2 ranks");
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/one.log", dir);
    snprintf(b, sizeof b, "%s/two.log", dir);
    assert_same_losses(a, b);
    cr_assert_eq(count_in_file(b, "step 6/6"), 1, "rank 0 alone prints progress");
    cr_assert_eq(count_in_file(b, "data parallel: 2 ranks of B=2"), 1);
    snprintf(a, sizeof a, "%s/one.st", dir);
    snprintf(b, sizeof b, "%s/two.st", dir);
    assert_close_checkpoints(a, b);   /* also: the checkpoint's batch is the global one, 4 */
}

Test(train_mpi, resume_on_another_number_of_ranks)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus(), *mpi = mpirun(2);
    char full[300], resumed[300];
    snprintf(full, sizeof full, "%s/full.st", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed.st", dir);
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --save %s >/dev/null", cli, data, full), 0);
    /* 2 ranks, then 1 */
    cr_assert_eq(sm_test_sh("%s %s train " TINY " --until 3 --data %s --save %s/part2.st >/dev/null", mpi, cli, data,
                            dir), 0);
    cr_assert_eq(sm_test_sh("%s train --threads 1 --val-every 3 --data %s --resume %s/part2.st --save %s >/dev/null", cli,
                            data, dir, resumed), 0);
    assert_close_checkpoints(full, resumed);
    /* 1 rank, then 2 */
    cr_assert_eq(sm_test_sh("%s train " TINY " --until 3 --data %s --save %s/part1.st >/dev/null", cli, data, dir), 0);
    cr_assert_eq(sm_test_sh("%s %s train --threads 1 --val-every 3 --data %s --resume %s/part1.st --save %s >/dev/null",
                            mpi, cli, data, dir, resumed), 0);
    assert_close_checkpoints(full, resumed);
}

Test(train_mpi, batch_must_split_over_the_ranks)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus(), *mpi = mpirun(2);
    int rc = sm_test_sh("%s %s train gpt-tiny -B 3 -T 16 --steps 2 --data %s >%s/out.log 2>%s/err.log", mpi, cli, data,
                        dir, dir);
    cr_assert_neq(rc, 0);
    char err[300];
    snprintf(err, sizeof err, "%s/err.log", dir);
    cr_assert_geq(count_in_file(err, "the batch B=3 does not split over 2 ranks"), 1);
}
