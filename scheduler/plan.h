/* plan.h — sm_plan is plain data: the execution order, each tensor's arena, offset, bytes and
 * lifetime, and the arena sizes with the figures that justify them (lower bound, naive size, what
 * each packer reached). The executor reads nothing else; the plan file stores exactly this. */
#ifndef SM_PLAN_H
#define SM_PLAN_H

#include <limits.h>

#include "../graph/graph.h"

/* The arena ids (sm_arena_id, SM_ARENA_PARAMS ... SM_ARENA_WORK) are public: include/smallmind.h. */

/* Offset packers tried on every arena with reuse; the smallest result is kept. */
typedef enum sm_packer {
    SM_PACK_GREEDY_SIZE = 0,  /* largest first, each into the lowest gap free over its lifetime */
    SM_PACK_GREEDY_SIZE_BEST, /* largest first, each into the tightest such gap */
    SM_PACK_GREEDY_AREA,      /* largest size x lifetime first, lowest gap */
    SM_PACK_GREEDY_LIFETIME,  /* longest lifetime first, lowest gap */
    SM_PACK_BESTFIT_INORDER,  /* walk the order: best-fitting free block at birth, free at death
                                 (the ggml-alloc allocator) */
    SM_PACK_COUNT
} sm_packer;

const char *sm_packer_name(int packer);

typedef struct sm_plan_tensor {
    int arena;            /* sm_arena_id */
    uint64_t offset;      /* bytes from the arena's base */
    uint64_t bytes;       /* storage bytes (an alias: its own size; it lies inside its root's range) */
    int first, last;      /* steps of first and last use. A root's span covers every tensor that shares
                             its storage; inputs, outputs and persistent tensors reach the ends */
    sm_tensor alias;      /* the root whose storage this one uses (views, in-place), or SM_NO_TENSOR */
    uint64_t view_off;    /* an alias: its first byte within the root's storage (a view of some rows) */
    bool inplace;         /* the alias comes from in-place reuse, not from a view */
} sm_plan_tensor;

typedef struct sm_plan_arena {
    uint64_t size;        /* bytes to allocate */
    uint64_t lower_bound; /* max bytes live at any step (sizes rounded to SM_PLAN_ALIGN) */
    int peak_step;        /* a step where the lower bound is reached */
    uint64_t naive;       /* bytes with no reuse at all (no in-place either) */
    uint64_t packed[SM_PACK_COUNT];   /* size each packer reached; 0 where it did not run */
    int chosen;           /* the packer whose offsets are used; -1 = laid end to end */
} sm_plan_arena;

/* The passes, in the order sm_plan_create runs them (plan.c). */
typedef enum sm_pass {
    SM_PASS_ORDER = 0,    /* order.c */
    SM_PASS_RECOMPUTE,    /* recompute.c */
    SM_PASS_PRECISION,    /* precision.c */
    SM_PASS_PLACEMENT,    /* placement.c */
    SM_PASS_LIFETIMES,    /* lifetimes.c */
    SM_PASS_INPLACE,      /* lifetimes.c */
    SM_PASS_OFFSETS,      /* offsets.c */
    SM_PASS_COUNT
} sm_pass;

#define SM_PASS_LOG_MAX 200

/* What the recompute pass applies: keep every `every`-th block boundary (every = 0: keep all forward
 * activations, nothing recomputed); with keep_costly, the outputs of costly ops are kept too. */
typedef struct sm_rc_choice {
    int every;
    bool keep_costly;
} sm_rc_choice;

typedef struct sm_plan_rc {
    sm_rc_choice choice;
    int n_boundaries, n_kept, n_recomputed;
    double extra_flops;
    uint64_t act_none;    /* activation arena of the same graph without recompute (0: not planned) */
} sm_plan_rc;

/* What the precision pass did (precision.c). */
typedef struct sm_plan_prec {
    int n_half;           /* tensors of the user's graph given 16-bit storage (a cast copy) */
    int n_cast;           /* cast nodes appended */
    int first_node;       /* the first node the pass appended (every node from here is its cast);
                             INT_MAX when it appended none */
} sm_plan_prec;

struct sm_plan {
    sm_plan_options opts;
    sm_graph *g;          /* the lowered graph: the user's graph (same ids) plus appended clones */
    uint64_t graph_hash;  /* sm_graph_hash of the user's graph the plan was made for */
    uint64_t lowered_hash;/* sm_graph_hash of g */
    uint64_t hash;        /* graph_hash + the options that shape the layout */
    int n_steps;
    int *order;           /* node ids of g in execution order */
    int n_tensors;
    sm_plan_tensor *t;
    sm_tensor *src;       /* per tensor of g: the tensor a recompute clone recomputes, else SM_NO_TENSOR */
    sm_plan_arena arena[SM_ARENA_COUNT];
    uint64_t work_per_thread;  /* SM_ARENA_WORK = n_threads * work_per_thread + work_shared */
    uint64_t work_shared;      /* the largest shared scratch of one node, after the threads' regions */
    int n_threads;
    double flops;
    int n_inplace;        /* tensors that took their input's storage */
    sm_plan_rc rc;
    sm_plan_prec prec;
    char log[SM_PASS_COUNT][SM_PASS_LOG_MAX];
};

/* Records what a pass did (printf-style, one line). */
void sm_plan_log(sm_plan *p, sm_pass pass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The passes. Each reads and writes plan data over the lowered graph p->g. */
/* order.c: p->order, a topological order of every node of g keeping the activation peak low. */
sm_status sm_plan_order(const sm_graph *g, sm_plan *p);
/* recompute.c: appends the clones `c` calls for to p->g, points the backward's reads at them,
 * splices them into p->order right before their first reader, fills p->src and p->rc. */
sm_status sm_plan_recompute_pass(sm_plan *p, sm_rc_choice c);
/* recompute.c: the choice a policy stands for on graph g (SQRT and EVERY; BUDGET is searched by
 * plan.c over sm_rc_candidates). */
sm_status sm_rc_resolve(const sm_graph *g, const sm_recompute_policy *r, sm_rc_choice *out);
/* recompute.c: the choices a budget search tries, in ascending order of the FLOPs their clones
 * cost (computed without planning), so the first whose plan fits is the cheapest that fits; *n set. */
sm_status sm_rc_candidates(const sm_graph *g, sm_rc_choice **out, int *n);
/* precision.c: under a 16-bit policy, gives the activations saved for the backward 16-bit storage:
 * appends a cast to 16 bits right after each one's producer and points the backward's readers at
 * it (through one cast back to f32, right before the first reader that cannot read the type);
 * splices the casts into p->order and fills p->prec. The fp32 policy changes nothing. */
sm_status sm_plan_precision_pass(sm_plan *p);
/* placement.c: allocates p->t, each tensor's arena (from its role) and bytes. */
sm_status sm_plan_place(const sm_graph *g, sm_plan *p);

/* Copies g into p->g and runs the passes that rewrite it (order, recompute with p->rc.choice);
 * sets the graph hashes. p->opts and p->n_threads must be set. (plan.c; plan files re-lower.) */
sm_status sm_plan_lower(const sm_graph *g, sm_plan *p);
/* One whole plan of g with recompute choice c (the packed strategy's packer forced to `force` when
 * >= 0: tests check each packer alone). sm_plan_create resolves the policy and calls this. */
sm_status sm_plan_build(const sm_graph *g, const sm_plan_options *o, sm_rc_choice c, int force, sm_plan **out);
/* SM_OK if g is the graph p was made for (its hash) or p's lowered graph itself. */
sm_status sm_plan_check_graph(const sm_plan *p, const sm_graph *g);
/* The arena a tensor of this role lives in. */
sm_arena_id sm_plan_arena_of(sm_role role);
/* Bytes of SM_ARENA_WORK: n_threads regions of work_per_thread, then work_shared; false when that
 * overflows (only a forged plan file can ask for it). */
bool sm_plan_work_bytes(const sm_plan *p, uint64_t *out);
/* True for roles whose tensors keep their value across runs or are read between runs. */
bool sm_plan_role_spans_run(sm_role role);

/* The lifetimes pass (lifetimes.c): each tensor's first/last use over p->order, aliases of views,
 * workspace, FLOPs. Offsets are left for a strategy to assign. */
sm_status sm_plan_lifetimes(const sm_graph *g, sm_plan *p);
/* In-place reuse (lifetimes.c): lets an op marked `inplace` take input 0's storage when that storage
 * dies at the node; extends the root's span. Call after sm_plan_prepare, before assigning offsets. */
sm_status sm_plan_inplace(const sm_graph *g, sm_plan *p);
/* Naive strategy: every tensor with storage of its own gets its own range (no reuse). */
void sm_plan_assign_naive(const sm_graph *g, sm_plan *p);
/* Packed strategy (offsets.c): every packer on every arena with reuse, the smallest kept (or packer
 * `force` when it is >= 0: tests check each packer's layout alone); fills the arenas' figures.
 * SM_ERR_NOMEM only. */
sm_status sm_plan_assign_packed(const sm_graph *g, sm_plan *p, int force);
/* Lower bound of each arena (max bytes live at any step); fills lower_bound and peak_step. */
void sm_plan_bounds(sm_plan *p);
/* The plan's hash of graph + layout options. */
uint64_t sm_plan_hash_of(uint64_t graph_hash, const sm_plan *p);

/* sm_runtime_create with some arenas supplied by the caller: given[a] (when given and non-NULL) is
 * memory of at least the plan's size for arena a, which the runtime uses and never frees. Two
 * runtimes of one model (a session's decode and prefill instances) share weights and KV cache this
 * way, and a KV cache may live in a file mapping. */
sm_status sm_runtime_create_bound(const sm_graph *g, const sm_plan *p, void *const given[SM_ARENA_COUNT],
                                  sm_runtime **out);

#define SM_PLAN_ALIGN 64

static inline uint64_t sm_plan_align(uint64_t x) { return (x + SM_PLAN_ALIGN - 1) / SM_PLAN_ALIGN * SM_PLAN_ALIGN; }

#endif
