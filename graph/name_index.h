/* name_index.h — a hash table from names to small integer ids (tensor ids, symbol numbers): open
 * addressing with linear probing on XXH3 of the name. The names stay with their owner, who lends them
 * through a callback, so a slot is 8 bytes and a table of n names costs at most 32n bytes. It makes
 * every lookup O(1) on average, so building or loading a graph of n tensors is O(n), not O(n^2). */
#ifndef SM_NAME_INDEX_H
#define SM_NAME_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

/* The name of id, or NULL when the owner no longer has it (a lookup then skips that slot). */
typedef const char *(*sm_name_of)(const void *owner, int32_t id);

typedef struct sm_name_index {
    uint64_t *slot;   /* the low 32 bits of the name's hash, then id + 1 in the low half; 0 = empty */
    size_t cap;       /* 0 or a power of two */
    size_t used;      /* non-empty slots, kept at most half of cap */
} sm_name_index;

/* The id called name, or -1. *probes (when not NULL) grows by the slots the lookup visited, so a
 * caller can show its lookups stay O(1). */
int32_t sm_name_index_find(const sm_name_index *ix, const char *name, sm_name_of name_of, const void *owner,
                           uint64_t *probes);
/* Adds id (>= 0) under name, which the caller has checked is absent. */
sm_status sm_name_index_add(sm_name_index *ix, const char *name, int32_t id);
/* dst becomes an independent copy of src (dst's old table is not freed). */
sm_status sm_name_index_copy(const sm_name_index *src, sm_name_index *dst);
void sm_name_index_free(sm_name_index *ix);

#endif
