/* test_shapes.c — every op's shape rule rejects bad inputs with SM_ERR_SHAPE and a message that names
 * the node and the shapes (or dtypes) involved. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph.h"

static sm_graph *g;

static void setup(void) { cr_assert_eq(sm_graph_create(&g), SM_OK); }
static void teardown(void) { sm_graph_free(g); }

TestSuite(shapes, .init = setup, .fini = teardown);

static sm_tensor in(const char *name, sm_dtype dt, int nd, const int64_t *shape)
{
    sm_tensor t;
    cr_assert_eq(sm_graph_input(g, name, dt, nd, shape, &t), SM_OK, "%s", sm_last_error());
    return t;
}

#define IN(name, dt, ...) in(name, dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})

/* Adds node `name`, expects a shape error whose message holds 'name' and every string of want. */
static void expect(sm_op_kind op, const sm_tensor *ins, int n, const sm_attrs *at, const char *name,
                   const char *const *want)
{
    sm_tensor out;
    int nodes = sm_graph_node_count(g);
    sm_status s = sm_graph_op(g, op, ins, n, at, name, &out);
    const char *msg = sm_last_error();
    cr_assert_eq(s, SM_ERR_SHAPE, "%s: status %s (%s)", sm_op_name(op), sm_status_name(s), msg);
    cr_assert_eq(sm_graph_node_count(g), nodes, "a rejected node must not be added");
    char quoted[80];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    cr_assert(strstr(msg, quoted), "%s: message does not name the node: %s", sm_op_name(op), msg);
    for (int i = 0; want[i]; i++)
        cr_assert(strstr(msg, want[i]), "%s: message lacks \"%s\": %s", sm_op_name(op), want[i], msg);
}

#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})

static sm_attrs attrs(sm_op_kind op, int64_t i0, int64_t i1, int64_t i2)
{
    sm_attrs a = sm_op_default_attrs(op);
    a.i[0] = i0, a.i[1] = i1, a.i[2] = i2;
    return a;
}

Test(shapes, binary)
{
    sm_tensor ab[2] = {IN("a", SM_F32, 2, 3), IN("b", SM_F32, 4)};
    expect(SM_OP_ADD, ab, 2, NULL, "bad_add", WANT("[2, 3]", "[4]"));
    expect(SM_OP_MUL, ab, 2, NULL, "bad_mul", WANT("[2, 3]", "[4]"));
    sm_tensor ai[2] = {ab[0], IN("i", SM_I32, 3)};
    expect(SM_OP_ADD, ai, 2, NULL, "bad_add_i32", WANT("'i'", "i32"));
}

Test(shapes, scale_and_activations)
{
    sm_tensor i = IN("ids", SM_I32, 2, 3);
    expect(SM_OP_SCALE, &i, 1, NULL, "bad_scale", WANT("'ids'", "i32"));
    expect(SM_OP_GELU, &i, 1, NULL, "bad_gelu", WANT("'ids'", "i32"));
    expect(SM_OP_SILU, &i, 1, NULL, "bad_silu", WANT("'ids'", "i32"));
    expect(SM_OP_SOFTMAX, &i, 1, NULL, "bad_softmax", WANT("'ids'", "i32"));
}

Test(shapes, matmul_linear)
{
    sm_tensor ab[2] = {IN("a", SM_F32, 2, 3), IN("b", SM_F32, 4, 5)};
    expect(SM_OP_MATMUL, ab, 2, NULL, "bad_matmul", WANT("[2, 3]", "[4, 5]"));
    sm_tensor bt[2] = {IN("a3", SM_F32, 2, 7, 3), IN("b3", SM_F32, 3, 3, 5)};
    expect(SM_OP_MATMUL, bt, 2, NULL, "bad_batch", WANT("[2, 7, 3]", "[3, 3, 5]"));
    sm_tensor xw[3] = {IN("x", SM_F32, 2, 3), IN("w", SM_F32, 4, 5), IN("bias", SM_F32, 4)};
    expect(SM_OP_LINEAR, xw, 2, NULL, "bad_linear", WANT("[2, 3]", "[4, 5]"));
    sm_tensor xwb[3] = {xw[0], IN("w2", SM_F32, 4, 3), IN("bias2", SM_F32, 5)};
    expect(SM_OP_LINEAR, xwb, 3, NULL, "bad_bias", WANT("[5]", "[4]"));
}

Test(shapes, embedding)
{
    sm_tensor it[2] = {IN("ids", SM_I32, 2, 3), IN("tab", SM_F32, 4, 5, 6)};
    expect(SM_OP_EMBEDDING, it, 2, NULL, "bad_embedding", WANT("'tab'", "[4, 5, 6]"));
    sm_tensor ft[2] = {IN("fids", SM_F32, 2, 3), IN("tab2", SM_F32, 4, 5)};
    expect(SM_OP_EMBEDDING, ft, 2, NULL, "bad_ids", WANT("'fids'", "i32"));
}

Test(shapes, norms)
{
    sm_tensor lx[3] = {IN("x", SM_F32, 2, 8), IN("w", SM_F32, 7), IN("b", SM_F32, 8)};
    expect(SM_OP_LAYERNORM, lx, 3, NULL, "bad_ln_w", WANT("[2, 8]", "[7]"));
    sm_tensor lb[3] = {lx[0], IN("w8", SM_F32, 8), IN("b2", SM_F32, 2, 8)};
    expect(SM_OP_LAYERNORM, lb, 3, NULL, "bad_ln_b", WANT("[2, 8]", "[2, 8]", "'b2'"));
    expect(SM_OP_RMSNORM, lx, 2, NULL, "bad_rms", WANT("[2, 8]", "[7]"));
}

Test(shapes, rope)
{
    sm_tensor a = IN("qkv", SM_F32, 2, 3, 10);
    sm_attrs at = attrs(SM_OP_ROPE, 1, 0, 0);
    expect(SM_OP_ROPE, &a, 1, &at, "bad_rope_3c", WANT("[2, 3, 10]"));
    sm_tensor b = IN("qkv2", SM_F32, 2, 3, 18);
    at = attrs(SM_OP_ROPE, 2, 0, 0);   /* C = 6, D = 3: odd */
    expect(SM_OP_ROPE, &b, 1, &at, "bad_rope_d", WANT("[2, 3, 18]", "n_head 2"));
    at = attrs(SM_OP_ROPE, 4, 0, 0);   /* 6 % 4 */
    expect(SM_OP_ROPE, &b, 1, &at, "bad_rope_h", WANT("[2, 3, 18]", "n_head 4"));
    sm_tensor c = IN("qkv4", SM_F32, 6, 18);
    at = attrs(SM_OP_ROPE, 1, 0, 0);
    expect(SM_OP_ROPE, &c, 1, &at, "bad_rope_2d", WANT("[6, 18]"));
}

Test(shapes, attention)
{
    sm_tensor a = IN("qkv", SM_F32, 2, 3, 10);
    sm_attrs at = attrs(SM_OP_ATTENTION, 1, 0, 0);
    expect(SM_OP_ATTENTION, &a, 1, &at, "bad_attn_3c", WANT("[2, 3, 10]"));
    sm_tensor b = IN("qkv2", SM_F32, 2, 3, 18);
    at = attrs(SM_OP_ATTENTION, 4, 0, 0);   /* 6 % 4 */
    expect(SM_OP_ATTENTION, &b, 1, &at, "bad_attn_h", WANT("[2, 3, 18]", "n_head 4"));
}

Test(shapes, reshape_permute_slice_concat)
{
    sm_tensor x = IN("x", SM_F32, 2, 3);
    sm_attrs at = attrs(SM_OP_RESHAPE, 4, 0, 0);
    expect(SM_OP_RESHAPE, &x, 1, &at, "bad_reshape", WANT("[2, 3]", "4"));
    at = attrs(SM_OP_PERMUTE, 0, 0, 0);
    expect(SM_OP_PERMUTE, &x, 1, &at, "bad_permute", WANT("[2, 3]", "(0, 0"));
    at = attrs(SM_OP_SLICE, 1, 2, 2);
    expect(SM_OP_SLICE, &x, 1, &at, "bad_slice_range", WANT("[2, 3]", "[2, 4)"));
    at = attrs(SM_OP_SLICE, 2, 0, 1);
    expect(SM_OP_SLICE, &x, 1, &at, "bad_slice_axis", WANT("[2, 3]", "axis 2"));
    at = attrs(SM_OP_SLICE, 0, -1, 1);
    expect(SM_OP_SLICE, &x, 1, &at, "bad_slice_start", WANT("[2, 3]", "[-1, 0)"));
    at = attrs(SM_OP_SLICE, 0, 0, 0);
    expect(SM_OP_SLICE, &x, 1, &at, "bad_slice_len", WANT("[2, 3]"));
    sm_tensor xs[2] = {x, IN("y", SM_F32, 3, 3)};
    at = attrs(SM_OP_CONCAT, 1, 0, 0);
    expect(SM_OP_CONCAT, xs, 2, &at, "bad_concat", WANT("[2, 3]", "[3, 3]"));
    sm_tensor xh[2] = {x, IN("h", SM_F16, 2, 3)};
    at = attrs(SM_OP_CONCAT, 0, 0, 0);
    expect(SM_OP_CONCAT, xh, 2, &at, "bad_concat_dtype", WANT("f32", "f16"));
    at = attrs(SM_OP_CONCAT, 2, 0, 0);
    expect(SM_OP_CONCAT, xs, 2, &at, "bad_concat_axis", WANT("[2, 3]", "axis 2"));
}

Test(shapes, reductions)
{
    sm_tensor x = IN("x", SM_F32, 2, 3);
    sm_attrs at = attrs(SM_OP_SUM, 2, 0, 0);
    expect(SM_OP_SUM, &x, 1, &at, "bad_sum", WANT("[2, 3]", "axis 2"));
    at = attrs(SM_OP_MEAN, -2, 0, 0);
    expect(SM_OP_MEAN, &x, 1, &at, "bad_mean", WANT("[2, 3]", "axis -2"));
    sm_tensor i = IN("i", SM_I32, 4);
    expect(SM_OP_SUM, &i, 1, NULL, "bad_sum_i32", WANT("'i'", "i32"));
}

Test(shapes, cross_entropy)
{
    sm_tensor lt[2] = {IN("logits", SM_F32, 2, 3, 5), IN("targets", SM_I32, 2, 4)};
    expect(SM_OP_CROSS_ENTROPY, lt, 2, NULL, "bad_ce", WANT("[2, 3, 5]", "[2, 4]"));
    sm_tensor lf[2] = {lt[0], IN("ftargets", SM_F32, 2, 3)};
    expect(SM_OP_CROSS_ENTROPY, lf, 2, NULL, "bad_ce_dtype", WANT("'ftargets'", "f32"));
    sm_tensor lk[2] = {lt[0], IN("t3", SM_I32, 2, 3, 5)};
    expect(SM_OP_CROSS_ENTROPY, lk, 2, NULL, "bad_ce_rank", WANT("[2, 3, 5]", "[2, 3, 5]"));
}

Test(shapes, cast)
{
    sm_tensor i = IN("i", SM_I32, 3);
    sm_attrs at = attrs(SM_OP_CAST, SM_F16, 0, 0);
    expect(SM_OP_CAST, &i, 1, &at, "bad_cast", WANT("[3]", "i32", "f16"));
    sm_tensor f = IN("f", SM_F32, 3);
    at = attrs(SM_OP_CAST, SM_I32, 0, 0);
    expect(SM_OP_CAST, &f, 1, &at, "bad_cast_i32", WANT("[3]", "f32", "i32"));
    at = attrs(SM_OP_CAST, 17, 0, 0);
    expect(SM_OP_CAST, &f, 1, &at, "bad_cast_dtype", WANT("[3]", "17"));
}
