/* test_train_cli.c — training end to end through the CLI: checkpoints resume bit-identically, Ctrl-C
 * saves, mismatched or corrupt checkpoints are refused with the tensor named, generate and eval run. */
#include <criterion/criterion.h>
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

Test(train_cli, ctrl_c_finishes_the_step_and_saves)
{
    char ckpt[300], log[300];
    snprintf(ckpt, sizeof ckpt, "%s/int.st", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "w", stdout);
        execl("/bin/sh", "sh", "-c", "exec \"$0\" train " TINY " --log-every 1 --steps 100000 --data \"$1\" --save \"$2\"",
              sm_test_cli(), sm_test_corpus(), ckpt, (char *)NULL);
        _exit(127);
    }
    /* wait for the first progress line, then interrupt */
    for (int i = 0; i < 600; i++) {
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
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d", st);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(ckpt, &f), SM_OK, "the checkpoint saved on Ctrl-C loads: %s", sm_last_error());
    cr_assert_geq(atoi(sm_st_metadata_get(f, "step")), 2);
    sm_st_close(f);
    cr_assert_eq(sm_test_sh("%s train --data %s --resume %s --steps 5 --until 5 >/dev/null 2>&1", sm_test_cli(),
                            sm_test_corpus(), ckpt), 0, "and resumes");
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
