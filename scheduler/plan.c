/* plan.c — turning a graph into a plan: the fixed sequence of passes (lower: copy the graph, order,
 * recompute, precision; then placement, lifetimes, in-place, offsets), the search a recompute budget asks for,
 * the budget check, and the plan's public figures. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include <xxhash.h>

#include "../base/error.h"
#include "../ops/op.h"
#include "plan.h"

_Static_assert(SM_PACK_COUNT <= SM_PLAN_MAX_PACKERS, "sm_plan_arena_info has room for every packer");

static const char *arena_names[SM_ARENA_COUNT] = {"params", "grads", "optim", "activations", "kv", "workspace"};
static const char *arena_labels[SM_ARENA_COUNT] = {"weights", "gradients", "optimizer state", "activations",
                                                   "KV cache", "workspace"};
/* Written for a person reading an SM_ERR_BUDGET message or `smallmind plan`, in the library's terms
 * (the CLI's flags are its own business). */
static const char *arena_advice[SM_ARENA_COUNT] = {
    "use a smaller model (fewer layers L or a narrower width C)",
    "plan inference instead of training, or freeze some parameters",
    "plan inference instead of training, or freeze some parameters",
    "lower the batch B or the sequence length T",
    "lower the context length T or the batch B",
    "run with fewer threads",
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
    /* The budget is left out: it decides whether a plan is accepted, not what it looks like. What
     * the recompute pass did is in the lowered graph's hash. */
    uint64_t v[5] = {graph_hash, p->lowered_hash, (uint64_t)p->opts.strategy, (uint64_t)p->n_threads,
                     2 /* layout version */};
    unsigned char b[sizeof v];
    for (size_t i = 0; i < sizeof v; i++) b[i] = (unsigned char)(v[i / 8] >> (8 * (i % 8)));
    return XXH3_64bits(b, sizeof b);
}

void sm_plan_log(sm_plan *p, sm_pass pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->log[pass], sizeof p->log[pass], fmt, ap);
    va_end(ap);
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

sm_status sm_plan_lower(const sm_graph *g, sm_plan *p)
{
    sm_rc_choice c = p->rc.choice;
    sm_graph_free(p->g);
    p->g = NULL;
    sm_status s = sm_graph_clone(g, &p->g);
    if (!s) s = sm_plan_order(p->g, p);
    if (!s) s = sm_plan_recompute_pass(p, c);
    if (!s) s = sm_plan_precision_pass(p);
    if (!s) {
        p->graph_hash = sm_graph_hash(g);
        p->lowered_hash = sm_graph_hash(p->g);
    }
    return s;
}

/* The passes after lowering: placement, lifetimes, then in-place and offsets (packed) or end to end
 * (naive). */
static sm_status layout(sm_plan *p, int force)
{
    const sm_graph *g = p->g;
    sm_status s = sm_plan_place(g, p);
    if (!s) s = sm_plan_lifetimes(g, p);
    if (!s && p->opts.strategy == SM_PLAN_PACKED) {
        s = sm_plan_inplace(g, p);
        if (!s) s = sm_plan_assign_packed(g, p, force);
    } else if (!s) {
        sm_plan_log(p, SM_PASS_INPLACE, "none: the naive strategy reuses nothing");
        sm_plan_assign_naive(g, p);
    }
    if (!s) p->hash = sm_plan_hash_of(p->graph_hash, p);
    return s;
}

static void log_recompute(sm_plan *p, const char *asked)
{
    const sm_plan_rc *rc = &p->rc;
    if (!rc->choice.every) {
        sm_plan_log(p, SM_PASS_RECOMPUTE, "%s: nothing recomputed (%d block boundaries found)", asked, rc->n_boundaries);
        return;
    }
    sm_plan_log(p, SM_PASS_RECOMPUTE, "%s: every:%d%s keeps %d of %d block boundaries; %d tensors recomputed, +%.3g "
                "FLOPs (%.1f%% of the run)", asked, rc->choice.every, rc->choice.keep_costly ? " + costly ops' outputs" : "",
                rc->n_kept, rc->n_boundaries, rc->n_recomputed, rc->extra_flops,
                p->flops > 0 ? 100.0 * rc->extra_flops / p->flops : 0.0);
}

sm_status sm_plan_build(const sm_graph *g, const sm_plan_options *o, sm_rc_choice c, int force, sm_plan **out)
{
    sm_plan *p = calloc(1, sizeof *p);
    if (!p) return sm_error(SM_ERR_NOMEM, "planning: out of memory");
    p->opts = *o;
    p->n_threads = o->n_threads > 0 ? o->n_threads : omp_get_max_threads();
    p->rc.choice = c;
    sm_status s = sm_plan_lower(g, p);
    if (!s) s = layout(p, force);
    if (s) {
        sm_plan_free(p);
        return s;
    }
    char asked[64];
    log_recompute(p, sm_recompute_str(&o->recompute, asked, sizeof asked));
    *out = p;
    return SM_OK;
}

/* BUDGET: of the candidate choices (recompute.c), the one with the least extra FLOPs whose plan
 * fits the budget. The candidates come cheapest first, so the search stops at the first fit; when
 * none fits, the smallest plan's figures name what is missing. */
static sm_status plan_search(const sm_graph *g, const sm_plan_options *o, uint64_t budget, sm_plan **out)
{
    sm_rc_choice *cand;
    int n;
    sm_status s = sm_rc_candidates(g, &cand, &n);
    if (s) return s;
    sm_plan *best = NULL, *smallest = NULL;
    uint64_t act_none = 0;   /* cand[0] is no recompute: its arena is the reports' "before" */
    for (int i = 0; !s && i < n; i++) {
        sm_plan *p;
        if ((s = sm_plan_build(g, o, cand[i], -1, &p))) break;
        if (!cand[i].every) act_none = p->arena[SM_ARENA_ACT].size;
        if (sm_plan_can_fit(p, budget)) {
            best = p;
            break;
        }
        if (!smallest || sm_plan_estimate(p) < sm_plan_estimate(smallest)) {
            sm_plan_free(smallest);
            smallest = p;
        } else {
            sm_plan_free(p);
        }
    }
    free(cand);
    if (!s && !best) {
        s = over_budget(smallest, budget);
        sm_error_prefix(s, "no recompute policy fits: the smallest plan (every:%d%s) still needs more: ",
                        smallest->rc.choice.every, smallest->rc.choice.keep_costly ? " + costly" : "");
    }
    sm_plan_free(smallest);
    if (s) {
        sm_plan_free(best);
        return s;
    }
    if (best->rc.choice.every) best->rc.act_none = act_none;
    *out = best;
    return SM_OK;
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
    if ((unsigned)opts->precision >= SM_PRECISION_COUNT)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: unknown precision policy %d (fp32, bf16 or fp16)",
                        (int)opts->precision);
    if (opts->n_threads < 0)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: n_threads is %d; give 0 (OpenMP's default) or more",
                        opts->n_threads);
    const sm_recompute_policy *rp = &opts->recompute;
    if ((unsigned)rp->kind > SM_RECOMPUTE_BUDGET)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_create: unknown recompute policy %d", (int)rp->kind);
    sm_plan *p = NULL;
    sm_status s;
    if (rp->kind == SM_RECOMPUTE_BUDGET) {
        uint64_t budget = rp->budget ? rp->budget : opts->budget;
        sm_sysinfo si;
        if (!budget) {
            if ((s = sm_sysinfo_get(&si))) return sm_error_prefix(s, "recompute auto: no budget was given and ");
            budget = si.budget_auto;
        }
        s = plan_search(g, opts, budget, &p);
    } else {
        sm_rc_choice c;
        s = sm_rc_resolve(g, rp, &c);
        if (!s) s = sm_plan_build(g, opts, c, -1, &p);
    }
    /* the activation arena without recompute, for the reports' before/after */
    if (!s && p->rc.choice.every && !p->rc.act_none) {
        sm_plan *none;
        if (!(s = sm_plan_build(g, opts, (sm_rc_choice){0, false}, -1, &none))) {
            p->rc.act_none = none->arena[SM_ARENA_ACT].size;
            sm_plan_free(none);
        }
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
    sm_graph_free(p->g);
    free(p->order);
    free(p->t);
    free(p->src);
    free(p);
}

const sm_graph *sm_plan_graph(const sm_plan *p) { return p ? p->g : NULL; }

const char *sm_plan_pass_log(const sm_plan *p, int pass)
{
    return p && pass >= 0 && pass < SM_PASS_COUNT ? p->log[pass] : NULL;
}

sm_status sm_plan_recompute(const sm_plan *p, sm_plan_recompute_info *out)
{
    if (!p || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_recompute: NULL plan or out");
    memset(out, 0, sizeof *out);
    out->asked = p->opts.recompute;
    out->kind = !p->rc.choice.every ? SM_RECOMPUTE_NONE
              : p->rc.choice.keep_costly && p->rc.choice.every == 1 ? SM_RECOMPUTE_SELECTIVE : SM_RECOMPUTE_EVERY;
    out->every = p->rc.choice.every;
    out->n_boundaries = p->rc.n_boundaries;
    out->n_kept = p->rc.n_kept;
    out->n_recomputed = p->rc.n_recomputed;
    out->extra_flops = p->rc.extra_flops;
    out->flops = p->flops;
    out->act_none = p->rc.act_none;
    out->act = p->arena[SM_ARENA_ACT].size;
    return SM_OK;
}

sm_tensor sm_plan_recomputes(const sm_plan *p, sm_tensor t)
{
    return p && p->src && t >= 0 && t < p->n_tensors ? p->src[t] : SM_NO_TENSOR;
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
