/* test_plan_report.c — what the plan tells people and programs: budget verdicts and SM_ERR_BUDGET
 * messages naming the dominant term and the option that shrinks it, estimate/can_fit answered from
 * the plan at the exact boundary, the arena figures, and the text, JSON and SVG reports. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/graph.h"
#include "scheduler/plan.h"
#include "tests/plan_random_graph.h"

/* x [rows, 64] -> linear with a [width, 64] weight -> scale: weights or activations dominate. */
static sm_graph *two_terms(int64_t rows, int64_t width)
{
    sm_graph *g;
    sm_tensor x, w, h;
    int64_t xs[2] = {rows, 64}, ws[2] = {width, 64};
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_graph_input(g, "x", SM_F32, 2, xs, &x), SM_OK);
    cr_assert_eq(sm_graph_param(g, "w", SM_F32, 2, ws, SM_INIT_NORMAL, 0.1f, &w), SM_OK);
    cr_assert_eq(sm_linear(g, x, w, SM_NO_TENSOR, "h", &h), SM_OK);
    cr_assert_eq(sm_scale(g, h, 2, "y", &h), SM_OK);
    cr_assert_eq(sm_graph_mark_output(g, h), SM_OK);
    return g;
}

Test(plan_report, budget_boundary_is_exact)
{
    sm_graph *g = two_terms(16, 256);
    sm_plan *p, *q = NULL;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    uint64_t est = sm_plan_estimate(p);
    cr_assert_geq(est, sm_plan_total_bytes(p));
    cr_assert(sm_plan_can_fit(p, est));
    cr_assert(!sm_plan_can_fit(p, est - 1));
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.budget = est;
    cr_assert_eq(sm_plan_create(g, &o, &q), SM_OK, "%s", sm_last_error());
    sm_plan_free(q);
    q = NULL;
    o.budget = est - 1;
    cr_assert_eq(sm_plan_create(g, &o, &q), SM_ERR_BUDGET);
    cr_assert_null(q);
    sm_plan_free(p);
    sm_graph_free(g);
}

Test(plan_report, budget_error_names_the_dominant_term)
{
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.budget = 4096;
    sm_plan *p = NULL;
    sm_graph *wide = two_terms(4, 65536);         /* 16 MiB of weights, little else */
    cr_assert_eq(sm_plan_create(wide, &o, &p), SM_ERR_BUDGET);
    cr_assert(strstr(sm_last_error(), "weights"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "smaller model"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "4096 bytes"), "%s", sm_last_error());
    sm_graph *tall = two_terms(65536, 16);        /* 16 MiB of activations (x and h), tiny weights */
    cr_assert_eq(sm_plan_create(tall, &o, &p), SM_ERR_BUDGET);
    cr_assert(strstr(sm_last_error(), "activations"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "lower the batch B or the sequence length T"), "%s", sm_last_error());
    cr_assert_null(strstr(sm_last_error(), "-B"), "the library names no CLI flag: %s", sm_last_error());
    cr_assert_null(p);
    sm_graph_free(wide);
    sm_graph_free(tall);
}

Test(plan_report, arena_stats)
{
    rg_graph rg;
    cr_assert_eq(rg_build(&rg, 21, 40), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(rg.g, NULL, &p), SM_OK);
    sm_plan_arena_info in;
    cr_assert_eq(sm_plan_arena_stats(p, SM_ARENA_ACT, &in), SM_OK);
    cr_assert_eq(in.n_packers, SM_PACK_COUNT);
    cr_assert(in.chosen >= 0 && in.chosen < in.n_packers);
    for (int k = 0; k < in.n_packers; k++) {
        cr_assert_not_null(in.packer_name[k]);
        cr_assert_geq(in.packer_size[k], in.size);
        cr_assert_geq(in.packer_size[k], in.lower_bound);
    }
    cr_assert_eq(in.size, in.packer_size[in.chosen]);
    cr_assert_leq(in.size, in.naive);
    cr_assert_eq(sm_plan_arena_stats(p, SM_ARENA_PARAMS, &in), SM_OK);
    cr_assert_eq(in.n_packers, 0);
    cr_assert_eq(in.chosen, -1);
    cr_assert_eq(in.size, in.lower_bound);
    cr_assert_eq(sm_plan_arena_stats(p, SM_ARENA_COUNT, &in), SM_ERR_INVALID_ARG);
    sm_arena_id a;
    uint64_t off, bytes;
    int first, last;
    cr_assert_eq(sm_plan_tensor_place(p, rg.outputs[0], &a, &off, &bytes, &first, &last), SM_OK);
    cr_assert_eq(last, p->n_steps - 1, "an output lives to the end of the run");
    cr_assert_eq(bytes, sizeof(float) * (uint64_t)sm_tensor_numel(rg.g, rg.outputs[0]));
    cr_assert_eq(sm_plan_tensor_place(p, 100000, NULL, NULL, NULL, NULL, NULL), SM_ERR_INVALID_ARG);
    sm_plan_free(p);
    sm_graph_free(rg.g);
}

/* Brackets balance outside strings and nothing follows the top-level object. */
static void expect_json_shape(const char *s)
{
    int depth = 0, in_str = 0, closed = 0;
    for (const char *c = s; *c; c++) {
        if (in_str) {
            if (*c == '\\') c++;
            else if (*c == '"') in_str = 0;
            continue;
        }
        if (*c == '"') in_str = 1;
        else if (*c == '{' || *c == '[') depth++;
        else if (*c == '}' || *c == ']') {
            cr_assert_gt(depth, 0, "unbalanced JSON");
            if (--depth == 0) closed = 1;
        } else if (closed && *c != '\n' && *c != ' ') {
            cr_assert_fail("text after the JSON object: %s", c);
        }
    }
    cr_assert(closed && depth == 0 && !in_str, "incomplete JSON");
}

Test(plan_report, text_and_json)
{
    sm_graph *g = two_terms(2048, 2048)   /* activations (16 MiB) dominate the gemm workspace */;
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    char *t, *j;
    cr_assert_eq(sm_plan_report(p, g, SM_REPORT_TEXT, 1024, &t), SM_OK);
    for (int a = 0; a < SM_ARENA_COUNT; a++)
        cr_assert(strstr(t, sm_arena_role_label((sm_arena_id)a)), "%s missing:\n%s", sm_arena_role_label(a), t);
    cr_assert(strstr(t, "does NOT fit"), "%s", t);
    cr_assert(strstr(t, "dominant term: activations"), "%s", t);
    cr_assert(strstr(t, "largest live"), "%s", t);
    free(t);
    cr_assert_eq(sm_plan_report(p, NULL, SM_REPORT_TEXT, 1ull << 40, &t), SM_OK);
    cr_assert(strstr(t, ": fits"), "%s", t);
    cr_assert(!strstr(t, "largest live"), "no graph, no names:\n%s", t);
    free(t);

    cr_assert_eq(sm_plan_report(p, g, SM_REPORT_JSON, 0, &j), SM_OK);
    expect_json_shape(j);
    char want[256];
    snprintf(want, sizeof want, "\"name\": \"activations\", \"role\": \"activations\", \"size\": %llu, \"lower_bound\": %llu",
             (unsigned long long)p->arena[SM_ARENA_ACT].size, (unsigned long long)p->arena[SM_ARENA_ACT].lower_bound);
    cr_assert(strstr(j, want), "%s\nnot in\n%s", want, j);
    snprintf(want, sizeof want, "\"estimate\": %llu", (unsigned long long)sm_plan_estimate(p));
    cr_assert(strstr(j, want), "%s", j);
    cr_assert(strstr(j, "\"budget\": null"), "%s", j);
    cr_assert(strstr(j, "\"schema\": \"smallmind.plan-report/1\""), "%s", j);
    free(j);
    cr_assert_eq(sm_plan_report(p, g, SM_REPORT_JSON, 1024, &j), SM_OK);
    expect_json_shape(j);
    cr_assert(strstr(j, "\"fits\": false"), "%s", j);
    free(j);
    cr_assert_eq(sm_plan_report(p, g, (sm_report_format)7, 0, &j), SM_ERR_INVALID_ARG);
    sm_plan_free(p);
    sm_graph_free(g);
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *c = s; (c = strstr(c, what)); c += strlen(what)) n++;
    return n;
}

Test(plan_report, svg)
{
    rg_graph rg;
    cr_assert_eq(rg_build(&rg, 22, 40), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(rg.g, NULL, &p), SM_OK);
    char path[] = "/tmp/sm_plan_svg_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(sm_plan_write_svg(p, rg.g, path), SM_OK, "%s", sm_last_error());
    FILE *f = fopen(path, "rb");
    char *s = calloc(1, 1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, f);
    fclose(f);
    unlink(path);
    cr_assert_gt(n, 0);
    cr_assert(!strncmp(s, "<svg", 4));
    cr_assert(strstr(s, "</svg>"));
    int roots = 0;
    for (int i = 0; i < p->n_tensors; i++) roots += p->t[i].arena == SM_ARENA_ACT && p->t[i].alias == SM_NO_TENSOR;
    cr_assert_eq(count(s, "<rect"), roots + 2, "one rectangle per activation-arena tensor, plus background and frame");
    cr_assert_eq(count(s, "<title>"), roots);
    free(s);
    cr_assert_eq(sm_plan_write_svg(p, rg.g, "/no/such/dir/x.svg"), SM_ERR_IO);
    sm_plan_free(p);
    sm_graph_free(rg.g);
}
