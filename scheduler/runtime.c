/* runtime.c — the executor: allocates the arenas a plan names, binds every tensor to its planned
 * offset and runs the nodes in plan order inside one OpenMP parallel region, with a barrier between
 * nodes. It reads only the plan (and the graph for the tensors' records). */
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <xxhash.h>

#include "../base/error.h"
#include "../base/fp16.h"
#include "../base/rng.h"
#include "../memory/arena.h"
#include "../ops/op.h"
#include "plan.h"
#include "runtime_debug.h"

/* One call of the hook: after step `after`, for tensor t. */
typedef struct hook_call {
    int after;
    sm_hook_event ev;
    sm_tensor t;
} hook_call;

struct sm_runtime {
    const sm_graph *g;         /* the plan's lowered graph: what runs */
    const sm_graph *user;      /* the graph the caller made the plan for (its ids are valid in g) */
    const sm_plan *p;
    sm_arena *arena[SM_ARENA_COUNT];
    void *base[SM_ARENA_COUNT];
    void **ptr;                /* storage of each tensor */
    sm_kernel_args *args;      /* one per step, bound once */
    bool *input_set;           /* inputs written since the last run */
    int n_threads;
    sm_rt_debug *debug;        /* non-NULL in debug mode (sm_runtime_set_debug) */
    sm_profile_step *prof;     /* non-NULL while profiling (sm_runtime_set_profile): one per step */
    int prof_runs;
    sm_runtime_hook hook;      /* sm_runtime_set_hook */
    void *hook_user;
    hook_call *calls;          /* what the hook is called for, sorted by the step they follow */
    int n_calls, cap_calls;
    bool *hook_after;          /* per step: some call follows it (read by every thread) */
};

static sm_status bind(sm_runtime *rt)
{
    const sm_graph *g = rt->g;
    const sm_plan *p = rt->p;
    for (int i = 0; i < g->n_t; i++)
        rt->ptr[i] = (char *)rt->base[p->t[i].arena] + p->t[i].offset;
    for (int s = 0; s < p->n_steps; s++) {
        const sm_node *n = &g->nodes[p->order[s]];
        const sm_op_def *d = sm_op_def_get(n->op);
        if (!d->is_view && !d->forward)
            return sm_error(SM_ERR_UNSUPPORTED, "node '%s': op '%s' has no kernel in this build",
                            g->t[n->out].name, d->name);
        sm_kernel_args *a = &rt->args[s];
        a->node = n;
        a->out = &g->t[n->out];
        a->y = rt->ptr[n->out];
        a->n_in = n->n_in;
        for (int i = 0; i < n->n_in; i++) {
            a->in[i] = &g->t[n->in[i]];
            a->x[i] = rt->ptr[n->in[i]];
        }
        a->work = rt->base[SM_ARENA_WORK];
        a->work_bytes = p->work_per_thread;
        a->shared = (char *)rt->base[SM_ARENA_WORK] + p->work_per_thread * (uint64_t)p->n_threads;
        a->shared_bytes = p->work_shared;
        a->bf16 = p->opts.precision == SM_PRECISION_BF16;
    }
    return SM_OK;
}

sm_status sm_runtime_create(const sm_graph *g, const sm_plan *p, sm_runtime **out)
{
    return sm_runtime_create_bound(g, p, NULL, out);
}

sm_status sm_runtime_create_bound(const sm_graph *g, const sm_plan *p, void *const given[SM_ARENA_COUNT],
                                  sm_runtime **out)
{
    if (!g || !p || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_create: NULL argument");
    sm_status s = sm_plan_check_graph(p, g);
    if (s) return s;
    sm_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return sm_error(SM_ERR_NOMEM, "runtime: out of memory");
    rt->g = p->g;
    rt->user = g;
    g = p->g;
    rt->p = p;
    rt->n_threads = p->n_threads;
    rt->ptr = calloc((size_t)g->n_t + 1, sizeof *rt->ptr);
    rt->args = calloc((size_t)p->n_steps + 1, sizeof *rt->args);
    rt->input_set = calloc((size_t)g->n_t + 1, sizeof *rt->input_set);
    s = rt->ptr && rt->args && rt->input_set ? SM_OK : sm_error(SM_ERR_NOMEM, "runtime: out of memory");
    /* One allocation per arena, committed up front, so the process's memory is the plan's total. */
    for (int a = 0; !s && a < SM_ARENA_COUNT; a++) {
        if (given && given[a]) {   /* the caller's memory (shared weights, a file KV cache): not ours */
            rt->base[a] = given[a];
            continue;
        }
        s = sm_arena_create_heap((size_t)p->arena[a].size, &rt->arena[a]);
        if (s) sm_error_prefix(s, "the %s arena: ", sm_arena_name(a));
        else rt->base[a] = sm_arena_base(rt->arena[a]);
    }
    if (!s) s = bind(rt);
    if (s) {
        sm_runtime_free(rt);
        return s;
    }
    *out = rt;
    return SM_OK;
}

void sm_runtime_free(sm_runtime *rt)
{
    if (!rt) return;
    sm_rt_debug_free(rt->debug);
    free(rt->prof);
    for (int a = 0; a < SM_ARENA_COUNT; a++) sm_arena_free(rt->arena[a]);
    free(rt->ptr);
    free(rt->args);
    free(rt->input_set);
    free(rt->calls);
    free(rt->hook_after);
    free(rt);
}

const sm_graph *sm_runtime_graph(const sm_runtime *rt) { return rt ? rt->user : NULL; }

sm_status sm_runtime_set_threads(sm_runtime *rt, int n)
{
    if (!rt || n < 0) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_set_threads: bad argument");
    int want = n ? n : omp_get_max_threads();
    if (want > rt->p->n_threads)
        return sm_error(SM_ERR_INVALID_ARG, "%d threads asked, but the plan sized workspace for %d: make the "
                        "plan with n_threads >= %d", want, rt->p->n_threads, want);
    rt->n_threads = want;
    return SM_OK;
}

/* A tensor the precision pass stores in 16 bits though the caller's graph says f32 (the weights of
 * an inference plan under bf16/fp16): the caller reads and writes it as f32, converted here. */
static bool converted(const sm_runtime *rt, sm_tensor t)
{
    return t < rt->user->n_t && rt->user->t[t].role == SM_ROLE_PARAM && rt->user->t[t].dtype == SM_F32 &&
           rt->g->t[t].dtype != SM_F32;
}

static void to_storage(sm_dtype t, const float *src, void *dst, size_t n)
{
    if (t == SM_BF16) sm_f32_to_bf16_array(src, dst, n);
    else sm_f32_to_f16_array(src, dst, n);
}

static sm_status check_tensor(const sm_runtime *rt, sm_tensor t, size_t bytes, const char *what)
{
    if (!rt || !sm_graph_valid(rt->g, t)) return sm_error(SM_ERR_INVALID_ARG, "%s: not a tensor of this graph", what);
    size_t want = sm_rec_bytes(&(converted(rt, t) ? rt->user : rt->g)->t[t]);
    if (bytes != want)
        return sm_error(SM_ERR_INVALID_ARG, "%s '%s': %zu bytes given, the tensor has %zu", what,
                        rt->g->t[t].name, bytes, want);
    return SM_OK;
}

sm_status sm_runtime_set(sm_runtime *rt, sm_tensor t, const void *src, size_t bytes)
{
    sm_status s = check_tensor(rt, t, bytes, "set");
    if (s) return s;
    if (converted(rt, t)) to_storage(rt->g->t[t].dtype, src, rt->ptr[t], bytes / sizeof(float));
    else memcpy(rt->ptr[t], src, bytes);
    rt->input_set[t] = true;
    return SM_OK;
}

sm_status sm_runtime_get(const sm_runtime *rt, sm_tensor t, void *dst, size_t bytes)
{
    sm_status s = check_tensor(rt, t, bytes, "get");
    if (s) return s;
    size_t n = bytes / sizeof(float);
    if (converted(rt, t) && rt->g->t[t].dtype == SM_BF16) sm_bf16_to_f32_array(rt->ptr[t], dst, n);
    else if (converted(rt, t)) sm_f16_to_f32_array(rt->ptr[t], dst, n);
    else memcpy(dst, rt->ptr[t], bytes);
    return SM_OK;
}

sm_status sm_runtime_data(sm_runtime *rt, sm_tensor t, void **ptr)
{
    if (!rt || !sm_graph_valid(rt->g, t) || !ptr) return sm_error(SM_ERR_INVALID_ARG, "data: bad argument");
    if (converted(rt, t))
        return sm_error(SM_ERR_UNSUPPORTED, "data: '%s' is f32 in the graph but the plan's precision policy (%s) stores "
                        "it as %s: read and write it with sm_runtime_get / sm_runtime_set, which convert",
                        rt->g->t[t].name, sm_precision_name(rt->p->opts.precision), sm_dtype_name(rt->g->t[t].dtype));
    *ptr = rt->ptr[t];
    rt->input_set[t] = true;   /* the caller may write through the pointer */
    return SM_OK;
}

sm_status sm_runtime_storage(const sm_runtime *rt, sm_tensor t, sm_dtype *out)
{
    if (!rt || !sm_graph_valid(rt->g, t) || !out) return sm_error(SM_ERR_INVALID_ARG, "storage: bad argument");
    *out = rt->g->t[t].dtype;
    return SM_OK;
}

sm_status sm_runtime_init_params(sm_runtime *rt, uint64_t seed)
{
    if (!rt) return sm_error(SM_ERR_INVALID_ARG, "init_params: NULL runtime");
    const sm_graph *g = rt->g;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (r->role != SM_ROLE_PARAM && r->role != SM_ROLE_OPTIM) continue;
        bool conv = converted(rt, i);
        if (r->dtype != SM_F32 && !conv)
            return sm_error(SM_ERR_UNSUPPORTED, "init_params: parameter '%s' is %s; only f32 parameters are "
                            "initialised (load it from a file instead)", r->name, sm_dtype_name(r->dtype));
        int64_t n = sm_rec_numel(r);
        /* The stream is keyed by the name, so a parameter's values do not depend on graph order. A
         * parameter stored in 16 bits gets the f32 values rounded, a chunk at a time. */
        uint64_t key = XXH3_64bits_withSeed(r->name, strlen(r->name), seed);
        float chunk[256];
        for (int64_t j0 = 0; j0 < n; j0 += 256) {
            int64_t m = n - j0 < 256 ? n - j0 : 256;
            float *x = conv ? chunk : (float *)rt->ptr[i] + j0;
            for (int64_t j = 0; j < m; j++)
                x[j] = r->role == SM_ROLE_OPTIM || r->init == SM_INIT_ZEROS ? 0.0f
                     : r->init == SM_INIT_ONES ? 1.0f
                     : (float)(r->init_std * sm_rng_normal(key, (uint64_t)(j0 + j)));
            if (conv) to_storage(r->dtype, chunk, (uint16_t *)rt->ptr[i] + j0, (size_t)m);
        }
    }
    return SM_OK;
}

sm_status sm_runtime_copy_params(sm_runtime *dst, const sm_runtime *src)
{
    if (!dst || !src) return sm_error(SM_ERR_INVALID_ARG, "copy_params: NULL runtime");
    const sm_graph *g = dst->user, *sg = src->user;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (r->role != SM_ROLE_PARAM) continue;
        sm_tensor j;
        if (sm_graph_find(sg, r->name, &j))
            return sm_error(SM_ERR_INVALID_ARG, "copy_params: the source has no tensor '%s'", r->name);
        if (sg->t[j].dtype != r->dtype || sm_rec_numel(&sg->t[j]) != sm_rec_numel(r))
            return sm_error(SM_ERR_INVALID_ARG, "copy_params: '%s' is %s with %lld values in the source, the model "
                            "needs %s with %lld", r->name, sm_dtype_name(sg->t[j].dtype),
                            (long long)sm_rec_numel(&sg->t[j]), sm_dtype_name(r->dtype), (long long)sm_rec_numel(r));
        const size_t bytes = sm_rec_bytes(r);
        if (!converted(dst, i)) {   /* straight into dst's storage */
            sm_status st = sm_runtime_get(src, j, dst->ptr[i], bytes);
            if (st) return st;
            dst->input_set[i] = true;
            continue;
        }
        void *f32 = malloc(bytes);
        if (!f32) return sm_error(SM_ERR_NOMEM, "copy_params: out of memory for '%s'", r->name);
        sm_status st = sm_runtime_get(src, j, f32, bytes);
        if (!st) st = sm_runtime_set(dst, i, f32, bytes);
        free(f32);
        if (st) return st;
    }
    return SM_OK;
}

/* The hook calls due after step s, if any: every thread enters (hook_after is the same for all), the
 * first barrier lets step s finish everywhere (a view step has no barrier of its own) and orders the
 * master's write of *st after every thread's read of the previous one; the second publishes it.
 * *next is the master's cursor into rt->calls. */
static sm_status run_hooks(sm_runtime *rt, int s, int *next, sm_status *st)
{
    if (!rt->hook_after[s]) return SM_OK;
#pragma omp barrier
#pragma omp master
    {
        sm_status r = SM_OK;
        for (; *next < rt->n_calls && rt->calls[*next].after == s; ++*next)
            if (!r) r = rt->hook(rt->hook_user, rt->calls[*next].ev, rt->calls[*next].t);
        *st = r;
    }
#pragma omp barrier
    return *st;
}

sm_status sm_runtime_run(sm_runtime *rt)
{
    if (!rt) return sm_error(SM_ERR_INVALID_ARG, "run: NULL runtime");
    const sm_graph *g = rt->g;
    const sm_plan *p = rt->p;
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].role == SM_ROLE_INPUT && !rt->input_set[i] && p->t[i].first <= p->t[i].last)
            return sm_error(SM_ERR_STATE, "input '%s' was not set before this run: inputs are consumed by a "
                            "run, set them (sm_runtime_set) before each one", g->t[i].name);
    const sm_kernel_args *args = rt->args;
    int n_steps = p->n_steps;
    sm_status st = SM_OK, hook_st = SM_OK;
    int next_call = 0;
    if (rt->debug) {
        st = sm_rt_debug_begin(rt->debug);
        if (st) return st;
#pragma omp parallel num_threads(rt->n_threads)
        {
            /* The calling thread (the master: its thread-local error message is the one the caller
             * reads) checks and poisons between nodes; the barriers order that with the kernels and
             * let every thread see the same st, so all leave the loop together. */
            for (int s = 0; s < n_steps; s++) {
#pragma omp master
                st = sm_rt_debug_before(rt->debug, s);
#pragma omp barrier
                if (st) break;
                const sm_op_def *d = sm_op_def_get(args[s].node->op);
                if (!d->is_view) d->forward(&args[s]);
#pragma omp barrier
#pragma omp master
                sm_rt_debug_after(rt->debug, s);
#pragma omp barrier
                if (rt->hook && run_hooks(rt, s, &next_call, &hook_st)) break;
            }
        }
    } else if (rt->prof) {
        sm_profile_step *prof = rt->prof;
#pragma omp parallel num_threads(rt->n_threads)
        {
            /* The master's clock between the barriers that close consecutive nodes: a node's time
             * includes waiting for its slowest thread, which is what the step pays for it. */
            const int master = omp_get_thread_num() == 0;
            double t0 = master ? omp_get_wtime() : 0.0;
            for (int s = 0; s < n_steps; s++) {
                const sm_op_def *d = sm_op_def_get(args[s].node->op);
                if (!d->is_view) {
                    d->forward(&args[s]);
#pragma omp barrier
                    if (master) {
                        const double t1 = omp_get_wtime();
                        prof[s].seconds += t1 - t0;
                        t0 = t1;
                    }
                }
                if (rt->hook && run_hooks(rt, s, &next_call, &hook_st)) break;
            }
        }
        rt->prof_runs++;
    } else {
#pragma omp parallel num_threads(rt->n_threads)
        {
            for (int s = 0; s < n_steps; s++) {
                const sm_op_def *d = sm_op_def_get(args[s].node->op);
                if (!d->is_view) {
                    d->forward(&args[s]);
#pragma omp barrier
                }
                if (rt->hook && run_hooks(rt, s, &next_call, &hook_st)) break;
            }
        }
    }
    for (int i = 0; i < g->n_t; i++)
        if (g->t[i].role == SM_ROLE_INPUT) rt->input_set[i] = false;
    return st ? st : hook_st;
}

sm_status sm_runtime_set_hook(sm_runtime *rt, sm_runtime_hook fn, void *user)
{
    if (!rt) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_set_hook: NULL runtime");
    rt->hook = fn;
    rt->hook_user = user;
    rt->n_calls = 0;
    if (!rt->hook_after && !(rt->hook_after = calloc((size_t)rt->p->n_steps + 1, sizeof *rt->hook_after))) {
        rt->hook = NULL;
        return sm_error(SM_ERR_NOMEM, "sm_runtime_set_hook: out of memory");
    }
    memset(rt->hook_after, 0, (size_t)rt->p->n_steps * sizeof *rt->hook_after);
    return SM_OK;
}

/* Inserts a call after those already due at the same step (so watch order is kept). */
static sm_status add_call(sm_runtime *rt, int after, sm_hook_event ev, sm_tensor t)
{
    if (rt->n_calls == rt->cap_calls) {
        int cap = rt->cap_calls ? 2 * rt->cap_calls : 64;
        hook_call *c = realloc(rt->calls, (size_t)cap * sizeof *c);
        if (!c) return sm_error(SM_ERR_NOMEM, "sm_runtime_watch: out of memory");
        rt->calls = c;
        rt->cap_calls = cap;
    }
    int i = rt->n_calls++;
    for (; i > 0 && (rt->calls[i - 1].after > after || (rt->calls[i - 1].after == after && rt->calls[i - 1].ev > ev)); i--)
        rt->calls[i] = rt->calls[i - 1];
    rt->calls[i] = (hook_call){after, ev, t};
    rt->hook_after[after] = true;
    return SM_OK;
}

sm_status sm_runtime_watch(sm_runtime *rt, sm_tensor t)
{
    if (!rt || !rt->hook || !sm_graph_valid(rt->g, t))
        return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_watch: %s", !rt || !rt->hook ? "set a hook first"
                                                                                     : "not a tensor of this graph");
    const sm_plan *p = rt->p;
    int w = -1, r = -1;
    for (int s = 0; s < p->n_steps && w < 0; s++)
        if (rt->args[s].node->out == t) w = s;
    for (int s = w + 1; w >= 0 && s < p->n_steps && r < 0; s++)
        for (int i = 0; i < rt->args[s].n_in && r < 0; i++)
            if (rt->args[s].node->in[i] == t) r = s;
    if (w < 0)
        return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_watch: no node of the plan writes '%s' (watch a tensor a "
                        "node makes, not an input or a parameter)", rt->g->t[t].name);
    sm_status s = add_call(rt, w, SM_HOOK_WRITTEN, t);
    return s || r < 0 ? s : add_call(rt, r - 1, SM_HOOK_NEEDED, t);
}

sm_status sm_runtime_set_debug(sm_runtime *rt, int on)
{
    if (!rt) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_set_debug: NULL runtime");
    if (!on) {
        sm_rt_debug_free(rt->debug);
        rt->debug = NULL;
        return SM_OK;
    }
    if (rt->debug) return SM_OK;
    sm_status s = sm_plan_validate(rt->p, rt->g);
    if (s) return sm_error_prefix(s, "debug runtime: the plan is not valid: ");
    return sm_rt_debug_create(rt->g, rt->p, rt->base, &rt->debug);
}

sm_status sm_runtime_set_profile(sm_runtime *rt, int on)
{
    if (!rt) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_set_profile: NULL runtime");
    free(rt->prof);
    rt->prof = NULL;
    rt->prof_runs = 0;
    if (!on) return SM_OK;
    const int n = rt->p->n_steps;
    rt->prof = calloc((size_t)n + 1, sizeof *rt->prof);
    if (!rt->prof) return sm_error(SM_ERR_NOMEM, "profiling: out of memory for %d steps", n);
    for (int s = 0; s < n; s++) {
        rt->prof[s].op = rt->args[s].node->op;
        rt->prof[s].out = rt->args[s].node->out;
    }
    return SM_OK;
}

sm_status sm_runtime_profile(const sm_runtime *rt, const sm_profile_step **steps, int *n_steps, int *n_runs)
{
    if (!rt || !steps || !n_steps) return sm_error(SM_ERR_INVALID_ARG, "sm_runtime_profile: NULL argument");
    if (!rt->prof)
        return sm_error(SM_ERR_STATE, "profile: profiling is off; switch it on (sm_runtime_set_profile) before "
                        "the runs to measure");
    *steps = rt->prof;
    *n_steps = rt->p->n_steps;
    if (n_runs) *n_runs = rt->prof_runs;
    return SM_OK;
}
