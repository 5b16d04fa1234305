/* rope_bwd.c — backward of rope: a rotation of each (q, k) pair by a position's angle is
 * orthogonal, so its gradient is the inverse rotation of gy (rope with `inverse` flipped); v passes
 * through unchanged both ways. */
#include <string.h>

#include "../graph/error.h"
#include "backward.h"

SM_BACKWARD_RULE(rope)
{
    if (!need[0]) return SM_OK;
    sm_node n = g->nodes[node];
    int slot = -1;
    for (int i = 0; i < SM_MAX_IATTRS; i++) {
        const char *name = sm_op_iattr_name(SM_OP_ROPE, i);
        if (name && !strcmp(name, "inverse")) slot = i;
    }
    if (slot < 0)
        return sm_error(SM_ERR_UNSUPPORTED, "node '%s': the rope row has no 'inverse' attribute to differentiate "
                        "with", g->t[n.out].name);
    sm_attrs a = n.attrs;
    a.i[slot] = !a.i[slot];
    return sm_bwd_op(g, SM_OP_ROPE, &gy, 1, &a, &gx[0]);
}
