#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* large enough for a graph-file diagnostic: message, source line, caret and repeat notes */
static _Thread_local char last_error[4096];

const char *sm_last_error(void) { return last_error; }

void sm_error_clear(void) { last_error[0] = '\0'; }

sm_status sm_error(sm_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

sm_status sm_error_prefix(sm_status s, const char *fmt, ...)
{
    char old[sizeof last_error];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof last_error)
        snprintf(last_error + n, sizeof last_error - (size_t)n, "%s", old);
    return s;
}

const char *sm_status_name(sm_status s)
{
    static const char *names[] = {
        "SM_OK", "SM_ERR_INVALID_ARG", "SM_ERR_SHAPE", "SM_ERR_NOMEM", "SM_ERR_IO", "SM_ERR_FORMAT",
        "SM_ERR_BUDGET", "SM_ERR_UNSUPPORTED", "SM_ERR_STATE", "SM_ERR_INTERRUPTED", "SM_ERR_INTERNAL",
    };
    if ((unsigned)s < sizeof names / sizeof names[0]) return names[s];
    return "SM_ERR_UNKNOWN";
}
