/* test_op_scale.c — y = s·x: one float multiply per element, so kernel and reference agree bitwise. */
#include <criterion/criterion.h>

#include "tests/helpers/op_check.h"

Test(op_scale, shapes_and_factors)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 7}, {1, 65, 129}, {3, 7, 65}};
    const float factors[] = {1.0f, 0.5f, -3.0f, 0.0f};
    for (int i = 0; i < 4; i++)
        for (int f = 0; f < 4; f++) {
            sm_attrs at = sm_op_default_attrs(SM_OP_SCALE);
            at.f[0] = factors[f];
            op_check_spec s = {.op = SM_OP_SCALE, .n_in = 1, .attrs = &at, .seed = (uint64_t)(i * 4 + f), .exact = true};
            s.in[0] = op_in_f32(3, shapes[i]);
            op_check_result *r = op_check_run(&s);
            const float *x = r->x[0], *y = r->y;
            for (int64_t j = 0; j < r->n_out; j++) cr_assert_eq(y[j], factors[f] * x[j]);
            op_check_free(r);
        }
}
