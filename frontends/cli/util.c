/* util.c — option parsing, error printing and memory figures shared by the commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/error.h"
#include "../../memory/sysinfo.h"
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

bool sm_cli_budget(const char *cmd, const char *val, uint64_t *bytes, bool *is_auto)
{
    if (val && !strcmp(val, "auto")) {
        *is_auto = true;
        return true;
    }
    uint64_t b = 0;
    if (!val || sm_parse_bytes(val, &b) || b == 0) {
        fprintf(stderr, "smallmind %s: --budget needs a byte size above 0 (512M, 8G, 8GB) or auto: %s\n", cmd,
                !val ? "nothing given" : b == 0 && !sm_parse_bytes(val, &b) ? "0 is no budget" : sm_last_error());
        return false;
    }
    *bytes = b;
    *is_auto = false;
    return true;
}

sm_status sm_cli_budget_auto(uint64_t *out)
{
    sm_sysinfo si;
    *out = 0;
    sm_status s = sm_sysinfo_get(&si);
    if (s) return s;
    if (!si.budget_auto) return sm_error(SM_ERR_UNSUPPORTED, "cannot tell how much memory there is; give a size");
    *out = si.budget_auto;
    return SM_OK;
}

uint64_t sm_cli_rss(void)
{
    uint64_t rss = 0;
    (void)sm_sysinfo_rss(NULL, &rss, NULL);
    return rss;
}
