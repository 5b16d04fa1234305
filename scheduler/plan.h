/* plan.h — sm_plan is plain data: the execution order, each tensor's arena, offset, bytes and
 * lifetime, and the arena sizes. The executor reads nothing else. */
#ifndef SM_PLAN_H
#define SM_PLAN_H

#include "../graph/graph.h"

typedef enum sm_arena_id {
    SM_ARENA_PARAMS = 0,  /* parameters: persist across runs */
    SM_ARENA_GRADS,       /* parameter gradients */
    SM_ARENA_OPTIM,       /* optimizer state: persists across runs */
    SM_ARENA_ACT,         /* inputs, activations, outputs */
    SM_ARENA_KV,          /* attention KV cache */
    SM_ARENA_WORK,        /* per-thread kernel scratch */
    SM_ARENA_COUNT
} sm_arena_id;

typedef struct sm_plan_tensor {
    int arena;            /* sm_arena_id */
    uint64_t offset;      /* bytes from the arena's base */
    uint64_t bytes;       /* storage bytes (views: the view's size; they share their source's range) */
    int first, last;      /* steps of first and last use; persistent tensors span 0..n_steps-1 */
    sm_tensor alias;      /* the tensor whose storage this one uses (views, in-place), or SM_NO_TENSOR */
} sm_plan_tensor;

typedef struct sm_plan_arena {
    uint64_t size;        /* bytes to allocate */
    uint64_t lower_bound; /* max bytes live at any step */
    uint64_t naive;       /* bytes with no reuse at all */
} sm_plan_arena;

struct sm_plan {
    sm_plan_options opts;
    int n_steps;
    int *order;           /* node ids in execution order */
    int n_tensors;
    sm_plan_tensor *t;
    sm_plan_arena arena[SM_ARENA_COUNT];
    uint64_t work_per_thread;  /* SM_ARENA_WORK = n_threads * work_per_thread */
    int n_threads;
    double flops;
};

/* The arena a tensor of this role lives in. */
sm_arena_id sm_plan_arena_of(sm_role role);
const char *sm_arena_name(sm_arena_id a);

/* The common first half of every plan: order, arenas, lifetimes (first/last use), aliases of views,
 * workspace, FLOPs. Offsets are left for a strategy to assign. */
sm_status sm_plan_prepare(const sm_graph *g, const sm_plan_options *o, sm_plan *p);
/* Naive strategy: every tensor with storage of its own gets its own range (no reuse). */
void sm_plan_assign_naive(const sm_graph *g, sm_plan *p);

#define SM_PLAN_ALIGN 64

#endif
