/* recompute_policy.c — recompute policies as text: what `--recompute` takes and reports print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "smallmind.h"

sm_status sm_recompute_parse(const char *text, sm_recompute_policy *out)
{
    if (!text || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_recompute_parse: NULL argument");
    sm_recompute_policy r = {SM_RECOMPUTE_NONE, 0, 0};
    if (!strcmp(text, "none")) {
    } else if (!strcmp(text, "sqrt")) {
        r.kind = SM_RECOMPUTE_SQRT;
    } else if (!strcmp(text, "selective")) {
        r.kind = SM_RECOMPUTE_SELECTIVE;
    } else if (!strcmp(text, "auto")) {
        r.kind = SM_RECOMPUTE_BUDGET;
    } else if (!strncmp(text, "every:", 6)) {
        char *end;
        long k = strtol(text + 6, &end, 10);
        if (end == text + 6 || *end || k < 1 || k > 1000000)
            return sm_error(SM_ERR_INVALID_ARG, "recompute policy '%s': K in every:K must be a whole number from 1 "
                            "(keep every block boundary) to 1000000", text);
        r.kind = SM_RECOMPUTE_EVERY;
        r.every = (int)k;
    } else if (!strncmp(text, "budget:", 7)) {
        sm_status s = sm_parse_bytes(text + 7, &r.budget);
        if (s) return sm_error_prefix(s, "recompute policy '%s': ", text);
        if (!r.budget) return sm_error(SM_ERR_INVALID_ARG, "recompute policy '%s': the budget must be above 0", text);
        r.kind = SM_RECOMPUTE_BUDGET;
    } else {
        return sm_error(SM_ERR_INVALID_ARG, "unknown recompute policy '%s': use none, every:K, sqrt, selective, "
                        "budget:BYTES or auto", text);
    }
    *out = r;
    return SM_OK;
}

const char *sm_recompute_str(const sm_recompute_policy *r, char *buf, size_t cap)
{
    char b[SM_BYTES_STR_MAX];
    if (!buf || !cap) return buf;
    switch (r ? r->kind : SM_RECOMPUTE_NONE) {
    case SM_RECOMPUTE_EVERY: snprintf(buf, cap, "every:%d", r->every); break;
    case SM_RECOMPUTE_SQRT: snprintf(buf, cap, "sqrt"); break;
    case SM_RECOMPUTE_SELECTIVE: snprintf(buf, cap, "selective"); break;
    case SM_RECOMPUTE_BUDGET:
        if (r->budget) snprintf(buf, cap, "budget:%s", sm_format_bytes(r->budget, b, sizeof b));
        else snprintf(buf, cap, "auto");
        break;
    default: snprintf(buf, cap, "none"); break;
    }
    return buf;
}
