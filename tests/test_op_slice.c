/* test_op_slice.c — slice (a copy) against the element-by-element reference, bitwise, along every
 * axis with ranges at the start, middle and end, for f32, bf16 and i32; and, independently, that a
 * slice of a 2-D input holds the expected elements. */
#include <criterion/criterion.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(sm_dtype dt, int nd, const int64_t *shape, int axis, int64_t start, int64_t len, uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(SM_OP_SLICE);
    at.i[0] = axis;
    at.i[1] = start;
    at.i[2] = len;
    s = (op_check_spec){.op = SM_OP_SLICE, .n_in = 1, .attrs = &at, .seed = seed, .exact = true};
    s.in[0] = op_in_f32(nd, shape);
    s.in[0].dtype = dt;
    s.in[0].id_hi = 1 << 20;
    return op_check_run(&s);
}

Test(op_slice, axes_and_ranges)
{
    const int64_t shapes[][4] = {{2, 7, 3, 5}, {1, 65, 1, 129}, {3, 1, 9, 2}};
    const sm_dtype dts[] = {SM_F32, SM_BF16, SM_I32};
    uint64_t seed = 1;
    for (int s = 0; s < 3; s++)
        for (int axis = 0; axis < 4; axis++) {
            int64_t n = shapes[s][axis];
            int64_t ranges[3][2] = {{0, 1}, {n / 3, n - n / 3 - (n > 2)}, {n - 1, 1}};
            for (int r = 0; r < 3; r++, seed++)   /* the dtypes take turns */
                op_check_free(run(dts[seed % 3], 4, shapes[s], axis, ranges[r][0], ranges[r][1] > 0 ? ranges[r][1] : 1,
                                  seed));
        }
    /* rows longer than the kernel's 64 KiB chunk */
    op_check_free(run(SM_F32, 2, (int64_t[]){3, 40000}, 1, 7, 39990, seed++));
    op_check_free(run(SM_F32, 1, (int64_t[]){7}, 0, 2, 3, seed++));
}

Test(op_slice, picks_the_range)
{
    op_check_result *r = run(SM_F32, 2, (int64_t[]){5, 9}, 1, 3, 4, 9);
    const float *x = r->x[0], *y = r->y;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) cr_assert_eq(y[i * 4 + j], x[i * 9 + 3 + j]);
    op_check_free(r);
}
