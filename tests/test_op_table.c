/* test_op_table.c — the op list (SM_OP_LIST) against the op table it generates, and the named
 * attribute slots (ops/attrs.h) against the rows that name the attributes. */
#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

#include "ops/op.h"

/* Graph hashes and plan files store op numbers: no op may move. A new op goes at the end of the
 * list, so SM_OP_COUNT only grows. */
Test(op_table, op_numbers_never_move)
{
    static const struct {
        sm_op_kind op;
        int number;
        const char *name;
    } pinned[] = {
        {SM_OP_EMBEDDING, 0, "embedding"},        {SM_OP_ADD, 1, "add"},
        {SM_OP_MUL, 2, "mul"},                    {SM_OP_SCALE, 3, "scale"},
        {SM_OP_MATMUL, 4, "matmul"},              {SM_OP_LINEAR, 5, "linear"},
        {SM_OP_LAYERNORM, 6, "layernorm"},        {SM_OP_RMSNORM, 7, "rmsnorm"},
        {SM_OP_GELU, 8, "gelu"},                  {SM_OP_SILU, 9, "silu"},
        {SM_OP_SOFTMAX, 10, "softmax"},           {SM_OP_ATTENTION, 11, "attention"},
        {SM_OP_ROPE, 12, "rope"},                 {SM_OP_RESHAPE, 13, "reshape"},
        {SM_OP_PERMUTE, 14, "permute"},           {SM_OP_SLICE, 15, "slice"},
        {SM_OP_CONCAT, 16, "concat"},             {SM_OP_SUM, 17, "sum"},
        {SM_OP_MEAN, 18, "mean"},                 {SM_OP_CROSS_ENTROPY, 19, "cross_entropy"},
        {SM_OP_CAST, 20, "cast"},                 {SM_OP_FILL, 21, "fill"},
        {SM_OP_SUM_TO, 22, "sum_to"},             {SM_OP_EXPAND, 23, "expand"},
        {SM_OP_PAD, 24, "pad"},                   {SM_OP_EMBEDDING_BWD, 25, "embedding_bwd"},
        {SM_OP_NORM_STATS, 26, "norm_stats"},     {SM_OP_NORM_BWD_X, 27, "norm_bwd_x"},
        {SM_OP_NORM_BWD_W, 28, "norm_bwd_w"},     {SM_OP_GELU_BWD, 29, "gelu_bwd"},
        {SM_OP_SILU_BWD, 30, "silu_bwd"},         {SM_OP_SOFTMAX_BWD, 31, "softmax_bwd"},
        {SM_OP_ATTENTION_BWD, 32, "attention_bwd"}, {SM_OP_CROSS_ENTROPY_BWD, 33, "cross_entropy_bwd"},
        {SM_OP_SUMSQ, 34, "sumsq"},               {SM_OP_ADAMW, 35, "adamw"},
        {SM_OP_LM_HEAD_CE, 36, "lm_head_ce"},     {SM_OP_LM_HEAD_CE_BWD, 37, "lm_head_ce_bwd"},
        {SM_OP_ROWS, 38, "rows"},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        cr_expect_eq((int)pinned[i].op, pinned[i].number, "%s moved", pinned[i].name);
        cr_expect_str_eq(sm_op_name(pinned[i].op), pinned[i].name);
    }
    cr_expect_geq(SM_OP_COUNT, 39);
}

/* One entry of the list: a row with the list's name, a backward rule exactly when the entry says
 * GRAD, a sane arity, and kernels unless the op is a view. */
static void check_entry(sm_op_kind op, const char *name, bool grad)
{
    const sm_op_def *d = sm_op_def_get(op);
    cr_assert(d != NULL, "op '%s' has no row", name);
    cr_expect_str_eq(d->name, name, "the row of SM_OP %d is called '%s'; the op list says '%s'", op, d->name, name);
    cr_expect_eq(d->backward != NULL, grad, "op '%s': the list says %s but the row %s a backward rule", name,
                 grad ? "GRAD" : "NO_GRAD", d->backward ? "has" : "has no");
    cr_expect(d->min_in >= 0 && d->min_in <= d->max_in && d->max_in <= SM_MAX_INPUTS, "op '%s': arity %d..%d", name,
              d->min_in, d->max_in);
    cr_expect(d->is_view || (d->forward && d->reference), "op '%s' has no forward or no reference kernel", name);
    cr_expect(d->shape != NULL, "op '%s' has no shape rule", name);
}

Test(op_table, every_op_of_the_list_has_its_row)
{
#define CHECK_ENTRY(KIND, name, grad) check_entry(SM_OP_##KIND, #name, strcmp(#grad, "GRAD") == 0);
    SM_OP_LIST(CHECK_ENTRY)
#undef CHECK_ENTRY
    cr_expect_null(sm_op_def_get(SM_OP_COUNT));
}

/* A slot constant names slot `slot` of each op listed with it: the row must call that slot by the
 * constant's name, in the same kind (integer or float) of slot. */
static void check_slot(const char *constant, const char *attr, bool is_int, int slot, const sm_op_kind *ops, int n)
{
    for (int i = 0; i < n; i++) {
        const char *row = is_int ? sm_op_iattr_name(ops[i], slot) : sm_op_fattr_name(ops[i], slot);
        cr_expect(row && strcasecmp(row, attr) == 0, "%s = %d: %s %s slot %d is '%s', not '%s'", constant, slot,
                  sm_op_name(ops[i]), is_int ? "integer" : "float", slot, row ? row : "(unused)", attr);
    }
}

Test(op_table, attribute_slot_names_match_the_rows)
{
#define CHECK_SLOT(is_int, prefix, LAYOUT, NAME, ...)                                                          \
    {                                                                                                          \
        const sm_op_kind ops[] = {__VA_ARGS__};                                                                \
        check_slot(#prefix #LAYOUT "_" #NAME, #NAME, is_int, prefix##LAYOUT##_##NAME, ops,                     \
                   (int)(sizeof ops / sizeof ops[0]));                                                         \
    }
#define CHECK_IATTR(LAYOUT, NAME, slot, ...) CHECK_SLOT(true, SM_IATTR_, LAYOUT, NAME, __VA_ARGS__)
#define CHECK_FATTR(LAYOUT, NAME, slot, ...) CHECK_SLOT(false, SM_FATTR_, LAYOUT, NAME, __VA_ARGS__)
    SM_ATTR_SLOTS(CHECK_IATTR, CHECK_FATTR)
#undef CHECK_FATTR
#undef CHECK_IATTR
#undef CHECK_SLOT
}
