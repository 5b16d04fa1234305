/* runtime_debug.h — the executor's debug mode: a shadow owner for every 64-byte block of every
 * arena, so a node that reads a range whose tensor has died (or been overwritten by a tensor born
 * over it) is caught by name, and dead ranges are filled with NaN (all-ones bytes) so a read that
 * slips past shows up in the results. */
#ifndef SM_RUNTIME_DEBUG_H
#define SM_RUNTIME_DEBUG_H

#include "plan.h"

typedef struct sm_rt_debug sm_rt_debug;

/* Builds the shadow for the arenas' bases (arena[a] = base of arena a). It trusts the plan's spans
 * and offsets (the runtime validates the plan first); it checks what the kernels then do. */
sm_status sm_rt_debug_create(const sm_graph *g, const sm_plan *p, void *const arena[SM_ARENA_COUNT],
                             sm_rt_debug **out);
void sm_rt_debug_free(sm_rt_debug *d);
/* Start of a run: tensors live from before step 0 (inputs, parameters, ...) own their blocks. */
sm_status sm_rt_debug_begin(sm_rt_debug *d);
/* Before step s runs: tensors born at s claim their blocks (which must be free), then every tensor
 * the node reads or writes must still own its blocks. */
sm_status sm_rt_debug_before(sm_rt_debug *d, int s);
/* After step s: tensors whose storage dies at s release their blocks and are filled with NaN. */
void sm_rt_debug_after(sm_rt_debug *d, int s);

#endif
