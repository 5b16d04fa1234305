/* matmul_bwd.c — backward rules of matmul and linear, as more matmuls (so they run on the blocked
 * gemm too). With A = op(a), B = op(b) and y = A·B:  dA = gy·Bᵀ,  dB = Aᵀ·gy; a transposed input
 * gets the transpose of that. A 2-D b shared by every batch of a gets the sum over the batches:
 * one gemm over all rows when a is not transposed, else per-batch products summed by sum_to. */
#include "backward.h"

static sm_status mm(sm_graph *g, sm_tensor a, sm_tensor b, int ta, int tb, sm_tensor *out)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_MATMUL);
    at.i[SM_IATTR_MATMUL_TRANS_A] = ta;
    at.i[SM_IATTR_MATMUL_TRANS_B] = tb;
    sm_tensor in[2] = {a, b};
    return sm_bwd_op(g, SM_OP_MATMUL, in, 2, &at, out);
}

/* [.., r, c] -> [.., c, r] */
static sm_status swap_last(sm_graph *g, sm_tensor x, sm_tensor *out)
{
    int nd = g->t[x].ndim;
    sm_attrs at = sm_op_default_attrs(SM_OP_PERMUTE);
    for (int i = 0; i < nd; i++) at.i[i] = i;
    at.i[nd - 2] = nd - 1;
    at.i[nd - 1] = nd - 2;
    return sm_bwd_op(g, SM_OP_PERMUTE, &x, 1, &at, out);
}

static sm_status matmul_da(sm_graph *g, const sm_node *n, sm_tensor gy, bool shared_b, sm_tensor *da)
{
    sm_tensor b = n->in[1];
    int ta = (int)n->attrs.i[SM_IATTR_MATMUL_TRANS_A], tb = (int)n->attrs.i[SM_IATTR_MATMUL_TRANS_B];
    if (!ta) return mm(g, gy, b, 0, !tb, da);           /* [..,M,K] = gy·Bᵀ */
    if (!shared_b) return mm(g, b, gy, tb, 1, da);      /* [..,K,M] = B·gyᵀ */
    sm_tensor t;                                        /* B is 2-D: (gy·Bᵀ)ᵀ per batch */
    sm_status s = mm(g, gy, b, 0, !tb, &t);
    return s ? s : swap_last(g, t, da);
}

static sm_status matmul_db(sm_graph *g, const sm_node *n, sm_tensor gy, bool shared_b, sm_tensor *db)
{
    sm_tensor a = n->in[0], b = n->in[1];
    int ta = (int)n->attrs.i[SM_IATTR_MATMUL_TRANS_A], tb = (int)n->attrs.i[SM_IATTR_MATMUL_TRANS_B];
    if (!shared_b) return tb ? mm(g, gy, a, 1, ta, db) : mm(g, a, gy, !ta, 0, db);
    sm_status s;
    if (!ta) {   /* stack the batches' rows: one gemm sums over all of them */
        int64_t K = g->t[a].ne[g->t[a].ndim - 1], N = g->t[gy].ne[g->t[gy].ndim - 1];
        sm_tensor a2, gy2;
        if ((s = sm_bwd_rows(g, a, K, &a2)) || (s = sm_bwd_rows(g, gy, N, &gy2))) return s;
        return tb ? mm(g, gy2, a2, 1, 0, db) : mm(g, a2, gy2, 1, 0, db);
    }
    sm_tensor t;
    s = tb ? mm(g, gy, a, 1, 1, &t) : mm(g, a, gy, 0, 0, &t);
    return s ? s : sm_bwd_sum_to(g, t, b, db);
}

SM_BACKWARD_RULE(matmul)
{
    sm_node n = g->nodes[node];
    bool shared_b = g->t[n.in[1]].ndim == 2 && g->t[n.in[0]].ndim > 2;
    sm_status s = SM_OK;
    if (need[0]) s = matmul_da(g, &n, gy, shared_b, &gx[0]);
    if (!s && need[1]) s = matmul_db(g, &n, gy, shared_b, &gx[1]);
    return s;
}

/* y [M,N] = x [M,K]·w [N,K]ᵀ + bias [N], leading dims of x flattened into M:
 *   dx = gy·w;  dw = gyᵀ·x;  dbias = sum over rows of gy */
SM_BACKWARD_RULE(linear)
{
    sm_node n = g->nodes[node];
    sm_tensor x = n.in[0], w = n.in[1], gy2, x2, dx2;
    int64_t N = g->t[w].ne[0], K = g->t[w].ne[1];
    sm_status s = sm_bwd_rows(g, gy, N, &gy2);
    if (!s && need[0]) {
        s = mm(g, gy2, w, 0, 0, &dx2);
        if (!s) s = sm_bwd_reshape_like(g, dx2, x, &gx[0]);
    }
    if (!s && need[1]) {
        s = sm_bwd_rows(g, x, K, &x2);
        if (!s) s = mm(g, gy2, x2, 1, 0, &gx[1]);
    }
    if (!s && n.n_in == 3 && need[2]) s = sm_bwd_sum_to(g, gy, n.in[2], &gx[2]);
    return s;
}
