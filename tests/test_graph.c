/* test_graph.c — the graph builder: leaves, names, errors that name the node and shapes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "graph/graph.h"
#include "smallmind.h"

static sm_graph *g;
static void setup(void) { cr_assert_eq(sm_graph_create(&g), SM_OK); }
static void teardown(void) { sm_graph_free(g); }
TestSuite(graph, .init = setup, .fini = teardown);

Test(graph, leaves_and_queries)
{
    int64_t s[3] = {2, 3, 4};
    sm_tensor x, w, y;
    cr_assert_eq(sm_graph_input(g, "x", SM_F32, 3, s, &x), SM_OK);
    cr_assert_eq(sm_graph_param(g, "w", SM_F32, 1, s + 2, SM_INIT_ONES, 0, &w), SM_OK);
    cr_assert_eq(sm_mul(g, x, w, "y", &y), SM_OK);
    cr_assert_eq(sm_graph_tensor_count(g), 3);
    cr_assert_eq(sm_graph_node_count(g), 1);
    sm_tensor found;
    cr_assert_eq(sm_graph_find(g, "y", &found), SM_OK);
    cr_assert_eq(found, y);
    const char *name;
    sm_dtype dt;
    sm_role role;
    int nd;
    int64_t shape[SM_MAX_DIMS];
    cr_assert_eq(sm_tensor_info(g, y, &name, &dt, &role, &nd, shape), SM_OK);
    cr_assert_str_eq(name, "y");
    cr_assert_eq(nd, 3);
    cr_assert_eq(shape[0] * shape[1] * shape[2], 24);
    cr_assert_eq(role, SM_ROLE_ACTIVATION);
    cr_assert_eq(sm_tensor_numel(g, y), 24);
}

Test(graph, duplicate_and_bad_names)
{
    int64_t s[1] = {4};
    sm_tensor a;
    cr_assert_eq(sm_graph_input(g, "a", SM_F32, 1, s, &a), SM_OK);
    cr_assert_eq(sm_graph_input(g, "a", SM_F32, 1, s, &a), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "'a' already exists"));
    cr_assert_eq(sm_graph_input(g, "", SM_F32, 1, s, &a), SM_ERR_INVALID_ARG);
    int64_t bad[1] = {0};
    cr_assert_eq(sm_graph_input(g, "z", SM_F32, 1, bad, &a), SM_ERR_SHAPE);
    cr_assert(strstr(sm_last_error(), "'z'"));
    cr_assert_eq(sm_graph_input(g, "five", SM_F32, 5, s, &a), SM_ERR_SHAPE);
}

/* Adding a tensor checks its name through the name index: O(1) slots visited per add, where a scan of
 * the names before it made building n tensors cost n^2/2 comparisons (80k tensors took 9 s). */
Test(graph, name_lookups_visit_a_bounded_number_of_slots)
{
    enum { N = 1 << 16 };
    int64_t s[1] = {1};
    char name[32];
    sm_tensor t;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "h%d.w", i);
        cr_assert_eq(sm_graph_input(g, name, SM_F32, 1, s, &t), SM_OK, "%s", sm_last_error());
    }
    cr_assert_gt(g->name_probes, 0, "adding a tensor looks its name up in the index");
    cr_assert_leq(g->name_probes, 4 * (uint64_t)N, "%llu slots visited for %d adds",
                  (unsigned long long)g->name_probes, N);
    for (int i = 0; i < N; i += 997) {
        snprintf(name, sizeof name, "h%d.w", i);
        cr_assert_eq(sm_graph_find(g, name, &t), SM_OK, "%s", name);
        cr_assert_eq(t, i);
    }
    cr_assert_eq(sm_graph_input(g, "h17.w", SM_F32, 1, s, &t), SM_ERR_INVALID_ARG, "still unique");
}

/* What the index must survive: a rollback (autodiff and the optimizer lower n_t on failure), a
 * rename (autodiff names gradients), a clone (the plan's lowered graph). */
Test(graph, names_after_rollback_rename_and_clone)
{
    int64_t s[1] = {4};
    sm_tensor a, b, c;
    cr_assert_eq(sm_graph_input(g, "a", SM_F32, 1, s, &a), SM_OK);
    cr_assert_eq(sm_graph_input(g, "b", SM_F32, 1, s, &b), SM_OK);
    g->n_t = 1;   /* as a failed sm_graph_backward does */
    cr_assert_neq(sm_graph_find(g, "b", NULL), SM_OK, "a dropped tensor is not found");
    cr_assert_eq(sm_graph_input(g, "c", SM_F32, 1, s, &c), SM_OK);
    cr_assert_eq(c, 1, "c takes b's id");
    cr_assert_neq(sm_graph_find(g, "b", NULL), SM_OK, "b's stale slot does not find c");
    cr_assert_eq(sm_graph_input(g, "b", SM_F32, 1, s, &b), SM_OK, "b's name is free again");
    cr_assert_eq(sm_graph_find(g, "b", &b), SM_OK);
    cr_assert_eq(b, 2);

    cr_assert_eq(sm_graph_rename(g, a, "grad.a"), SM_OK);
    cr_assert_eq(sm_graph_find(g, "grad.a", &a), SM_OK);
    cr_assert_eq(a, 0);
    cr_assert_neq(sm_graph_find(g, "a", NULL), SM_OK, "the old name is gone");
    cr_assert_eq(sm_graph_rename(g, a, "c"), SM_ERR_INVALID_ARG, "renaming onto a tensor's name");
    cr_assert(strstr(sm_last_error(), "'c' already exists"), "%s", sm_last_error());

    sm_graph *h;
    cr_assert_eq(sm_graph_clone(g, &h), SM_OK);
    cr_assert_eq(sm_graph_input(h, "only.in.clone", SM_F32, 1, s, &c), SM_OK);
    cr_assert_neq(sm_graph_find(g, "only.in.clone", NULL), SM_OK, "the clone's index is its own");
    cr_assert_eq(sm_graph_find(h, "c", &c), SM_OK);
    cr_assert_eq(c, 1);
    sm_graph_free(h);
}

Test(graph, shape_error_names_node_and_both_shapes)
{
    int64_t sx[2] = {8, 16}, sw[2] = {32, 15};
    sm_tensor x, w, y;
    sm_graph_input(g, "x", SM_F32, 2, sx, &x);
    sm_graph_param(g, "w", SM_F32, 2, sw, SM_INIT_NORMAL, 0.02f, &w);
    cr_assert_eq(sm_linear(g, x, w, SM_NO_TENSOR, "proj", &y), SM_ERR_SHAPE);
    const char *e = sm_last_error();
    cr_assert(strstr(e, "'proj'"), "%s", e);
    cr_assert(strstr(e, "[8, 16]"), "%s", e);
    cr_assert(strstr(e, "[32, 15]"), "%s", e);
    cr_assert_eq(sm_graph_node_count(g), 0, "a failed node must not be added");
    cr_assert_eq(sm_matmul(g, x, w, 0, 0, "mm", &y), SM_ERR_SHAPE);
    cr_assert(strstr(sm_last_error(), "'mm'"));
    cr_assert_eq(sm_matmul(g, x, w, 0, 1, "mm2", &y), SM_ERR_SHAPE);
}

Test(graph, op_table_lookup)
{
    sm_op_kind k;
    cr_assert_eq(sm_op_lookup("layernorm", &k), SM_OK);
    cr_assert_eq(k, SM_OP_LAYERNORM);
    cr_assert_str_eq(sm_op_name(SM_OP_MATMUL), "matmul");
    cr_assert_str_eq(sm_op_iattr_name(SM_OP_MATMUL, 1), "trans_b");
    cr_assert_eq(sm_op_lookup("layrnorm", &k), SM_ERR_INVALID_ARG);
    for (int i = 0; i < SM_OP_COUNT; i++) {
        cr_assert_eq(sm_op_lookup(sm_op_name((sm_op_kind)i), &k), SM_OK);
        cr_assert_eq((int)k, i, "op names are unique");
    }
}

Test(graph, arity_and_bad_ids)
{
    int64_t s[1] = {4};
    sm_tensor a, y;
    sm_graph_input(g, "a", SM_F32, 1, s, &a);
    cr_assert_eq(sm_graph_op(g, SM_OP_ADD, &a, 1, NULL, "y", &y), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "takes 2 inputs"));
    sm_tensor in[2] = {a, 42};
    cr_assert_eq(sm_graph_op(g, SM_OP_ADD, in, 2, NULL, "y", &y), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_add(g, a, a, NULL, &y), SM_OK, "auto names");
}

Test(graph, loss_must_be_scalar)
{
    int64_t s[1] = {4};
    sm_tensor a;
    sm_graph_input(g, "a", SM_F32, 1, s, &a);
    cr_assert_eq(sm_graph_set_loss(g, a), SM_ERR_SHAPE);
    cr_assert_eq(sm_graph_loss(g), SM_NO_TENSOR);
}

Test(graph, status_names)
{
    cr_assert_str_eq(sm_status_name(SM_OK), "SM_OK");
    cr_assert_str_eq(sm_status_name(SM_ERR_INTERNAL), "SM_ERR_INTERNAL");
    cr_assert_str_eq(sm_dtype_name(SM_BF16), "bf16");
    cr_assert_eq(sm_dtype_size(SM_F16), 2);
}
