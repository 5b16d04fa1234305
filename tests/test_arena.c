/* test_arena.c — heap and file arenas: alignment, zero size, commitment (RSS follows the arena),
 * file contents that persist across reopen, flags, and errors that name the path. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "memory/arena.h"
#include "memory/sysinfo.h"

#define MIB ((size_t)1 << 20)

/* ---- heap ---------------------------------------------------------------------------------------- */

Test(arena_heap, aligned_zeroed_writable)
{
    static const size_t sizes[] = {1, 63, 64, 65, 4095, 4096, 100000, 3 * MIB + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sm_arena *a = NULL;
        cr_assert_eq(sm_arena_create_heap(sizes[i], &a), SM_OK, "%zu: %s", sizes[i], sm_last_error());
        unsigned char *p = sm_arena_base(a);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % SM_ARENA_ALIGN, 0, "size %zu: base %p", sizes[i], (void *)p);
        cr_assert_eq(sm_arena_size(a), sizes[i]);
        cr_assert_eq(sm_arena_get_kind(a), SM_ARENA_HEAP);
        cr_assert_null(sm_arena_path(a));
        for (size_t j = 0; j < sizes[i]; j++)
            cr_assert_eq(p[j], 0, "size %zu: byte %zu not zero", sizes[i], j);
        for (size_t j = 0; j < sizes[i]; j++) p[j] = (unsigned char)(j * 31 + 7);
        for (size_t j = 0; j < sizes[i]; j++) cr_assert_eq(p[j], (unsigned char)(j * 31 + 7));
        cr_assert_eq(sm_arena_sync(a), SM_OK, "nothing to sync for a heap arena");
        sm_arena_free(a);
    }
}

Test(arena_heap, big_ones_are_huge_page_aligned)
{
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_heap(5 * MIB + 123, &a), SM_OK, "%s", sm_last_error());
    cr_assert_eq((uintptr_t)sm_arena_base(a) % (2 * MIB), 0);
    sm_arena_free(a);
}

Test(arena_heap, zero_size)
{
    sm_arena *a = NULL, *b = NULL;
    cr_assert_eq(sm_arena_create_heap(0, &a), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_arena_create_heap(0, &b), SM_OK);
    cr_assert_not_null(sm_arena_base(a), "a usable (non-NULL) base even when empty");
    cr_assert_eq((uintptr_t)sm_arena_base(a) % SM_ARENA_ALIGN, 0);
    cr_assert_eq(sm_arena_size(a), 0);
    sm_arena_free(a);
    sm_arena_free(b);
    sm_arena_free(NULL);
}

/* The planner compares RSS with the plan: creating an arena must raise RSS by its size without
 * anything being written, and freeing it must give it all back. */
Test(arena_heap, rss_follows_the_arena)
{
    const size_t size = 64 * MIB;
    uint64_t before, during, after;
    cr_assert_eq(sm_sysinfo_rss(NULL, &before, NULL), SM_OK, "%s", sm_last_error());
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_heap(size, &a), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_sysinfo_rss(NULL, &during, NULL), SM_OK);
    sm_arena_free(a);
    cr_assert_eq(sm_sysinfo_rss(NULL, &after, NULL), SM_OK);
    cr_assert_geq(during, before + size - size / 32, "RSS %llu -> %llu: the arena was not committed",
                  (unsigned long long)before, (unsigned long long)during);
    cr_assert_leq(after + size - size / 32, during, "RSS %llu -> %llu: free did not return the arena",
                  (unsigned long long)during, (unsigned long long)after);
}

Test(arena_heap, peak_rss_can_be_reset)
{
    const size_t size = 64 * MIB;
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_heap(size, &a), SM_OK, "%s", sm_last_error());
    sm_arena_free(a);
    uint64_t peak_before, peak_after, cur;
    cr_assert_eq(sm_sysinfo_rss(NULL, &cur, &peak_before), SM_OK);
    cr_assert_geq(peak_before, cur + size - size / 32, "the freed arena counts in the peak");
    cr_assert_eq(sm_sysinfo_reset_peak_rss(), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_sysinfo_rss(NULL, NULL, &peak_after), SM_OK);
    cr_assert_lt(peak_after + size / 2, peak_before, "peak %llu -> %llu after reset",
                 (unsigned long long)peak_before, (unsigned long long)peak_after);
}

/* ---- file ---------------------------------------------------------------------------------------- */

static char dir[256];

static void make_dir(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sm_arena_XXXXXX", t && t[0] ? t : "/tmp");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static const char *const names[] = {"kv.bin", "sparse.bin", "long.bin", "short.bin", "temp.bin",
                                    "empty.bin", "huge.bin", "ro/x.bin"};

static void remove_dir(void)
{
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/ro", dir);
    chmod(p, 0700);
    rmdir(p);
    rmdir(dir);
}

static const char *in_dir(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static unsigned char pattern(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

TestSuite(arena_file, .init = make_dir, .fini = remove_dir);

Test(arena_file, write_read_back_and_reopen)
{
    const size_t size = MIB + 123;
    const char *path = in_dir("kv.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, size, 0, &a), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_arena_get_kind(a), SM_ARENA_FILE);
    cr_assert_str_eq(sm_arena_path(a), path);
    cr_assert_eq(sm_arena_size(a), size);
    unsigned char *p = sm_arena_base(a);
    cr_assert_eq((uintptr_t)p % SM_ARENA_ALIGN, 0);
    for (size_t i = 0; i < size; i++) cr_assert_eq(p[i], 0, "a new file reads as zeros");
    for (size_t i = 0; i < size; i++) p[i] = pattern(i);
    cr_assert_eq(sm_arena_sync(a), SM_OK, "%s", sm_last_error());
    sm_arena_free(a);

    /* The bytes are in the file, read through ordinary I/O. */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((size_t)st.st_size, size);
    cr_assert_geq((size_t)st.st_blocks * 512, size, "blocks reserved (not sparse)");
    unsigned char *copy = malloc(size);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(copy, 1, size, f), size);
    fclose(f);
    for (size_t i = 0; i < size; i++) cr_assert_eq(copy[i], pattern(i), "byte %zu", i);
    free(copy);

    /* Reopened, the arena shows them again; changes persist through another reopen. */
    cr_assert_eq(sm_arena_create_file(path, size, SM_ARENA_FILE_MUST_EXIST, &a), SM_OK, "%s",
                 sm_last_error());
    p = sm_arena_base(a);
    for (size_t i = 0; i < size; i++) cr_assert_eq(p[i], pattern(i), "byte %zu after reopen", i);
    p[size - 1] ^= 0xff;
    sm_arena_free(a);
    cr_assert_eq(sm_arena_create_file(path, size, 0, &a), SM_OK, "%s", sm_last_error());
    p = sm_arena_base(a);
    cr_assert_eq(p[size - 1], (unsigned char)(pattern(size - 1) ^ 0xff));
    cr_assert_eq(p[0], pattern(0));
    sm_arena_free(a);
}

Test(arena_file, sparse_reserves_nothing)
{
    const size_t size = 64 * MIB;
    const char *path = in_dir("sparse.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, size, SM_ARENA_FILE_SPARSE, &a), SM_OK, "%s", sm_last_error());
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq((size_t)st.st_size, size);
    cr_assert_lt((size_t)st.st_blocks * 512, MIB, "%lld blocks allocated", (long long)st.st_blocks);
    ((unsigned char *)sm_arena_base(a))[size / 2] = 42;
    sm_arena_free(a);
}

Test(arena_file, longer_file_is_not_shortened)
{
    const char *path = in_dir("long.bin");
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 8192; i++) fputc(i & 0xff, f);
    fclose(f);
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 4096, 0, &a), SM_OK, "%s", sm_last_error());
    cr_assert_eq(((unsigned char *)sm_arena_base(a))[4095], 4095 & 0xff);
    sm_arena_free(a);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 8192);
}

Test(arena_file, must_exist)
{
    const char *path = in_dir("short.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 4096, SM_ARENA_FILE_MUST_EXIST, &a), SM_ERR_IO);
    cr_assert_null(a);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "does not exist"), "%s",
              sm_last_error());
    cr_assert_neq(access(path, F_OK), 0, "must not create it");

    FILE *f = fopen(path, "wb");
    fputs("short", f);
    fclose(f);
    cr_assert_eq(sm_arena_create_file(path, 4096, SM_ARENA_FILE_MUST_EXIST, &a), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "4096 bytes"), "%s", sm_last_error());
}

Test(arena_file, temp_leaves_nothing_and_never_clobbers)
{
    const char *path = in_dir("temp.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 3 * 4096, SM_ARENA_FILE_TEMP, &a), SM_OK, "%s", sm_last_error());
    cr_assert_neq(access(path, F_OK), 0, "a temp file is unlinked at once");
    memset(sm_arena_base(a), 7, 3 * 4096);   /* still usable */
    sm_arena_free(a);

    FILE *f = fopen(path, "wb");
    fputs("precious", f);
    fclose(f);
    cr_assert_eq(sm_arena_create_file(path, 4096, SM_ARENA_FILE_TEMP, &a), SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "already exists"), "%s",
              sm_last_error());
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "the existing file is left alone");
    cr_assert_eq(st.st_size, 8);
}

Test(arena_file, zero_size)
{
    const char *path = in_dir("empty.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 0, 0, &a), SM_OK, "%s", sm_last_error());
    cr_assert_not_null(sm_arena_base(a));
    cr_assert_eq((uintptr_t)sm_arena_base(a) % SM_ARENA_ALIGN, 0);
    cr_assert_eq(sm_arena_size(a), 0);
    cr_assert_eq(sm_arena_sync(a), SM_OK, "%s", sm_last_error());
    sm_arena_free(a);
    cr_assert_eq(access(path, F_OK), 0);
}

Test(arena_file, missing_directory_names_the_path)
{
    const char *path = in_dir("no/such/dir/kv.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 4096, 0, &a), SM_ERR_IO);
    cr_assert_null(a);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "directory does not exist"), "%s",
              sm_last_error());
}

Test(arena_file, unwritable_path_names_it_and_the_fix)
{
    /* root ignores permission bits, but not a read-only or kernel filesystem */
    char path[512];
    if (geteuid() == 0) {
        snprintf(path, sizeof path, "/sys/sm_arena_test.bin");
    } else {
        snprintf(path, sizeof path, "%s", in_dir("ro"));
        cr_assert_eq(mkdir(path, 0500), 0);
        strcat(path, "/x.bin");
    }
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, 4096, 0, &a), SM_ERR_IO);
    cr_assert_null(a);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "writable directory"), "%s",
              sm_last_error());
}

Test(arena_file, no_space_names_the_path_and_leaves_no_file)
{
    struct statvfs vfs;
    cr_assert_eq(statvfs(dir, &vfs), 0);
    cr_assert_gt(vfs.f_blocks, 0, "the temp filesystem reports no size");
    /* Twice the whole filesystem: cannot fit, whoever asks. */
    uint64_t size = (uint64_t)vfs.f_blocks * vfs.f_frsize * 2;
    const char *path = in_dir("huge.bin");
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(path, (size_t)size, 0, &a), SM_ERR_IO);
    cr_assert_null(a);
    cr_assert(strstr(sm_last_error(), path) && strstr(sm_last_error(), "no space left"), "%s",
              sm_last_error());
    cr_assert_neq(access(path, F_OK), 0, "the half-made file is removed");
}

Test(arena_file, bad_arguments)
{
    sm_arena *a = NULL;
    cr_assert_eq(sm_arena_create_file(NULL, 4096, 0, &a), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_arena_create_file("", 4096, 0, &a), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_arena_create_file(in_dir("kv.bin"), 4096, 0, NULL), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_arena_create_heap(4096, NULL), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_arena_sync(NULL), SM_ERR_INVALID_ARG);
}
