/* binary.c — add and mul: y = a ∘ b, where b's shape equals a's trailing dims (so a bias [C] or a
 * position table [T,C] broadcasts over [B,T,C]). One mechanism, two rows. */
#include <string.h>

#include "../base/error.h"
#include "rows.h"

static sm_status shape_binary(const sm_graph *g, const sm_node *n, sm_tensor_rec *out)
{
    const sm_tensor_rec *a = &g->t[n->in[0]], *b = &g->t[n->in[1]];
    sm_status s = sm_shape_check_f32(g, n, out, 0);
    if (!s) s = sm_shape_check_f32(g, n, out, 1);
    if (s) return s;
    bool ok = b->ndim <= a->ndim;
    for (int i = 0; ok && i < b->ndim; i++) ok = b->ne[b->ndim - 1 - i] == a->ne[a->ndim - 1 - i];
    if (!ok) {
        char sa[64], sb[64];
        return sm_error(SM_ERR_SHAPE,
                        "node '%s': %s of '%s' %s and '%s' %s: the second shape must equal the trailing "
                        "dims of the first (broadcast)",
                        out->name, sm_op_def_get(n->op)->name, a->name, sm_shape_str(a, sa, sizeof sa),
                        b->name, sm_shape_str(b, sb, sizeof sb));
    }
    return sm_shape_same_as_in0(g, n, out);
}

/* y[i] = a[i] op b[i mod nb]; a, y: [N], b: [nb] with nb | N. Rows of nb elements are split across
 * threads; each element is computed once, so any thread count gives the same bits. */
#define BINARY_KERNEL(fn, OP, PRAGMA)                                                             \
    static void fn(const sm_kernel_args *k)                                                       \
    {                                                                                             \
        const float *a = k->x[0], *b = k->x[1];                                                   \
        float *y = k->y;                                                                          \
        int64_t n = sm_rec_numel(k->in[0]), nb = sm_rec_numel(k->in[1]), rows = n / nb;          \
        /* split long rows too, so a same-shape op (rows = 1) still uses every thread */          \
        int64_t chunk = nb > 4096 ? 4096 : nb, per_row = (nb + chunk - 1) / chunk;                \
        PRAGMA                                                                                    \
        for (int64_t t = 0; t < rows * per_row; t++) {                                            \
            int64_t r = t / per_row, j0 = (t % per_row) * chunk, j1 = j0 + chunk;                 \
            if (j1 > nb) j1 = nb;                                                                 \
            const float *ar = a + r * nb;                                                         \
            float *yr = y + r * nb;                                                               \
            for (int64_t j = j0; j < j1; j++) yr[j] = ar[j] OP b[j];                              \
        }                                                                                         \
    }
#define OMP_FOR _Pragma("omp for schedule(static)")
BINARY_KERNEL(add_forward, +, OMP_FOR)
BINARY_KERNEL(mul_forward, *, OMP_FOR)
BINARY_KERNEL(add_reference, +, )
BINARY_KERNEL(mul_reference, *, )

static double flops_binary(const sm_graph *g, const sm_node *n) { return sm_flops_per_out_elem(g, n, 1); }

const sm_op_def sm_op_add = {
    .name = "add", .min_in = 2, .max_in = 2, .shape = shape_binary, .flops = flops_binary,
    .inplace = true, .forward = add_forward, .reference = add_reference, .backward = sm_backward_add,
};

const sm_op_def sm_op_mul = {
    .name = "mul", .min_in = 2, .max_in = 2, .shape = shape_binary, .flops = flops_binary,
    .inplace = true, .forward = mul_forward, .reference = mul_reference, .backward = sm_backward_mul,
};
