/* embedding.c — y[..., :] = table[ids[...], :]. ids i32 [...], table [V,C] -> y [..., C].
 * Out-of-range ids are clamped to a zero row rather than read out of bounds; the frontends validate
 * token ids before they reach a run. */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_embedding(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *ids = &g->t[n->in[0]], *tab = &g->t[n->in[1]];
    if (ids->dtype != SM_I32)
        return sm_error(SM_ERR_SHAPE, "node '%s': embedding ids '%s' must be i32, not %s", out->name, ids->name,
                        sm_dtype_name(ids->dtype));
    sm_status s = sm_shape_check_float(g, n, out, 1);
    if (s) return s;
    if (tab->ndim != 2) {
        char st[64];
        return sm_error(SM_ERR_SHAPE, "node '%s': embedding table '%s' is %s; it must be [V, C]", out->name,
                        tab->name, sm_shape_str(tab, st, sizeof st));
    }
    if (ids->ndim == SM_MAX_DIMS)
        return sm_error(SM_ERR_SHAPE, "node '%s': ids '%s' already has %d dims; the output would have %d",
                        out->name, ids->name, SM_MAX_DIMS, SM_MAX_DIMS + 1);
    out->ndim = ids->ndim + 1;
    memcpy(out->ne, ids->ne, sizeof out->ne);
    out->ne[ids->ndim] = tab->ne[1];
    out->dtype = SM_F32;
    return SM_OK;
}

/* The table may be stored f16 or bf16 (inference weights: precision.c); its row is widened. */
static void embed_row(const sm_kernel_args *k, int64_t r)
{
    const int32_t *ids = k->x[0];
    int64_t V = k->in[1]->ne[0], C = k->in[1]->ne[1];
    float *y = (float *)k->y + r * C;
    int32_t id = ids[r];
    if (id >= 0 && id < V) sm_load_f32(k->x[1], k->in[1]->dtype, (int64_t)id * C, C, y);
    else memset(y, 0, (size_t)C * sizeof *y);
}

static void embedding_forward(const sm_kernel_args *k)
{
    int64_t rows = sm_rec_numel(k->in[0]);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) embed_row(k, r);
}

static void embedding_reference(const sm_kernel_args *k)
{
    const int32_t *ids = k->x[0];
    int64_t V = k->in[1]->ne[0], C = k->in[1]->ne[1];
    float *y = k->y;
    for (int64_t r = 0; r < sm_rec_numel(k->in[0]); r++)
        for (int64_t c = 0; c < C; c++) {
            float v = 0.0f;
            if (ids[r] >= 0 && ids[r] < V) sm_load_f32(k->x[1], k->in[1]->dtype, (int64_t)ids[r] * C + c, 1, &v);
            y[r * C + c] = v;
        }
}

const sm_op_def sm_op_embedding = {
    .name = "embedding", .min_in = 2, .max_in = 2, .shape = shape_embedding, .half_inputs = 2u,
    .forward = embedding_forward, .reference = embedding_reference, .backward = sm_backward_embedding,
};
