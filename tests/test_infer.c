/* test_infer.c — inference sessions (sm_infer): cached logits bitwise equal to the full forward at every
 * position (token by token, in prefill chunks, any thread count, windowed models with linear and ring
 * caches), greedy output equal to the uncached path, rewind/clear, and the KV file: resume equal to an
 * uninterrupted session, refusal of another model's file, a truncated file, a corrupt header, an
 * existing file, a file another session holds, and a file larger than the disk. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "smallmind.h"

#define OK(x) cr_assert_eq((x), SM_OK, "%s", sm_last_error())

enum { N = 150, V = 64 };   /* N crosses the 64-query tiles twice */

static sm_gpt_config model(int span)
{
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = V;
    c.context = 200;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 32;
    c.batch = 1;
    c.seq = N;
    c.with_loss = 0;
    c.span = span;
    return c;
}

static void tokens(int32_t *t, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((seed >> 33) % V);
    }
}

/* The full forward of the whole sequence: weights from seed, logits [n, V]. The runtime is kept
 * (its weights feed the sessions). */
typedef struct full {
    sm_graph *g;
    sm_plan *p;
    sm_runtime *rt;
    float *logits;
} full;

static full forward(const sm_gpt_config *c, const int32_t *tok, int n, uint64_t seed)
{
    full f;
    sm_gpt_config cc = *c;
    cc.seq = n;
    sm_gpt_tensors io;
    OK(sm_graph_create(&f.g));
    OK(sm_gpt_build(f.g, &cc, &io));
    sm_plan_options o;
    sm_plan_options_default(&o);
    OK(sm_plan_create(f.g, &o, &f.p));
    OK(sm_runtime_create(f.g, f.p, &f.rt));
    OK(sm_runtime_init_params(f.rt, seed));
    OK(sm_runtime_set(f.rt, io.tokens, tok, sizeof *tok * (size_t)n));
    OK(sm_runtime_run(f.rt));
    f.logits = malloc(sizeof *f.logits * (size_t)n * V);
    OK(sm_runtime_get(f.rt, io.logits, f.logits, sizeof *f.logits * (size_t)n * V));
    return f;
}

static void full_free(full *f)
{
    sm_runtime_free(f->rt);
    sm_plan_free(f->p);
    sm_graph_free(f->g);
    free(f->logits);
}

static sm_infer *session(const sm_gpt_config *c, const full *f, int chunk, int threads, int ring, int sink)
{
    sm_infer_options o;
    sm_infer_options_default(&o);
    o.chunk = chunk;
    o.n_threads = threads;
    o.ring = ring;
    o.sink = sink;
    sm_infer *s;
    OK(sm_infer_create(c, f->rt, &o, &s));
    return s;
}

/* Appends tok in pieces of `piece` tokens, comparing every position's logits with the full forward's. */
static void check_bitwise(sm_infer *s, const full *f, const int32_t *tok, int n, int piece, const char *what)
{
    float *lg = malloc(sizeof *lg * (size_t)n * V);
    for (int i = 0; i < n; i += piece) {
        int k = n - i < piece ? n - i : piece;
        OK(sm_infer_append(s, tok + i, k, lg + (size_t)i * V, 1));
    }
    cr_assert_eq(sm_infer_length(s), n);
    for (int i = 0; i < n; i++)
        cr_assert(!memcmp(lg + (size_t)i * V, f->logits + (size_t)i * V, sizeof *lg * V),
                  "%s: the logits at position %d differ from the full forward's", what, i);
    free(lg);
}

Test(infer, cached_logits_equal_full_forward_at_every_position)
{
    sm_gpt_config c = model(0);
    int32_t tok[N];
    tokens(tok, N, 1);
    full f = forward(&c, tok, N, 11);
    struct { int chunk, threads, piece; const char *what; } runs[] = {
        {1, 1, 1, "token by token, 1 thread"}, {1, 2, 1, "token by token, 2 threads"},
        {16, 2, N, "prefill chunks of 16 (and single tokens for the rest)"}, {64, 1, 37, "chunks of 64, pieces of 37"},
    };
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        sm_infer *s = session(&c, &f, runs[r].chunk, runs[r].threads, 0, 0);
        check_bitwise(s, &f, tok, N, runs[r].piece, runs[r].what);
        sm_infer_free(s);
    }
    full_free(&f);
}

/* A windowed model: the linear cache and the ring (W + chunk - 1 rows, no sinks) give the full
 * forward's bits under the same window mask. */
Test(infer, windowed_linear_and_ring_equal_full_forward)
{
    sm_gpt_config c = model(40);
    int32_t tok[N];
    tokens(tok, N, 2);
    full f = forward(&c, tok, N, 12);
    sm_infer *s = session(&c, &f, 8, 2, 0, 0);
    check_bitwise(s, &f, tok, N, 13, "windowed, linear cache");
    sm_infer_free(s);
    s = session(&c, &f, 8, 2, 1, 0);
    cr_assert_eq(sm_infer_kv_bytes(s), 2ull * 2 * (40 + 8 - 1) * 32 * 4, "ring of W + chunk - 1 rows");
    check_bitwise(s, &f, tok, N, 13, "windowed, ring cache");
    sm_infer_free(s);
    full_free(&f);
}

static int argmax(const float *x)
{
    int b = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Greedy decoding through sm_infer_generate, with a cache of 32 positions, and by re-running the full
 * forward over the last 32 tokens for every token (the uncached path): the same tokens, before and
 * after the cache fills (then the session re-runs the window too). */
static sm_status collect(void *user, int32_t token)
{
    int32_t **p = user;
    *(*p)++ = token;
    return SM_OK;
}

Test(infer, greedy_equals_uncached)
{
    sm_gpt_config c = model(0);
    enum { P0 = 20, NEW = 30, W = 32 };
    int32_t seq[P0 + NEW];
    tokens(seq, P0, 3);
    full f = forward(&c, seq, P0, 13);
    sm_infer_options o;
    sm_infer_options_default(&o);
    o.chunk = 8;
    o.positions = W;
    sm_infer *s;
    OK(sm_infer_create(&c, f.rt, &o, &s));
    int32_t cached[NEW], *out = cached;
    int64_t done;
    sm_sampling greedy = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 1};
    OK(sm_infer_generate(s, seq, P0, NEW, &greedy, collect, &out, &done));
    cr_assert_eq(done, NEW);
    int n = P0;
    for (int i = 0; i < NEW; i++) {
        int w = n < W ? n : W;
        full g = forward(&c, seq + n - w, w, 13);
        seq[n] = argmax(g.logits + (size_t)(w - 1) * V);
        cr_assert_eq(seq[n], cached[i], "token %d: uncached %d, cached %d", i, seq[n], cached[i]);
        n++;
        full_free(&g);
    }
    /* an empty prompt goes on from the session's last token; a rewound one has none */
    OK(sm_infer_rewind(s, 10));
    cr_assert_eq(sm_infer_generate(s, NULL, 0, 1, &greedy, NULL, NULL, NULL), SM_ERR_INVALID_ARG);
    OK(sm_infer_clear(s));
    cr_assert_eq(sm_infer_generate(s, NULL, 0, 1, &greedy, NULL, NULL, NULL), SM_ERR_INVALID_ARG);
    sm_infer_free(s);
    full_free(&f);
}

Test(infer, rewind_and_clear)
{
    sm_gpt_config c = model(0);
    int32_t a[N], b[N];
    tokens(a, N, 4);
    tokens(b, N, 5);
    memcpy(b, a, sizeof *a * 60);   /* b shares a's first 60 tokens */
    full fb = forward(&c, b, N, 14);
    sm_infer *s = session(&c, &fb, 16, 2, 0, 0);
    float *lg = malloc(sizeof *lg * (size_t)N * V);
    OK(sm_infer_append(s, a, 100, NULL, 0));
    OK(sm_infer_rewind(s, 60));
    cr_assert_eq(sm_infer_length(s), 60);
    OK(sm_infer_append(s, b + 60, N - 60, lg, 1));
    for (int i = 60; i < N; i++)
        cr_assert(!memcmp(lg + (size_t)(i - 60) * V, fb.logits + (size_t)i * V, sizeof *lg * V), "after rewind: %d", i);
    OK(sm_infer_clear(s));
    cr_assert_eq(sm_infer_length(s), 0);
    check_bitwise(s, &fb, b, N, 50, "after clear");
    cr_assert_eq(sm_infer_rewind(s, N + 1), SM_ERR_INVALID_ARG);
    /* full: 200 rows; 150 filled + 51 more overflow, and nothing runs */
    int32_t more[51] = {0};
    cr_assert_eq(sm_infer_append(s, more, 51, NULL, 0), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "exceed"), "%s", sm_last_error());
    cr_assert_eq(sm_infer_length(s), N);
    int32_t bad = V;
    cr_assert_eq(sm_infer_append(s, &bad, 1, NULL, 0), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "vocabulary"), "%s", sm_last_error());
    free(lg);
    sm_infer_free(s);
    full_free(&fb);
}

/* ---- the KV file ---- */

static void tmp_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/sm_test_infer_%ld_%s.kv", dir && *dir ? dir : "/tmp", (long)getpid(), name);
    unlink(buf);
}

static sm_status open_file(const sm_gpt_config *c, const full *f, const char *path, int resume, sm_infer **s)
{
    sm_infer_options o;
    sm_infer_options_default(&o);
    o.chunk = 16;
    o.kv_file = path;
    o.resume = resume;
    return sm_infer_create(c, f->rt, &o, s);
}

Test(infer, file_resume_equals_uninterrupted)
{
    sm_gpt_config c = model(0);
    int32_t tok[N];
    tokens(tok, N, 6);
    full f = forward(&c, tok, N, 15);
    char path[512];
    tmp_path(path, sizeof path, "resume");
    sm_infer *s;
    OK(open_file(&c, &f, path, 0, &s));
    OK(sm_infer_append(s, tok, 70, NULL, 0));
    sm_infer_free(s);
    OK(open_file(&c, &f, path, 1, &s));
    cr_assert_eq(sm_infer_length(s), 70);
    cr_assert_eq(sm_infer_last_token(s), tok[69]);
    float *lg = malloc(sizeof *lg * (size_t)N * V);
    OK(sm_infer_append(s, tok + 70, N - 70, lg, 1));
    for (int i = 70; i < N; i++)
        cr_assert(!memcmp(lg + (size_t)(i - 70) * V, f.logits + (size_t)i * V, sizeof *lg * V), "resumed: %d", i);
    /* a second session on the file while this one holds it */
    sm_infer *t;
    cr_assert_eq(open_file(&c, &f, path, 1, &t), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "in use"), "%s", sm_last_error());
    sm_infer_free(s);
    /* a new session never overwrites an existing file */
    cr_assert_eq(open_file(&c, &f, path, 0, &t), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "already exists"), "%s", sm_last_error());
    free(lg);
    unlink(path);
    full_free(&f);
}

Test(infer, file_refusals_name_what_differs)
{
    sm_gpt_config c = model(0);
    int32_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    full f = forward(&c, tok, 8, 16), other = forward(&c, tok, 8, 17);
    char path[512];
    tmp_path(path, sizeof path, "refuse");
    sm_infer *s;
    OK(open_file(&c, &f, path, 0, &s));
    OK(sm_infer_append(s, tok, 8, NULL, 0));
    sm_infer_free(s);
    /* another model's weights */
    cr_assert_eq(open_file(&c, &other, path, 1, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "another model"), "%s", sm_last_error());
    /* another layout: more heads */
    sm_gpt_config c4 = c;
    c4.n_head = 4;
    full f4 = forward(&c4, tok, 8, 16);
    cr_assert_eq(open_file(&c4, &f4, path, 1, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "heads 2"), "%s", sm_last_error());
    full_free(&f4);
    /* a corrupt header: one byte of the filled count flipped */
    FILE *fp = fopen(path, "r+b");
    cr_assert(fp);
    fseek(fp, 100, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, 100, SEEK_SET);
    fputc(ch ^ 0x40, fp);
    fclose(fp);
    cr_assert_eq(open_file(&c, &f, path, 1, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "corrupt"), "%s", sm_last_error());
    fp = fopen(path, "r+b");
    fseek(fp, 100, SEEK_SET);
    fputc(ch, fp);
    fclose(fp);
    OK(open_file(&c, &f, path, 1, &s));   /* restored: accepted again */
    sm_infer_free(s);
    /* truncated: half the cache, then less than the header */
    cr_assert_eq(truncate(path, 4096 + 1000), 0);
    cr_assert_eq(open_file(&c, &f, path, 1, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "truncated"), "%s", sm_last_error());
    cr_assert_eq(truncate(path, 50), 0);
    cr_assert_eq(open_file(&c, &f, path, 1, &s), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "truncated"), "%s", sm_last_error());
    unlink(path);
    /* not there */
    cr_assert_eq(open_file(&c, &f, path, 1, &s), SM_ERR_IO);
    full_free(&f);
    full_free(&other);
}

/* A cache bigger than the whole filesystem: refused at creation (the blocks are reserved up front),
 * naming the path, and no file is left behind. A ring lets the cache be that big with a small model:
 * its rows follow the window, not the learned positions. */
Test(infer, file_larger_than_the_disk_is_refused_before_generating)
{
    char path[512];
    tmp_path(path, sizeof path, "huge");
    struct statvfs vfs;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    cr_assert_eq(statvfs(dir, &vfs), 0);
    sm_gpt_config c = model(0);
    c.n_embd = 128;
    uint64_t fs = (uint64_t)vfs.f_blocks * vfs.f_frsize, row = 2ull * c.n_layer * c.n_embd * 4;
    uint64_t rows = 2 * fs / row + 1;
    cr_assert_lt(rows, 1u << 30, "the filesystem (%llu bytes) is too big for this test's largest cache",
                 (unsigned long long)fs);
    c.span = (int)rows;
    sm_infer_options o;
    sm_infer_options_default(&o);
    o.ring = 1;
    o.sink = 1;   /* sinks: no per-thread gather scratch of the window's size */
    o.kv_file = path;
    sm_infer *s;
    cr_assert_eq(sm_infer_create(&c, NULL, &o, &s), SM_ERR_IO, "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "no space left"), "%s", sm_last_error());
    cr_assert_neq(access(path, F_OK), 0, "the half-made file is removed");
}
