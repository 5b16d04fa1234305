/* rows.h — the op table's rows, one per op, each defined next to its kernels. */
#ifndef SM_ROWS_H
#define SM_ROWS_H

#include "backward.h"   /* the backward rules rows point at */
#include "op.h"

/* sm_op_<name> for every op of the op list */
#define ROW_DECLARATION(KIND, name, grad) extern const sm_op_def sm_op_##name;
SM_OP_LIST(ROW_DECLARATION)
#undef ROW_DECLARATION

#endif
