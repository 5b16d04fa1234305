/* test_train_cli.c — training end to end through the CLI: checkpoints resume bit-identically, Ctrl-C
 * and SIGTERM save (and a second signal during the save leaves no temp file), mismatched or corrupt
 * checkpoints are refused with the tensor named, generate and eval run; what would fail late (the
 * --save path, the memory budget) fails before step 1, and named pipes as inputs fail at once. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontends/safetensors.h"
#include "tests/helpers/cli_run.h"

#define TINY "gpt-tiny -B 2 -T 16 --val-every 0"

static char dir[256];
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_train_cli_XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(train_cli, .init = setup, .fini = teardown, .timeout = 300);

/* Every tensor of a and b has the same bytes (and the same step). */
static void assert_same_checkpoint(const char *a, const char *b)
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
        cr_assert(memcmp(ta->data, tb->data, ta->nbytes) == 0, "tensor %s differs", ta->name);
    }
    cr_assert_str_eq(sm_st_metadata_get(fa, "step"), sm_st_metadata_get(fb, "step"));
    sm_st_close(fa);
    sm_st_close(fb);
}

Test(train_cli, resume_continues_bit_identically)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 8 --save %s/full.st >/dev/null", cli, data, dir), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 8 --until 3 --save %s/part.st >/dev/null", cli, data,
                            dir), 0);
    cr_assert_eq(sm_test_sh("%s train --data %s --resume %s/part.st --threads 1 --save %s/resumed.st >/dev/null", cli,
                            data, dir, dir), 0, "resume (with another thread count)");
    char full[300], resumed[300];
    snprintf(full, sizeof full, "%s/full.st", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed.st", dir);
    assert_same_checkpoint(full, resumed);
}

/* Starts `train MODEL --steps 100000 --data <corpus> --save ckpt` in the background with stdout in
 * <dir>/log, and returns once it has printed "step 2/". */
static pid_t start_training(const char *model, const char *ckpt)
{
    char log[300], cmd[512];
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(cmd, sizeof cmd, "exec \"$0\" train %s --log-every 1 --steps 100000 --data \"$1\" --save \"$2\"", model);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "w", stdout);
        execl("/bin/sh", "sh", "-c", cmd, sm_test_cli(), sm_test_corpus(), ckpt, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1200; i++) {
        FILE *f = fopen(log, "r");
        char buf[4096] = "";
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        if (strstr(buf, "step 2/")) break;
        usleep(50000);
    }
    return pid;
}

/* The signal finishes the step, saves and exits with 128 + the signal; the checkpoint resumes. */
static void stop_saves(int sig)
{
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/int.st", dir);
    pid_t pid = start_training(TINY, ckpt);
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 128 + sig, "exit status %d", st);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(ckpt, &f), SM_OK, "the checkpoint saved on signal %d loads: %s", sig, sm_last_error());
    cr_assert_geq(atoi(sm_st_metadata_get(f, "step")), 2);
    sm_st_close(f);
    cr_assert_eq(sm_test_sh("%s train --data %s --resume %s --steps 5 --until 5 >/dev/null 2>&1", sm_test_cli(),
                            sm_test_corpus(), ckpt), 0, "and resumes");
}

Test(train_cli, ctrl_c_finishes_the_step_and_saves) { stop_saves(SIGINT); }

Test(train_cli, sigterm_finishes_the_step_and_saves) { stop_saves(SIGTERM); }

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

/* A second Ctrl-C while the checkpoint is being written does not cut the save short: the process is
 * caught mid-save (its temp file there while it is stopped), gets the second SIGINT, and still
 * finishes the save and exits 130 with no temp file left. The model is the 10M-parameter gpt, so
 * its 130 MB checkpoint takes long enough to be caught; should the save slip through anyway, the
 * run is repeated. */
Test(train_cli, a_second_ctrl_c_during_the_save_leaves_no_temp_file)
{
    char ckpt[300];
    snprintf(ckpt, sizeof ckpt, "%s/big.st", dir);
    bool caught = false;
    for (int attempt = 0; attempt < 5 && !caught; attempt++) {
        unlink(ckpt);
        pid_t pid = start_training("gpt -B 1 -T 16 --val-every 0", ckpt);
        kill(pid, SIGINT);
        int st;
        while (!count_temp_files() && waitpid(pid, &st, WNOHANG) == 0) usleep(500);
        if (count_temp_files() && kill(pid, SIGSTOP) == 0 && waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st)) {
            caught = count_temp_files() > 0;   /* still there while stopped: mid-save */
            if (caught) kill(pid, SIGINT);
            kill(pid, SIGCONT);
        }
        if (waitpid(pid, &st, 0) != pid) continue;   /* it had exited already: try again */
        if (!caught) continue;
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d: the save was cut short", st);
        cr_assert_eq(count_temp_files(), 0, "no temp file is left");
        sm_st_file *f;
        cr_assert_eq(sm_st_open(ckpt, &f), SM_OK, "%s", sm_last_error());
        sm_st_close(f);
    }
    cr_assert(caught, "the save was never caught in progress in 5 runs");
}

Test(train_cli, wrong_or_corrupt_checkpoints_are_refused)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 1 --save %s/a.st >/dev/null", cli, data, dir), 0);
    /* another model's weights: the message names a tensor */
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/a.st --data %s -T 16 >/dev/null 2>&1", cli, dir, data), 0);
    /* a byte near the end: inside the last tensor's data, past the JSON header */
    cr_assert_eq(sm_test_sh("cp %s/a.st %s/b.st && printf 'X' | dd of=%s/b.st bs=1 seek=$(($(stat -c %%s %s/b.st) - 100)) "
                            "conv=notrunc 2>/dev/null", dir, dir, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s/b.st -n 2 2>%s/err >/dev/null", cli, dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'checksum mismatch' %s/err", dir), 0, "a flipped byte is caught by its checksum");
    cr_assert_eq(sm_test_sh("head -c 3000 %s/a.st > %s/c.st && %s generate --checkpoint %s/c.st -n 2 2>%s/err >/dev/null",
                            dir, dir, cli, dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'c.st' %s/err", dir), 0, "a truncated file is refused, naming it");
}

Test(train_cli, generate_and_eval_run_on_a_checkpoint)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 2 --save %s/m.st >/dev/null", cli, data, dir), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s/m.st --prompt 'In the' -n 20 --seed 3 > %s/g1", cli, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s generate --checkpoint %s/m.st --prompt 'In the' -n 20 --seed 3 > %s/g2", cli, dir, dir), 0);
    cr_assert_eq(sm_test_sh("cmp -s %s/g1 %s/g2 && grep -q '^In the' %s/g1", dir, dir, dir), 0, "same seed, same text");
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s/m.st --data %s -T 16 -B 4 --json > %s/e", cli, dir, data, dir), 0);
    cr_assert_eq(sm_test_sh("grep -q '\"perplexity\"' %s/e", dir), 0);
    cr_assert_eq(sm_test_sh("%s train --data %s --nonsense 2>/dev/null", cli, data), 2, "usage errors exit 2");
}

Test(train_cli, graph_file_checkpoints_keep_their_defines)
{
    const char *ex = getenv("SM_EXAMPLES");
    cr_assert(ex);
    cr_assert_eq(sm_test_sh("%s train %s/llama.smg -D C=32 -D H=4 -T 16 -B 2 --val-every 0 --steps 2 --data %s "
                            "--save %s/ll.st >/dev/null", sm_test_cli(), ex, sm_test_corpus(), dir), 0);
    /* from another directory, with no -D: the checkpoint names the file and its defines */
    cr_assert_eq(sm_test_sh("cd / && %s generate --checkpoint %s/ll.st -n 4 >/dev/null", sm_test_cli(), dir), 0);
    cr_assert_eq(sm_test_sh("%s train --resume %s/ll.st --data %s --steps 3 --val-every 0 >/dev/null", sm_test_cli(), dir,
                            sm_test_corpus()), 0);
}

/* The --save path is checked before step 1: a run of 100000 steps fails at once, not at its end. */
Test(train_cli, save_path_is_checked_before_step_1)
{
    const char *cli = sm_test_cli();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 100000 --save %s/no/such/dir/x.st >%s/out 2>%s/err",
                            cli, sm_test_corpus(), dir, dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q -- '--save: .*does not exist' %s/err", dir), 0, "the message says why");
    cr_assert_eq(sm_test_sh("grep -q 'step' %s/out", dir), 1, "no step ran");

    /* the training data (here a copy), also through a hard link: refused, and left as it was */
    cr_assert_eq(sm_test_sh("cp %s %s/data.txt && ln %s/data.txt %s/hard.txt", sm_test_corpus(), dir, dir, dir), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s/data.txt --steps 2 --save %s/hard.txt >/dev/null 2>%s/err",
                            cli, dir, dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'is the training data' %s/err && cmp -s %s %s/data.txt", dir, sm_test_corpus(),
                            dir), 0, "refused, the data intact");

    /* the graph file */
    const char *ex = getenv("SM_EXAMPLES");
    cr_assert(ex);
    cr_assert_eq(sm_test_sh("cp %s/llama.smg %s/m.smg && %s train %s/m.smg -D C=32 -D H=4 -T 16 -B 2 --data %s "
                            "--steps 2 --save %s/m.smg >/dev/null 2>%s/err", ex, dir, cli, dir, sm_test_corpus(), dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q \"is the model's graph file\" %s/err && cmp -s %s/llama.smg %s/m.smg", dir, ex,
                            dir), 0, "refused, the graph file intact");

    /* a named pipe (a save would replace it, and nothing reads it) */
    cr_assert_eq(sm_test_sh("mkfifo %s/pipe && timeout 10 %s train " TINY " --data %s --steps 2 --save %s/pipe "
                            ">/dev/null 2>%s/err", dir, cli, sm_test_corpus(), dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'named pipe' %s/err && test -p %s/pipe", dir, dir), 0);
}

/* A named pipe as any input is refused at once rather than waited on forever. */
Test(train_cli, named_pipes_as_inputs_are_refused)
{
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("mkfifo %s/p", dir), 0);
    const char *runs[][2] = {
        {"train " TINY " --data %s/p --steps 1", "the data file"},
        {"train %s/p --data %s --steps 1", "the graph file"},
        {"train --data %s --resume %s/p", "the checkpoint to resume"},
        {"train " TINY " --data %s --tokenizer gpt2:%s/p:%s/p --steps 1", "the tokenizer files"},
        {"generate --checkpoint %s/p -n 1", "the weights"},
    };
    char args[5][600];
    snprintf(args[0], sizeof args[0], runs[0][0], dir);
    snprintf(args[1], sizeof args[1], runs[1][0], dir, data);
    snprintf(args[2], sizeof args[2], runs[2][0], data, dir);
    snprintf(args[3], sizeof args[3], runs[3][0], data, dir, dir);
    snprintf(args[4], sizeof args[4], runs[4][0], dir);
    for (int i = 0; i < 5; i++) {
        int rc = sm_test_sh("timeout 10 %s %s >/dev/null 2>%s/err", cli, args[i], dir);
        cr_assert_eq(rc, 1, "%s as a named pipe: exit %d (124: it hung)", runs[i][1], rc);
        cr_assert_eq(sm_test_sh("grep -q 'named pipe' %s/err", dir), 0, "%s: the message names the kind", runs[i][1]);
    }
}

/* The whole run is checked against the budget before anything large is allocated. */
Test(train_cli, a_run_over_its_budget_stops_before_step_1)
{
    const char *cli = sm_test_cli();
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 100000 --budget 4M --save %s/b.st >%s/out 2>%s/err",
                            cli, sm_test_corpus(), dir, dir, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'the run needs .* but the budget is 4.00 MiB' %s/err", dir), 0);
    cr_assert_eq(sm_test_sh("grep -q -- '-B, -T' %s/err && grep -q -- '--recompute' %s/err && grep -q -- '--budget' %s/err",
                            dir, dir, dir), 0, "and says what to change");
    cr_assert_eq(sm_test_sh("grep -q 'step' %s/out || test -e %s/b.st", dir, dir), 1, "nothing ran, nothing saved");
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --steps 1 --budget 1G >%s/out", cli, sm_test_corpus(), dir), 0);
    cr_assert_eq(sm_test_sh("grep -q 'of the 1.00 GiB budget' %s/out", dir), 0);
    cr_assert_eq(sm_test_sh("%s train " TINY " --data %s --budget lots 2>/dev/null", cli, sm_test_corpus()), 2);
}
