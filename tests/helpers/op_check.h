/* op_check.h — a test harness for one op: it builds a one-node graph with the given input shapes,
 * dtypes and attributes, fills the inputs with seeded random data, runs the node through the planner
 * and executor at 1 and at 2 threads, runs the row's reference kernel on the same inputs, and asserts
 * (Criterion) that
 *   - the 1- and 2-thread outputs are bitwise equal, and equal to the forward kernel's called directly
 *     as a team of 1, 2 and 3 threads with fresh NaN-filled scratch (so stale scratch cannot hide),
 *   - every output element was written (outputs are pre-filled with NaN bytes),
 *   - the output agrees with the reference within the given tolerance (NaN where the reference has
 *     NaN, the same infinity where it has one).
 * The result keeps the graph, the inputs and both outputs so a test can add its own checks. */
#ifndef SM_TEST_OP_CHECK_H
#define SM_TEST_OP_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "graph/graph.h"

typedef struct op_check_in {
    sm_dtype dtype;
    int ndim;
    int64_t shape[SM_MAX_DIMS];
    float scale, offset;    /* f32 data: offset + scale·N(0,1); scale 0 means 1 */
    int32_t id_lo, id_hi;   /* i32 data: uniform in [id_lo, id_hi); both 0 means [0, 16) */
    const void *data;       /* when set, these values (numel · dtype size bytes) instead of random ones;
                             * f16/bf16 random data is random finite bit patterns */
} op_check_in;

struct op_check_result;

typedef struct op_check_spec {
    sm_op_kind op;
    int n_in;
    op_check_in in[SM_MAX_INPUTS];
    const sm_attrs *attrs;  /* NULL: the op's defaults */
    uint64_t seed;
    double rtol, atol;      /* f32 outputs: |y - ref| <= atol + rtol·|ref| */
    bool exact;             /* require bitwise equality with the reference instead */
    /* optional per-element bound |y[i] - ref[i]| <= tol(r, i), used instead of rtol/atol */
    double (*tol)(const struct op_check_result *r, int64_t i);
    void *user;             /* for tol */
} op_check_spec;

typedef struct op_check_result {
    const op_check_spec *spec;
    sm_graph *g;
    sm_tensor out;
    sm_tensor in[SM_MAX_INPUTS];
    int64_t n_out;
    void *x[SM_MAX_INPUTS]; /* the inputs' data */
    void *y;                /* the executor's output (1 thread; bitwise equal to 2 threads) */
    void *ref;              /* the reference kernel's output (NULL when the row has none: views) */
    double worst;           /* largest |y - ref| / tolerance seen (<= 1 passes) */
} op_check_result;

/* Runs every check above; fails the current Criterion test on the first problem. The result points
 * at s: keep s alive while using the result. */
op_check_result *op_check_run(const op_check_spec *s);
void op_check_free(op_check_result *r);

/* Convenience: an input description. */
op_check_in op_in_f32(int ndim, const int64_t *shape);
op_check_in op_in_i32(int ndim, const int64_t *shape, int32_t lo, int32_t hi);

/* The graph record of the output. */
const sm_tensor_rec *op_check_out_rec(const op_check_result *r);
/* The shape of a record as "[a, b]" (static buffer, one per call site is fine in tests). */
const char *op_check_shape(const sm_tensor_rec *rec);

#endif
