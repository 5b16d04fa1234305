/* plan.c — turning a graph into a plan (lifetimes.c, then offsets.c by the chosen strategy), the
 * budget check, and the plan's public figures. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../graph/error.h"
#include "../ops/op.h"
#include "plan.h"

_Static_assert(SM_PACK_COUNT <= SM_PLAN_MAX_PACKERS, "sm_plan_arena_info has room for every packer");

static const char *arena_names[SM_ARENA_COUNT] = {"params", "grads", "optim", "activations", "kv", "workspace"};
static const char *arena_labels[SM_ARENA_COUNT] = {"weights", "gradients", "optimizer state", "activations",
                                                   "KV cache", "workspace"};
/* Written for a person reading an SM_ERR_BUDGET message or `smallmind plan`; the flags in brackets
 * are the command-line tool's. */
static const char *arena_advice[SM_ARENA_COUNT] = {
    "use a smaller model (fewer layers L or a narrower width C)",
    "plan inference instead of training (--infer), or freeze some parameters",
    "plan inference instead of training (--infer), or freeze some parameters",
    "lower the batch B or the sequence length T (-B, -T)",
    "lower the context length T or the batch B (-T, -B)",
    "run with fewer threads (--threads)",
};

const char *sm_arena_name(sm_arena_id a) { return (unsigned)a < SM_ARENA_COUNT ? arena_names[a] : "?"; }
const char *sm_arena_role_label(sm_arena_id a) { return (unsigned)a < SM_ARENA_COUNT ? arena_labels[a] : "?"; }
const char *sm_arena_advice(sm_arena_id a) { return (unsigned)a < SM_ARENA_COUNT ? arena_advice[a] : "?"; }

void sm_plan_options_default(sm_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = SM_PLAN_PACKED;
}

uint64_t sm_plan_hash_of(uint64_t graph_hash, const sm_plan *p)
{
    /* The budget is left out: it decides whether a plan is accepted, not what it looks like. */
    uint64_t v[4] = {graph_hash, (uint64_t)p->opts.strategy, (uint64_t)p->n_threads, 1 /* layout version */};
    unsigned char b[sizeof v];
    for (size_t i = 0; i < sizeof v; i++) b[i] = (unsigned char)(v[i / 8] >> (8 * (i % 8)));
    return XXH3_64bits(b, sizeof b);
}

static sm_status over_budget(const sm_plan *p, uint64_t budget)
{
    sm_arena_id d = sm_plan_dominant(p);
    uint64_t need = sm_plan_estimate(p), dom = p->arena[d].size;
    return sm_error(SM_ERR_BUDGET,
                    "the plan needs %llu bytes (%.1f MiB) but the budget is %llu bytes (%.1f MiB); the largest "
                    "term is %s: %llu bytes (%.0f%%) in the %s arena; to shrink it, %s",
                    (unsigned long long)need, (double)need / 1048576.0, (unsigned long long)budget,
                    (double)budget / 1048576.0, sm_arena_role_label(d), (unsigned long long)dom,
                    need ? 100.0 * (double)dom / (double)need : 0.0, sm_arena_name(d), sm_arena_advice(d));
}

sm_status sm_plan_create(const sm_graph *g, const sm_plan_options *opts, sm_plan **out)
{
    if (!g || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: NULL graph or out");
    sm_plan_options def;
    if (!opts) {
        sm_plan_options_default(&def);
        opts = &def;
    }
    if (opts->strategy != SM_PLAN_NAIVE && opts->strategy != SM_PLAN_PACKED)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: unknown strategy %d (naive or packed)", (int)opts->strategy);
    if (opts->n_threads < 0)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: n_threads is %d; give 0 (OpenMP's default) or more",
                        opts->n_threads);
    sm_plan *p = calloc(1, sizeof *p);
    if (!p) return sm_error(SM_ERR_NOMEM, "planning: out of memory");
    sm_status s = sm_plan_prepare(g, opts, p);
    if (!s && opts->strategy == SM_PLAN_PACKED) {
        s = sm_plan_inplace(g, p);
        if (!s) s = sm_plan_assign_packed(g, p, -1);
    } else if (!s) {
        sm_plan_assign_naive(g, p);
    }
    if (!s) {
        p->graph_hash = sm_graph_hash(g);
        p->hash = sm_plan_hash_of(p->graph_hash, p);
    }
    if (!s && opts->budget && !sm_plan_can_fit(p, opts->budget)) s = over_budget(p, opts->budget);
    if (s) {
        sm_plan_free(p);
        return s;
    }
    *out = p;
    return SM_OK;
}

void sm_plan_free(sm_plan *p)
{
    if (!p) return;
    free(p->order);
    free(p->t);
    free(p);
}

uint64_t sm_plan_total_bytes(const sm_plan *p)
{
    uint64_t s = 0;
    for (int a = 0; p && a < SM_ARENA_COUNT; a++) s += p->arena[a].size;
    return s;
}

double sm_plan_flops(const sm_plan *p) { return p ? p->flops : 0; }
uint64_t sm_plan_hash(const sm_plan *p) { return p ? p->hash : 0; }

uint64_t sm_plan_estimate(const sm_plan *p)
{
    if (!p) return 0;
    uint64_t nt = (uint64_t)p->n_tensors, ns = (uint64_t)p->n_steps;
    /* graph records, plan records, and the runtime's per-tensor pointer and per-step kernel args
     * (runtime.c); a few hundred bytes of fixed structs are below anything measurable */
    uint64_t tables = nt * sizeof(sm_tensor_rec) + ns * sizeof(sm_node) + nt * sizeof(sm_plan_tensor) +
                      ns * sizeof(int) + (nt + 1) * (sizeof(void *) + sizeof(bool)) +
                      (ns + 1) * sizeof(sm_kernel_args);
    return sm_plan_total_bytes(p) + tables;
}

int sm_plan_can_fit(const sm_plan *p, uint64_t budget) { return p && sm_plan_estimate(p) <= budget; }

sm_arena_id sm_plan_dominant(const sm_plan *p)
{
    int d = SM_ARENA_ACT;
    for (int a = 0; p && a < SM_ARENA_COUNT; a++)
        if (p->arena[a].size > p->arena[d].size) d = a;
    return (sm_arena_id)d;
}

sm_status sm_plan_arena_stats(const sm_plan *p, sm_arena_id a, sm_plan_arena_info *out)
{
    if (!p || !out || (unsigned)a >= SM_ARENA_COUNT)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_arena_stats: NULL plan or out, or arena %d is not 0..%d", (int)a,
                        SM_ARENA_COUNT - 1);
    const sm_plan_arena *ar = &p->arena[a];
    memset(out, 0, sizeof *out);
    out->size = ar->size;
    out->lower_bound = ar->lower_bound;
    out->naive = ar->naive;
    out->peak_step = ar->peak_step;
    out->chosen = ar->chosen;
    if (ar->chosen >= 0) {
        out->n_packers = SM_PACK_COUNT;
        for (int k = 0; k < SM_PACK_COUNT; k++) {
            out->packer_name[k] = sm_packer_name(k);
            out->packer_size[k] = ar->packed[k];
        }
    }
    return SM_OK;
}

sm_status sm_plan_tensor_place(const sm_plan *p, sm_tensor t, sm_arena_id *arena, uint64_t *offset,
                               uint64_t *bytes, int *first, int *last)
{
    if (!p || t < 0 || t >= p->n_tensors)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_tensor_place: tensor id %d is not in this plan", (int)t);
    const sm_plan_tensor *pt = &p->t[t];
    if (arena) *arena = (sm_arena_id)pt->arena;
    if (offset) *offset = pt->offset;
    if (bytes) *bytes = pt->bytes;
    if (first) *first = pt->first;
    if (last) *last = pt->last;
    return SM_OK;
}
