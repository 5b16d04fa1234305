/* rope_bwd.c — backward of rope: a rotation of each (q, k) pair by a position's angle is
 * orthogonal, so its gradient is the inverse rotation of gy (rope with `inverse` flipped); v passes
 * through unchanged both ways. */
#include "backward.h"

SM_BACKWARD_RULE(rope)
{
    if (!need[0]) return SM_OK;
    sm_attrs a = g->nodes[node].attrs;
    a.i[SM_IATTR_ROPE_INVERSE] = !a.i[SM_IATTR_ROPE_INVERSE];
    return sm_bwd_op(g, SM_OP_ROPE, &gy, 1, &a, &gx[0]);
}
