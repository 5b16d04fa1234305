/* dist_chunks.h — the arithmetic of the gradient exchange (dist.h), shared by dist.c and
 * bench/bench_mpi.c so the bench times exactly what training does: how a gradient is cut into one
 * chunk per rank, and the sum of a chunk's N copies in rank order. No MPI here. */
#ifndef SM_CLI_DIST_CHUNKS_H
#define SM_CLI_DIST_CHUNKS_H

#include <stdint.h>
#include <string.h>

/* Chunk r of n floats over N ranks is [at[r], at[r] + len[r]) (sizes differ by at most 1); this
 * rank receives the N copies of its own chunk, rank r's at recv_at[r] = r * len[rank]. */
static inline void sm_dist_cut(int64_t n, int N, int rank, int *len, int *at, int *recv_len, int *recv_at)
{
    for (int r = 0; r < N; r++) {
        at[r] = (int)(n * r / N);
        len[r] = (int)(n * (r + 1) / N - n * r / N);
    }
    for (int r = 0; r < N; r++) {
        recv_len[r] = len[rank];
        recv_at[r] = r * len[rank];
    }
}

/* dst = (((recv_0 + recv_1) + recv_2) + ... + recv_{N-1}) / N in f32, recv_r at recv + r * len: the
 * fixed reduction order (-ffast-math would break it; the build does not use it). */
static inline void sm_dist_sum(float *dst, const float *recv, int len, int N)
{
    memcpy(dst, recv, (size_t)len * sizeof *dst);
    for (int r = 1; r < N; r++) {
        const float *src = recv + (size_t)r * (size_t)len;
        for (int i = 0; i < len; i++) dst[i] += src[i];
    }
    for (int i = 0; i < len; i++) dst[i] /= (float)N;
}

#endif
