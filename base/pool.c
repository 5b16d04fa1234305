/* pool.c — the bump allocator (pool.h). */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#define POOL_BLOCK (64 * 1024)

struct sm_pool_block {
    sm_pool_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *sm_pool_alloc(sm_pool *p, size_t bytes)
{
    if (bytes > ((size_t)1 << 40)) return NULL;
    bytes = (bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    sm_pool_block *b = p->head;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > POOL_BLOCK ? bytes : POOL_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = p->head;
        b->used = 0;
        b->cap = cap;
        p->head = b;
    }
    void *q = (char *)b->data + b->used;
    b->used += bytes;
    return memset(q, 0, bytes);
}

char *sm_pool_strndup(sm_pool *p, const char *s, size_t n)
{
    char *q = sm_pool_alloc(p, n + 1);
    if (q) {
        memcpy(q, s, n);
        q[n] = '\0';
    }
    return q;
}

size_t sm_pool_bytes(const sm_pool *p)
{
    size_t n = 0;
    for (const sm_pool_block *b = p->head; b; b = b->next) n += sizeof *b + b->cap;
    return n;
}

void sm_pool_free(sm_pool *p)
{
    while (p->head) {
        sm_pool_block *next = p->head->next;
        free(p->head);
        p->head = next;
    }
}
