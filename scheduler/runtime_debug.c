/* runtime_debug.c — see runtime_debug.h. Costs 4 bytes of shadow per 64 bytes of arena and a pass
 * over each tensor's blocks per use: meant for tests and for hunting planner bugs, not for speed. */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "runtime_debug.h"

#define BLOCK SM_PLAN_ALIGN
#define FREE_BLOCK (-1)

struct sm_rt_debug {
    const sm_graph *g;
    const sm_plan *p;
    void *base[SM_ARENA_COUNT];
    int32_t *own[SM_ARENA_COUNT];   /* owner root tensor of each block, or FREE_BLOCK */
    int *born, *born_at;            /* roots by first step: born[born_at[s] .. born_at[s+1]) */
    int *dies, *dies_at;            /* roots by last step */
    bool *keep;                     /* roots whose storage a caller reads between runs: never poisoned */
};

static sm_tensor root_of(const sm_plan *p, sm_tensor t) { return p->t[t].alias != SM_NO_TENSOR ? p->t[t].alias : t; }

static void block_range(const sm_plan_tensor *t, uint64_t *b0, uint64_t *b1)
{
    *b0 = t->offset / BLOCK;
    *b1 = (t->offset + t->bytes + BLOCK - 1) / BLOCK;
}

/* roots grouped by a step key (first or last) into CSR arrays */
static sm_status bucket(const sm_plan *p, bool by_last, int **ids, int **at)
{
    int n = p->n_steps ? p->n_steps : 1;
    *at = calloc((size_t)n + 1, sizeof **at);
    *ids = malloc(sizeof **ids * (size_t)(p->n_tensors ? p->n_tensors : 1));
    if (!*at || !*ids) return sm_error(SM_ERR_NOMEM, "debug runtime: out of memory");
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].alias == SM_NO_TENSOR) (*at)[(by_last ? p->t[i].last : p->t[i].first) + 1]++;
    for (int s = 0; s < n; s++) (*at)[s + 1] += (*at)[s];
    int *fill = malloc(sizeof *fill * (size_t)n);
    if (!fill) return sm_error(SM_ERR_NOMEM, "debug runtime: out of memory");
    memcpy(fill, *at, sizeof *fill * (size_t)n);
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].alias == SM_NO_TENSOR) (*ids)[fill[by_last ? p->t[i].last : p->t[i].first]++] = i;
    free(fill);
    return SM_OK;
}

sm_status sm_rt_debug_create(const sm_graph *g, const sm_plan *p, void *const arena[SM_ARENA_COUNT],
                             sm_rt_debug **out)
{
    sm_status s = SM_OK;
    sm_rt_debug *d = calloc(1, sizeof *d);
    if (!d) return sm_error(SM_ERR_NOMEM, "debug runtime: out of memory");
    d->g = g;
    d->p = p;
    for (int a = 0; !s && a < SM_ARENA_COUNT; a++) {
        d->base[a] = arena[a];
        size_t nb = (size_t)((p->arena[a].size + BLOCK - 1) / BLOCK);
        d->own[a] = malloc(sizeof *d->own[a] * (nb ? nb : 1));
        if (!d->own[a]) s = sm_error(SM_ERR_NOMEM, "debug runtime: out of memory for the %s arena's shadow",
                                     sm_arena_name((sm_arena_id)a));
    }
    if (!s && !(d->keep = calloc((size_t)p->n_tensors + 1, sizeof *d->keep)))
        s = sm_error(SM_ERR_NOMEM, "debug runtime: out of memory");
    for (int i = 0; !s && i < p->n_tensors; i++)
        if (sm_plan_role_spans_run(g->t[i].role) || g->t[i].is_output) d->keep[root_of(p, i)] = true;
    if (!s) s = bucket(p, false, &d->born, &d->born_at);
    if (!s) s = bucket(p, true, &d->dies, &d->dies_at);
    if (s) {
        sm_rt_debug_free(d);
        return s;
    }
    *out = d;
    return SM_OK;
}

void sm_rt_debug_free(sm_rt_debug *d)
{
    if (!d) return;
    for (int a = 0; a < SM_ARENA_COUNT; a++) free(d->own[a]);
    free(d->born);
    free(d->born_at);
    free(d->dies);
    free(d->dies_at);
    free(d->keep);
    free(d);
}

static sm_status claim(sm_rt_debug *d, sm_tensor r, int s)
{
    const sm_plan_tensor *t = &d->p->t[r];
    int32_t *own = d->own[t->arena];
    uint64_t b0, b1;
    block_range(t, &b0, &b1);
    for (uint64_t b = b0; b < b1; b++) {
        if (own[b] != FREE_BLOCK && own[b] != r)
            return sm_error(SM_ERR_INTERNAL, "debug run, step %d: '%s' is born over '%s', which is still live "
                            "(byte %llu of the %s arena): the plan overlaps live tensors", s, d->g->t[r].name,
                            d->g->t[own[b]].name, (unsigned long long)(b * BLOCK), sm_arena_name((sm_arena_id)t->arena));
        own[b] = r;
    }
    return SM_OK;
}

sm_status sm_rt_debug_begin(sm_rt_debug *d)
{
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        size_t nb = (size_t)((d->p->arena[a].size + BLOCK - 1) / BLOCK);
        for (size_t b = 0; b < nb; b++) d->own[a][b] = FREE_BLOCK;
    }
    return SM_OK;
}

static sm_status check_owned(const sm_rt_debug *d, sm_tensor u, int s, const char *what)
{
    sm_tensor r = root_of(d->p, u);
    const sm_plan_tensor *t = &d->p->t[r];
    const int32_t *own = d->own[t->arena];
    uint64_t b0, b1;
    block_range(t, &b0, &b1);
    const sm_node *n = &d->g->nodes[d->p->order[s]];
    for (uint64_t b = b0; b < b1; b++) {
        if (own[b] == r) continue;
        if (own[b] == FREE_BLOCK)
            return sm_error(SM_ERR_INTERNAL, "debug run, step %d: node '%s' %s '%s', whose storage is dead (it died "
                            "at step %d)", s, d->g->t[n->out].name, what, d->g->t[u].name, t->last);
        return sm_error(SM_ERR_INTERNAL, "debug run, step %d: node '%s' %s '%s', whose storage now belongs to '%s'", s,
                        d->g->t[n->out].name, what, d->g->t[u].name, d->g->t[own[b]].name);
    }
    return SM_OK;
}

sm_status sm_rt_debug_before(sm_rt_debug *d, int s)
{
    for (int k = d->born_at[s]; k < d->born_at[s + 1]; k++) {
        sm_status st = claim(d, d->born[k], s);
        if (st) return st;
    }
    const sm_node *n = &d->g->nodes[d->p->order[s]];
    for (int i = 0; i < n->n_in; i++) {
        sm_status st = check_owned(d, n->in[i], s, "reads");
        if (st) return st;
    }
    return check_owned(d, n->out, s, "writes");
}

void sm_rt_debug_after(sm_rt_debug *d, int s)
{
    for (int k = d->dies_at[s]; k < d->dies_at[s + 1]; k++) {
        sm_tensor r = d->dies[k];
        if (d->keep[r]) continue;
        const sm_plan_tensor *t = &d->p->t[r];
        uint64_t b0, b1;
        block_range(t, &b0, &b1);
        for (uint64_t b = b0; b < b1; b++) d->own[t->arena][b] = FREE_BLOCK;
        memset((char *)d->base[t->arena] + t->offset, 0xff, (size_t)t->bytes);
    }
}
