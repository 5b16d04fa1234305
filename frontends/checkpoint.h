/* checkpoint.h — a runtime's parameters (and, for training checkpoints, optimizer state) to and from
 * safetensors files, tensors named as in the graph, facts about the run in __metadata__.
 *
 * Besides the caller's metadata pairs a checkpoint carries two of its own:
 *   "graph_identity": 16 hex digits, the identity of the model the weights belong to: XXH3 of the
 *                     parameters (names, dtypes, shapes, inits) and of every node (op, inputs,
 *                     attributes) of what the graph's loss depends on (the forward graph, so optimizer
 *                     settings may change between runs; activation shapes are left out, so the batch
 *                     may too), or of the whole graph when it has no loss;
 *   "metadata_xxh3":  16 hex digits, XXH3-64 over every other metadata pair except the safetensors
 *                     layer's own "sm." keys, in key order, each as key NUL value NUL.
 * A file with a metadata checksum must match it. Checkpoints written before these keys existed (no
 * checksum and no identity) are still read; their graph cannot be compared. */
#ifndef SM_CHECKPOINT_H
#define SM_CHECKPOINT_H

#include <stdbool.h>

#include "safetensors.h"
#include "smallmind.h"

#define SM_CKPT_KEY_GRAPH "graph_identity"
#define SM_CKPT_KEY_CHECKSUM "metadata_xxh3"

/* Writes every parameter (and with SM_SAVE_OPTIMIZER every optimizer-state tensor) of rt's graph,
 * plus the metadata pairs, the model's identity and the metadata checksum, atomically to path. */
sm_status sm_checkpoint_save(sm_runtime *rt, const char *path, unsigned flags, const sm_st_kv *meta, int n_meta);

/* Opens a checkpoint (sm_st_open: the tensors' checksums) and verifies its metadata checksum. */
sm_status sm_checkpoint_open(const char *path, sm_st_file **out);

/* Reads into rt every parameter (and with SM_SAVE_OPTIMIZER every optimizer-state tensor) by name,
 * checking shapes; a tensor missing from the file, of another shape, or a file tensor the model does
 * not have is refused with a message naming it, and so is a value that is not a finite number.
 * f16/bf16 files are converted to f32. With SM_SAVE_OPTIMIZER (resuming a run) the file's model
 * identity must be rt's: a graph edited since the save is refused, naming both identities, the file
 * and the model (the file's "model" metadata). If meta is not NULL the opened file is handed back for
 * its metadata (close it with sm_st_close). */
sm_status sm_checkpoint_load(sm_runtime *rt, const char *path, unsigned flags, sm_st_file **meta);

/* The metadata value under key as a decimal integer in [min, max]: absent leaves *out as it is;
 * anything else is SM_ERR_FORMAT naming the file, the key, the value and the range. */
sm_status sm_checkpoint_meta_int(const sm_st_file *f, const char *key, long long min, long long max,
                                 long long *out);

/* The metadata key of a training run's loss scaler (sm_loss_scaler), and its value: "mode=M scale=X
 * growth=X backoff=X interval=N min=X tracker=N skipped=N" with M off, fixed or dynamic; the floats
 * are written with 9 significant digits, which read back as the same float bit for bit, so a resumed
 * run continues exactly. */
#define SM_CKPT_KEY_LOSS_SCALE "loss_scale"
#define SM_CKPT_LOSS_SCALE_MAX 256   /* bytes the value takes at most, NUL included */
void sm_checkpoint_scaler_format(const sm_loss_scaler *s, char *buf, size_t cap);
/* Reads the value under SM_CKPT_KEY_LOSS_SCALE into *s (sm_loss_scaler_check'ed); absent: *s is left
 * as it is and *found is false. A malformed or out-of-range value is SM_ERR_FORMAT naming the file. */
sm_status sm_checkpoint_meta_scaler(const sm_st_file *f, sm_loss_scaler *s, bool *found);

#endif
