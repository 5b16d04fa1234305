/* infer.c — inference sessions (sm_infer, smallmind.h): a GPT model's decode and prefill instances
 * sharing one weights arena and one KV arena, in RAM or in a file (kv_file.h).
 *
 * Why two instances of a static graph rather than one graph with a variable T: a plan is for fixed
 * shapes, and both instances' plans lay the weights and the KV tensors out identically (the same
 * tensors, in the same order, of the same sizes; checked at creation), so the two runtimes are bound
 * to the same memory (sm_runtime_create_bound) and only the activations are per instance. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "../memory/arena.h"
#include "../scheduler/plan.h"
#include "kv_file.h"

enum { DECODE = 0, PREFILL = 1 };

struct sm_infer {
    sm_gpt_config cfg[2];
    sm_graph *g[2];
    sm_plan *p[2];
    sm_runtime *rt[2];
    sm_gpt_tensors io[2];
    int n_inst;                /* 1 (chunk 1) or 2 */
    sm_arena *params, *kv;     /* kv: a heap arena, or the file (header first) */
    sm_kv_header *hdr;         /* in the file's mapping; NULL in RAM */
    int32_t *pos, *tok;        /* [chunk] positions and tokens of one run */
    int64_t len;
    int32_t last;
};

void sm_infer_options_default(sm_infer_options *o)
{
    memset(o, 0, sizeof *o);
    o->chunk = 64;
    o->seed = 1;
}

static sm_status build(sm_infer *s, int k, const sm_infer_options *o)
{
    sm_status st = sm_graph_create(&s->g[k]);
    if (!st) st = sm_gpt_build(s->g[k], &s->cfg[k], &s->io[k]);
    if (st) return sm_error_prefix(st, "inference session, %s instance: ", k ? "prefill" : "decode");
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = o->n_threads;
    return sm_plan_create(s->g[k], &po, &s->p[k]);
}

/* The two plans must put every weight and KV tensor at the same place, or sharing their memory
 * would mix them up. */
static sm_status same_layout(const sm_infer *s)
{
    const sm_plan *a = s->p[DECODE], *b = s->p[PREFILL];
    for (sm_arena_id ar = SM_ARENA_PARAMS; ar <= SM_ARENA_KV; ar += SM_ARENA_KV - SM_ARENA_PARAMS)
        if (a->arena[ar].size != b->arena[ar].size)
            return sm_error(SM_ERR_INTERNAL, "inference session: the decode and prefill plans give the %s arena "
                            "%llu and %llu bytes", sm_arena_name(ar), (unsigned long long)a->arena[ar].size,
                            (unsigned long long)b->arena[ar].size);
    const sm_graph *ga = s->g[DECODE], *gb = s->g[PREFILL];
    for (int i = 0; i < ga->n_t; i++) {
        sm_role r = ga->t[i].role;
        if (r != SM_ROLE_PARAM && r != SM_ROLE_KV) continue;
        sm_tensor j;
        if (sm_graph_find(gb, ga->t[i].name, &j) || a->t[i].offset != b->t[j].offset || a->t[i].bytes != b->t[j].bytes)
            return sm_error(SM_ERR_INTERNAL, "inference session: '%s' is not at the same place in the decode and "
                            "prefill plans", ga->t[i].name);
    }
    return SM_OK;
}

/* What the cache belongs to: the weights (their bytes, seeded with the model's structure) and the
 * layout of the KV arena. */
static void describe(const sm_infer *s, sm_kv_header *h)
{
    const sm_gpt_config *c = &s->cfg[DECODE];
    const sm_plan *p = s->p[DECODE];
    const sm_graph *g = s->g[DECODE];
    memset(h, 0, sizeof *h);
    memcpy(h->magic, SM_KV_MAGIC, 8);
    h->version = SM_KV_VERSION;
    h->header_bytes = SM_KV_HEADER_BYTES;
    h->model_hash = XXH3_64bits_withSeed(sm_arena_base(s->params), (size_t)p->arena[SM_ARENA_PARAMS].size,
                                         sm_graph_hash(g));
    XXH3_state_t *x = XXH3_createState();
    if (x) {
        XXH3_64bits_reset(x);
        for (int i = 0; i < g->n_t; i++)
            if (g->t[i].role == SM_ROLE_KV) {
                uint64_t f[2] = {p->t[i].offset, p->t[i].bytes};
                XXH3_64bits_update(x, g->t[i].name, strlen(g->t[i].name));
                XXH3_64bits_update(x, f, sizeof f);
            }
        h->layout_hash = XXH3_64bits_digest(x);
        XXH3_freeState(x);
    }
    h->kv_bytes = p->arena[SM_ARENA_KV].size;
    h->n_layer = c->n_layer;
    h->n_head = c->n_head;
    h->head_dim = c->n_embd / c->n_head;
    h->dtype = SM_F32;
    h->positions = c->kv_positions;
    h->span = c->span;
    h->sink = c->kv_sink;
    h->ring = c->kv_ring;
    h->batch = c->batch;
    h->last_token = -1;
}

static sm_status check_options(const sm_gpt_config *m, const sm_infer_options *o)
{
    if (o->chunk < 1 || o->positions < 0 || o->sink < 0 || o->n_threads < 0 || o->ring < 0 || o->ring > 1)
        return sm_error(SM_ERR_INVALID_ARG, "inference session: chunk %d must be >= 1, positions %d, sink %d and "
                        "threads %d >= 0, ring %d 0 or 1", o->chunk, o->positions, o->sink, o->n_threads, o->ring);
    if (o->ring && m->span < 1)
        return sm_error(SM_ERR_INVALID_ARG, "inference session: a ring cache needs a model with windowed attention "
                        "(span > 0); this one attends to every earlier token");
    if (!o->ring && o->sink)
        return sm_error(SM_ERR_INVALID_ARG, "inference session: sink positions (%d) need a ring cache", o->sink);
    if (o->resume && !o->kv_file)
        return sm_error(SM_ERR_INVALID_ARG, "inference session: resume needs a KV file");
    return SM_OK;
}

static sm_status create(sm_infer *s, const sm_gpt_config *model, const sm_runtime *weights, const sm_infer_options *o)
{
    sm_status st = check_options(model, o);
    if (st) return st;
    sm_gpt_config c = *model;
    c.batch = 1;
    c.with_loss = 0;
    c.full_logits = 0;
    c.kv_ring = o->ring;
    c.kv_sink = o->ring ? o->sink : 0;
    int chunk = o->chunk < c.context ? o->chunk : c.context;
    if (o->ring) {
        int64_t least = (int64_t)c.kv_sink + c.span + chunk - 1;
        if (o->positions && o->positions < least)
            return sm_error(SM_ERR_INVALID_ARG, "inference session: a ring of %d rows is too small: sink %d + span "
                            "%d + chunk %d - 1 = %lld", o->positions, c.kv_sink, c.span, chunk, (long long)least);
        c.kv_positions = (int)(o->positions ? o->positions : least);
    } else {
        c.kv_positions = o->positions ? o->positions : c.context;
    }
    s->n_inst = chunk > 1 ? 2 : 1;
    for (int k = 0; k < s->n_inst && !st; k++) {
        s->cfg[k] = c;
        s->cfg[k].seq = k ? chunk : 1;
        st = build(s, k, o);
    }
    if (!st && s->n_inst == 2) st = same_layout(s);
    if (st) return st;
    const sm_plan *p = s->p[DECODE];
    if ((st = sm_arena_create_heap((size_t)p->arena[SM_ARENA_PARAMS].size, &s->params)))
        return sm_error_prefix(st, "inference session, weights: ");
    s->pos = malloc(sizeof *s->pos * (size_t)chunk);
    s->tok = malloc(sizeof *s->tok * (size_t)chunk);
    if (!s->pos || !s->tok) return sm_error(SM_ERR_NOMEM, "inference session: out of memory");
    /* The weights first (the file's header names them), then the cache. */
    void *given[SM_ARENA_COUNT] = {0};
    given[SM_ARENA_PARAMS] = sm_arena_base(s->params);
    char scratch[64] __attribute__((aligned(64)));
    given[SM_ARENA_KV] = scratch;   /* not read until the cache is bound below */
    if ((st = sm_runtime_create_bound(s->g[DECODE], p, given, &s->rt[DECODE]))) return st;
    st = weights ? sm_runtime_copy_params(s->rt[DECODE], weights) : sm_runtime_init_params(s->rt[DECODE], o->seed);
    if (st) sm_error_prefix(st, "inference session: ");
    sm_runtime_free(s->rt[DECODE]);
    s->rt[DECODE] = NULL;
    if (st) return st;
    sm_kv_header want;
    describe(s, &want);
    if (o->kv_file) {
        if ((st = sm_kv_file_open(o->kv_file, &want, o->resume, &s->kv, &s->hdr))) return st;
        given[SM_ARENA_KV] = (char *)sm_arena_base(s->kv) + SM_KV_HEADER_BYTES;
        s->len = s->hdr->filled;
        s->last = s->hdr->last_token;
    } else {
        if ((st = sm_arena_create_heap((size_t)want.kv_bytes, &s->kv))) return sm_error_prefix(st, "the KV cache: ");
        given[SM_ARENA_KV] = sm_arena_base(s->kv);
        s->last = -1;
    }
    for (int k = 0; k < s->n_inst && !st; k++) st = sm_runtime_create_bound(s->g[k], s->p[k], given, &s->rt[k]);
    return st;
}

sm_status sm_infer_create(const sm_gpt_config *model, const sm_runtime *weights, const sm_infer_options *o,
                          sm_infer **out)
{
    if (!model || !o || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_infer_create: NULL argument");
    sm_infer *s = calloc(1, sizeof *s);
    if (!s) return sm_error(SM_ERR_NOMEM, "inference session: out of memory");
    sm_status st = create(s, model, weights, o);
    if (st) {
        sm_infer_free(s);
        return st;
    }
    *out = s;
    return SM_OK;
}

void sm_infer_free(sm_infer *s)
{
    if (!s) return;
    if (s->hdr) sm_arena_sync(s->kv);
    for (int k = 0; k < 2; k++) {
        sm_runtime_free(s->rt[k]);
        sm_plan_free(s->p[k]);
        sm_graph_free(s->g[k]);
    }
    sm_arena_free(s->kv);
    sm_arena_free(s->params);
    free(s->pos);
    free(s->tok);
    free(s);
}

/* The file's header follows the cache: rows are written before `filled` counts them. */
static void set_length(sm_infer *s, int64_t len, int32_t last)
{
    s->len = len;
    s->last = last;
    if (!s->hdr) return;
    s->hdr->filled = len;
    s->hdr->last_token = last;
    sm_kv_header_seal(s->hdr);
}

static sm_status check_append(const sm_infer *s, const int32_t *tokens, int64_t n)
{
    const sm_gpt_config *c = &s->cfg[DECODE];
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab)
            return sm_error(SM_ERR_INVALID_ARG, "inference session: token %lld is %d, outside the vocabulary 0..%d",
                            (long long)i, tokens[i], c->vocab - 1);
    int64_t limit = sm_infer_capacity(s);
    if (n > limit - s->len)
        return sm_error(SM_ERR_INVALID_ARG, "inference session: %lld positions filled + %lld new exceed the %lld %s: "
                        "rewind or clear the session, or make it with more positions", (long long)s->len,
                        (long long)n, (long long)limit, c->kv_ring ? "positions the model learned" : "rows of the cache");
    return SM_OK;
}

/* Whether the next `left` tokens go through the prefill instance: a whole chunk, or a part of one
 * padded to its length when that is cheaper than one decode run per token (a prefill run costs about
 * what chunk/8 decode runs do: they read every weight once each, it computes on chunk rows). The
 * padding rows run at the positions after the real ones: their k and v land in cache rows no query
 * reads before a real token overwrites them (a ring: rows of positions no later query sees), and
 * every real row's result is bitwise what it would be without them. A linear cache needs room for
 * the padding rows, or nothing runs (kv_attention). */
static int use_prefill(const sm_infer *s, int64_t left)
{
    if (s->n_inst < 2) return 0;
    const sm_gpt_config *c = &s->cfg[PREFILL];
    if (left >= c->seq) return 1;
    if (left * 8 < c->seq) return 0;
    return c->kv_ring || s->len + c->seq <= c->kv_positions;
}

sm_status sm_infer_append(sm_infer *s, const int32_t *tokens, int64_t n, float *logits, int all)
{
    if (!s || (n > 0 && !tokens) || n < 0) return sm_error(SM_ERR_INVALID_ARG, "sm_infer_append: bad argument");
    sm_status st = check_append(s, tokens, n);
    if (st) return st;
    const int V = s->cfg[DECODE].vocab;
    for (int64_t i = 0; i < n;) {
        const int k = use_prefill(s, n - i) ? PREFILL : DECODE;
        const int T = s->cfg[k].seq, m = n - i < T ? (int)(n - i) : T;   /* m real rows, T - m padding */
        for (int t = 0; t < T; t++) {
            s->pos[t] = (int32_t)(s->len + t);
            s->tok[t] = t < m ? tokens[i + t] : 0;
        }
        float *y;
        if ((st = sm_runtime_set(s->rt[k], s->io[k].tokens, s->tok, sizeof *s->tok * (size_t)T)) ||
            (st = sm_runtime_set(s->rt[k], s->io[k].positions, s->pos, sizeof *s->pos * (size_t)T)) ||
            (st = sm_runtime_run(s->rt[k])) || (st = sm_runtime_data(s->rt[k], s->io[k].logits, (void **)&y)))
            return st;
        i += m;
        set_length(s, s->len + m, tokens[i - 1]);
        if (logits && all) memcpy(logits + (i - m) * V, y, sizeof *y * (size_t)m * (size_t)V);
        else if (logits && i == n) memcpy(logits, y + (size_t)(m - 1) * (size_t)V, sizeof *y * (size_t)V);
    }
    return SM_OK;
}

int64_t sm_infer_length(const sm_infer *s) { return s ? s->len : 0; }
int32_t sm_infer_last_token(const sm_infer *s) { return s && s->len > 0 ? s->last : -1; }

sm_status sm_infer_rewind(sm_infer *s, int64_t n)
{
    if (!s || n < 0 || n > s->len)
        return sm_error(SM_ERR_INVALID_ARG, "sm_infer_rewind: %lld is outside 0..%lld (the positions filled)",
                        (long long)n, s ? (long long)s->len : 0LL);
    const sm_gpt_config *c = &s->cfg[DECODE];
    /* A ring has overwritten the rows of early positions once more positions than rows were filled. */
    if (c->kv_ring && n > 0 && n < s->len && s->len > c->kv_positions)
        return sm_error(SM_ERR_STATE, "inference session: the ring of %d rows holds %lld positions; their earliest "
                        "rows are overwritten, so it cannot go back to %lld (only clear it)", c->kv_positions,
                        (long long)s->len, (long long)n);
    int32_t last = s->last;
    if (n < s->len) {
        /* the token before n is not kept (only the last one is): ask the caller to re-append it */
        last = -1;
    }
    set_length(s, n, last);
    return SM_OK;
}

sm_status sm_infer_clear(sm_infer *s) { return sm_infer_rewind(s, 0); }

sm_status sm_infer_sync(sm_infer *s)
{
    if (!s) return sm_error(SM_ERR_INVALID_ARG, "sm_infer_sync: NULL session");
    return s->hdr ? sm_arena_sync(s->kv) : SM_OK;
}

const sm_plan *sm_infer_plan(const sm_infer *s, int which)
{
    return s && which >= 0 && which < s->n_inst ? s->p[which] : NULL;
}

const sm_graph *sm_infer_graph(const sm_infer *s, int which)
{
    return s && which >= 0 && which < s->n_inst ? s->g[which] : NULL;
}

uint64_t sm_infer_kv_bytes(const sm_infer *s) { return s ? s->p[DECODE]->arena[SM_ARENA_KV].size : 0; }

uint64_t sm_infer_bytes(const sm_infer *s)
{
    if (!s) return 0;
    /* each plan's estimate counts the shared weights and cache once */
    uint64_t shared = s->p[DECODE]->arena[SM_ARENA_PARAMS].size + s->p[DECODE]->arena[SM_ARENA_KV].size;
    uint64_t total = sm_plan_estimate(s->p[DECODE]);
    if (s->n_inst == 2) total += sm_plan_estimate(s->p[PREFILL]) - shared;
    return total;
}
int sm_infer_vocab(const sm_infer *s) { return s ? s->cfg[DECODE].vocab : 0; }

int64_t sm_infer_capacity(const sm_infer *s)
{
    if (!s) return 0;
    return s->cfg[DECODE].kv_ring ? s->cfg[DECODE].context : s->cfg[DECODE].kv_positions;
}
