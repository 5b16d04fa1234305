/* Tests of the safetensors reader/writer and the atomic file layer under it: round trips, the
 * reference implementation's exact bytes, every kind of corruption, and failed writes leaving the
 * old file intact. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontends/safetensors.h"
#include "base/atomic_file.h"
#include "base/fp16.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static char dir[256];

static void setup_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_test_st_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void teardown_dir(void) { rm_rf(dir); }

static const char *in_dir(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    if (d) closedir(d);
    return n;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    void *p;
    cr_assert_eq(sm_file_read_all(path, (size_t)1 << 30, &p, n), SM_OK, "%s", sm_last_error());
    return p;
}

static void spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A raw file: u64 header length, the header text, then data_len bytes (0xAB). */
static void craft(const char *path, const char *header, size_t data_len)
{
    size_t hl = strlen(header), n = 8 + hl + data_len;
    unsigned char *b = malloc(n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, 0xAB, data_len);
    spit(path, b, n);
    free(b);
}

static void expect_open_fails(const char *path, sm_status want, const char *substr)
{
    sm_st_file *f = (sm_st_file *)1;
    sm_status s = sm_st_open(path, &f);
    cr_assert_eq(s, want, "opening %s: got %s (%s)", path, sm_status_name(s), sm_last_error());
    cr_assert_null(f);
    cr_assert(strstr(sm_last_error(), substr), "message '%s' lacks '%s'", sm_last_error(), substr);
    cr_assert(strstr(sm_last_error(), path), "message '%s' does not name the file", sm_last_error());
}

/* A small model-like checkpoint. */
static float w_qkv[4 * 12], w_b[12];
static uint16_t w_h[5];
static int32_t w_i[8];
static uint16_t w_bf;

static int make_entries(sm_st_entry *e)
{
    for (int i = 0; i < 48; i++) w_qkv[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 12; i++) w_b[i] = (float)(i * i);
    for (int i = 0; i < 5; i++) w_h[i] = sm_f32_to_f16((float)i + 0.5f);
    for (int i = 0; i < 8; i++) w_i[i] = i * 1000 - 7;
    w_bf = sm_f32_to_bf16(-1.5f);
    e[0] = (sm_st_entry){"h.3.attn.c_attn.weight", SM_ST_F32, 2, {4, 12}, w_qkv};
    e[1] = (sm_st_entry){"h.3.attn.c_attn.bias", SM_ST_F32, 1, {12}, w_b};
    e[2] = (sm_st_entry){"half", SM_ST_F16, 1, {5}, w_h};
    e[3] = (sm_st_entry){"ids", SM_ST_I32, 3, {2, 2, 2}, w_i};
    e[4] = (sm_st_entry){"scalar", SM_ST_BF16, 0, {0}, &w_bf};
    e[5] = (sm_st_entry){"empty", SM_ST_F32, 2, {0, 7}, NULL};
    return 6;
}

static const char *ckpt(void)
{
    sm_st_entry e[8];
    int n = make_entries(e);
    sm_st_kv meta[] = {{"step", "1200"}, {"note", "quotes \" and \\ and \xc3\xa9"}};
    const char *path = in_dir("checkpoint.safetensors");
    cr_assert_eq(sm_st_write(path, e, n, meta, 2, 0), SM_OK, "%s", sm_last_error());
    return path;
}

TestSuite(safetensors, .init = setup_dir, .fini = teardown_dir);
TestSuite(atomic, .init = setup_dir, .fini = teardown_dir);

/* ---- round trips ------------------------------------------------------------------------------ */

Test(safetensors, round_trip_in_given_order)
{
    sm_st_entry e[8];
    int n = make_entries(e);
    const char *path = ckpt();
    sm_st_file *f;
    cr_assert_eq(sm_st_open(path, &f), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_st_count(f), n);
    for (int i = 0; i < n; i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        cr_assert_str_eq(t->name, e[i].name, "data order = given order");
        cr_assert_eq(sm_st_find(f, e[i].name), t);
        cr_assert_eq(t->dtype, e[i].dtype);
        cr_assert_eq(t->ndim, e[i].ndim);
        for (int d = 0; d < t->ndim; d++) cr_assert_eq(t->shape[d], e[i].shape[d]);
        cr_assert(t->has_checksum);
        cr_assert_eq(t->nbytes, (size_t)t->numel * sm_st_dtype_size(t->dtype));
        if (t->nbytes) cr_assert_eq(memcmp(t->data, e[i].data, t->nbytes), 0, "bytes of %s", t->name);
    }
    cr_assert_eq(sm_st_find(f, "scalar")->numel, 1);
    cr_assert_eq(sm_st_find(f, "empty")->numel, 0);
    cr_assert_str_eq(sm_st_metadata_get(f, "sm.format_version"), "1");
    cr_assert_str_eq(sm_st_metadata_get(f, "step"), "1200");
    cr_assert_str_eq(sm_st_metadata_get(f, "note"), "quotes \" and \\ and \xc3\xa9");
    cr_assert_eq(sm_st_metadata_count(f), 3 + n);
    cr_assert_null(sm_st_metadata_get(f, "absent"));
    sm_st_close(f);

    size_t size;
    unsigned char *raw = slurp(path, &size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    cr_assert_eq(hl % 8, 0, "header padded to 8 bytes");
    cr_assert_eq(raw[8], '{');
    cr_assert_eq(raw[8 + hl - 1] == ' ' || raw[8 + hl - 1] == '}', 1);
    free(raw);
    cr_assert_eq(count_temp_files(), 0);
}

Test(safetensors, sorted_order_keeps_alignment)
{
    sm_st_entry e[8];
    int n = make_entries(e);
    const char *path = in_dir("sorted.safetensors");
    cr_assert_eq(sm_st_write(path, e, n, NULL, 0, SM_ST_WRITE_SORTED), SM_OK, "%s", sm_last_error());
    sm_st_file *f;
    cr_assert_eq(sm_st_open(path, &f), SM_OK, "%s", sm_last_error());
    /* reference order: dtype descending in its enum (F32 > I32 > BF16 > F16), then name */
    const char *want[] = {"empty", "h.3.attn.c_attn.bias", "h.3.attn.c_attn.weight", "ids", "scalar", "half"};
    for (int i = 0; i < n; i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        cr_assert_str_eq(t->name, want[i]);
        cr_assert_eq((uintptr_t)t->data % sm_st_dtype_size(t->dtype), 0, "%s aligned", t->name);
    }
    sm_st_close(f);
}

/* The reference implementation's own serialization tests: PLAIN output must match byte for byte. */
Test(safetensors, plain_output_matches_reference_bytes)
{
    float v[6] = {0, 1, 2, 3, 4, 5};
    sm_st_entry a = {"attn.0", SM_ST_F32, 3, {1, 2, 3}, v};
    const char *p = in_dir("ref.safetensors");
    cr_assert_eq(sm_st_write(p, &a, 1, NULL, 0, SM_ST_WRITE_PLAIN), SM_OK);
    size_t n;
    unsigned char *b = slurp(p, &n);
    const char *h1 = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    cr_assert_eq(n, 8 + 64 + 24);
    cr_assert_eq(b[0], 64);
    cr_assert_eq(memcmp(b + 8, h1, 64), 0);
    cr_assert_eq(memcmp(b + 72, v, 24), 0);
    free(b);

    sm_st_entry a2 = {"attn0", SM_ST_F32, 4, {1, 1, 2, 3}, v};
    cr_assert_eq(sm_st_write(p, &a2, 1, NULL, 0, SM_ST_WRITE_PLAIN), SM_OK);
    b = slurp(p, &n);
    const char *h2 = "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
    cr_assert_eq(n, 8 + 72 + 24);
    cr_assert_eq(b[0], 72);
    cr_assert_eq(memcmp(b + 8, h2, 72), 0);
    free(b);

    cr_assert_eq(sm_st_write(p, NULL, 0, NULL, 0, SM_ST_WRITE_PLAIN), SM_OK);
    b = slurp(p, &n);
    const unsigned char empty[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    cr_assert_eq(n, sizeof empty);
    cr_assert_eq(memcmp(b, empty, n), 0);
    free(b);

    sm_st_kv fw = {"framework", "pt"};
    cr_assert_eq(sm_st_write(p, NULL, 0, &fw, 1, SM_ST_WRITE_PLAIN), SM_OK);
    b = slurp(p, &n);
    const char *h3 = "{\"__metadata__\":{\"framework\":\"pt\"}}     ";
    cr_assert_eq(n, 8 + 40);
    cr_assert_eq(b[0], 40);
    cr_assert_eq(memcmp(b + 8, h3, 40), 0);
    free(b);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(p, &f), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_st_count(f), 0);
    sm_st_close(f);
}

Test(safetensors, read_f32_converts)
{
    uint16_t h[3] = {sm_f32_to_f16(1.5f), sm_f32_to_f16(-65504.0f), 0x0001};
    uint16_t bf[2] = {sm_f32_to_bf16(3.0f), sm_f32_to_bf16(-0.125f)};
    double d[2] = {0.1, -2.5};
    int32_t i[1] = {3};
    sm_st_entry e[] = {{"h", SM_ST_F16, 1, {3}, h}, {"bf", SM_ST_BF16, 1, {2}, bf}, {"d", SM_ST_F64, 1, {2}, d},
                       {"i", SM_ST_I32, 1, {1}, i}, {"odd", SM_ST_U8, 1, {1}, "x"}, {"h2", SM_ST_F16, 1, {3}, h}};
    const char *p = in_dir("conv.safetensors");
    /* "odd" (1 byte) before "h2" leaves h2 at an odd offset: the reader must cope with unaligned data */
    cr_assert_eq(sm_st_write(p, e, 6, NULL, 0, 0), SM_OK, "%s", sm_last_error());
    sm_st_file *f;
    cr_assert_eq(sm_st_open(p, &f), SM_OK, "%s", sm_last_error());
    float out[3];
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "h"), out, 3), SM_OK);
    cr_assert(out[0] == 1.5f && out[1] == -65504.0f && out[2] == 0x1p-24f);
    cr_assert_eq((uintptr_t)sm_st_find(f, "h2")->data % 2, 1);
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "h2"), out, 3), SM_OK);
    cr_assert(out[0] == 1.5f && out[1] == -65504.0f && out[2] == 0x1p-24f);
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "bf"), out, 2), SM_OK);
    cr_assert(out[0] == 3.0f && out[1] == -0.125f);
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "d"), out, 2), SM_OK);
    cr_assert(out[0] == 0.1f && out[1] == -2.5f);
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "d"), out, 3), SM_ERR_SHAPE);
    cr_assert_eq(sm_st_read_f32(f, sm_st_find(f, "i"), out, 1), SM_ERR_UNSUPPORTED);
    cr_assert(strstr(sm_last_error(), "tensor 'i' has dtype I32"), "%s", sm_last_error());
    const sm_st_tensor *t;
    cr_assert_eq(sm_st_get(f, "nope", &t), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "conv.safetensors: no tensor named 'nope' (the file has 6 tensors, e.g. 'h'"),
              "%s", sm_last_error());
    sm_st_close(f);
}

/* Weights are finite: a NaN or infinity, stored as such or made by converting a double too large
 * for f32, is refused naming the tensor and the element. */
Test(safetensors, read_f32_refuses_values_that_are_not_finite)
{
    float f[4] = {1, 2, NAN, 4};
    uint16_t h[3] = {sm_f32_to_f16(1.0f), sm_f32_to_f16(INFINITY), 0};
    uint16_t bf[2] = {sm_f32_to_bf16(-INFINITY), 0};
    double d[2] = {0.5, 1e300};
    sm_st_entry e[] = {{"w.nan", SM_ST_F32, 2, {2, 2}, f}, {"w.inf", SM_ST_F16, 1, {3}, h},
                       {"w.ninf", SM_ST_BF16, 1, {2}, bf}, {"w.big", SM_ST_F64, 1, {2}, d}};
    const char *want[] = {"nonfinite.safetensors: tensor 'w.nan' holds NaN at element 2 (of 4)",
                          "tensor 'w.inf' holds +Inf at element 1 (of 3)", "tensor 'w.ninf' holds -Inf at element 0",
                          "tensor 'w.big' holds +Inf at element 1"};
    const char *p = in_dir("nonfinite.safetensors");
    cr_assert_eq(sm_st_write(p, e, 4, NULL, 0, 0), SM_OK, "%s", sm_last_error());
    sm_st_file *file;
    cr_assert_eq(sm_st_open(p, &file), SM_OK, "%s", sm_last_error());
    for (int i = 0; i < 4; i++) {
        float out[4];
        const sm_st_tensor *t = sm_st_find(file, e[i].name);
        cr_assert_eq(sm_st_read_f32(file, t, out, (size_t)t->numel), SM_ERR_FORMAT, "%s", e[i].name);
        cr_assert(strstr(sm_last_error(), want[i]), "'%s' lacks '%s'", sm_last_error(), want[i]);
    }
    sm_st_close(file);
}

Test(safetensors, writer_rejects_bad_input)
{
    float v[2] = {0};
    const char *p = in_dir("bad.safetensors");
    struct {
        sm_st_entry e[2];
        int n;
        const char *want;
    } cases[] = {
        {{{"a", SM_ST_F32, 1, {2}, v}, {"a", SM_ST_F32, 1, {2}, v}}, 2, "two tensors are named 'a'"},
        {{{"__metadata__", SM_ST_F32, 1, {2}, v}}, 1, "cannot be named '__metadata__'"},
        {{{"bad\xff", SM_ST_F32, 1, {2}, v}}, 1, "not valid UTF-8"},
        {{{"neg", SM_ST_F32, 1, {-2}, v}}, 1, "negative dimension"},
        {{{"nodata", SM_ST_F32, 1, {2}, NULL}}, 1, "null data"},
        {{{"dims", SM_ST_F32, 9, {2}, v}}, 1, "9 dimensions"},
        {{{NULL, SM_ST_F32, 1, {2}, v}}, 1, "has no name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(sm_st_write(p, cases[i].e, cases[i].n, NULL, 0, 0), SM_ERR_INVALID_ARG, "case %zu", i);
        cr_assert(strstr(sm_last_error(), cases[i].want), "'%s' lacks '%s'", sm_last_error(), cases[i].want);
    }
    sm_st_entry ok = {"a", SM_ST_F32, 1, {2}, v};
    sm_st_kv reserved = {"sm.xxh3.a", "0"}, dup[2] = {{"k", "1"}, {"k", "2"}};
    cr_assert_eq(sm_st_write(p, &ok, 1, &reserved, 1, 0), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "reserved"));
    cr_assert_eq(sm_st_write(p, &ok, 1, dup, 2, 0), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "appears twice"));
    cr_assert_eq(access(p, F_OK), -1, "nothing written");
    cr_assert_eq(count_temp_files(), 0);
}

/* ---- corruption ------------------------------------------------------------------------------- */

Test(safetensors, truncated_at_every_length)
{
    const char *path = ckpt();
    size_t n;
    unsigned char *full = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | full[i];
    for (size_t len = 0; len < n; len++) {
        /* an exact-size copy, so the sanitizer build catches any read past the end */
        unsigned char *copy = malloc(len ? len : 1);
        memcpy(copy, full, len);
        sm_st_file *f = (sm_st_file *)1;
        sm_status s = sm_st_open_memory(copy, len, "cut.safetensors", &f);
        cr_assert_eq(s, SM_ERR_FORMAT, "truncated to %zu of %zu bytes: %s", len, n, sm_status_name(s));
        cr_assert_null(f);
        const char *want = len < 8 ? "too small" : len < 8 + hl ? "header length" : "truncated";
        cr_assert(strstr(sm_last_error(), want), "len %zu: '%s' lacks '%s'", len, sm_last_error(), want);
        cr_assert(strncmp(sm_last_error(), "cut.safetensors: ", 17) == 0, "%s", sm_last_error());
        free(copy);
    }
    /* and through a real file */
    const size_t cuts[] = {0, 5, 8 + (size_t)hl / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(path, full, cuts[i]);
        expect_open_fails(path, SM_ERR_FORMAT, cuts[i] < 8 ? "too small" : cuts[i] < 8 + hl ? "header length" : "truncated");
    }
    free(full);
}

Test(safetensors, flipped_data_byte_names_the_tensor)
{
    const char *path = ckpt();
    size_t n;
    unsigned char *full = slurp(path, &n);
    sm_st_file *f;
    cr_assert_eq(sm_st_open_memory(full, n, "x", &f), SM_OK);
    size_t data0 = (size_t)((const unsigned char *)sm_st_at(f, 0)->data - full);
    /* every data byte: flipping it must be caught, and the message names the tensor holding it */
    for (size_t at = data0; at < n; at++) {
        const char *owner = NULL;
        for (int i = 0; i < sm_st_count(f); i++) {
            const sm_st_tensor *t = sm_st_at(f, i);
            if (at >= data0 + t->begin && at < data0 + t->end) owner = t->name;
        }
        unsigned char *copy = malloc(n);
        memcpy(copy, full, n);
        copy[at] ^= 0x10;
        sm_st_file *g;
        cr_assert_eq(sm_st_open_memory(copy, n, "checkpoint.safetensors", &g), SM_ERR_FORMAT, "flip at %zu", at);
        char want[256];
        snprintf(want, sizeof want, "checkpoint.safetensors: tensor '%s': data checksum mismatch (file corrupt or "
                 "truncated); re-save or restore from backup", owner);
        cr_assert_str_eq(sm_last_error(), want);
        free(copy);
    }
    sm_st_close(f);
    /* through the file path, the message starts with the path */
    const size_t at = data0 + 5;
    full[at] ^= 1;
    spit(path, full, n);
    char want[512];
    snprintf(want, sizeof want, "%s: tensor 'h.3.attn.c_attn.weight': data checksum mismatch (file corrupt or "
             "truncated); re-save or restore from backup", path);
    sm_st_file *g;
    cr_assert_eq(sm_st_open(path, &g), SM_ERR_FORMAT);
    cr_assert_str_eq(sm_last_error(), want);
    free(full);
}

Test(safetensors, header_mutations_never_crash)
{
    const char *path = ckpt();
    size_t n;
    unsigned char *full = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | full[i];
    int rejected = 0;
    for (size_t at = 0; at < 8 + hl; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            unsigned char *copy = malloc(n);
            memcpy(copy, full, n);
            copy[at] ^= (unsigned char)(1u << bit);
            sm_st_file *f;
            sm_status s = sm_st_open_memory(copy, n, "m", &f);
            cr_assert(s == SM_OK || s == SM_ERR_FORMAT || s == SM_ERR_UNSUPPORTED, "%s", sm_status_name(s));
            if (s == SM_OK) sm_st_close(f);
            else rejected++;
            free(copy);
        }
    }
    /* only flips inside free-form metadata text (the note, the step) can go unnoticed */
    cr_assert_gt(rejected, (int)(8 + hl) * 3 * 8 / 10, "%d of %d rejected", rejected, (int)(8 + hl) * 3);
    free(full);
}

Test(safetensors, malformed_headers)
{
    const char *T = "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
    char buf[1024];
    struct {
        const char *header;
        size_t data;
        sm_status status;
        const char *want;
    } cases[] = {
        {"{\"a\":", 0, SM_ERR_FORMAT, "header: line 1, column 6"},
        {"[1,2]   ", 0, SM_ERR_FORMAT, "does not start with '{'"},
        {" {}     ", 0, SM_ERR_FORMAT, "does not start with '{'"},
        {"{} x    ", 0, SM_ERR_FORMAT, "after the JSON value"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SM_ERR_FORMAT,
         "tensor 'b': bytes [4, 12) overlap tensor 'a' [0, 8)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, SM_ERR_FORMAT,
         "tensor 'b': begins at byte 12, leaving a gap of 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SM_ERR_FORMAT, "gap of 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, SM_ERR_FORMAT, "4 bytes of trailing"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, SM_ERR_FORMAT,
         "tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] span 20"},
        {"{\"a\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "unknown dtype 'F128'"},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "dtype is a JSON number"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "missing field 'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"foo\":1}}", 8, SM_ERR_FORMAT,
         "unknown field 'foo'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "shape is not an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT,
         "more than the 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         SM_ERR_FORMAT, "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, SM_ERR_FORMAT, "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 8, SM_ERR_FORMAT, "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, SM_ERR_FORMAT, "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, SM_ERR_FORMAT, "end before they begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[200],\"data_offsets\":[0,800]}}", 8, SM_ERR_FORMAT, "the file is truncated"},
        {"{\"a\":[1]}", 0, SM_ERR_FORMAT, "tensor 'a': expected an object"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SM_ERR_FORMAT, "NUL"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, SM_ERR_FORMAT, "duplicate key \"a\""},
        {"{\"__metadata__\":{\"k\":1}}", 0, SM_ERR_FORMAT, "__metadata__ entry 'k' is a number, not a string"},
        {"{\"__metadata__\":[\"k\"]}", 0, SM_ERR_FORMAT, "__metadata__ must be an object of strings, found array"},
        {"{\"__metadata__\":{\"sm.xxh3.zz\":\"0000000000000000\"}}", 0, SM_ERR_FORMAT,
         "checksum for tensor 'zz', which the file does not contain"},
        {"{\"__metadata__\":{\"sm.xxh3.a\":\"00000000000000zz\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
         "\"data_offsets\":[0,1]}}", 1, SM_ERR_FORMAT, "tensor 'a': checksum '00000000000000zz' is not 16 lowercase hex"},
        {"{\"__metadata__\":{\"sm.xxh3.a\":\"0\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         SM_ERR_FORMAT, "not 16 lowercase hex"},
        {"{\"__metadata__\":{\"sm.format_version\":\"1\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
         1, SM_ERR_FORMAT, "tensor 'a': no checksum"},
        {"{\"__metadata__\":{\"sm.format_version\":\"2\"}}", 0, SM_ERR_UNSUPPORTED, "format version 2, newer"},
        {"{\"__metadata__\":{\"sm.format_version\":\"one\"}}", 0, SM_ERR_FORMAT, "bad sm.format_version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = in_dir("m.safetensors");
        craft(p, cases[i].header, cases[i].data);
        expect_open_fails(p, cases[i].status, cases[i].want);
    }
    /* a valid one built the same way opens: the cases fail for their stated reason only */
    snprintf(buf, sizeof buf, "{\"a\":%s[0,8]},\"b\":%s[8,16]}}", T, T);
    craft(in_dir("ok.safetensors"), buf, 16);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(in_dir("ok.safetensors"), &f), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_st_find(f, "a")->has_checksum, false);
    sm_st_close(f);
}

Test(safetensors, header_length_checks)
{
    const char *p = in_dir("len.safetensors");
    unsigned char b[16] = {0};
    uint64_t big = 200000000;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(big >> (8 * i));
    spit(p, b, 16);
    expect_open_fails(p, SM_ERR_FORMAT, "header length 200000000 exceeds the limit");
    memset(b, 0xFF, 8);
    spit(p, b, 16);
    expect_open_fails(p, SM_ERR_FORMAT, "exceeds the limit");
    memset(b, 0, 16);
    b[0] = 100;
    spit(p, b, 16);
    expect_open_fails(p, SM_ERR_FORMAT, "header length 100, but only 8 bytes follow");
    b[0] = 0;
    spit(p, b, 16);
    expect_open_fails(p, SM_ERR_FORMAT, "does not start with '{'");
    spit(p, b, 0);
    expect_open_fails(p, SM_ERR_FORMAT, "the file is 0 bytes, too small");
    expect_open_fails(in_dir("missing.safetensors"), SM_ERR_IO, "No such file");
}

/* ---- atomic writes ---------------------------------------------------------------------------- */

static void write_old(const char *path) { spit(path, "old contents", 12); }

static void expect_old(const char *path)
{
    size_t n;
    unsigned char *b = slurp(path, &n);
    cr_assert_eq(n, 12);
    cr_assert_eq(memcmp(b, "old contents", 12), 0, "the old file must be intact");
    free(b);
}

Test(atomic, write_replaces_and_keeps_mode)
{
    const char *p = in_dir("f.bin");
    write_old(p);
    chmod(p, 0640);
    const void *chunks[] = {"abc", "", "defg"};
    size_t sizes[] = {3, 0, 4};
    cr_assert_eq(sm_file_write_atomic(p, chunks, sizes, 3), SM_OK, "%s", sm_last_error());
    size_t n;
    unsigned char *b = slurp(p, &n);
    cr_assert_eq(n, 7);
    cr_assert_eq(memcmp(b, "abcdefg", 7), 0);
    free(b);
    struct stat st;
    stat(p, &st);
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert_eq(count_temp_files(), 0);
}

Test(atomic, missing_directory)
{
    const char *p = in_dir("no/such/dir/f.safetensors");
    const void *c[] = {"x"};
    size_t s[] = {1};
    cr_assert_eq(sm_file_write_atomic(p, c, s, 1), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), p), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "No such file or directory"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "does not exist"), "%s", sm_last_error());
}

Test(atomic, unwritable_directory)
{
    if (geteuid() == 0) {
        teardown_dir(); /* a skipped test does not reach .fini */
        cr_skip_test("root ignores directory permissions");
    }
    const char *p = in_dir("ro/f.bin");
    mkdir(in_dir("ro"), 0700);
    write_old(p);
    chmod(in_dir("ro"), 0500);
    const void *c[] = {"x"};
    size_t s[] = {1};
    cr_assert_eq(sm_file_write_atomic(p, c, s, 1), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "Permission denied"), "%s", sm_last_error());
    chmod(in_dir("ro"), 0700);
    expect_old(p);
}

Test(atomic, target_is_a_directory)
{
    const char *p = in_dir("target");
    mkdir(p, 0700);
    write_old(in_dir("target/inside"));
    sm_st_entry e[8];
    int n = make_entries(e);
    cr_assert_eq(sm_st_write(p, e, n, NULL, 0, 0), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "is a directory, not a regular file"), "%s", sm_last_error());
    expect_old(in_dir("target/inside"));
    cr_assert_eq(count_temp_files(), 0);
}

/* A write that fails midway (here: the file size limit, which behaves like a full disk) leaves the old
 * file and no temp file behind. */
Test(atomic, failed_write_leaves_old_file)
{
    const char *p = in_dir("checkpoint.safetensors");
    write_old(p);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static float big[100000];
    sm_st_entry e = {"big", SM_ST_F32, 1, {100000}, big};
    sm_status s = sm_st_write(p, &e, 1, NULL, 0, 0);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(s, SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "File too large") && strstr(sm_last_error(), "EFBIG"), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "checkpoint.safetensors"), "%s", sm_last_error());
    expect_old(p);
    cr_assert_eq(count_temp_files(), 0);
}

Test(atomic, streaming_abort_and_state)
{
    const char *p = in_dir("s.bin");
    write_old(p);
    sm_file_writer *w;
    cr_assert_eq(sm_file_writer_open(p, &w), SM_OK);
    cr_assert_eq(sm_file_writer_write(w, "new", 3), SM_OK);
    cr_assert_eq(sm_file_writer_offset(w), 3);
    cr_assert_eq(count_temp_files(), 1);
    sm_file_writer_abort(w);
    expect_old(p);
    cr_assert_eq(count_temp_files(), 0);

    /* after a failed write, further writes and commit fail and the old file stays */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 1000;
    cr_assert_eq(sm_file_writer_open(p, &w), SM_OK);
    setrlimit(RLIMIT_FSIZE, &lim);
    static char big[200000];
    sm_status s = sm_file_writer_write(w, big, sizeof big);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(s, SM_ERR_IO);
    cr_assert_eq(sm_file_writer_write(w, "x", 1), SM_ERR_STATE);
    cr_assert_eq(sm_file_writer_commit(w), SM_ERR_STATE);
    cr_assert(strstr(sm_last_error(), "was left unchanged"), "%s", sm_last_error());
    expect_old(p);
    cr_assert_eq(count_temp_files(), 0);

    /* many small writes go through the buffer and arrive in order */
    cr_assert_eq(sm_file_writer_open(p, &w), SM_OK);
    for (int i = 0; i < 100000; i++) {
        unsigned char c = (unsigned char)(i * 7);
        cr_assert_eq(sm_file_writer_write(w, &c, 1), SM_OK);
    }
    cr_assert_eq(sm_file_writer_write(w, big, sizeof big), SM_OK);
    cr_assert_eq(sm_file_writer_commit(w), SM_OK, "%s", sm_last_error());
    size_t n;
    unsigned char *b = slurp(p, &n);
    cr_assert_eq(n, 100000 + sizeof big);
    for (int i = 0; i < 100000; i++) cr_assert_eq(b[i], (unsigned char)(i * 7));
    free(b);
}

Test(atomic, read_all_and_map)
{
    const char *p = in_dir("r.txt");
    spit(p, "hello", 5);
    void *d;
    size_t n;
    cr_assert_eq(sm_file_read_all(p, 5, &d, &n), SM_OK);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(d, "hello", "NUL-terminated");
    free(d);
    cr_assert_eq(sm_file_read_all(p, 4, &d, &n), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "is 5 bytes, more than the 4 bytes allowed"), "%s", sm_last_error());
    cr_assert_null(d);
    cr_assert_eq(sm_file_read_all(dir, 100, &d, &n), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "is a directory, not a regular file"), "%s", sm_last_error());
    cr_assert_eq(sm_file_read_all(in_dir("nope"), 100, &d, &n), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "No such file"), "%s", sm_last_error());
    sm_file_map m;
    cr_assert_eq(sm_file_map_open(p, &m), SM_OK);
    cr_assert_eq(m.size, 5);
    cr_assert_eq(memcmp(m.data, "hello", 5), 0);
    sm_file_map_close(&m);
    spit(p, "", 0);
    cr_assert_eq(sm_file_map_open(p, &m), SM_OK);
    cr_assert_null(m.data);
    cr_assert_eq(m.size, 0);
    sm_file_map_close(&m);
}

/* ---- what may be written over, and read ------------------------------------------------------- */

/* A character device to write over: one made here (mknod, root), else /dev/null itself, which is
 * safe because the refusal comes before anything is created or opened. */
static const char *char_device(void)
{
    const char *p = in_dir("null");
    return mknod(p, S_IFCHR | 0600, makedev(1, 3)) == 0 ? p : "/dev/null";
}

static void expect_refused_write(const char *p, const char *kind)
{
    const void *c[] = {"x"};
    size_t s[] = {1};
    cr_assert_eq(sm_file_write_atomic(p, c, s, 1), SM_ERR_IO, "%s", p);
    cr_assert(strstr(sm_last_error(), kind) && strstr(sm_last_error(), p), "%s", sm_last_error());
    cr_assert(strstr(sm_last_error(), "remove it or choose another path"), "%s", sm_last_error());
    sm_file_writer *w;
    cr_assert_eq(sm_file_writer_open(p, &w), SM_ERR_IO, "the streaming writer refuses %s too", p);
    cr_assert_eq(sm_file_check_writable(p), SM_ERR_IO);
    cr_assert_eq(count_temp_files(), 0);
}

Test(atomic, only_a_regular_file_or_nothing_is_written_over)
{
    /* a symbolic link is not followed, nor replaced: the file it points to stays as it was */
    write_old(in_dir("real"));
    cr_assert_eq(symlink(in_dir("real"), in_dir("link")), 0);
    expect_refused_write(in_dir("link"), "is a symbolic link");
    expect_old(in_dir("real"));
    struct stat st;
    cr_assert(lstat(in_dir("link"), &st) == 0 && S_ISLNK(st.st_mode));
    cr_assert_eq(symlink(in_dir("nowhere"), in_dir("dangling")), 0);
    expect_refused_write(in_dir("dangling"), "is a symbolic link");

    cr_assert_eq(mkfifo(in_dir("fifo"), 0600), 0);
    expect_refused_write(in_dir("fifo"), "is a named pipe (FIFO)");
    cr_assert(lstat(in_dir("fifo"), &st) == 0 && S_ISFIFO(st.st_mode), "the pipe is still a pipe");

    const char *dev = char_device();
    expect_refused_write(dev, "is a character device");
    cr_assert(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode), "the device is still a device");

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", in_dir("sock"));
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    expect_refused_write(in_dir("sock"), "is a socket");
    close(fd);

    /* absent and regular are fine, and checking leaves nothing behind */
    cr_assert_eq(sm_file_check_writable(in_dir("new")), SM_OK, "%s", sm_last_error());
    cr_assert_eq(access(in_dir("new"), F_OK), -1);
    cr_assert_eq(sm_file_check_writable(in_dir("real")), SM_OK, "%s", sm_last_error());
    expect_old(in_dir("real"));
    cr_assert_eq(count_temp_files(), 0);
    cr_assert_eq(sm_file_check_writable(in_dir("no/such/dir/f")), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "does not exist"), "%s", sm_last_error());
}

Test(atomic, same_file)
{
    write_old(in_dir("a"));
    cr_assert_eq(link(in_dir("a"), in_dir("hard")), 0);
    cr_assert_eq(symlink(in_dir("a"), in_dir("soft")), 0);
    write_old(in_dir("b"));
    cr_assert(sm_file_same(in_dir("a"), in_dir("hard")));
    cr_assert(sm_file_same(in_dir("soft"), in_dir("a")));
    cr_assert(!sm_file_same(in_dir("a"), in_dir("b")), "same contents, another file");
    cr_assert(!sm_file_same(in_dir("a"), in_dir("absent")));
}

/* Temp files left by a writer that was killed are removed by the next write of the same target
 * when their process is gone; a live process's (here our own) are not, nor another target's. */
Test(atomic, stale_temp_files_of_dead_writers_are_removed)
{
    pid_t child = fork();
    if (child == 0) _exit(0);
    cr_assert_gt(child, 0);
    waitpid(child, NULL, 0);   /* reaped: no process has this pid now */
    char dead[512], live[512], other[512], foreign[512];
    snprintf(dead, sizeof dead, "%s.%ld.7.tmp", in_dir("ck.st"), (long)child);
    snprintf(live, sizeof live, "%s.%ld.123.tmp", in_dir("ck.st"), (long)getpid());
    snprintf(other, sizeof other, "%s.%ld.7.tmp", in_dir("other.st"), (long)child);
    snprintf(foreign, sizeof foreign, "%s.%ld.x.tmp", in_dir("ck.st"), (long)child);   /* not our naming */
    spit(dead, "partial", 7);
    spit(live, "partial", 7);
    spit(other, "partial", 7);
    spit(foreign, "partial", 7);
    const void *c[] = {"new"};
    size_t s[] = {3};
    cr_assert_eq(sm_file_write_atomic(in_dir("ck.st"), c, s, 1), SM_OK, "%s", sm_last_error());
    cr_assert_eq(access(dead, F_OK), -1, "%s (its process is gone) is removed", dead);
    cr_assert_eq(access(live, F_OK), 0, "%s (its process is alive) stays", live);
    cr_assert_eq(access(other, F_OK), 0, "another target's temp file stays");
    cr_assert_eq(access(foreign, F_OK), 0, "a file not of our naming stays");
}

/* A named pipe as input would block open() or read() forever; it is refused at once. */
Test(atomic, a_named_pipe_or_device_is_not_read, .timeout = 10)
{
    const char *fifo = in_dir("fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    void *d;
    size_t n;
    cr_assert_eq(sm_file_read_all(fifo, 100, &d, &n), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "is a named pipe (FIFO), not a regular file") && strstr(sm_last_error(), fifo),
              "%s", sm_last_error());
    sm_file_map m;
    cr_assert_eq(sm_file_map_open(fifo, &m), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "named pipe"), "%s", sm_last_error());
    cr_assert_eq(sm_file_check_input(fifo), SM_ERR_IO);
    cr_assert_eq(sm_file_read_all("/dev/zero", 100, &d, &n), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "is a character device"), "%s", sm_last_error());
    spit(in_dir("r"), "ok", 2);
    cr_assert_eq(sm_file_check_input(in_dir("r")), SM_OK, "%s", sm_last_error());
}
