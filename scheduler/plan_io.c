/* plan_io.c — plan files: the plan's data, little-endian, behind a versioned header and ahead of an
 * XXH3-64 checksum of everything before it (layout: docs/plan-format.md). Written atomically
 * (memory/atomic_file: temp file in the same directory, fsync, rename, fsync of the directory). A
 * loaded plan is trusted only after the checksum, the graph's hash and sm_plan_validate agree. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../base/error.h"
#include "../base/atomic_file.h"
#include "plan.h"

#define PLAN_MAGIC "SMPLAN\r\n"   /* \r\n: a text-mode transfer that mangles line ends is caught */
#define PLAN_VERSION 4u          /* 4: the precision policy, each tensor's storage type */
#define PLAN_HEADER 48            /* magic 8, version 4, reserved 4, payload bytes 8, graph hash 8, plan hash 8,
                                     lowered graph hash 8 */
#define PLAN_MAX_FILE (256u << 20)
#define TENSOR_REC 32
#define RECOMPUTE_REC (4 + 4 + 8 + 4 + 4 + 8)
#define PRECISION_REC 4
#define ARENA_REC (8 * 3 + 4 + 4 + 8 * SM_PACK_COUNT)

/* ---- bytes ---- */

typedef struct wbuf {
    unsigned char *b;
    size_t n;
} wbuf;

static void put(wbuf *w, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) w->b[w->n++] = (unsigned char)(v >> (8 * i));
}

typedef struct rbuf {
    const unsigned char *b;
    size_t n, at;
    bool short_read;
} rbuf;

static uint64_t get(rbuf *r, int bytes)
{
    if (r->at + (size_t)bytes > r->n) {
        r->short_read = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->b[r->at++] << (8 * i);
    return v;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_f64(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---- save ---- */

sm_status sm_plan_save(const sm_plan *p, const char *path)
{
    if (!p || !path) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_save: NULL plan or path");
    size_t payload = 4 * 4 + 8 + 4 * 4 + 8 + 8 + 8 + RECOMPUTE_REC + PRECISION_REC + (size_t)SM_ARENA_COUNT * ARENA_REC + 4 * (size_t)p->n_steps +
                     TENSOR_REC * (size_t)p->n_tensors;
    size_t total = PLAN_HEADER + payload + 8;
    wbuf w = {malloc(total), 0};
    if (!w.b) return sm_error(SM_ERR_NOMEM, "saving plan '%s': out of memory for %zu bytes", path, total);
    memcpy(w.b, PLAN_MAGIC, 8);
    w.n = 8;
    put(&w, PLAN_VERSION, 4);
    put(&w, 0, 4);
    put(&w, payload, 8);
    put(&w, p->graph_hash, 8);
    put(&w, p->hash, 8);
    put(&w, p->lowered_hash, 8);

    put(&w, (uint64_t)p->opts.strategy, 4);
    put(&w, (uint64_t)(uint32_t)p->opts.n_threads, 4);
    put(&w, SM_PACK_COUNT, 4);
    put(&w, SM_ARENA_COUNT, 4);
    put(&w, p->opts.budget, 8);
    put(&w, (uint64_t)p->n_threads, 4);
    put(&w, (uint64_t)p->n_steps, 4);
    put(&w, (uint64_t)p->n_tensors, 4);
    put(&w, (uint64_t)p->n_inplace, 4);
    put(&w, p->work_per_thread, 8);
    put(&w, p->work_shared, 8);
    put(&w, f64_bits(p->flops), 8);
    put(&w, (uint64_t)p->opts.recompute.kind, 4);
    put(&w, (uint64_t)(uint32_t)p->opts.recompute.every, 4);
    put(&w, p->opts.recompute.budget, 8);
    put(&w, (uint64_t)(uint32_t)p->rc.choice.every, 4);
    put(&w, p->rc.choice.keep_costly, 4);
    put(&w, p->rc.act_none, 8);
    put(&w, (uint64_t)p->opts.precision, 4);
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        const sm_plan_arena *ar = &p->arena[a];
        put(&w, ar->size, 8);
        put(&w, ar->lower_bound, 8);
        put(&w, ar->naive, 8);
        put(&w, (uint64_t)(uint32_t)ar->peak_step, 4);
        put(&w, (uint64_t)(uint32_t)ar->chosen, 4);
        for (int k = 0; k < SM_PACK_COUNT; k++) put(&w, ar->packed[k], 8);
    }
    for (int s = 0; s < p->n_steps; s++) put(&w, (uint64_t)(uint32_t)p->order[s], 4);
    for (int i = 0; i < p->n_tensors; i++) {
        const sm_plan_tensor *t = &p->t[i];
        put(&w, (uint64_t)t->arena, 1);
        put(&w, t->inplace ? 1 : 0, 1);
        put(&w, (uint64_t)p->g->t[i].dtype, 1);   /* the storage type the precision pass chose */
        put(&w, 0, 1);
        put(&w, (uint64_t)(uint32_t)t->alias, 4);
        put(&w, t->offset, 8);
        put(&w, t->bytes, 8);
        put(&w, (uint64_t)(uint32_t)t->first, 4);
        put(&w, (uint64_t)(uint32_t)t->last, 4);
    }
    put(&w, XXH3_64bits(w.b, w.n), 8);
    sm_status s = w.n == total ? sm_file_write_atomic(path, (const void *[]){w.b}, (size_t[]){w.n}, 1)
                               : sm_error(SM_ERR_INTERNAL, "saving plan '%s': wrote %zu of %zu bytes", path, w.n, total);
    free(w.b);
    return s;
}

/* ---- load ---- */

static sm_status decode(const sm_graph *g, const char *path, uint64_t lowered_hash, rbuf *r, sm_plan *p)
{
    p->opts.strategy = (sm_plan_strategy)get(r, 4);
    p->opts.n_threads = (int)(int32_t)get(r, 4);
    uint32_t n_pack = (uint32_t)get(r, 4), n_arena = (uint32_t)get(r, 4);
    p->opts.budget = get(r, 8);
    p->n_threads = (int)(int32_t)get(r, 4);
    p->n_steps = (int)(int32_t)get(r, 4);
    p->n_tensors = (int)(int32_t)get(r, 4);
    p->n_inplace = (int)(int32_t)get(r, 4);
    p->work_per_thread = get(r, 8);
    p->work_shared = get(r, 8);
    p->flops = bits_f64(get(r, 8));
    p->opts.recompute.kind = (sm_recompute_kind)get(r, 4);
    p->opts.recompute.every = (int)(int32_t)get(r, 4);
    p->opts.recompute.budget = get(r, 8);
    p->rc.choice.every = (int)(int32_t)get(r, 4);
    p->rc.choice.keep_costly = get(r, 4) != 0;
    p->rc.act_none = get(r, 8);
    p->opts.precision = (sm_precision)get(r, 4);
    if (n_pack != SM_PACK_COUNT || n_arena != SM_ARENA_COUNT)
        return sm_error(SM_ERR_FORMAT, "plan '%s' has %u arenas and %u packers; this build has %d and %d", path,
                        n_arena, n_pack, SM_ARENA_COUNT, SM_PACK_COUNT);
    if ((unsigned)p->opts.precision >= SM_PRECISION_COUNT)
        return sm_error(SM_ERR_FORMAT, "plan '%s': precision policy %u is not one this build knows", path,
                        (unsigned)p->opts.precision);
    if (p->n_threads < 1 || p->rc.choice.every < 0 || (unsigned)p->opts.recompute.kind > SM_RECOMPUTE_BUDGET)
        return sm_error(SM_ERR_FORMAT, "plan '%s': %d threads, recompute every:%d: not a plan this build makes", path,
                        p->n_threads, p->rc.choice.every);
    /* The lowered graph is not stored: the passes that rewrite the graph run again (they are
     * deterministic) and their result must hash to what the file recorded. */
    int n_steps = p->n_steps, n_tensors = p->n_tensors;
    sm_status s = sm_plan_lower(g, p);
    if (s) return sm_error_prefix(SM_ERR_FORMAT, "plan '%s': lowering the graph again: ", path);
    if (p->lowered_hash != lowered_hash)
        return sm_error(SM_ERR_FORMAT, "plan '%s' was made from another lowering of this graph (lowered graph hash "
                        "%016llx; this build lowers it to %016llx): make the plan again", path,
                        (unsigned long long)lowered_hash, (unsigned long long)p->lowered_hash);
    free(p->order);
    p->order = NULL;
    p->n_steps = n_steps;
    p->n_tensors = n_tensors;
    g = p->g;
    if (p->n_steps != g->n_nodes || p->n_tensors != g->n_t)
        return sm_error(SM_ERR_FORMAT, "plan '%s' has %d steps and %d tensors; the lowered graph has %d nodes and %d "
                        "tensors", path, p->n_steps, p->n_tensors, g->n_nodes, g->n_t);
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        sm_plan_arena *ar = &p->arena[a];
        ar->size = get(r, 8);
        ar->lower_bound = get(r, 8);
        ar->naive = get(r, 8);
        ar->peak_step = (int)(int32_t)get(r, 4);
        ar->chosen = (int)(int32_t)get(r, 4);
        for (int k = 0; k < SM_PACK_COUNT; k++) ar->packed[k] = get(r, 8);
        if (ar->chosen < -1 || ar->chosen >= SM_PACK_COUNT)
            return sm_error(SM_ERR_FORMAT, "plan '%s': arena %d names packer %d", path, a, ar->chosen);
    }
    p->order = malloc(sizeof *p->order * (size_t)(p->n_steps ? p->n_steps : 1));
    p->t = calloc((size_t)(p->n_tensors ? p->n_tensors : 1), sizeof *p->t);
    if (!p->order || !p->t) return sm_error(SM_ERR_NOMEM, "loading plan '%s': out of memory", path);
    for (int s = 0; s < p->n_steps; s++) p->order[s] = (int)(int32_t)get(r, 4);
    for (int i = 0; i < p->n_tensors; i++) {
        sm_plan_tensor *t = &p->t[i];
        t->arena = (int)get(r, 1);
        t->inplace = get(r, 1) != 0;
        unsigned dtype = (unsigned)get(r, 1);
        get(r, 1);
        if (dtype != (unsigned)g->t[i].dtype)
            return sm_error(SM_ERR_FORMAT, "plan '%s': tensor '%s' is stored as dtype %u in the file, %s by this "
                            "lowering: make the plan again", path, g->t[i].name, dtype, sm_dtype_name(g->t[i].dtype));
        t->alias = (sm_tensor)(int32_t)get(r, 4);
        t->offset = get(r, 8);
        t->bytes = get(r, 8);
        t->first = (int)(int32_t)get(r, 4);
        t->last = (int)(int32_t)get(r, 4);
    }
    if (r->short_read || r->at != r->n)
        return sm_error(SM_ERR_FORMAT, "plan '%s': the payload is %zu bytes, its contents need %s", path, r->n,
                        r->short_read ? "more" : "fewer");
    return SM_OK;
}

sm_status sm_plan_load(const sm_graph *g, const char *path, sm_plan **out)
{
    if (!g || !path || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_load: NULL graph, path or out");
    unsigned char *data = NULL;
    size_t n = 0;
    sm_status s = sm_file_read_all(path, PLAN_MAX_FILE, (void **)&data, &n);
    if (s) return sm_error_prefix(s, "reading plan: ");
    rbuf h = {data, n, 8, false};
    uint32_t version = 0;
    uint64_t payload = 0, graph_hash = 0, hash = 0, lowered_hash = 0;
    if (n < PLAN_HEADER + 8 || memcmp(data, PLAN_MAGIC, 8)) {
        s = sm_error(SM_ERR_FORMAT, "'%s' is not a SmallMind plan file (no plan header)", path);
    } else if ((version = (uint32_t)get(&h, 4)) != PLAN_VERSION) {
        s = sm_error(SM_ERR_FORMAT, "plan '%s' is version %u; this build reads version %u: make the plan again",
                     path, version, PLAN_VERSION);
    } else if (get(&h, 4), (payload = get(&h, 8)) != n - PLAN_HEADER - 8) {
        s = sm_error(SM_ERR_FORMAT, "plan '%s' is truncated or padded: its header says %llu payload bytes, the file "
                     "holds %zu", path, (unsigned long long)payload, n - PLAN_HEADER - 8);
    } else {
        rbuf c = {data, n, n - 8, false};
        uint64_t want = get(&c, 8), got = XXH3_64bits(data, n - 8);
        if (want != got)
            s = sm_error(SM_ERR_FORMAT, "plan '%s' is corrupt: checksum %016llx, contents hash to %016llx", path,
                         (unsigned long long)want, (unsigned long long)got);
    }
    if (!s) {
        graph_hash = get(&h, 8);
        hash = get(&h, 8);
        lowered_hash = get(&h, 8);
        uint64_t this_graph = sm_graph_hash(g);
        if (graph_hash != this_graph)
            s = sm_error(SM_ERR_INVALID_ARG, "plan '%s' was made for another graph (graph hash %016llx; this graph's "
                         "is %016llx): make a plan for this graph", path,
                         (unsigned long long)graph_hash, (unsigned long long)this_graph);
    }
    sm_plan *p = NULL;
    if (!s && !(p = calloc(1, sizeof *p))) s = sm_error(SM_ERR_NOMEM, "loading plan '%s': out of memory", path);
    if (!s) {
        rbuf r = {data, n - 8, PLAN_HEADER, false};
        s = decode(g, path, lowered_hash, &r, p);
    }
    if (!s) {
        p->graph_hash = graph_hash;
        p->hash = hash;
        if (sm_plan_hash_of(graph_hash, p) != hash)
            s = sm_error(SM_ERR_FORMAT, "plan '%s': its options do not match its hash", path);
    }
    if (!s && (s = sm_plan_validate(p, g)))
        s = sm_error_prefix(SM_ERR_FORMAT, "plan '%s' does not hold together: ", path);
    free(data);
    if (s) {
        sm_plan_free(p);
        return s;
    }
    *out = p;
    return SM_OK;
}
