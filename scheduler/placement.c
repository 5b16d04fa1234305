/* placement.c — the placement pass: which arena each tensor of the lowered graph lives in. Today
 * the arena follows the tensor's role (weights, gradients, optimizer state, activations with the
 * inputs and outputs, KV cache); the result is plan data (p->t[i].arena), so a later pass or policy
 * can put a tensor elsewhere without the passes after it knowing why. */
#include <stdlib.h>

#include "../base/error.h"
#include "plan.h"

sm_arena_id sm_plan_arena_of(sm_role role)
{
    switch (role) {
    case SM_ROLE_PARAM: return SM_ARENA_PARAMS;
    case SM_ROLE_GRAD: return SM_ARENA_GRADS;
    case SM_ROLE_OPTIM: return SM_ARENA_OPTIM;
    case SM_ROLE_KV: return SM_ARENA_KV;
    default: return SM_ARENA_ACT;
    }
}

sm_status sm_plan_place(const sm_graph *g, sm_plan *p)
{
    free(p->t);
    p->n_tensors = g->n_t;
    p->t = calloc((size_t)(g->n_t ? g->n_t : 1), sizeof *p->t);
    if (!p->t) return sm_error(SM_ERR_NOMEM, "planning: out of memory for %d tensors", g->n_t);
    int count[SM_ARENA_COUNT] = {0};
    for (int i = 0; i < g->n_t; i++) {
        sm_plan_tensor *pt = &p->t[i];
        pt->arena = sm_plan_arena_of(g->t[i].role);
        pt->bytes = sm_rec_bytes(&g->t[i]);
        pt->alias = SM_NO_TENSOR;
        count[pt->arena]++;
    }
    sm_plan_log(p, SM_PASS_PLACEMENT, "by role, all in RAM: %d weights, %d gradients, %d optimizer state, %d "
                "activations/inputs/outputs, %d KV", count[SM_ARENA_PARAMS], count[SM_ARENA_GRADS],
                count[SM_ARENA_OPTIM], count[SM_ARENA_ACT], count[SM_ARENA_KV]);
    return SM_OK;
}
