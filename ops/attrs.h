/* attrs.h — the attribute slots of the ops by name: code writes n->attrs.i[SM_IATTR_MATMUL_TRANS_A],
 * not n->attrs.i[0]. The rows stay where attributes are named (.iattr, .fattr: the names graph files
 * use); this list gives each slot that code reads or writes a constant, one line a slot:
 *   IATTR(LAYOUT, NAME, slot, ops...)  SM_IATTR_<LAYOUT>_<NAME> = slot, an index into attrs.i: the
 *                                      integer slot that the rows of `ops` call <name> (NAME in
 *                                      lower case)
 *   FATTR(LAYOUT, NAME, slot, ops...)  SM_FATTR_<LAYOUT>_<NAME>, an index into attrs.f: the same for
 *                                      a float slot
 * LAYOUT is the op's kind, or the name of a family whose ops share the slot (REDUCE: sum and mean;
 * NORM: the norms and their backward ops), so that code shared by the family names it once.
 * test_op_table checks every line against the rows of its ops (same name, same slot, same kind).
 * Dimension lists (d0..d3, p0..p3) fill slots 0..3, so loops over dims index them by the dim. */
#ifndef SM_ATTRS_H
#define SM_ATTRS_H

#define SM_ATTR_SLOTS(IATTR, FATTR)                                                       \
    FATTR(SCALE, S, 0, SM_OP_SCALE)                                                       \
    IATTR(MATMUL, TRANS_A, 0, SM_OP_MATMUL)                                               \
    IATTR(MATMUL, TRANS_B, 1, SM_OP_MATMUL)                                               \
    FATTR(NORM, EPS, 0, SM_OP_LAYERNORM, SM_OP_RMSNORM, SM_OP_NORM_STATS)                 \
    IATTR(NORM, RMS, 0, SM_OP_NORM_STATS, SM_OP_NORM_BWD_X, SM_OP_NORM_BWD_W)             \
    IATTR(ATTENTION, N_HEAD, 0, SM_OP_ATTENTION, SM_OP_ATTENTION_BWD)                     \
    IATTR(ATTENTION, SPAN, 1, SM_OP_ATTENTION, SM_OP_ATTENTION_BWD)                       \
    IATTR(ROPE, N_HEAD, 0, SM_OP_ROPE)                                                    \
    IATTR(ROPE, INVERSE, 1, SM_OP_ROPE)                                                   \
    FATTR(ROPE, BASE, 0, SM_OP_ROPE)                                                      \
    IATTR(RESHAPE, D0, 0, SM_OP_RESHAPE)                                                  \
    IATTR(PERMUTE, P0, 0, SM_OP_PERMUTE)                                                  \
    IATTR(SLICE, AXIS, 0, SM_OP_SLICE)                                                    \
    IATTR(SLICE, START, 1, SM_OP_SLICE)                                                   \
    IATTR(SLICE, LEN, 2, SM_OP_SLICE)                                                     \
    IATTR(CONCAT, AXIS, 0, SM_OP_CONCAT)                                                  \
    IATTR(REDUCE, AXIS, 0, SM_OP_SUM, SM_OP_MEAN)                                         \
    IATTR(CAST, DTYPE, 0, SM_OP_CAST)                                                     \
    IATTR(ROWS, START, 0, SM_OP_ROWS)                                                     \
    IATTR(ROWS, LEN, 1, SM_OP_ROWS)                                                       \
    FATTR(FILL, VALUE, 0, SM_OP_FILL)                                                     \
    IATTR(SUM_TO, NDIM, 0, SM_OP_SUM_TO)                                                  \
    IATTR(EXPAND, AXIS, 4, SM_OP_EXPAND)                                                  \
    FATTR(EXPAND, S, 0, SM_OP_EXPAND)                                                     \
    IATTR(PAD, AXIS, 0, SM_OP_PAD)                                                        \
    IATTR(PAD, START, 1, SM_OP_PAD)                                                       \
    IATTR(PAD, TOTAL, 2, SM_OP_PAD)                                                       \
    IATTR(EMBEDDING_BWD, VOCAB, 0, SM_OP_EMBEDDING_BWD)                                   \
    IATTR(SUMSQ, ACC, 0, SM_OP_SUMSQ)                                                     \
    IATTR(ADAMW, DECAY, 0, SM_OP_ADAMW)                                                   \
    IATTR(ADAMW, SCALED, 1, SM_OP_ADAMW)                                                  \
    IATTR(FOUND_INF, ACC, 0, SM_OP_FOUND_INF)                                             \
    IATTR(KV_ATTENTION, N_HEAD, 0, SM_OP_KV_ATTENTION)                                    \
    IATTR(KV_ATTENTION, SPAN, 1, SM_OP_KV_ATTENTION)                                      \
    IATTR(KV_ATTENTION, SINK, 2, SM_OP_KV_ATTENTION)                                      \
    IATTR(KV_ATTENTION, RING, 3, SM_OP_KV_ATTENTION)

#define SM_IATTR_SLOT(LAYOUT, NAME, slot, ...) SM_IATTR_##LAYOUT##_##NAME = slot,
#define SM_FATTR_SLOT(LAYOUT, NAME, slot, ...) SM_FATTR_##LAYOUT##_##NAME = slot,
enum sm_attr_slot { SM_ATTR_SLOTS(SM_IATTR_SLOT, SM_FATTR_SLOT) };
#undef SM_IATTR_SLOT
#undef SM_FATTR_SLOT

#endif
