/* dist.h — data-parallel training over MPI for `mpirun -np N smallmind train`.
 *
 * Each of the N ranks plans and runs B/N rows of the global batch B (rows [rank*B/N, (rank+1)*B/N)
 * of the same batch every rank draws). Every parameter gradient is exchanged while the backward
 * still runs (runtime hooks: started after the node that writes it, finished before the first
 * node that reads it, the optimizer's), so each rank applies the same AdamW step to the same
 * weights. The reduction order is fixed and does not depend on MPI's algorithms: each gradient is
 * cut into N contiguous chunks; rank r receives chunk r of every rank (MPI_Ialltoallv), adds them
 * in rank order ((g_0 + g_1) + g_2) + ... + g_{N-1} in f32, divides by N, and the reduced chunks are
 * gathered back (MPI_Iallgatherv), so every rank holds bit-identical gradients.
 *
 * MPI is optional: built without it (no libopenmpi-dev), or started without mpirun, this is rank 0
 * of 1 and nothing is exchanged. */
#ifndef SM_CLI_DIST_H
#define SM_CLI_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

typedef struct sm_dist_mpi sm_dist_mpi;
typedef struct sm_dist {
    int rank, size;
    sm_dist_mpi *mpi;   /* NULL when single-process */
} sm_dist;

/* Joins the MPI job when mpirun started this process, else makes d rank 0 of 1. Ranks other than 0
 * send stdout to /dev/null: rank 0 alone prints progress (errors still go to stderr). Fails when
 * started by mpirun but built without MPI, rather than running N independent copies. */
sm_status sm_dist_open(sm_dist *d);
/* Leaves the job. failed: this rank stops on an error while the others may be waiting for it in an
 * exchange, so the whole job is ended (MPI_Abort) instead of hanging. */
void sm_dist_close(sm_dist *d, bool failed);
/* Exchanges every parameter gradient of rt's runs from now on (sets rt's hook). Single-process:
 * nothing. */
sm_status sm_dist_attach(sm_dist *d, sm_runtime *rt);

/* What the ranks agree on after a step, each bringing its own: the loss becomes the mean of the
 * ranks' losses (added in rank order), signal the largest (SIGINT/SIGTERM seen by any rank), time_up
 * rank 0's. Every rank then stops at the same step. */
typedef struct sm_dist_vote {
    double loss;
    int signal;
    bool time_up;
} sm_dist_vote;
sm_status sm_dist_agree(sm_dist *d, sm_dist_vote *v);
/* The weighted mean of the ranks' values, sum_r w_r v_r / sum_r w_r in rank order (ranks with weight
 * 0 count for nothing; NaN if all weights are 0): a validation loss over rows of unequal sizes. */
sm_status sm_dist_mean(sm_dist *d, double value, double weight, double *mean);

/* Sets spec->batch to one rank's share B/N of the global batch B (the spec's, else the model's own),
 * refusing a B that N does not divide. */
sm_status sm_dist_split_batch(sm_model_spec *spec, int ranks);

/* Bytes of the receive buffer a rank of an N-rank job holds next to its plan for graph g (each
 * gradient of n floats takes N chunks of ceil(n/N) floats); 0 for N = 1. `smallmind plan --ranks N`
 * shows it and train counts it against the budget. */
uint64_t sm_dist_buffer_bytes(const sm_graph *g, int ranks);

#endif
