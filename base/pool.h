/* pool.h — a bump allocator: many small allocations out of large blocks, all freed at once. The
 * parsers (JSON, graph files) put everything a document makes in one, so no error path can leak. */
#ifndef SM_POOL_H
#define SM_POOL_H

#include <stddef.h>

typedef struct sm_pool_block sm_pool_block;
typedef struct sm_pool {
    sm_pool_block *head;
} sm_pool;   /* = {0} is an empty pool */

/* bytes of zeroed memory aligned for any type; NULL when out of memory (or bytes > 2^40) */
void *sm_pool_alloc(sm_pool *p, size_t bytes);
/* s[0..n) and a NUL in the pool */
char *sm_pool_strndup(sm_pool *p, const char *s, size_t n);
void sm_pool_free(sm_pool *p);
/* Bytes the pool holds from the system (blocks and their headers): for checks that memory stays
 * linear in the input. */
size_t sm_pool_bytes(const sm_pool *p);

#endif
