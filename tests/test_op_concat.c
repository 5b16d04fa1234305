/* test_op_concat.c — concat (a copy) against the element-by-element reference, bitwise, of 1 to 8
 * inputs of different lengths along every axis, for f32, f16 and i32; and, independently, that
 * concatenating along axis 0 lays the inputs end to end. */
#include <criterion/criterion.h>
#include <string.h>

#include "tests/helpers/op_check.h"

static op_check_result *run(sm_dtype dt, int nd, const int64_t *shape, int axis, int n, uint64_t seed)
{
    static sm_attrs at;       /* static: the result keeps a pointer to the spec */
    static op_check_spec s;
    at = sm_op_default_attrs(SM_OP_CONCAT);
    at.i[0] = axis;
    s = (op_check_spec){.op = SM_OP_CONCAT, .n_in = n, .attrs = &at, .seed = seed, .exact = true};
    for (int j = 0; j < n; j++) {
        int64_t sh[4];
        memcpy(sh, shape, (size_t)nd * sizeof *sh);
        sh[axis] = 1 + (shape[axis] * (j + 1)) % 7;   /* a different length per input */
        s.in[j] = op_in_f32(nd, sh);
        s.in[j].dtype = dt;
        s.in[j].id_hi = 1 << 20;
    }
    return op_check_run(&s);
}

Test(op_concat, inputs_axes_dtypes)
{
    const int64_t shapes[][4] = {{2, 3, 5, 7}, {1, 65, 1, 3}};
    const sm_dtype dts[] = {SM_F32, SM_F16, SM_I32};
    const int ns[] = {1, 2, 3, SM_MAX_INPUTS};
    uint64_t seed = 1;
    for (int s = 0; s < 2; s++)
        for (int axis = 0; axis < 4; axis++)
            for (int n = 0; n < 4; n++, seed++)   /* the dtypes take turns */
                op_check_free(run(dts[seed % 3], 4, shapes[s], axis, ns[n], seed));
    op_check_free(run(SM_F32, 1, (int64_t[]){129}, 0, 3, seed++));
    op_check_free(run(SM_F32, 2, (int64_t[]){3, 129}, 1, 5, seed++));
}

Test(op_concat, end_to_end_along_axis_0)
{
    op_check_result *r = run(SM_F32, 2, (int64_t[]){4, 9}, 0, 3, 5);
    const char *y = r->y;
    size_t off = 0;
    for (int j = 0; j < 3; j++) {
        size_t b = (size_t)sm_tensor_numel(r->g, r->in[j]) * sizeof(float);
        cr_assert_eq(memcmp(y + off, r->x[j], b), 0, "input %d", j);
        off += b;
    }
    cr_assert_eq(off, (size_t)r->n_out * sizeof(float));
    op_check_free(r);
}
