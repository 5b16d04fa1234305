/* offsets.c — offset assignment inside each arena.
 *
 * Persistent arenas (parameters, gradients, optimizer state, KV) hold every tensor for the whole
 * run, so they are laid end to end: nothing can share. The activation arena is a dynamic storage
 * allocation problem (intervals in time, sizes in bytes; NP-hard in general), so several packers
 * run and the smallest layout wins:
 *   greedy by size      largest first, each into the lowest offset free over its whole lifetime
 *                       (TFLite's "greedy by size"); a variant takes the tightest gap instead;
 *   greedy by area      size x lifetime first: long-lived big tensors settle at the bottom;
 *   greedy by lifetime  longest-lived first;
 *   in-order best fit   walks the order like a malloc would: at a tensor's birth the best-fitting
 *                       free block, freed at its death, adjacent blocks merged (ggml-alloc).
 * Keeping the minimum means the plan is never worse than the in-order best-fit allocator. The
 * lower bound (max bytes live at one step) says how much room is left. */
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "plan.h"

static const char *packer_names[SM_PACK_COUNT] = {
    "greedy-size", "greedy-size-tight", "greedy-area", "greedy-lifetime", "bestfit-inorder",
};

const char *sm_packer_name(int k) { return k >= 0 && k < SM_PACK_COUNT ? packer_names[k] : "end-to-end"; }

/* One root tensor to place: its span and its aligned size. */
typedef struct item {
    int id;               /* tensor id */
    int first, last;
    uint64_t size;
} item;

static bool live_together(const item *a, const item *b) { return a->first <= b->last && b->first <= a->last; }

/* ---- greedy packers: place items one by one in a priority order ---- */

typedef int (*item_cmp)(const void *, const void *);

/* Ties always fall back to earlier birth, then tensor id, so every packer is deterministic. */
static int tie(const item *a, const item *b)
{
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}
static int by_size(const void *x, const void *y)
{
    const item *a = x, *b = y;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    return tie(a, b);
}
static int by_area(const void *x, const void *y)
{
    const item *a = x, *b = y;
    /* size x (steps live): doubles, as sizes x steps can pass 2^64 in theory */
    double ka = (double)a->size * (a->last - a->first + 1), kb = (double)b->size * (b->last - b->first + 1);
    if (ka != kb) return ka > kb ? -1 : 1;
    return by_size(x, y);
}
static int by_lifetime(const void *x, const void *y)
{
    const item *a = x, *b = y;
    int la = a->last - a->first, lb = b->last - b->first;
    if (la != lb) return la > lb ? -1 : 1;
    return by_size(x, y);
}

/* placed[] holds indices of placed items sorted by offset. For item it, scan the placed items that
 * are live at the same time in offset order and pick a gap: the lowest one that fits, or (tight)
 * the smallest one that fits, else the top. O(placed) per item. */
static uint64_t pick_offset(const item *items, const uint64_t *off, const int *placed, int n_placed,
                            const item *it, bool tight)
{
    uint64_t cursor = 0, best = UINT64_MAX, best_gap = UINT64_MAX;
    for (int k = 0; k < n_placed; k++) {
        const item *o = &items[placed[k]];
        if (!live_together(o, it)) continue;
        uint64_t lo = off[placed[k]];
        if (lo >= cursor + it->size) {
            uint64_t gap = lo - cursor;
            if (!tight) return cursor;
            if (gap < best_gap) {
                best_gap = gap;
                best = cursor;
            }
        }
        if (lo + o->size > cursor) cursor = lo + o->size;
    }
    return best != UINT64_MAX ? best : cursor;
}

static sm_status pack_greedy(item *sorted, int n, item_cmp cmp, bool tight, uint64_t *off_by_id, uint64_t *size)
{
    qsort(sorted, (size_t)n, sizeof *sorted, cmp);
    int *placed = malloc(sizeof *placed * (size_t)(n ? n : 1));
    uint64_t *off = malloc(sizeof *off * (size_t)(n ? n : 1));
    if (!placed || !off) {
        free(placed);
        free(off);
        return sm_error(SM_ERR_NOMEM, "planning: out of memory packing %d tensors", n);
    }
    uint64_t top = 0;
    for (int i = 0; i < n; i++) {
        off[i] = pick_offset(sorted, off, placed, i, &sorted[i], tight);
        /* insert i into placed, keeping offset order (insertion sort: n is a few thousand) */
        int k = i;
        while (k > 0 && off[placed[k - 1]] > off[i]) {
            placed[k] = placed[k - 1];
            k--;
        }
        placed[k] = i;
        if (off[i] + sorted[i].size > top) top = off[i] + sorted[i].size;
        off_by_id[sorted[i].id] = off[i];
    }
    free(placed);
    free(off);
    *size = top;
    return SM_OK;
}

/* ---- in-order best fit (ggml-alloc) ---- */

typedef struct block {
    uint64_t off, size;
} block;

typedef struct free_list {
    block *b;             /* free blocks below the top, sorted by offset, never adjacent */
    int n;
    uint64_t top;         /* everything at or above top is free */
    uint64_t high;        /* the highest top ever: the arena size */
} free_list;

static uint64_t fl_alloc(free_list *f, uint64_t size)
{
    int best = -1;
    for (int i = 0; i < f->n; i++)
        if (f->b[i].size >= size && (best < 0 || f->b[i].size < f->b[best].size)) best = i;
    if (best < 0 && f->n && f->b[f->n - 1].off + f->b[f->n - 1].size == f->top) {
        /* nothing fits: the last block touches the top, so grow it upward rather than start fresh */
        uint64_t o = f->b[--f->n].off;
        f->top = o + size;
        if (f->top > f->high) f->high = f->top;
        return o;
    }
    if (best < 0) {
        uint64_t o = f->top;
        f->top += size;
        if (f->top > f->high) f->high = f->top;
        return o;
    }
    uint64_t o = f->b[best].off;
    f->b[best].off += size;
    f->b[best].size -= size;
    if (f->b[best].size == 0) {
        memmove(&f->b[best], &f->b[best + 1], sizeof *f->b * (size_t)(f->n - best - 1));
        f->n--;
    }
    return o;
}

static void fl_free(free_list *f, uint64_t off, uint64_t size)
{
    int i = 0;
    while (i < f->n && f->b[i].off < off) i++;
    memmove(&f->b[i + 1], &f->b[i], sizeof *f->b * (size_t)(f->n - i));
    f->b[i] = (block){off, size};
    f->n++;
    if (i + 1 < f->n && f->b[i].off + f->b[i].size == f->b[i + 1].off) {   /* merge with the next */
        f->b[i].size += f->b[i + 1].size;
        memmove(&f->b[i + 1], &f->b[i + 2], sizeof *f->b * (size_t)(f->n - i - 2));
        f->n--;
    }
    if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == f->b[i].off) {      /* and with the previous */
        f->b[i - 1].size += f->b[i].size;
        memmove(&f->b[i], &f->b[i + 1], sizeof *f->b * (size_t)(f->n - i - 1));
        f->n--;
        i--;
    }
    if (f->b[i].off + f->b[i].size == f->top) {   /* a block reaching the top melts into it */
        f->top = f->b[i].off;
        f->n--;
    }
}

static int by_birth(const void *x, const void *y) { return tie(x, y); }
static int by_death(const void *x, const void *y)
{
    const item *a = x, *b = y;
    if (a->last != b->last) return a->last < b->last ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static sm_status pack_bestfit(const item *items, int n, int n_steps, uint64_t *off_by_id, uint64_t *size)
{
    item *born = malloc(sizeof *born * (size_t)(n ? n : 1));
    item *dies = malloc(sizeof *dies * (size_t)(n ? n : 1));
    free_list f = {.b = malloc(sizeof(block) * (size_t)(n + 1))};
    if (!born || !dies || !f.b) {
        free(born);
        free(dies);
        free(f.b);
        return sm_error(SM_ERR_NOMEM, "planning: out of memory packing %d tensors", n);
    }
    memcpy(born, items, sizeof *born * (size_t)n);
    memcpy(dies, items, sizeof *dies * (size_t)n);
    qsort(born, (size_t)n, sizeof *born, by_birth);
    qsort(dies, (size_t)n, sizeof *dies, by_death);
    int b = 0, d = 0;
    for (int s = 0; s < (n_steps ? n_steps : 1); s++) {
        /* a node's outputs are allocated before its dying inputs are freed: they are live together */
        for (; b < n && born[b].first <= s; b++) off_by_id[born[b].id] = fl_alloc(&f, born[b].size);
        for (; d < n && dies[d].last <= s; d++) fl_free(&f, off_by_id[dies[d].id], dies[d].size);
    }
    for (; b < n; b++) off_by_id[born[b].id] = fl_alloc(&f, born[b].size);   /* (empty graphs) */
    *size = f.high;
    free(born);
    free(dies);
    free(f.b);
    return SM_OK;
}

/* ---- per arena ---- */

/* The roots of arena a as items; returns the count. */
static int collect(const sm_plan *p, int a, item *out)
{
    int n = 0;
    for (int i = 0; i < p->n_tensors; i++) {
        const sm_plan_tensor *t = &p->t[i];
        if (t->arena != a || t->alias != SM_NO_TENSOR) continue;
        out[n++] = (item){i, t->first, t->last, sm_plan_align(t->bytes)};
    }
    return n;
}

static uint64_t naive_size(const sm_plan *p, int a)
{
    uint64_t s = 0;
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].arena == a && (p->t[i].alias == SM_NO_TENSOR || p->t[i].inplace))
            s += sm_plan_align(p->t[i].bytes);
    return s;
}

void sm_plan_bounds(sm_plan *p)
{
    /* Sweep: +size at first, -size after last. Persistent arenas come out as their sum. */
    int n = p->n_steps ? p->n_steps : 1;
    int64_t *delta = calloc((size_t)n + 1, sizeof *delta);
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        sm_plan_arena *ar = &p->arena[a];
        if (a == SM_ARENA_WORK) {
            ar->lower_bound = ar->size;
            ar->peak_step = 0;
            continue;
        }
        uint64_t best = 0, live = 0;
        int at = 0;
        if (!delta) {   /* no memory for the sweep: fall back to the achieved size, still a true answer */
            ar->lower_bound = ar->size;
            continue;
        }
        memset(delta, 0, sizeof *delta * ((size_t)n + 1));
        for (int i = 0; i < p->n_tensors; i++) {
            const sm_plan_tensor *t = &p->t[i];
            if (t->arena != a || t->alias != SM_NO_TENSOR) continue;
            delta[t->first] += (int64_t)sm_plan_align(t->bytes);
            delta[t->last + 1] -= (int64_t)sm_plan_align(t->bytes);
        }
        for (int s = 0; s < n; s++) {
            live += (uint64_t)delta[s];
            if (live > best) {
                best = live;
                at = s;
            }
        }
        ar->lower_bound = best;
        ar->peak_step = at;
    }
    free(delta);
}

static void resolve_aliases(sm_plan *p)
{
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].alias != SM_NO_TENSOR) p->t[i].offset = p->t[p->t[i].alias].offset + p->t[i].view_off;
}

void sm_plan_assign_naive(const sm_graph *g, sm_plan *p)
{
    (void)g;
    uint64_t end[SM_ARENA_COUNT] = {0};
    for (int i = 0; i < p->n_tensors; i++) {
        sm_plan_tensor *pt = &p->t[i];
        if (pt->alias != SM_NO_TENSOR) continue;
        pt->offset = end[pt->arena];
        end[pt->arena] += sm_plan_align(pt->bytes);
    }
    resolve_aliases(p);
    if (!sm_plan_work_bytes(p, &end[SM_ARENA_WORK])) end[SM_ARENA_WORK] = UINT64_MAX;   /* validation refuses it */
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        memset(&p->arena[a], 0, sizeof p->arena[a]);
        p->arena[a].size = end[a];
        p->arena[a].naive = a == SM_ARENA_WORK ? end[a] : naive_size(p, a);
        p->arena[a].chosen = -1;
    }
    sm_plan_bounds(p);
    char b[SM_BYTES_STR_MAX];
    sm_plan_log(p, SM_PASS_OFFSETS, "every tensor end to end (naive): activations %s",
                sm_format_bytes(p->arena[SM_ARENA_ACT].size, b, sizeof b));
}

sm_status sm_plan_assign_packed(const sm_graph *g, sm_plan *p, int force)
{
    /* Lay everything end to end first: persistent arenas stay that way, and it gives the sizes. */
    sm_plan_assign_naive(g, p);
    int n_max = p->n_tensors ? p->n_tensors : 1;
    item *items = malloc(sizeof *items * (size_t)n_max);
    item *work = malloc(sizeof *work * (size_t)n_max);
    uint64_t *off[SM_PACK_COUNT] = {0};
    sm_status s = items && work ? SM_OK : sm_error(SM_ERR_NOMEM, "planning: out of memory");
    for (int k = 0; !s && k < SM_PACK_COUNT; k++)
        if (!(off[k] = calloc((size_t)n_max, sizeof *off[k]))) s = sm_error(SM_ERR_NOMEM, "planning: out of memory");

    const int a = SM_ARENA_ACT;   /* the one arena whose tensors come and go within a run */
    int n = s ? 0 : collect(p, a, items);
    static const item_cmp orders[] = {by_size, by_size, by_area, by_lifetime};
    uint64_t sizes[SM_PACK_COUNT] = {0};
    for (int k = 0; !s && k < SM_PACK_COUNT; k++) {
        memcpy(work, items, sizeof *work * (size_t)n);
        if (k == SM_PACK_BESTFIT_INORDER) s = pack_bestfit(work, n, p->n_steps, off[k], &sizes[k]);
        else s = pack_greedy(work, n, orders[k], k == SM_PACK_GREEDY_SIZE_BEST, off[k], &sizes[k]);
    }
    if (!s) {
        int best = 0;
        for (int k = 1; k < SM_PACK_COUNT; k++)
            if (sizes[k] < sizes[best]) best = k;
        if (force >= 0 && force < SM_PACK_COUNT) best = force;
        sm_plan_arena *ar = &p->arena[a];
        memcpy(ar->packed, sizes, sizeof sizes);
        ar->chosen = best;
        ar->size = sizes[best];
        for (int i = 0; i < n; i++) p->t[items[i].id].offset = off[best][items[i].id];
        resolve_aliases(p);
        char b1[SM_BYTES_STR_MAX], b2[SM_BYTES_STR_MAX];
        sm_plan_log(p, SM_PASS_OFFSETS, "activations packed by %s into %s (lower bound %s); persistent arenas end to "
                    "end", sm_packer_name(best), sm_format_bytes(ar->size, b1, sizeof b1),
                    sm_format_bytes(ar->lower_bound, b2, sizeof b2));
    }
    for (int k = 0; k < SM_PACK_COUNT; k++) free(off[k]);
    free(items);
    free(work);
    return s;
}
