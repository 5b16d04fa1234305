/* op_table.c — the op table: every op's row, by kind, gathered from the op list (SM_OP_LIST,
 * smallmind.h). Each row lives next to its kernels in ops/<op>.c; this file only gathers them and
 * answers questions about them by name. */
#include <string.h>

#include "../base/error.h"
#include "../base/fp16.h"
#include "op.h"
#include "rows.h"

#define TABLE_SLOT(KIND, name, grad) [SM_OP_##KIND] = &sm_op_##name,
static const sm_op_def *const table[SM_OP_COUNT] = {SM_OP_LIST(TABLE_SLOT)};
#undef TABLE_SLOT

const sm_op_def *sm_op_def_get(sm_op_kind op) { return (unsigned)op < SM_OP_COUNT ? table[op] : NULL; }

const char *sm_op_name(sm_op_kind op) { return (unsigned)op < SM_OP_COUNT ? table[op]->name : "?"; }

sm_status sm_op_lookup(const char *name, sm_op_kind *out)
{
    for (int i = 0; name && i < SM_OP_COUNT; i++)
        if (strcmp(table[i]->name, name) == 0) {
            if (out) *out = (sm_op_kind)i;
            return SM_OK;
        }
    return sm_error(SM_ERR_INVALID_ARG, "unknown op '%s'", name ? name : "(null)");
}

const char *sm_op_iattr_name(sm_op_kind op, int slot)
{
    if ((unsigned)op >= SM_OP_COUNT || slot < 0 || slot >= SM_MAX_IATTRS) return NULL;
    return table[op]->iattr[slot];
}

const char *sm_op_fattr_name(sm_op_kind op, int slot)
{
    if ((unsigned)op >= SM_OP_COUNT || slot < 0 || slot >= SM_MAX_FATTRS) return NULL;
    return table[op]->fattr[slot];
}

sm_attrs sm_op_default_attrs(sm_op_kind op)
{
    sm_attrs a;
    memset(&a, 0, sizeof a);
    if ((unsigned)op >= SM_OP_COUNT) return a;
    memcpy(a.i, table[op]->iattr_default, sizeof a.i);
    memcpy(a.f, table[op]->fattr_default, sizeof a.f);
    return a;
}

/* ---- helpers shared by rows ---- */

sm_status sm_shape_same_as_in0(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    out->ndim = x->ndim;
    memcpy(out->ne, x->ne, sizeof out->ne);
    out->dtype = x->dtype;
    return SM_OK;
}

double sm_flops_per_out_elem(const sm_graph *g, const sm_node *n, double per_elem)
{
    return per_elem * (double)sm_rec_numel(&g->t[n->out]);
}

sm_status sm_shape_check_float(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i)
{
    sm_dtype t = g->t[n->in[i]].dtype;
    return t == SM_F16 || t == SM_BF16 ? SM_OK : sm_shape_check_f32(g, n, out, i);
}

void sm_load_f32(const void *x, sm_dtype t, int64_t i0, int64_t n, float *dst)
{
    if (t == SM_BF16) sm_bf16_to_f32_array((const uint16_t *)x + i0, dst, (size_t)n);
    else if (t == SM_F16) sm_f16_to_f32_array((const uint16_t *)x + i0, dst, (size_t)n);
    else memcpy(dst, (const float *)x + i0, (size_t)n * sizeof *dst);
}

sm_status sm_shape_check_f32(const sm_graph *g, const sm_node *n, const sm_tensor_rec *out, int i)
{
    const sm_tensor_rec *x = &g->t[n->in[i]];
    if (x->dtype == SM_F32) return SM_OK;
    return sm_error(SM_ERR_SHAPE, "node '%s': %s input %d ('%s') is %s; this op computes on f32 (add a cast)",
                    out->name, sm_op_def_get(n->op)->name, i, x->name, sm_dtype_name(x->dtype));
}
