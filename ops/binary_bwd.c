/* binary_bwd.c — backward rules of add, mul and scale. b broadcasts over a's leading dims in the
 * forward, so b's gradient is summed over them (sum_to). */
#include "backward.h"

/* y = a + b:  da = gy;  db = sum_to(gy) */
SM_BACKWARD_RULE(add)
{
    sm_node n = g->nodes[node];
    if (need[0]) gx[0] = gy;
    return need[1] ? sm_bwd_sum_to(g, gy, n.in[1], &gx[1]) : SM_OK;
}

/* y = a * b:  da = gy * b;  db = sum_to(gy * a) */
SM_BACKWARD_RULE(mul)
{
    sm_node n = g->nodes[node];
    sm_status s = SM_OK;
    if (need[0]) {
        sm_tensor in[2] = {gy, n.in[1]};
        s = sm_bwd_op(g, SM_OP_MUL, in, 2, NULL, &gx[0]);
    }
    if (!s && need[1]) {
        sm_tensor in[2] = {gy, n.in[0]}, prod;
        s = sm_bwd_op(g, SM_OP_MUL, in, 2, NULL, &prod);
        if (!s) s = sm_bwd_sum_to(g, prod, n.in[1], &gx[1]);
    }
    return s;
}

/* y = s * x:  dx = s * gy */
SM_BACKWARD_RULE(scale)
{
    sm_node n = g->nodes[node];
    return need[0] ? sm_bwd_op(g, SM_OP_SCALE, &gy, 1, &n.attrs, &gx[0]) : SM_OK;
}
