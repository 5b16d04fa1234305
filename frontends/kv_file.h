/* kv_file.h — the KV cache file of an inference session (docs/kv-format.md): a 4 KiB header, then
 * the plan's KV arena byte for byte. The header says what the cache belongs to (the model and its
 * weights, the cache layout) and how far it is filled; a reader checks it before trusting a byte. */
#ifndef SM_KV_FILE_H
#define SM_KV_FILE_H

#include <stdint.h>

#include "../memory/arena.h"
#include "smallmind.h"

#define SM_KV_MAGIC "SMKVCACH"
#define SM_KV_VERSION 1u
#define SM_KV_HEADER_BYTES 4096u   /* the arena starts on a page boundary after it */

/* Little-endian, as the machine stores it (the file is a memory map of the live cache). */
typedef struct sm_kv_header {
    char magic[8];            /* "SMKVCACH" */
    uint32_t version;         /* SM_KV_VERSION */
    uint32_t header_bytes;    /* SM_KV_HEADER_BYTES: the KV arena starts here */
    uint64_t model_hash;      /* XXH3 of the weights' bytes, seeded with the decode graph's sm_graph_hash */
    uint64_t layout_hash;     /* XXH3 of the KV tensors' names, offsets and bytes in the arena */
    uint64_t kv_bytes;        /* the KV arena's size */
    int32_t n_layer, n_head, head_dim, dtype;   /* dtype: sm_dtype of the cache */
    int64_t positions;        /* cache rows P */
    int64_t span, sink, ring; /* the attention window and the ring (sm_kv_layout) */
    int64_t batch;
    int64_t filled;           /* positions filled: the next token goes here */
    int32_t last_token;       /* the token at position filled - 1 (-1 when empty) */
    int32_t reserved;         /* 0 */
    uint64_t checksum;        /* XXH3 of every byte above */
} sm_kv_header;

/* Recomputes h->checksum. */
void sm_kv_header_seal(sm_kv_header *h);
/* Checks a header read from path against the session's (want): magic, version, checksum, then the
 * model and layout, naming the first field that differs and both values. */
sm_status sm_kv_header_check(const sm_kv_header *h, const sm_kv_header *want, const char *path);
/* Opens the cache file: resume = 0 creates path (it must not exist), reserves header + kv_bytes with
 * fallocate and writes want as the header (filled 0); resume = 1 checks the existing file's header and
 * size first (refusing a truncated file or another model's), then maps it. Either way the file is
 * locked while *out lives. *hdr points at the header inside the mapping. */
sm_status sm_kv_file_open(const char *path, const sm_kv_header *want, int resume, sm_arena **out, sm_kv_header **hdr);

#endif
