/* test_op_reshape.c — a view: no kernel runs, the output has the new shape and the input's bytes. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/helpers/op_check.h"

static void check(int nd, const int64_t *shape, const int64_t d[4], int want_nd, const int64_t *want)
{
    sm_attrs at = sm_op_default_attrs(SM_OP_RESHAPE);
    for (int i = 0; i < 4; i++) at.i[i] = d[i];
    op_check_spec s = {.op = SM_OP_RESHAPE, .n_in = 1, .attrs = &at, .seed = 3, .exact = true};
    s.in[0] = op_in_f32(nd, shape);
    op_check_result *r = op_check_run(&s);
    const sm_tensor_rec *o = op_check_out_rec(r);
    cr_assert_eq(o->ndim, want_nd);
    for (int i = 0; i < want_nd; i++) cr_assert_eq(o->ne[i], want[i], "dim %d: %lld", i, (long long)o->ne[i]);
    cr_assert_eq(memcmp(r->y, r->x[0], (size_t)r->n_out * sizeof(float)), 0);
    op_check_free(r);
}

Test(op_reshape, shapes)
{
    check(1, (int64_t[]){1}, (int64_t[]){1, 1, 0, 0}, 2, (int64_t[]){1, 1});
    check(2, (int64_t[]){3, 7}, (int64_t[]){21, 0, 0, 0}, 1, (int64_t[]){21});
    check(3, (int64_t[]){2, 65, 6}, (int64_t[]){2, 65, 2, 3}, 4, (int64_t[]){2, 65, 2, 3});
    check(3, (int64_t[]){2, 65, 6}, (int64_t[]){-1, 6, 0, 0}, 2, (int64_t[]){130, 6});
    check(2, (int64_t[]){129, 4}, (int64_t[]){4, -1, 3, 0}, 3, (int64_t[]){4, 43, 3});
}
