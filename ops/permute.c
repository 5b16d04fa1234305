/* permute.c — a copy of x with its dims reordered: y.ne[i] = x.ne[p[i]] for the permutation
 * p = (p0, p1, p2, p3) of x's dims (slots past x's ndim are ignored). Any dtype.
 *   e.g. x [B, T, H, D], p = (0, 2, 1, 3) -> y [B, H, T, D] */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_permute(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *x = &g->t[n->in[0]];
    const int64_t *perm = &n->attrs.i[SM_IATTR_PERMUTE_P0];   /* p0..p3 */
    bool seen[SM_MAX_DIMS] = {false};
    for (int i = 0; i < x->ndim; i++) {
        int64_t p = perm[i];
        if (p < 0 || p >= x->ndim || seen[p]) {
            char sx[64];
            return sm_error(SM_ERR_SHAPE, "node '%s': permute of '%s' %s by (%lld, %lld, %lld, %lld): the first %d "
                            "entries must be a permutation of 0..%d", out->name, x->name,
                            sm_shape_str(x, sx, sizeof sx), (long long)perm[0], (long long)perm[1], (long long)perm[2],
                            (long long)perm[3], x->ndim, x->ndim - 1);
        }
        seen[p] = true;
        out->ne[i] = x->ne[p];
    }
    out->ndim = x->ndim;
    out->dtype = x->dtype;
    return SM_OK;
}

/* Row-major strides (in elements) of x's dims. */
static void strides_of(const sm_tensor_rec *x, int64_t st[SM_MAX_DIMS])
{
    int64_t s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= x->ne[d];
    }
}

/* Output rows are the output's last dim: row r (a multi-index over the other output dims) starts in
 * x at Σ o_i·st[p[i]] and steps by st[p[last]]. Each row is copied by one thread. */
#define PERMUTE_ROWS(T)                                                                      \
    for (int64_t r = r0; r < r1; r++) {                                                      \
        int64_t off = 0, rem = r;                                                            \
        for (int i = nd - 2; i >= 0; i--) {                                                  \
            off += (rem % y->ne[i]) * st[p[i]];                                              \
            rem /= y->ne[i];                                                                 \
        }                                                                                    \
        const T *src = (const T *)k->x[0] + off;                                             \
        T *dst = (T *)k->y + r * inner;                                                      \
        if (step == 1) memcpy(dst, src, (size_t)inner * sizeof(T));                          \
        else                                                                                 \
            for (int64_t j = 0; j < inner; j++) dst[j] = src[j * step];                      \
    }

static void permute_rows(const sm_kernel_args *k, int64_t r0, int64_t r1)
{
    const sm_tensor_rec *x = k->in[0], *y = k->out;
    int nd = x->ndim, p[SM_MAX_DIMS];
    int64_t st[SM_MAX_DIMS];
    for (int i = 0; i < nd; i++) p[i] = (int)k->node->attrs.i[i];
    strides_of(x, st);
    int64_t inner = y->ne[nd - 1], step = st[p[nd - 1]];
    if (sm_dtype_size(x->dtype) == 4) {
        PERMUTE_ROWS(uint32_t)
    } else {
        PERMUTE_ROWS(uint16_t)
    }
}

static void permute_forward(const sm_kernel_args *k)
{
    int64_t rows = sm_rec_numel(k->out) / k->out->ne[k->out->ndim - 1];
    /* blocks of rows, so the per-row index arithmetic stays off the critical path for short rows */
    int64_t block = 64, nb = (rows + block - 1) / block;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; b++) permute_rows(k, b * block, b * block + block < rows ? b * block + block : rows);
}

/* Element by element: unravel the output index, permute it, ravel it in x. */
static void permute_reference(const sm_kernel_args *k)
{
    const sm_tensor_rec *x = k->in[0], *y = k->out;
    size_t es = sm_dtype_size(x->dtype);
    int nd = x->ndim;
    for (int64_t e = 0; e < sm_rec_numel(y); e++) {
        int64_t idx[SM_MAX_DIMS], rem = e, src = 0;
        for (int i = nd - 1; i >= 0; i--) {
            idx[i] = rem % y->ne[i];
            rem /= y->ne[i];
        }
        int64_t xi[SM_MAX_DIMS];
        for (int i = 0; i < nd; i++) xi[k->node->attrs.i[i]] = idx[i];
        for (int d = 0; d < nd; d++) src = src * x->ne[d] + xi[d];
        memcpy((char *)k->y + (size_t)e * es, (const char *)k->x[0] + (size_t)src * es, es);
    }
}

const sm_op_def sm_op_permute = {
    .name = "permute", .min_in = 1, .max_in = 1, .iattr = {"p0", "p1", "p2", "p3"},
    .iattr_default = {0, 1, 2, 3}, .shape = shape_permute,
    .forward = permute_forward, .reference = permute_reference,
    .backward = sm_backward_permute,
};
