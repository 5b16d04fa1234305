/* cli_run.c — running the smallmind binary from tests (its path comes from $SM_CLI). */
#include "cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

int sm_test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
