/* name_index.c — names to ids by open addressing on XXH3 (see name_index.h). A slot keeps the low 32
 * bits of the name's hash, which place it (the table never reaches 2^32 slots) and let a lookup skip
 * most slots without reading the owner's name; growing re-places slots without hashing a name again. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../base/error.h"
#include "name_index.h"

#define FIRST_CAP 64

static uint32_t name_hash(const char *name) { return (uint32_t)XXH3_64bits(name, strlen(name)); }
static uint32_t slot_hash(uint64_t slot) { return (uint32_t)(slot >> 32); }
static int32_t slot_id(uint64_t slot) { return (int32_t)((uint32_t)slot - 1); }

static void put(uint64_t *slot, size_t cap, uint64_t v)
{
    size_t i = slot_hash(v) & (cap - 1);
    while (slot[i]) i = (i + 1) & (cap - 1);
    slot[i] = v;
}

int32_t sm_name_index_find(const sm_name_index *ix, const char *name, sm_name_of name_of, const void *owner,
                           uint64_t *probes)
{
    if (!ix->cap) return -1;
    uint32_t h = name_hash(name);
    uint64_t visited = 0;
    int32_t found = -1;
    for (size_t i = h & (ix->cap - 1); found < 0 && ix->slot[i]; i = (i + 1) & (ix->cap - 1)) {
        visited++;
        if (slot_hash(ix->slot[i]) != h) continue;
        const char *s = name_of(owner, slot_id(ix->slot[i]));
        if (s && !strcmp(s, name)) found = slot_id(ix->slot[i]);
    }
    if (probes) *probes += visited;
    return found;
}

static sm_status grow(sm_name_index *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : FIRST_CAP;
    if (cap > ((size_t)1 << 32) || cap > SIZE_MAX / sizeof *ix->slot)
        return sm_error(SM_ERR_NOMEM, "name index: more than 2^31 names");
    uint64_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return sm_error(SM_ERR_NOMEM, "name index: out of memory growing to %zu names", cap / 2);
    for (size_t j = 0; j < ix->cap; j++)
        if (ix->slot[j]) put(slot, cap, ix->slot[j]);
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    return SM_OK;
}

sm_status sm_name_index_add(sm_name_index *ix, const char *name, int32_t id)
{
    if (id < 0 || id == INT32_MAX) return sm_error(SM_ERR_INVALID_ARG, "name index: bad id %d for '%s'", id, name);
    if ((ix->used + 1) * 2 > ix->cap) {
        sm_status s = grow(ix);
        if (s) return s;
    }
    put(ix->slot, ix->cap, (uint64_t)name_hash(name) << 32 | (uint32_t)(id + 1));
    ix->used++;
    return SM_OK;
}

sm_status sm_name_index_copy(const sm_name_index *src, sm_name_index *dst)
{
    *dst = (sm_name_index){0};
    if (!src->cap) return SM_OK;
    dst->slot = malloc(src->cap * sizeof *dst->slot);
    if (!dst->slot) return sm_error(SM_ERR_NOMEM, "copying a name index of %zu names: out of memory", src->used);
    memcpy(dst->slot, src->slot, src->cap * sizeof *dst->slot);
    dst->cap = src->cap;
    dst->used = src->used;
    return SM_OK;
}

void sm_name_index_free(sm_name_index *ix)
{
    free(ix->slot);
    *ix = (sm_name_index){0};
}
