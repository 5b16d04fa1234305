/* test_graph_print.c — the canonical printer: load(print(g)) is the same graph as g (tensors, ids,
 * shapes, dtypes, roles, nodes, attributes, outputs, loss, gradients) for graphs built by the C API
 * and for graph files; print is a fixed point; the identity hash is XXH3 of the canonical text; saved
 * files are written atomically and their checksum is verified on load. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "graph/graph.h"
#include "helpers/cli_run.h"
#include "smallmind.h"

/* ---- comparing graphs field by field ---- */

static bool same_float(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0; /* bitwise: -0.0 is not 0.0 */
}

static void assert_same_graph(const sm_graph *a, const sm_graph *b)
{
    cr_assert_eq(a->n_t, b->n_t, "tensor count %d vs %d", a->n_t, b->n_t);
    cr_assert_eq(a->n_nodes, b->n_nodes);
    cr_assert_eq(a->loss, b->loss);
    for (int i = 0; i < a->n_t; i++) {
        const sm_tensor_rec *x = &a->t[i], *y = &b->t[i];
        cr_assert_str_eq(x->name, y->name, "tensor %d", i);
        cr_assert_eq(x->ndim, y->ndim, "%s", x->name);
        for (int d = 0; d < SM_MAX_DIMS; d++) cr_assert_eq(x->ne[d], y->ne[d], "%s dim %d", x->name, d);
        cr_assert_eq(x->dtype, y->dtype, "%s", x->name);
        cr_assert_eq(x->role, y->role, "%s: role %s vs %s", x->name, sm_role_name(x->role), sm_role_name(y->role));
        cr_assert_eq(x->node, y->node, "%s", x->name);
        cr_assert_eq(x->grad, y->grad, "%s", x->name);
        cr_assert_eq(x->is_output, y->is_output, "%s", x->name);
        if (x->role == SM_ROLE_PARAM) {
            cr_assert_eq(x->init, y->init, "%s", x->name);
            cr_assert_eq(x->trainable, y->trainable, "%s", x->name);
            if (x->init == SM_INIT_NORMAL) cr_assert(same_float(x->init_std, y->init_std), "%s std", x->name);
        }
    }
    for (int i = 0; i < a->n_nodes; i++) {
        const sm_node *x = &a->nodes[i], *y = &b->nodes[i];
        cr_assert_eq(x->op, y->op, "node %d", i);
        cr_assert_eq(x->n_in, y->n_in);
        cr_assert_eq(x->out, y->out);
        for (int k = 0; k < x->n_in; k++) cr_assert_eq(x->in[k], y->in[k]);
        for (int k = 0; k < SM_MAX_IATTRS; k++)
            if (sm_op_iattr_name(x->op, k)) cr_assert_eq(x->attrs.i[k], y->attrs.i[k], "node %d attr %d", i, k);
        for (int k = 0; k < SM_MAX_FATTRS; k++)
            if (sm_op_fattr_name(x->op, k))
                cr_assert(same_float(x->attrs.f[k], y->attrs.f[k]), "node %d fattr %d: %g vs %g", i, k,
                          (double)x->attrs.f[k], (double)y->attrs.f[k]);
    }
}

/* print, load, compare, print again: the text is a fixed point */
static void assert_round_trip(const sm_graph *g)
{
    char *t1 = NULL, *t2 = NULL;
    sm_graph *g2 = NULL;
    cr_assert_eq(sm_graph_print(g, &t1), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_graph_load_string(t1, "canonical", NULL, 0, &g2), SM_OK, "%s\n--- text:\n%s", sm_last_error(), t1);
    assert_same_graph(g, g2);
    cr_assert_eq(sm_graph_print(g2, &t2), SM_OK);
    cr_assert_str_eq(t1, t2);
    cr_assert_eq(sm_graph_identity(g), sm_graph_identity(g2));
    cr_assert_eq(sm_graph_hash(g), sm_graph_hash(g2), "the planner's structural hash agrees");
    free(t1);
    free(t2);
    sm_graph_free(g2);
}

#define OK(call) cr_assert_eq((call), SM_OK, "%s", sm_last_error())

/* A graph using every construct the printer has to write: odd names, every role, leaf outputs,
 * explicit roles, floats that need care (-0, denormals, extremes, inf, nan), extreme integers. */
static sm_graph *build_api_graph(void)
{
    sm_graph *g;
    OK(sm_graph_create(&g));
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s34[2] = {3, 4}, s2[1] = {2}, s5[1] = {5};
    int64_t s53[2] = {5, 3};
    sm_tensor x, w, b, ids, tab, kv, opt, t, u, v;
    OK(sm_graph_input(g, "x", SM_F32, 2, s23, &x));
    OK(sm_graph_input(g, "tokens with space", SM_I32, 1, s2, &ids));
    OK(sm_graph_param(g, "w\"q\\b", SM_F32, 2, s32, SM_INIT_NORMAL, 0.1f, &w));
    OK(sm_graph_param(g, "b\n\t\x01", SM_F32, 1, s2, SM_INIT_ONES, 0, &b));
    OK(sm_graph_param(g, "0tab..le{l}", SM_F32, 2, s53, SM_INIT_NORMAL, 1e-30f, &tab));
    OK(sm_graph_param(g, "h\xc3\xa9llo", SM_I32, 1, s5, SM_INIT_ZEROS, 0, &v));
    OK(sm_graph_set_trainable(g, tab, 0));
    OK(sm_graph_set_trainable(g, v, 1));
    OK(sm_graph_add_tensor(g, "input", SM_F16, SM_ROLE_KV, 2, s34, &kv));
    OK(sm_graph_add_tensor(g, "adam.m.w", SM_F32, SM_ROLE_OPTIM, 2, s32, &opt));
    OK(sm_matmul(g, x, w, 0, 0, "mm", &t));                    /* [2,2] */
    OK(sm_linear(g, x, tab, SM_NO_TENSOR, NULL, &u));          /* auto name, [2,5] */
    OK(sm_embedding(g, ids, tab, "emb", &t));                  /* [2,3] */
    OK(sm_add(g, t, x, "loss", &t));                           /* a name that is a keyword */
    sm_tensor in2[2] = {x, w};
    sm_attrs at = sm_op_default_attrs(SM_OP_MATMUL);
    at.i[0] = INT64_MIN; /* any nonzero is "transposed" */
    at.i[1] = 0;
    sm_tensor big;
    int64_t s22[2] = {2, 2};
    sm_tensor sq;
    OK(sm_graph_input(g, "sq", SM_F32, 2, s22, &sq));
    in2[0] = sq;
    in2[1] = sq;
    OK(sm_graph_op(g, SM_OP_MATMUL, in2, 2, &at, "extreme", &big));
    const float fs[] = {-0.0f, 1e-45f, FLT_MAX, -FLT_MIN, INFINITY, -INFINITY, NAN, 0.1f, 1.0f / 3.0f, 16777217.0f};
    sm_tensor prev = u;
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) OK(sm_scale(g, prev, fs[i], NULL, &prev));
    int64_t r6[1] = {10};
    sm_tensor flat;
    OK(sm_reshape(g, prev, 1, r6, "flat", &flat));
    int64_t r1[2] = {-1, 1};
    OK(sm_reshape(g, flat, 2, r1, "col", &flat));
    int64_t one[1] = {1};
    sm_tensor l0, lv;
    OK(sm_graph_input(g, "l0", SM_F32, 1, one, &l0));
    OK(sm_scale(g, l0, 2.0f, "the loss", &lv));
    OK(sm_graph_set_loss(g, lv));
    OK(sm_graph_mark_output(g, w));      /* a leaf output keeps its role */
    OK(sm_graph_mark_output(g, big));
    sm_tensor gw;
    OK(sm_scale(g, w, 1.0f, "w.grad", &gw));
    g->t[gw].role = SM_ROLE_GRAD;         /* as autodiff leaves them */
    g->t[w].grad = gw;
    g->t[flat].is_output = true;          /* an output that stays an activation */
    (void)b;
    (void)kv;
    (void)opt;
    return g;
}

Test(round_trip, c_api_graph)
{
    sm_graph *g = build_api_graph();
    assert_round_trip(g);
    sm_graph_free(g);
}

/* The GPT template at the demo's size, and a tiny one after autodiff and AdamW (gradient and
 * optimizer roles, gradient links, in-place update nodes, nodes with no tensor inputs). */
Test(round_trip, gpt_template_forward_and_training_graphs)
{
    sm_gpt_config c;
    sm_gpt_tensors io;
    sm_graph *g;
    sm_gpt_config_default(&c);
    OK(sm_graph_create(&g));
    OK(sm_gpt_build(g, &c, &io));
    assert_round_trip(g);
    sm_graph_free(g);

    c.vocab = 11, c.context = 8, c.n_layer = 2, c.n_head = 2, c.n_embd = 8, c.batch = 2, c.seq = 4;
    c.tied_embeddings = 0;
    OK(sm_graph_create(&g));
    OK(sm_gpt_build(g, &c, &io));
    OK(sm_graph_backward(g, io.loss));
    sm_adamw_config ac;
    sm_adamw_tensors at;
    sm_adamw_config_default(&ac);
    OK(sm_graph_adamw(g, &ac, &at));
    assert_round_trip(g);
    sm_graph_free(g);
}

Test(round_trip, empty_graph)
{
    sm_graph *g;
    OK(sm_graph_create(&g));
    char *text;
    OK(sm_graph_print(g, &text));
    cr_assert_str_eq(text, "smallmind-graph 1\n");
    free(text);
    assert_round_trip(g);
    sm_graph_free(g);
}

/* The exact canonical text of a small graph: this pins the format. */
Test(canonical, exact_text)
{
    sm_graph *g = NULL;
    OK(sm_graph_load_string("smallmind-graph 1\n"
                            "param N = 2\n"
                            "input x: f32[N, 3]\n"
                            "weight w: f32[4, 3] init=normal(0.02)\n"
                            "weight b: f32[4] init=zeros trainable=false\n"
                            "repeat i in 0..N {\n"
                            "    x2 = linear(x, w, b)\n"
                            "}\n"
                            "y = scale(x2, s=0.5)\n"
                            "z = matmul(y, w, trans_b=false)\n"
                            "output y\n",
                            "t", NULL, 0, &g));
    char *text;
    OK(sm_graph_print(g, &text));
    cr_assert_str_eq(text, "smallmind-graph 1\n"
                           "input x: f32[2, 3]\n"
                           "weight w: f32[4, 3] init=normal(0.02)\n"
                           "weight b: f32[4] init=zeros trainable=false\n"
                           "x2: f32[2, 4] = linear(x, w, b)\n"
                           "x2.1: f32[2, 4] = linear(x, w, b)\n"
                           "y: f32[2, 4] = scale(x2.1, s=0.5)\n"
                           "z: f32[2, 3] = matmul(y, w, trans_a=0, trans_b=0)\n"
                           "output y\n");
    free(text);
    sm_graph_free(g);
}

Test(canonical, fixtures_round_trip)
{
    const char *dir = getenv("SM_FIXTURES");
    cr_assert(dir);
    const char *files[] = {"graphs/mlp.smg", "graphs/features.smg", "graphs/gpt-train.smg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        sm_graph *g = NULL;
        OK(sm_graph_load_file(path, NULL, 0, &g));
        assert_round_trip(g);
        sm_graph_free(g);
    }
}

Test(canonical, refuses_a_node_reading_a_later_tensor)
{
    sm_graph *g;
    OK(sm_graph_create(&g));
    int64_t s[1] = {4};
    sm_tensor x, y, z;
    OK(sm_graph_input(g, "x", SM_F32, 1, s, &x));
    OK(sm_gelu(g, x, "y", &y));
    OK(sm_graph_input(g, "z", SM_F32, 1, s, &z));
    g->nodes[0].in[0] = z; /* a rewrite left the graph out of order */
    char *text = (char *)"untouched";
    cr_assert_eq(sm_graph_print(g, &text), SM_ERR_UNSUPPORTED);
    cr_assert_null(text);
    cr_assert_str_eq(sm_last_error(), "printing the graph: node 'y' reads a tensor made after it; the canonical "
                                      "form lists tensors in the order they were made");
    cr_assert_eq(sm_graph_identity(g), 0);
    sm_graph_free(g);
}

/* ---- identity ---- */

Test(identity, hash_is_xxh3_of_the_canonical_text)
{
    sm_graph *g = build_api_graph();
    char *text;
    OK(sm_graph_print(g, &text));
    cr_assert_eq(sm_graph_identity(g), XXH3_64bits(text, strlen(text)));
    free(text);
    sm_graph *g2 = build_api_graph();
    cr_assert_eq(sm_graph_identity(g), sm_graph_identity(g2), "the same construction gives the same identity");
    sm_graph_free(g2);
    sm_graph_free(g);
}

static uint64_t hash_of(const char *src)
{
    sm_graph *g = NULL;
    OK(sm_graph_load_string(src, "t", NULL, 0, &g));
    uint64_t h = sm_graph_identity(g);
    sm_graph_free(g);
    cr_assert_neq(h, 0);
    return h;
}

Test(identity, hash_changes_with_any_part_of_the_graph)
{
    const char *base_src = "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 3]\ny = scale(x, s=0.5)\noutput y\n";
    uint64_t base = hash_of(base_src);
    cr_assert_eq(base, hash_of("smallmind-graph 1\n# comments and layout do not count\ninput q:f16[2]\n"
                               "input   x : f32[2,3]\ny = scale(x,s=0.50)\noutput y\n"));
    const char *variants[] = {
        "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 3]\ny = scale(x, s=0.25)\noutput y\n",
        "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 4]\ny = scale(x, s=0.5)\noutput y\n",
        "smallmind-graph 1\ninput q: bf16[2]\ninput x: f32[2, 3]\ny = scale(x, s=0.5)\noutput y\n",
        "smallmind-graph 1\ninput x: f32[2, 3]\ninput q: f16[2]\ny = scale(x, s=0.5)\noutput y\n",
        "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 3]\nz = scale(x, s=0.5)\noutput z\n",
        "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 3]\ny = scale(x, s=0.5)\n",
        "smallmind-graph 1\ninput q: f16[2]\ninput x: f32[2, 3]\ny = gelu(x)\noutput y\n",
        "smallmind-graph 1\ntensor q: f16[2] role=kv\ninput x: f32[2, 3]\ny = scale(x, s=0.5)\noutput y\n",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        cr_assert_neq(base, hash_of(variants[i]), "variant %zu", i);
}

/* ---- saving ---- */

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(save, atomic_write_with_checksum_verified_on_load)
{
    char dir[] = "/tmp/sm_print_XXXXXX", path[256];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/g.smg", dir);
    sm_graph *g = build_api_graph(), *g2 = NULL;
    OK(sm_graph_save_file(g, path));
    OK(sm_graph_save_file(g, path)); /* replacing an existing file */

    char *text, *saved = sm_test_read(path, NULL);
    OK(sm_graph_print(g, &text));
    size_t n = strlen(text);
    char line[80];
    snprintf(line, sizeof line, "# smallmind-checksum xxh3:%016llx\n", (unsigned long long)XXH3_64bits(text, n));
    cr_assert(strncmp(saved, text, n) == 0, "the file starts with the canonical form");
    cr_assert_str_eq(saved + n, line);

    OK(sm_graph_load_file(path, NULL, 0, &g2));
    assert_same_graph(g, g2);
    sm_graph_free(g2);

    /* nothing but the file is left in the directory */
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(entries, 1);

    /* an edit after saving is caught; deleting the checksum line accepts it */
    char *edited = saved;   /* our own copy: edited in place */
    char *p = strstr(edited, "init=normal(0.1)");
    cr_assert(p);
    p[14] = '2'; /* normal(0.1) -> normal(0.2) */
    spit(path, edited);
    g2 = NULL;
    cr_assert_eq(sm_graph_load_file(path, NULL, 0, &g2), SM_ERR_FORMAT);
    cr_assert_null(g2);
    char want[512];
    int lines = 1;
    for (const char *q = text; *q; q++) lines += *q == '\n';
    snprintf(want, sizeof want,
             "%s:%d:1: error: checksum mismatch (the text hashes to %016llx): the file changed after smallmind "
             "saved it; if you edited it on purpose, delete this line\n",
             path, lines, (unsigned long long)XXH3_64bits(edited, n));
    cr_assert(strncmp(sm_last_error(), want, strlen(want)) == 0, "got:\n%s\nwant:\n%s", sm_last_error(), want);
    edited[n] = '\0';
    spit(path, edited);
    OK(sm_graph_load_file(path, NULL, 0, &g2));
    cr_assert_float_eq(g2->t[2].init_std, 0.2f, 0);
    sm_graph_free(g2);

    free(edited);
    free(text);
    sm_graph_free(g);
    unlink(path);
    rmdir(dir);
}

Test(save, unwritable_directory_is_an_io_error)
{
    sm_graph *g = build_api_graph();
    cr_assert_eq(sm_graph_save_file(g, "/nonexistent/dir/g.smg"), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "/nonexistent/dir/g.smg"), "%s", sm_last_error());
    sm_graph_free(g);
}

/* print -o: a symlink (or pipe, device) at the path is refused, not replaced by a regular file */
Test(save, a_symlink_is_not_written_over)
{
    sm_graph *g = build_api_graph();
    char dir[] = "/tmp/sm-save-link-XXXXXX", link[64], target[64];
    cr_assert(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/g.smg", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(sm_graph_save_file(g, link), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "symbolic link"), "%s", sm_last_error());
    char back[64];
    cr_assert_gt(readlink(link, back, sizeof back), 0, "the link is still a link");
    cr_assert_eq(access(target, F_OK), -1, "nothing was written through it");
    unlink(link);
    rmdir(dir);
    sm_graph_free(g);
}

/* ---- the checksum line: only the exact form, only last ---- */

#define BODY "smallmind-graph 1\ninput x: f32[2]\ny: f32[2] = gelu(x)\noutput y\n"   /* 4 lines */

/* BODY, then the checksum line of the bytes before it, formatted by fmt (which takes the hash), then
 * after. */
static const char *saved_text(const char *fmt, const char *after)
{
    static char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", BODY);
    n += (size_t)snprintf(buf + n, sizeof buf - n, fmt, (unsigned long long)XXH3_64bits(BODY, strlen(BODY)));
    snprintf(buf + n, sizeof buf - n, "%s", after);
    return buf;
}

static void expect_checksum_error(const char *text, const char *want)
{
    sm_graph *g = NULL;
    cr_assert_eq(sm_graph_load_string(text, "g.smg", NULL, 0, &g), SM_ERR_FORMAT, "accepted:\n%s", text);
    cr_assert_null(g);
    cr_assert(strncmp(sm_last_error(), want, strlen(want)) == 0, "got:\n%s\nwant:\n%s\nfor:\n%s", sm_last_error(),
              want, text);
    cr_assert(strstr(sm_last_error(), "delete this line"), "%s", sm_last_error());
}

static void expect_loads(const char *text)
{
    sm_graph *g = NULL;
    cr_assert_eq(sm_graph_load_string(text, "g.smg", NULL, 0, &g), SM_OK, "%s\nfor:\n%s", sm_last_error(), text);
    cr_assert_eq(sm_graph_tensor_count(g), 2);
    sm_graph_free(g);
}

#define GOOD "# smallmind-checksum xxh3:%016llx\n"
#define NOT_LAST "g.smg:5:1: error: a checksum line must be the file's last line, and line 6 follows it"
#define MALFORMED "g.smg:5:1: error: malformed checksum line: smallmind writes '# smallmind-checksum xxh3:' and 16 " \
                  "lowercase hex digits, alone on the line"

Test(checksum, a_statement_or_comment_after_the_line_is_an_error)
{
    expect_checksum_error(saved_text(GOOD, "z = gelu(y)\n"), NOT_LAST);
    expect_checksum_error(saved_text(GOOD, "\n\n# a note\n"), "g.smg:5:1: error: a checksum line must be the file's "
                          "last line, and line 8 follows it");
    expect_checksum_error(saved_text(GOOD, "# smallmind-checksum xxh3:0000000000000000\n"), NOT_LAST);
}

Test(checksum, a_moved_line_is_an_error)
{
    char text[512];
    snprintf(text, sizeof text, "smallmind-graph 1\n# smallmind-checksum xxh3:%016llx\n%s",
             (unsigned long long)XXH3_64bits("smallmind-graph 1\n", 18), BODY + 18);
    expect_checksum_error(text, "g.smg:2:1: error: a checksum line must be the file's last line, and line 3 follows "
                          "it");
}

Test(checksum, any_other_form_is_an_error)
{
    static const char *const forms[] = {
        "# SmallMind-Checksum xxh3:%016llx\n",   /* case changed */
        "# smallmind-checksum XXH3:%016llx\n",
        "# smallmind-checksum xxh3:%016llX\n",
        "# smallmind-checksum xxh3:%017llx\n",   /* 17 digits */
        "# smallmind-checksum xxh3:%016llx \n",  /* spaces, a CR, a missing space */
        "  # smallmind-checksum xxh3:%016llx\n",
        "# smallmind-checksum xxh3:%016llx\r\n",
        "#smallmind-checksum xxh3:%016llx\n",
        "#\tsmallmind-checksum  xxh3:%016llx\n",
        "# smallmind-checksum xxh64:%016llx\n",
        "# smallmind-checksum\n",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) expect_checksum_error(saved_text(forms[i], ""), MALFORMED);
    /* short hashes: the first 15 digits, the last 8 */
    unsigned long long h = XXH3_64bits(BODY, strlen(BODY));
    char text[256];
    snprintf(text, sizeof text, "%s# smallmind-checksum xxh3:%015llx\n", BODY, h >> 4);
    expect_checksum_error(text, MALFORMED);
    snprintf(text, sizeof text, "%s# smallmind-checksum xxh3:%08llx\n", BODY, h & 0xffffffffull);
    expect_checksum_error(text, MALFORMED);
}

Test(checksum, the_hash_covers_exactly_the_bytes_before_the_line)
{
    char text[512];
    snprintf(text, sizeof text, " %s# smallmind-checksum xxh3:%016llx\n", BODY,
             (unsigned long long)XXH3_64bits(BODY, strlen(BODY)));
    expect_checksum_error(text, "g.smg:5:1: error: checksum mismatch");
    expect_loads(saved_text(GOOD, ""));
    expect_loads(saved_text("# smallmind-checksum xxh3:%016llx", ""));   /* no final newline */
    expect_loads(saved_text(GOOD, "\n \t\n\r\n"));                        /* blank lines after it */
}

Test(checksum, files_without_one_load_as_they_are)
{
    expect_loads(BODY);
    expect_loads("smallmind-graph 1\n# about the smallmind-checksum line: print -o writes it\n"
                 "input x: f32[2]\ny: f32[2] = gelu(x)\noutput y\n");
}
