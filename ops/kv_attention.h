/* kv_attention.h — where position p of a KV cache lives, shared by the kernel (ops/kv_attention.c)
 * and the session that fills and persists the cache (frontends/session.c). */
#ifndef SM_KV_ATTENTION_H
#define SM_KV_ATTENTION_H

#include <stdint.h>

/* The cache row of position p. A linear cache (ring = 0) keeps position p in row p. A ring keeps the
 * first `sink` positions for good (the attention sinks of StreamingLLM, Xiao et al. 2023) and cycles
 * the later ones through the other P - sink rows. */
static inline int64_t sm_kv_slot(int64_t p, int64_t sink, int ring, int64_t P)
{
    return !ring || p < sink ? p : sink + (p - sink) % (P - sink);
}

#endif
