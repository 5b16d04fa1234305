/* bench_mpi.c — the gradient exchange's bandwidth between ranks, as JSON.
 *
 *   mpirun -np 2 ./build/bench_mpi [--max-mb M]
 *
 * For buffers of 1 KiB to M MiB of floats (default 64) it times, best of several repetitions:
 *   scheme     what `smallmind train` does per gradient (frontends/cli/dist.c): MPI_Alltoallv of the N
 *              chunks, the sum in rank order, MPI_Allgatherv of the reduced chunks
 *   allreduce  MPI_Allreduce (in place, MPI_SUM), Open MPI's own algorithm, for comparison
 * bus_gbs = bytes x 2(N-1)/N / seconds: the bytes each rank must send and receive in any all-reduce
 * that leaves every rank the sum (the usual "bus bandwidth"), so the figure is comparable across N.
 * Started without mpirun (one rank) it says so and exits 0, so `./run bench` can run it. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "frontends/cli/dist_chunks.h"

typedef struct exchange {
    float *g, *recv;
    int *n, *at, *rn, *rat;
    int rank, size;
} exchange;

static void scheme(exchange *e)
{
    MPI_Alltoallv(e->g, e->n, e->at, MPI_FLOAT, e->recv, e->rn, e->rat, MPI_FLOAT, MPI_COMM_WORLD);
    sm_dist_sum(e->g + e->at[e->rank], e->recv, e->n[e->rank], e->size);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, e->g, e->n, e->at, MPI_FLOAT, MPI_COMM_WORLD);
}

/* Best seconds of reps runs of scheme (which=0) or allreduce (1), all ranks in step. */
static double best(exchange *e, int count, int which, int reps)
{
    double t_best = 1e30;
    for (int k = 0; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = sm_bench_now();
        if (which == 0) scheme(e);
        else MPI_Allreduce(MPI_IN_PLACE, e->g, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t = sm_bench_now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);   /* the slowest rank's */
        if (t < t_best) t_best = t;
    }
    return t_best;
}

int main(int argc, char **argv)
{
    int max_mb = 64;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--max-mb")) max_mb = atoi(argv[++i]);
    MPI_Init(&argc, &argv);
    exchange e;
    MPI_Comm_rank(MPI_COMM_WORLD, &e.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &e.size);
    if (e.size < 2) {
        if (!e.rank) printf("{\"bench\": \"mpi\", \"skipped\": \"one rank: run it as mpirun -np 2 %s\"}\n", argv[0]);
        MPI_Finalize();
        return 0;
    }
    size_t max = (size_t)max_mb << 20;
    e.g = calloc(max / sizeof(float) + 1, sizeof(float));
    e.recv = calloc(max / sizeof(float) + (size_t)e.size, sizeof(float));
    int *counts = malloc(4 * (size_t)e.size * sizeof *counts);
    if (!e.g || !e.recv || !counts) MPI_Abort(MPI_COMM_WORLD, 1);
    e.n = counts, e.at = counts + e.size, e.rn = counts + 2 * e.size, e.rat = counts + 3 * e.size;
    if (!e.rank) printf("{\"bench\": \"mpi\", \"ranks\": %d, \"sizes\": [\n", e.size);
    for (size_t bytes = 1024; bytes <= max; bytes *= 4) {
        int count = (int)(bytes / sizeof(float)), reps = bytes < (1u << 20) ? 200 : 10;
        sm_dist_cut(count, e.size, e.rank, e.n, e.at, e.rn, e.rat);
        double ts = best(&e, count, 0, reps), ta = best(&e, count, 1, reps);
        double bus = (double)bytes * 2.0 * (e.size - 1) / e.size;
        if (!e.rank)
            printf("  {\"bytes\": %zu, \"scheme_us\": %.1f, \"scheme_bus_gbs\": %.2f, \"allreduce_us\": %.1f, "
                   "\"allreduce_bus_gbs\": %.2f}%s\n", bytes, ts * 1e6, bus / ts / 1e9, ta * 1e6, bus / ta / 1e9,
                   bytes * 4 <= max ? "," : "");
    }
    if (!e.rank) printf("]}\n");
    free(e.g);
    free(e.recv);
    free(counts);
    MPI_Finalize();
    return 0;
}
