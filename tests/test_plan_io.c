/* test_plan_io.c — plan files: a saved plan loads back identical and runs the same; a plan made for
 * another graph is refused by name; a corrupt, truncated, foreign or newer file is refused before
 * anything in it is trusted; writes leave no temp files. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "graph/graph.h"
#include "scheduler/plan.h"
#include "tests/plan_random_graph.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_plan_io_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
    rmdir(dir);
}

TestSuite(plan_io, .init = make_dir, .fini = remove_dir);

static const char *file(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static int count_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void expect_same(const sm_plan *a, const sm_plan *b)
{
    cr_assert_eq(a->n_steps, b->n_steps);
    cr_assert_eq(a->n_tensors, b->n_tensors);
    cr_assert_eq(a->n_threads, b->n_threads);
    cr_assert_eq(a->hash, b->hash);
    cr_assert_eq(a->graph_hash, b->graph_hash);
    cr_assert_eq(a->opts.strategy, b->opts.strategy);
    cr_assert_eq(a->opts.budget, b->opts.budget);
    cr_assert_eq(a->work_per_thread, b->work_per_thread);
    cr_assert_eq(a->flops, b->flops);
    cr_assert_eq(a->n_inplace, b->n_inplace);
    cr_assert(memcmp(a->order, b->order, sizeof *a->order * (size_t)a->n_steps) == 0);
    for (int i = 0; i < a->n_tensors; i++) {
        const sm_plan_tensor *x = &a->t[i], *y = &b->t[i];
        cr_assert(x->arena == y->arena && x->offset == y->offset && x->bytes == y->bytes && x->first == y->first &&
                  x->last == y->last && x->alias == y->alias && x->inplace == y->inplace, "tensor %d differs", i);
    }
    cr_assert(memcmp(a->arena, b->arena, sizeof a->arena) == 0);
}

static sm_graph *graph(uint64_t seed, int nodes)
{
    rg_graph rg;
    cr_assert_eq(rg_build(&rg, seed, nodes), SM_OK);
    return rg.g;
}

Test(plan_io, round_trip)
{
    sm_graph *g = graph(11, 40);
    sm_plan_options o;
    sm_plan_options_default(&o);
    o.n_threads = 3;
    o.budget = 1 << 30;
    sm_plan *p, *q;
    cr_assert_eq(sm_plan_create(g, &o, &p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_plan_save(p, file("a.plan")), SM_OK, "%s", sm_last_error());
    cr_assert_eq(count_files(), 1, "the temp file must be gone");
    cr_assert_eq(sm_plan_load(g, file("a.plan"), &q), SM_OK, "%s", sm_last_error());
    expect_same(p, q);
    /* and it runs: the runtime accepts it for this graph */
    sm_runtime *rt;
    cr_assert_eq(sm_runtime_create(g, q, &rt), SM_OK, "%s", sm_last_error());
    sm_runtime_free(rt);
    /* saving over an existing file replaces it */
    cr_assert_eq(sm_plan_save(q, file("a.plan")), SM_OK);
    cr_assert_eq(count_files(), 1);
    sm_plan_free(p);
    sm_plan_free(q);
    sm_graph_free(g);
}

Test(plan_io, refuses_another_graph)
{
    sm_graph *g = graph(12, 30), *h = graph(13, 30);
    sm_plan *p, *q = NULL;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    cr_assert_eq(sm_plan_save(p, file("g.plan")), SM_OK);
    cr_assert_eq(sm_plan_load(h, file("g.plan"), &q), SM_ERR_INVALID_ARG);
    cr_assert_null(q);
    cr_assert(strstr(sm_last_error(), "made for another graph"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "g.plan"), "%s", sm_last_error());
    /* the same seed builds the same graph: same hash, and the plan loads */
    sm_graph *g2 = graph(12, 30);
    cr_assert_eq(sm_graph_hash(g2), sm_graph_hash(g));
    cr_assert_eq(sm_plan_load(g2, file("g.plan"), &q), SM_OK, "%s", sm_last_error());
    sm_plan_free(q);
    sm_plan_free(p);
    sm_graph_free(g);
    sm_graph_free(g2);
    sm_graph_free(h);
}

/* The runtime refuses a plan made for another graph with the same number of tensors and nodes. */
Test(plan_io, runtime_refuses_another_graph_of_the_same_size)
{
    int64_t s1[2] = {4, 8}, s2[2] = {8, 8};
    sm_graph *a, *b;
    sm_tensor x, y;
    cr_assert_eq(sm_graph_create(&a), SM_OK);
    cr_assert_eq(sm_graph_create(&b), SM_OK);
    sm_graph_input(a, "x", SM_F32, 2, s1, &x), sm_scale(a, x, 2, "y", &y), sm_graph_mark_output(a, y);
    sm_graph_input(b, "x", SM_F32, 2, s2, &x), sm_scale(b, x, 2, "y", &y), sm_graph_mark_output(b, y);
    sm_plan *p;
    sm_runtime *rt = NULL;
    cr_assert_eq(sm_plan_create(a, NULL, &p), SM_OK);
    cr_assert_eq(sm_runtime_create(b, p, &rt), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "another graph"), "%s", sm_last_error());
    cr_assert_null(rt);
    sm_plan_free(p);
    sm_graph_free(a);
    sm_graph_free(b);
}

Test(plan_io, graph_hash_sees_shapes_names_and_attrs)
{
    int64_t s1[2] = {4, 8}, s2[2] = {4, 9};
    sm_graph *a, *b, *c, *d;
    sm_tensor x, y;
    cr_assert_eq(sm_graph_create(&a), SM_OK);
    cr_assert_eq(sm_graph_create(&b), SM_OK);
    cr_assert_eq(sm_graph_create(&c), SM_OK);
    cr_assert_eq(sm_graph_create(&d), SM_OK);
    sm_graph_input(a, "x", SM_F32, 2, s1, &x), sm_scale(a, x, 2, "y", &y);
    sm_graph_input(b, "x", SM_F32, 2, s2, &x), sm_scale(b, x, 2, "y", &y);
    sm_graph_input(c, "x", SM_F32, 2, s1, &x), sm_scale(c, x, 3, "y", &y);
    sm_graph_input(d, "z", SM_F32, 2, s1, &x), sm_scale(d, x, 2, "y", &y);
    uint64_t ha = sm_graph_hash(a);
    cr_assert_neq(ha, sm_graph_hash(b));
    cr_assert_neq(ha, sm_graph_hash(c));
    cr_assert_neq(ha, sm_graph_hash(d));
    sm_graph_free(a);
    sm_graph_free(b);
    sm_graph_free(c);
    sm_graph_free(d);
}

static size_t slurp(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n);
    cr_assert_eq(fread(*out, 1, n, f), n);
    fclose(f);
    return n;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

Test(plan_io, refuses_damaged_files)
{
    sm_graph *g = graph(14, 30);
    sm_plan *p, *q = NULL;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    cr_assert_eq(sm_plan_save(p, file("p.plan")), SM_OK);
    unsigned char *b;
    size_t n = slurp(file("p.plan"), &b);

    /* one flipped bit anywhere in the payload: the checksum */
    for (size_t at = 40; at < n - 8; at += (n - 48) / 7 + 1) {
        b[at] ^= 0x10;
        spit(file("bad.plan"), b, n);
        cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT, "byte %zu", at);
        cr_assert(strstr(sm_last_error(), "corrupt"), "%s", sm_last_error());
        b[at] ^= 0x10;
    }
    /* truncated */
    spit(file("bad.plan"), b, n - 20);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT);
    spit(file("bad.plan"), b, 10);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT);
    /* another file type */
    spit(file("bad.plan"), (const unsigned char *)"{\"not\": \"a plan\"}", 17);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "not a SmallMind plan file"), "%s", sm_last_error());
    /* a newer version */
    b[8] = 9;
    spit(file("bad.plan"), b, n);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "version 9"), "%s", sm_last_error());
    b[8] = 1;
    b[8] = 4;
    /* forged with a valid checksum: a per-thread workspace so large that threads x it overflows 64 bits
     * (it once passed validation and crashed the runtime). work_per_thread is payload bytes 40..47. */
    uint64_t huge = (uint64_t)1 << 63, sum;
    memcpy(b + 48 + 40, &huge, 8);
    sum = XXH3_64bits(b, n - 8);
    memcpy(b + n - 8, &sum, 8);
    spit(file("bad.plan"), b, n);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT, "%s", sm_last_error());
    cr_assert_null(q);
    /* a missing file */
    cr_assert_eq(sm_plan_load(g, file("missing.plan"), &q), SM_ERR_IO);
    cr_assert_null(q);
    free(b);
    sm_plan_free(p);
    sm_graph_free(g);
}

/* A file whose checksum is right but whose layout is wrong (written by a buggy or hostile tool) is
 * still refused: loading validates. */
Test(plan_io, refuses_a_consistent_file_with_a_bad_layout)
{
    sm_graph *g = graph(15, 30);
    sm_plan *p, *q = NULL;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    /* stack every activation root at offset 0 */
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].arena == SM_ARENA_ACT && p->t[i].alias == SM_NO_TENSOR) p->t[i].offset = 0;
    for (int i = 0; i < p->n_tensors; i++)
        if (p->t[i].alias != SM_NO_TENSOR) p->t[i].offset = p->t[p->t[i].alias].offset;
    cr_assert_eq(sm_plan_save(p, file("bad.plan")), SM_OK);
    cr_assert_eq(sm_plan_load(g, file("bad.plan"), &q), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "does not hold together"), "%s", sm_last_error());
    sm_plan_free(p);
    sm_graph_free(g);
}

Test(plan_io, save_to_a_missing_directory_fails_cleanly)
{
    sm_graph *g = graph(16, 10);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, NULL, &p), SM_OK);
    cr_assert_eq(sm_plan_save(p, file("no/such/dir.plan")), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "no/such/dir.plan"), "%s", sm_last_error());
    cr_assert_eq(count_files(), 0);
    sm_plan_free(p);
    sm_graph_free(g);
}
