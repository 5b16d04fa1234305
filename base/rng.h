/* rng.h — counter-based random numbers: value i of stream `key` depends only on (key, i), so results
 * never depend on thread count or on the order things are drawn in. */
#ifndef SM_RNG_H
#define SM_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t sm_rng_mix(uint64_t x)
{
    /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Uniform in (0, 1): never 0, so log() is safe. */
static inline double sm_rng_uniform(uint64_t key, uint64_t i)
{
    return ((double)(sm_rng_mix(key ^ sm_rng_mix(i)) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller on two uniforms of the stream). */
static inline double sm_rng_normal(uint64_t key, uint64_t i)
{
    double u1 = sm_rng_uniform(key, 2 * i), u2 = sm_rng_uniform(key, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
