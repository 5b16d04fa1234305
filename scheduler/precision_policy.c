/* precision_policy.c — precision policies as text: what `--precision` takes and reports print. */
#include <string.h>

#include "../base/error.h"
#include "smallmind.h"

static const char *names[SM_PRECISION_COUNT] = {"fp32", "bf16", "fp16"};
static const sm_dtype types[SM_PRECISION_COUNT] = {SM_F32, SM_BF16, SM_F16};

sm_status sm_precision_parse(const char *text, sm_precision *out)
{
    if (!text || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_precision_parse: NULL argument");
    for (int i = 0; i < SM_PRECISION_COUNT; i++)
        if (!strcmp(text, names[i])) {
            *out = (sm_precision)i;
            return SM_OK;
        }
    /* the dtype names are accepted too: "f32", "f16" (bf16 is both) */
    if (!strcmp(text, "f32")) *out = SM_PRECISION_FP32;
    else if (!strcmp(text, "f16")) *out = SM_PRECISION_FP16;
    else return sm_error(SM_ERR_INVALID_ARG, "unknown precision '%s': use fp32, bf16 or fp16", text);
    return SM_OK;
}

const char *sm_precision_name(sm_precision p) { return (unsigned)p < SM_PRECISION_COUNT ? names[p] : "?"; }

sm_dtype sm_precision_dtype(sm_precision p) { return (unsigned)p < SM_PRECISION_COUNT ? types[p] : SM_F32; }
