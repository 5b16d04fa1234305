/* checkpoint.h — a runtime's parameters (and, for training checkpoints, optimizer state) to and from
 * safetensors files, tensors named as in the graph, facts about the run in __metadata__. */
#ifndef SM_CHECKPOINT_H
#define SM_CHECKPOINT_H

#include <stdbool.h>

#include "safetensors.h"
#include "smallmind.h"

/* Writes every parameter (and with SM_SAVE_OPTIMIZER every optimizer-state tensor) of rt's graph,
 * plus the metadata pairs, atomically to path. */
sm_status sm_checkpoint_save(sm_runtime *rt, const char *path, unsigned flags, const sm_st_kv *meta, int n_meta);

/* Reads into rt every parameter (and with SM_SAVE_OPTIMIZER every optimizer-state tensor) by name,
 * checking shapes; a tensor missing from the file, of another shape, or a file tensor the model does
 * not have is refused with a message naming it. f16/bf16 files are converted to f32. If meta is
 * not NULL the opened file is handed back for its metadata (close it with sm_st_close). */
sm_status sm_checkpoint_load(sm_runtime *rt, const char *path, unsigned flags, sm_st_file **meta);

#endif
