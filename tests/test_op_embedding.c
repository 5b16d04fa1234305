/* test_op_embedding.c — rows of the table gathered by id; out-of-range ids give zero rows (the row's
 * documented behaviour) without reading out of bounds (the sanitizer build checks that). */
#include <criterion/criterion.h>

#include "tests/helpers/op_check.h"

static void check(int nid, const int64_t *ids_shape, int64_t V, int64_t C, int32_t lo, int32_t hi, uint64_t seed)
{
    int64_t tab[2] = {V, C};
    op_check_spec s = {.op = SM_OP_EMBEDDING, .n_in = 2, .seed = seed, .exact = true};
    s.in[0] = op_in_i32(nid, ids_shape, lo, hi);
    s.in[1] = op_in_f32(2, tab);
    op_check_result *r = op_check_run(&s);
    const int32_t *ids = r->x[0];
    const float *t = r->x[1], *y = r->y;
    for (int64_t i = 0; i < sm_tensor_numel(r->g, r->in[0]); i++)
        for (int64_t c = 0; c < C; c++)
            cr_assert_eq(y[i * C + c], ids[i] >= 0 && ids[i] < V ? t[ids[i] * C + c] : 0.0f);
    op_check_free(r);
}

Test(op_embedding, shapes)
{
    check(1, (int64_t[]){1}, 1, 1, 0, 1, 1);
    check(1, (int64_t[]){7}, 7, 3, 0, 7, 2);
    check(2, (int64_t[]){2, 7}, 65, 129, 0, 65, 3);
    check(3, (int64_t[]){2, 3, 5}, 300, 65, 0, 300, 4);
}

Test(op_embedding, out_of_range_ids_give_zero_rows)
{
    check(2, (int64_t[]){3, 65}, 7, 5, -9, 16, 5);
}
