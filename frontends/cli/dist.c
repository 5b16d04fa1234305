/* dist.c — data-parallel training over MPI (see dist.h for the scheme and the reduction order).
 * The MPI parts compile only when CMake found MPI (SM_HAVE_MPI); without it every process is rank 0
 * of 1. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SM_HAVE_MPI
#include <mpi.h>
#endif

#include "../../base/error.h"
#include "cli.h"
#include "dist.h"
#include "dist_chunks.h"

/* Floats of the largest of the N chunks a gradient of n floats is cut into. */
static int64_t chunk_max(int64_t n, int ranks) { return (n + ranks - 1) / ranks; }

uint64_t sm_dist_buffer_bytes(const sm_graph *g, int ranks)
{
    uint64_t bytes = 0;
    for (int p = 0; ranks > 1 && p < sm_graph_tensor_count(g); p++) {
        sm_tensor gt = sm_graph_grad(g, p);
        if (gt != SM_NO_TENSOR) bytes += (uint64_t)ranks * (uint64_t)chunk_max(sm_tensor_numel(g, gt), ranks) * 4;
    }
    return bytes;
}

sm_status sm_dist_split_batch(sm_model_spec *spec, int ranks)
{
    int B = spec->batch;
    if (ranks == 1) return SM_OK;
    if (!B) {   /* the model's own batch: build it to read it */
        sm_model m;
        sm_model_spec sp = *spec;
        sp.training = false;
        sm_status s = sm_model_load(&sp, &m);
        if (s) return s;
        B = m.gpt.batch;
        sm_model_free(&m);
    }
    if (B % ranks)
        return sm_error(SM_ERR_INVALID_ARG, "the batch B=%d does not split over %d ranks: give a -B that %d divides", B,
                        ranks, ranks);
    spec->batch = B / ranks;
    return SM_OK;
}

/* mpirun (Open MPI; PMI_SIZE: MPICH and Slurm) tells its processes so in the environment. */
static bool started_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

#ifdef SM_HAVE_MPI

/* One parameter gradient and its exchange. Chunk r of the gradient is [at[r], at[r] + n[r]); this
 * rank receives its chunk from every rank into recv, rank r's at recv + r * n[rank]. */
typedef struct bucket {
    sm_tensor t;
    float *g;                 /* the gradient, in the runtime's arena */
    float *recv;
    int *n, *at;              /* per rank: chunk size and offset, in floats */
    int *recv_n, *recv_at;    /* per rank: n[rank] and r * n[rank] */
    MPI_Request req;
    enum { IDLE, SCATTERING, GATHERING } phase;
} bucket;

struct sm_dist_mpi {
    int rank, size;
    bucket *b;
    int n_b;
    int *of;                  /* tensor id -> bucket index, -1 for others */
    float *buf;               /* every bucket's recv */
    int *counts;              /* every bucket's n, at, recv_n, recv_at */
};

static sm_status mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return SM_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return sm_error(SM_ERR_IO, "MPI %s: %.*s", what, len, msg);
}

/* This rank's chunk, summed in rank order (sm_dist_sum) over its own chunk of the gradient (its
 * contribution was sent already), then gathered back everywhere. */
static sm_status reduce_and_gather(sm_dist_mpi *m, bucket *b)
{
    sm_status s = mpi_check(MPI_Wait(&b->req, MPI_STATUS_IGNORE), "wait (gradient scatter)");
    if (s) return s;
    sm_dist_sum(b->g + b->at[m->rank], b->recv, b->n[m->rank], m->size);
    b->phase = GATHERING;
    return mpi_check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, b->g, b->n, b->at, MPI_FLOAT, MPI_COMM_WORLD,
                                     &b->req), "allgatherv (gradient)");
}

/* The runtime hook. Written: start sending the gradient's chunks. Needed (the optimizer is next):
 * finish the scatter of every gradient started so far and start gathering them, so the gathers
 * overlap each other, then wait for this one. Every rank must start its collectives in the same
 * order, so they start only at these points (the plan is the same on every rank), never on a local
 * test's outcome. Open MPI moves a nonblocking collective only inside MPI calls, so a start also
 * tests the oldest scatter not yet complete (a completed request becomes MPI_REQUEST_NULL, whose
 * wait returns at once). */
static sm_status on_hook(void *user, sm_hook_event ev, sm_tensor t)
{
    sm_dist_mpi *m = user;
    bucket *b = &m->b[m->of[t]];
    sm_status s = SM_OK;
    if (ev == SM_HOOK_WRITTEN) {
        for (int i = 0; i < m->n_b; i++)
            if (m->b[i].phase == SCATTERING && m->b[i].req != MPI_REQUEST_NULL) {
                int done;
                if ((s = mpi_check(MPI_Test(&m->b[i].req, &done, MPI_STATUS_IGNORE), "test"))) return s;
                if (!done) break;
            }
        b->phase = SCATTERING;
        return mpi_check(MPI_Ialltoallv(b->g, b->n, b->at, MPI_FLOAT, b->recv, b->recv_n, b->recv_at, MPI_FLOAT,
                                        MPI_COMM_WORLD, &b->req), "alltoallv (gradient)");
    }
    for (int i = 0; i < m->n_b && !s; i++)
        if (m->b[i].phase == SCATTERING) s = reduce_and_gather(m, &m->b[i]);
    if (!s && b->phase == GATHERING) s = mpi_check(MPI_Wait(&b->req, MPI_STATUS_IGNORE), "wait (gradient gather)");
    b->phase = IDLE;
    return s;
}

sm_status sm_dist_open(sm_dist *d)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    if (!started_by_mpirun()) return SM_OK;
    int provided, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_check(rc, "init");
    /* errors come back as codes (turned into messages), not as MPI's own abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->mpi = calloc(1, sizeof *d->mpi);
    if (!d->mpi) return sm_error(SM_ERR_NOMEM, "out of memory");
    d->mpi->rank = d->rank;
    d->mpi->size = d->size;
    if (provided < MPI_THREAD_FUNNELED)
        return sm_error(SM_ERR_UNSUPPORTED, "this MPI offers no thread support (MPI_THREAD_FUNNELED); SmallMind "
                        "runs OpenMP threads next to it");
    if (d->rank && !freopen("/dev/null", "w", stdout))
        return sm_error(SM_ERR_IO, "rank %d: cannot silence stdout (/dev/null)", d->rank);
    return SM_OK;
}

void sm_dist_close(sm_dist *d, bool failed)
{
    sm_dist_mpi *m = d->mpi;
    if (!m) return;
    if (failed && d->size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
    free(m->b);
    free(m->of);
    free(m->buf);
    free(m->counts);
    free(m);
    d->mpi = NULL;
}

/* One bucket per parameter gradient, cut into chunks as dist.h says. */
static sm_status make_buckets(sm_dist_mpi *m, sm_runtime *rt)
{
    const sm_graph *g = sm_runtime_graph(rt);
    const int N = m->size, nt = sm_graph_tensor_count(g);
    int64_t floats = 0;
    for (int p = 0; p < nt; p++) {
        sm_tensor gt = sm_graph_grad(g, p);
        const char *name;
        sm_dtype dt;
        if (gt == SM_NO_TENSOR) continue;
        sm_tensor_info(g, gt, &name, &dt, NULL, NULL, NULL);
        if (dt != SM_F32 || sm_tensor_numel(g, gt) > INT_MAX)
            return sm_error(SM_ERR_UNSUPPORTED, "gradient '%s': only f32 gradients of at most %d floats are exchanged",
                            name, INT_MAX);
        m->n_b++;
        floats += N * chunk_max(sm_tensor_numel(g, gt), N);
    }
    m->b = calloc((size_t)m->n_b + 1, sizeof *m->b);
    m->of = malloc((size_t)nt * sizeof *m->of);
    m->buf = malloc((size_t)floats * sizeof *m->buf + 1);
    m->counts = malloc((size_t)m->n_b * 4 * (size_t)N * sizeof *m->counts + 1);
    if (!m->b || !m->of || !m->buf || !m->counts) return sm_error(SM_ERR_NOMEM, "out of memory for the gradient exchange");
    float *recv = m->buf;
    int *c = m->counts, k = 0;
    for (int p = 0; p < nt; p++) m->of[p] = -1;
    for (int p = 0; p < nt; p++) {
        sm_tensor gt = sm_graph_grad(g, p);
        if (gt == SM_NO_TENSOR) continue;
        bucket *b = &m->b[k];
        const int64_t n = sm_tensor_numel(g, gt);
        void *data;
        sm_status s = sm_runtime_data(rt, gt, &data);
        if (s) return s;
        *b = (bucket){.t = gt, .g = data, .recv = recv, .n = c, .at = c + N, .recv_n = c + 2 * N,
                      .recv_at = c + 3 * N, .phase = IDLE};
        sm_dist_cut(n, N, m->rank, b->n, b->at, b->recv_n, b->recv_at);
        recv += N * chunk_max(n, N);
        c += 4 * N;
        m->of[gt] = k++;
    }
    return SM_OK;
}

sm_status sm_dist_attach(sm_dist *d, sm_runtime *rt)
{
    sm_dist_mpi *m = d->mpi;
    if (!m || d->size == 1) return SM_OK;
    sm_status s = make_buckets(m, rt);
    if (!s) s = sm_runtime_set_hook(rt, on_hook, m);
    for (int i = 0; !s && i < m->n_b; i++) s = sm_runtime_watch(rt, m->b[i].t);
    return s;
}

#else /* no MPI: one process */

sm_status sm_dist_open(sm_dist *d)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    if (started_by_mpirun())
        return sm_error(SM_ERR_UNSUPPORTED, "started by mpirun, but this smallmind was built without MPI: install "
                        "libopenmpi-dev and openmpi-bin, and rebuild (./run build)");
    return SM_OK;
}

void sm_dist_close(sm_dist *d, bool failed)
{
    (void)d;
    (void)failed;
}

sm_status sm_dist_attach(sm_dist *d, sm_runtime *rt)
{
    (void)d;
    (void)rt;
    return SM_OK;
}

#endif

/* Every rank's k doubles, in rank order, into all (size * k). */
static sm_status gather_all(sm_dist *d, const double *mine, int k, double *all)
{
#ifdef SM_HAVE_MPI
    if (d->mpi) return mpi_check(MPI_Allgather(mine, k, MPI_DOUBLE, all, k, MPI_DOUBLE, MPI_COMM_WORLD), "allgather");
#else
    (void)d;
#endif
    memcpy(all, mine, (size_t)k * sizeof *all);
    return SM_OK;
}

sm_status sm_dist_agree(sm_dist *d, sm_dist_vote *v)
{
    double mine[3] = {v->loss, v->signal, v->time_up}, *all = malloc((size_t)d->size * sizeof mine);
    if (!all) return sm_error(SM_ERR_NOMEM, "out of memory");
    sm_status s = gather_all(d, mine, 3, all);
    if (!s) {
        double sum = 0;
        int sig = 0;
        for (int r = 0; r < d->size; r++) {
            sum += all[3 * r];
            if (all[3 * r + 1] > sig) sig = (int)all[3 * r + 1];
        }
        *v = (sm_dist_vote){.loss = sum / d->size, .signal = sig, .time_up = all[2] != 0};
    }
    free(all);
    return s;
}

sm_status sm_dist_mean(sm_dist *d, double value, double weight, double *mean)
{
    double mine[2] = {value, weight}, *all = malloc((size_t)d->size * sizeof mine);
    if (!all) return sm_error(SM_ERR_NOMEM, "out of memory");
    sm_status s = gather_all(d, mine, 2, all);
    double sum = 0, w = 0;
    for (int r = 0; !s && r < d->size; r++)
        if (all[2 * r + 1] > 0) {
            sum += all[2 * r] * all[2 * r + 1];
            w += all[2 * r + 1];
        }
    *mean = w > 0 ? sum / w : NAN;
    free(all);
    return s;
}
