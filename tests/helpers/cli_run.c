/* cli_run.c — running the smallmind binary (its path comes from $SM_CLI) and shell commands from tests,
 * and reading the files they write. */
#include "cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "base/atomic_file.h"

const char *sm_test_cli(void)
{
    const char *p = getenv("SM_CLI");
    return p ? p : "./smallmind";
}

const char *sm_test_corpus(void)
{
    static char path[1024];
    const char *f = getenv("SM_FIXTURES");
    snprintf(path, sizeof path, "%s/../../data/kjv-genesis-exodus.txt", f ? f : "tests/fixtures");
    return path;
}

const char *sm_test_path(const char *dir, const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

char *sm_test_read(const char *path, size_t *n)
{
    void *data;
    size_t size;
    cr_assert_eq(sm_file_read_all(path, (size_t)1 << 30, &data, &size), SM_OK, "%s", sm_last_error());
    if (n) *n = size;
    return data;
}

static int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

#define SM_TEST_CMD_MAX 4096

static void build(char cmd[SM_TEST_CMD_MAX], const char *fmt, va_list ap)
{
    int len = vsnprintf(cmd, SM_TEST_CMD_MAX, fmt, ap);
    cr_assert(len >= 0 && len < SM_TEST_CMD_MAX, "command too long: %s", cmd);
}

int sm_test_sh(const char *fmt, ...)
{
    char cmd[SM_TEST_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    build(cmd, fmt, ap);
    va_end(ap);
    return exit_status(system(cmd));
}

int sm_test_capture(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[SM_TEST_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    build(cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "%s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return exit_status(pclose(p));
}
