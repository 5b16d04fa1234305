/* test_op_binary.c — add and mul: kernel vs reference (both one float op per element, so they must
 * agree bitwise), broadcasting of a trailing-dims b, rows longer than the kernel's 4096 chunk. */
#include <criterion/criterion.h>

#include "tests/helpers/op_check.h"

typedef struct { int na; int64_t a[4]; int nb; int64_t b[4]; } bcase;

static const bcase cases[] = {
    {1, {1}, 1, {1}},           {1, {7}, 1, {7}},         {2, {3, 5}, 1, {5}},
    {3, {2, 3, 65}, 2, {3, 65}}, {1, {129}, 1, {129}},    {2, {3, 5000}, 1, {5000}},
    {2, {7, 1}, 1, {1}},        {4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}},
};

static void check(sm_op_kind op)
{
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        op_check_spec s = {.op = op, .n_in = 2, .seed = 11 + c, .exact = true};
        s.in[0] = op_in_f32(cases[c].na, cases[c].a);
        s.in[1] = op_in_f32(cases[c].nb, cases[c].b);
        op_check_result *r = op_check_run(&s);
        /* independent: element 0 and the last element by hand */
        const float *a = r->x[0], *b = r->x[1], *y = r->y;
        int64_t n = r->n_out, nb = sm_tensor_numel(r->g, r->in[1]);
        cr_assert_eq(y[0], op == SM_OP_ADD ? a[0] + b[0] : a[0] * b[0]);
        cr_assert_eq(y[n - 1], op == SM_OP_ADD ? a[n - 1] + b[nb - 1] : a[n - 1] * b[nb - 1]);
        op_check_free(r);
    }
}

Test(op_binary, add) { check(SM_OP_ADD); }
Test(op_binary, mul) { check(SM_OP_MUL); }
