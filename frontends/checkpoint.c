/* checkpoint.c — parameters and optimizer state <-> safetensors. The file's tensors are exactly the
 * graph's persistent tensors, by name, so a checkpoint fits one model configuration and says so
 * precisely when it does not; its metadata carries the model's identity and a checksum. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../base/error.h"
#include "../graph/graph.h"
#include "checkpoint.h"
#include "graph_prune.h"

#define HEX64 17   /* 16 hex digits and a NUL */

static bool saved(const sm_tensor_rec *r, unsigned flags)
{
    return r->role == SM_ROLE_PARAM || (r->role == SM_ROLE_OPTIM && (flags & SM_SAVE_OPTIMIZER));
}

static void hex64(char *buf, uint64_t v) { snprintf(buf, HEX64, "%016llx", (unsigned long long)v); }

/* XXH3 of what the weights mean and how they are used: every parameter's name, dtype, shape and
 * init, and every node's op, inputs and attributes, in order. The shapes of inputs and activations are
 * left out: they follow the batch, which may change between a save and a resume (another -B, or
 * another number of MPI ranks sharing the batch) without changing what the weights mean. */
static uint64_t weights_identity(const sm_graph *g)
{
    uint64_t h = 0x5eed;
    for (int i = 0; i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        int32_t rec[4] = {r->role, r->node, r->dtype, r->role == SM_ROLE_PARAM ? (int32_t)r->init : 0};
        h = XXH3_64bits_withSeed(rec, sizeof rec, h);
        if (r->role != SM_ROLE_PARAM) continue;
        h = XXH3_64bits_withSeed(r->name, strlen(r->name), h);
        h = XXH3_64bits_withSeed(r->ne, sizeof r->ne, h);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const sm_node *n = &g->nodes[k];
        h = XXH3_64bits_withSeed(&n->op, sizeof n->op, h);
        h = XXH3_64bits_withSeed(n->in, sizeof *n->in * (size_t)n->n_in, h);
        h = XXH3_64bits_withSeed(n->attrs.i, sizeof n->attrs.i, h);
        h = XXH3_64bits_withSeed(n->attrs.f, sizeof n->attrs.f, h);
    }
    return h;
}

/* The identity of the forward graph (what the loss depends on), so a training graph's optimizer part
 * may differ between the run that saved and the one that resumes. */
static sm_status model_identity(const sm_graph *g, char id[HEX64])
{
    sm_tensor loss = sm_graph_loss(g);
    sm_graph *fwd = NULL;
    if (loss != SM_NO_TENSOR) {
        sm_status s = sm_graph_extract(g, &loss, 1, &fwd);
        if (s) return s;
    }
    hex64(id, weights_identity(fwd ? fwd : g));
    sm_graph_free(fwd);
    return SM_OK;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const sm_st_kv *)a)->key, ((const sm_st_kv *)b)->key);
}

/* XXH3-64 chained through the pairs in key order (each key and value with its NUL, seeded with the
 * hash so far), so the order a writer put them in does not matter. The checksum's own pair and the
 * safetensors layer's "sm." keys (checked by that layer) are left out. Sorts kv. */
static uint64_t meta_checksum(sm_st_kv *kv, int n)
{
    qsort(kv, (size_t)n, sizeof *kv, by_key);
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(kv[i].key, SM_CKPT_KEY_CHECKSUM) || !strncmp(kv[i].key, "sm.", 3)) continue;
        h = XXH3_64bits_withSeed(kv[i].key, strlen(kv[i].key) + 1, h);
        h = XXH3_64bits_withSeed(kv[i].value, strlen(kv[i].value) + 1, h);
    }
    return h;
}

static sm_status verify_metadata(const sm_st_file *f)
{
    const char *stored = sm_st_metadata_get(f, SM_CKPT_KEY_CHECKSUM);
    if (!stored) {   /* a checkpoint from before metadata checksums, unless it has an identity */
        if (!sm_st_metadata_get(f, SM_CKPT_KEY_GRAPH)) return SM_OK;
        return sm_error(SM_ERR_FORMAT, "%s: has a '%s' but no '%s': its metadata was edited; restore the file from a "
                        "backup", sm_st_name(f), SM_CKPT_KEY_GRAPH, SM_CKPT_KEY_CHECKSUM);
    }
    int n = sm_st_metadata_count(f);
    sm_st_kv *kv = malloc(sizeof *kv * (size_t)n);
    if (!kv) return sm_error(SM_ERR_NOMEM, "%s: out of memory checking its metadata", sm_st_name(f));
    for (int i = 0; i < n; i++) sm_st_metadata_at(f, i, &kv[i].key, &kv[i].value);
    char sum[HEX64];
    hex64(sum, meta_checksum(kv, n));
    free(kv);
    if (!strcmp(sum, stored)) return SM_OK;
    return sm_error(SM_ERR_FORMAT, "%s: metadata checksum mismatch (stored '%.40s', computed %s): its metadata was "
                    "edited or damaged; restore the file from a backup", sm_st_name(f), stored, sum);
}

/* Resuming: the file's model must be the one built now. */
static sm_status check_identity(const sm_graph *g, const sm_st_file *f)
{
    const char *stored = sm_st_metadata_get(f, SM_CKPT_KEY_GRAPH), *model = sm_st_metadata_get(f, "model");
    char id[HEX64];
    if (!stored) return SM_OK;   /* written before identities were stored */
    sm_status s = model_identity(g, id);
    if (s || !strcmp(id, stored)) return s;
    return sm_error(SM_ERR_FORMAT, "%s: saved from a model of graph identity %.40s, but the model built now%s%.1024s%s "
                    "has identity %s: its graph changed since the save (an edited graph file?); restore that graph, or "
                    "train from the start instead of resuming", sm_st_name(f), stored, model ? " from '" : "",
                    model ? model : "", model ? "'" : "", id);
}

sm_status sm_checkpoint_save(sm_runtime *rt, const char *path, unsigned flags, const sm_st_kv *meta, int n_meta)
{
    if (!rt || !path) return sm_error(SM_ERR_INVALID_ARG, "saving a checkpoint: NULL runtime or path");
    const sm_graph *g = sm_runtime_graph(rt);
    sm_st_entry *e = calloc((size_t)g->n_t + 1, sizeof *e);
    if (!e) return sm_error(SM_ERR_NOMEM, "saving '%s': out of memory", path);
    int n = 0;
    sm_status s = SM_OK;
    for (int i = 0; !s && i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (!saved(r, flags)) continue;
        void *data;
        s = sm_runtime_data(rt, i, &data);
        e[n].name = r->name;
        e[n].dtype = r->dtype == SM_F16 ? SM_ST_F16 : r->dtype == SM_BF16 ? SM_ST_BF16 : r->dtype == SM_I32 ? SM_ST_I32 : SM_ST_F32;
        e[n].ndim = r->ndim;
        memcpy(e[n].shape, r->ne, sizeof r->ne);
        e[n].data = data;
        n++;
    }
    /* the caller's pairs, the identity, then the checksum over both */
    sm_st_kv *kv = s ? NULL : malloc(sizeof *kv * (size_t)(n_meta + 2));
    char id[HEX64], sum[HEX64];
    if (!s && !kv) s = sm_error(SM_ERR_NOMEM, "saving '%s': out of memory", path);
    if (!s) s = model_identity(g, id);
    if (!s) {
        if (n_meta) memcpy(kv, meta, sizeof *kv * (size_t)n_meta);
        kv[n_meta] = (sm_st_kv){SM_CKPT_KEY_GRAPH, id};
        hex64(sum, meta_checksum(kv, n_meta + 1));
        kv[n_meta + 1] = (sm_st_kv){SM_CKPT_KEY_CHECKSUM, sum};
        s = sm_st_write(path, e, n, kv, n_meta + 2, 0);
    }
    free(kv);
    free(e);
    return s;
}

sm_status sm_checkpoint_open(const char *path, sm_st_file **out)
{
    sm_st_file *f;
    sm_status s = sm_st_open(path, &f);
    if (!s && (s = verify_metadata(f))) sm_st_close(f);
    if (!s) *out = f;
    return s;
}

sm_status sm_checkpoint_meta_int(const sm_st_file *f, const char *key, long long min, long long max, long long *out)
{
    const char *v = sm_st_metadata_get(f, key);
    if (!v) return SM_OK;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    /* decimal digits only: strtoll would also take leading blanks and a '+' */
    if ((*v != '-' && (*v < '0' || *v > '9')) || *end || end == v || errno || x < min || x > max)
        return sm_error(SM_ERR_FORMAT, "%s: metadata '%s' is \"%.64s\"; it must be an integer from %lld to %lld: the "
                        "file was edited or damaged", sm_st_name(f), key, v, min, max);
    *out = x;
    return SM_OK;
}

static const char *const scale_modes[] = {"off", "fixed", "dynamic"};

void sm_checkpoint_scaler_format(const sm_loss_scaler *s, char *buf, size_t cap)
{
    unsigned m = (unsigned)s->mode < 3 ? (unsigned)s->mode : 0;
    snprintf(buf, cap, "mode=%s scale=%.9g growth=%.9g backoff=%.9g interval=%lld min=%.9g tracker=%lld skipped=%lld",
             scale_modes[m], s->scale, s->growth_factor, s->backoff_factor, (long long)s->growth_interval,
             s->min_scale, (long long)s->growth_tracker, (long long)s->skipped);
}

sm_status sm_checkpoint_meta_scaler(const sm_st_file *f, sm_loss_scaler *out, bool *found)
{
    const char *v = sm_st_metadata_get(f, SM_CKPT_KEY_LOSS_SCALE);
    *found = false;
    if (!v) return SM_OK;
    sm_loss_scaler s = {0};
    char mode[16];
    long long interval, tracker, skipped;
    int end = -1;
    bool ok = sscanf(v, "mode=%15s scale=%g growth=%g backoff=%g interval=%lld min=%g tracker=%lld skipped=%lld%n",
                     mode, &s.scale, &s.growth_factor, &s.backoff_factor, &interval, &s.min_scale, &tracker, &skipped,
                     &end) == 8 && end >= 0 && !v[end];
    int m = -1;
    for (int i = 0; ok && i < 3; i++)
        if (!strcmp(mode, scale_modes[i])) m = i;
    if (!ok || m < 0)
        return sm_error(SM_ERR_FORMAT, "%s: metadata '%s' is \"%.200s\"; it must read \"mode=off|fixed|dynamic scale=X "
                        "growth=X backoff=X interval=N min=X tracker=N skipped=N\": the file was edited or damaged",
                        sm_st_name(f), SM_CKPT_KEY_LOSS_SCALE, v);
    s.mode = (sm_loss_scale_mode)m;
    s.growth_interval = interval;
    s.growth_tracker = tracker;
    s.skipped = skipped;
    sm_status st = sm_loss_scaler_check(&s);
    if (st) return sm_error_prefix(SM_ERR_FORMAT, "%s: metadata '%s': ", sm_st_name(f), SM_CKPT_KEY_LOSS_SCALE);
    *out = s;
    *found = true;
    return SM_OK;
}

sm_status sm_checkpoint_load(sm_runtime *rt, const char *path, unsigned flags, sm_st_file **meta)
{
    if (!rt || !path) return sm_error(SM_ERR_INVALID_ARG, "loading a checkpoint: NULL runtime or path");
    const sm_graph *g = sm_runtime_graph(rt);
    sm_st_file *f;
    sm_status s = sm_checkpoint_open(path, &f);
    if (s) return s;
    if (flags & SM_SAVE_OPTIMIZER) s = check_identity(g, f);
    for (int i = 0; !s && i < g->n_t; i++) {
        const sm_tensor_rec *r = &g->t[i];
        if (!saved(r, flags)) continue;
        const sm_st_tensor *t = sm_st_find(f, r->name);
        if (!t) {
            s = sm_error(SM_ERR_FORMAT, "%s: has no tensor '%s' (%s)%s", path, r->name, sm_role_name(r->role),
                         r->role == SM_ROLE_OPTIM ? ": it holds weights only; resume from a training checkpoint"
                                                  : ": it was saved from another model configuration");
            break;
        }
        bool same = t->ndim == r->ndim;
        for (int d = 0; same && d < r->ndim; d++) same = t->shape[d] == r->ne[d];
        if (!same || r->dtype != SM_F32) {
            char sr[64], sf[64];
            sm_tensor_rec fr = {.ndim = t->ndim < SM_MAX_DIMS ? t->ndim : SM_MAX_DIMS};
            memcpy(fr.ne, t->shape, sizeof fr.ne);
            s = sm_error(SM_ERR_FORMAT, "%s: tensor '%s' is %s in the file but %s %s in the model: the file was "
                         "saved from another model configuration", path, r->name, sm_shape_str(&fr, sf, sizeof sf),
                         sm_shape_str(r, sr, sizeof sr), sm_dtype_name(r->dtype));
            break;
        }
        sm_dtype stored;
        s = sm_runtime_storage(rt, i, &stored);
        if (!s && stored != SM_F32) {   /* a 16-bit weight (precision policy): converted once, by set */
            size_t bytes = sm_rec_bytes(r);
            float *tmp = malloc(bytes ? bytes : 1);
            s = tmp ? sm_st_read_f32(f, t, tmp, (size_t)sm_rec_numel(r)) : sm_error(SM_ERR_NOMEM, "%s: out of memory "
                                                                                  "for '%s'", path, r->name);
            if (!s) s = sm_runtime_set(rt, i, tmp, bytes);
            free(tmp);
            continue;
        }
        void *dst;
        if (!s) s = sm_runtime_data(rt, i, &dst);
        if (!s) s = sm_st_read_f32(f, t, dst, (size_t)sm_rec_numel(r));
    }
    /* Tensors in the file the model lacks mean the wrong model (or a training checkpoint whose
     * optimizer state is not wanted, which is fine). */
    for (int i = 0; !s && i < sm_st_count(f); i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        sm_tensor id;
        bool have = sm_graph_find(g, t->name, &id) == SM_OK;
        if (have && saved(&g->t[id], flags)) continue;
        if (have && g->t[id].role == SM_ROLE_OPTIM) continue;
        if (!have && !strncmp(t->name, "adam.", 5) && !(flags & SM_SAVE_OPTIMIZER)) continue;
        s = sm_error(SM_ERR_FORMAT, "%s: tensor '%s' is not a %s of this model: the file was saved from another "
                     "model configuration", path, t->name, have ? "saved tensor" : "tensor");
    }
    if (s || !meta) sm_st_close(f);
    else *meta = f;
    return s;
}

sm_status sm_runtime_save(sm_runtime *rt, const char *path, unsigned flags)
{
    return sm_checkpoint_save(rt, path, flags, NULL, 0);
}

sm_status sm_runtime_load(sm_runtime *rt, const char *path, unsigned flags)
{
    return sm_checkpoint_load(rt, path, flags, NULL);
}
