/* test_op_permute.c — permute (a copy) against the element-by-element reference, bitwise, for every
 * permutation of 3-D shapes and several of 4-D, f32, f16 and i32; and, independently, that a
 * transpose puts x[i, j] at y[j, i] and that permuting back restores x. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(sm_dtype dt, int nd, const int64_t *shape, const int *p, const void *data, uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(SM_OP_PERMUTE);
    for (int i = 0; i < nd; i++) at.i[i] = p[i];
    s = (op_check_spec){.op = SM_OP_PERMUTE, .n_in = 1, .attrs = &at, .seed = seed, .exact = true};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].dtype = dt;
    s.in[0].id_hi = 1000;
    s.in[0].data = data;
    return op_check_run(&s);
}

Test(op_permute, all_3d_permutations)
{
    const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    const int64_t shapes[][3] = {{2, 3, 5}, {1, 7, 1}, {3, 65, 7}};
    const sm_dtype dts[] = {SM_F32, SM_F16, SM_I32};
    uint64_t seed = 1;
    for (int s = 0; s < 3; s++)
        for (int p = 0; p < 6; p++, seed++)   /* the dtypes take turns */
            op_check_free(run(dts[seed % 3], 3, shapes[s], perms[p], NULL, seed));
}

Test(op_permute, shapes_1d_2d_4d)
{
    op_check_free(run(SM_F32, 1, (int64_t[]){7}, (int[]){0}, NULL, 1));
    op_check_free(run(SM_F32, 2, (int64_t[]){129, 3}, (int[]){1, 0}, NULL, 2));
    const int perms[][4] = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 3, 2}};
    for (int p = 0; p < 4; p++) {
        op_check_free(run(SM_F32, 4, (int64_t[]){2, 3, 4, 5}, perms[p], NULL, 3 + p));
        op_check_free(run(SM_BF16, 4, (int64_t[]){3, 7, 2, 65}, perms[p], NULL, 13 + p));
    }
}

Test(op_permute, transpose_and_back)
{
    const int64_t R = 7, C = 65;
    op_check_result *r = run(SM_F32, 2, (int64_t[]){R, C}, (int[]){1, 0}, NULL, 5);
    const float *x = r->x[0], *y = r->y;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) cr_assert_eq(y[j * R + i], x[i * C + j]);
    op_check_free(r);
    /* (1, 2, 0) then its inverse (2, 0, 1) */
    const int64_t shape[3] = {3, 4, 5};
    op_check_result *a = run(SM_F32, 3, shape, (int[]){1, 2, 0}, NULL, 6);
    float buf[60];
    memcpy(buf, a->y, sizeof buf);
    op_check_result *b = run(SM_F32, 3, (int64_t[]){4, 5, 3}, (int[]){2, 0, 1}, buf, 7);
    cr_assert_eq(memcmp(b->y, a->x[0], sizeof buf), 0);
    op_check_free(b);
    op_check_free(a);
}
