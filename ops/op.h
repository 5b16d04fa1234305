/* op.h — the op table: one row per op. Adding an op means one entry in the op list (SM_OP_LIST,
 * include/smallmind.h), its row sm_op_<name> and its kernels (in its own ops/<name>.c), its backward
 * rule sm_backward_<name> when the list marks it GRAD, the names of the attribute slots code uses
 * (attrs.h), its reference implementation and its tests. The op kind, the table slot and the
 * declarations of the row and the rule follow from the list; nothing else switches on the op kind. */
#ifndef SM_OP_H
#define SM_OP_H

#include "../graph/graph.h"
#include "attrs.h"

/* What a kernel sees of one node: its tensors' records and their storage. */
typedef struct sm_kernel_args {
    const sm_node *node;
    const sm_tensor_rec *out;
    void *y;
    int n_in;
    const sm_tensor_rec *in[SM_MAX_INPUTS];
    const void *x[SM_MAX_INPUTS];
    void *work;                /* scratch: work_bytes per thread, thread i at work + i*work_bytes */
    size_t work_bytes;
    void *shared;              /* scratch every thread of the team sees: shared_bytes (the op's
                                  shared_workspace), after the threads' regions */
    size_t shared_bytes;
    bool bf16;                 /* the plan's precision policy is bf16: products of the gemm-based
                                  kernels (matmul, linear) are bf16 (sm_gemm_bf16), f32-accumulated */
} sm_kernel_args;

/* Forward kernel: called by EVERY thread of the executor's parallel region at once; it splits the
 * work with orphaned `#pragma omp for schedule(static)` loops (or omp_get_thread_num()) and must
 * give bitwise the same result for any thread count (fixed reduction order per output element).
 * Reference kernel: plain serial C, called by one thread outside any parallel region; it is the
 * independent implementation the tests compare the forward kernel against. */
typedef void (*sm_kernel_fn)(const sm_kernel_args *a);

/* Shape rule: validates the inputs of node n (already in g) and fills out->ndim, ne and dtype.
 * Errors name the node (out->name) and the offending shapes. */
typedef sm_status (*sm_shape_fn)(const sm_graph *g, const sm_node *n, sm_tensor_rec *out);

/* Backward rule: given the node and the gradient of its output (gy), appends nodes to g that compute
 * the gradient of each input i for which need[i] is true, storing the tensor ids in gx[i]
 * (SM_NO_TENSOR where not needed or not differentiable). */
typedef sm_status (*sm_backward_fn)(sm_graph *g, int node, sm_tensor gy, const bool need[SM_MAX_INPUTS],
                                    sm_tensor gx[SM_MAX_INPUTS]);

typedef struct sm_op_def {
    const char *name;
    int min_in, max_in;                        /* arity */
    const char *iattr[SM_MAX_IATTRS];          /* names of the integer attributes (NULL = unused) */
    int64_t iattr_default[SM_MAX_IATTRS];
    const char *fattr[SM_MAX_FATTRS];          /* names of the float attributes */
    float fattr_default[SM_MAX_FATTRS];
    sm_shape_fn shape;
    double (*flops)(const sm_graph *g, const sm_node *n);
    /* per-thread scratch bytes the forward kernel needs (NULL = none) */
    size_t (*workspace)(const sm_graph *g, const sm_node *n);
    /* scratch bytes the whole team shares, once whatever the thread count (NULL = none): a buffer
     * the threads fill together, as a team gemm's output */
    size_t (*shared_workspace)(const sm_graph *g, const sm_node *n);
    bool is_view;      /* output aliases input 0's storage (same bytes, other shape) */
    /* a view's first byte within input 0's storage (NULL = 0: the whole storage) */
    uint64_t (*view_offset)(const sm_graph *g, const sm_node *n);
    bool inplace;      /* output may take input 0's storage if input 0 dies here (same size/type) */
    /* The kernel writes into some of its inputs (the optimizer update: param, moments). Those inputs
     * are persistent tensors (params/optimizer state), never reused; the node's own output is a
     * 1-element token. The planner must keep the node (its output may be unused) and order it after
     * every other reader of the tensors it writes. */
    bool mutates_inputs;
    /* Precision (scheduler/precision.c). half_inputs: bit i set = the kernels read input i in f16 or
     * bf16 storage as well as f32, converting on load; the pass inserts a cast to f32 before any
     * other input it stores in 16 bits. keeps_f32: the output is a statistic, a reduction or a
     * loss (norm statistics, sums, cross-entropy), which stays f32 under every policy. */
    unsigned half_inputs;
    bool keeps_f32;
    sm_kernel_fn forward;
    sm_kernel_fn reference;
    sm_backward_fn backward;                   /* NULL = not differentiable */
} sm_op_def;

/* The row of an op (never NULL for a valid kind). */
const sm_op_def *sm_op_def_get(sm_op_kind op);

/* Shared shape helpers for rows. */
sm_status sm_shape_same_as_in0(const sm_graph *g, const sm_node *n, sm_tensor_rec *out);
double sm_flops_per_out_elem(const sm_graph *g, const sm_node *n, double per_elem);
/* SM_ERR_SHAPE naming the node unless input i is f32. */
sm_status sm_shape_check_f32(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i);
/* The same, accepting f16 and bf16 too: for the inputs a row's half_inputs names. */
sm_status sm_shape_check_float(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i);
/* dst[0..n) = elements i0..i0+n of x (stored as t: f32, f16 or bf16) as f32; widening is exact, so a
 * kernel that loads its 16-bit input through this computes bitwise what it does on an f32 copy. */
void sm_load_f32(const void *x, sm_dtype t, int64_t i0, int64_t n, float *dst);

#endif
