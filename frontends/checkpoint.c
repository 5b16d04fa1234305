/* checkpoint.c — parameters and optimizer state <-> safetensors. The file's tensors are exactly the
 * graph's persistent tensors, by name, so a checkpoint fits one model configuration and says so
 * precisely when it does not. */
#include <stdlib.h>
#include <string.h>

#include "../graph/error.h"
#include "../graph/graph.h"
#include "checkpoint.h"

static bool saved(const sm_tensor_rec *r, unsigned flags)
{
    return r->role == SM_ROLE_PARAM || (r->role == SM_ROLE_OPTIM && (flags & SM_SAVE_OPTIMIZER));
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
    if (!s) s = sm_st_write(path, e, n, meta, n_meta, 0);
    free(e);
    return s;
}

sm_status sm_checkpoint_load(sm_runtime *rt, const char *path, unsigned flags, sm_st_file **meta)
{
    if (!rt || !path) return sm_error(SM_ERR_INVALID_ARG, "loading a checkpoint: NULL runtime or path");
    const sm_graph *g = sm_runtime_graph(rt);
    sm_st_file *f;
    sm_status s = sm_st_open(path, &f);
    if (s) return s;
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
        void *dst;
        s = sm_runtime_data(rt, i, &dst);
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
