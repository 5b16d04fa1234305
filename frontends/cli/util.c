/* util.c — option parsing and error printing shared by the commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int sm_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "smallmind %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

bool sm_cli_int(const char *cmd, const char *opt, const char *val, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = val ? strtoll(val, &end, 10) : 0;
    if (!val || errno || *end || end == val || v < min || v > max) {
        fprintf(stderr, "smallmind %s: %s needs an integer from %lld to %lld, got '%s'\n", cmd, opt, min, max,
                val ? val : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}
