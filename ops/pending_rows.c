/* pending_rows.c — rows whose kernels are not written yet: they build (shape = input 0's) but the
 * executor refuses to run them. Each row moves to its own file when its kernels land. */
#include "rows.h"

#define PENDING(var, nm, lo, hi) \
    const sm_op_def var = {.name = nm, .min_in = lo, .max_in = hi, .shape = sm_shape_same_as_in0}

PENDING(sm_op_attention, "attention", 1, 1);
