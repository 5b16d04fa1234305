/* arena.c — heap arenas (anonymous mmap, committed at creation) and file arenas (shared file
 * mappings). Why mmap and what "committed" buys: see arena.h. */
#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../base/error.h"

#define HUGE_PAGE ((size_t)2 << 20)

struct sm_arena {
    sm_arena_kind kind;
    void *base;       /* what users see: SM_ARENA_ALIGN-aligned, inside the mapping */
    size_t size;      /* bytes asked for */
    void *map;        /* the mapping to munmap (NULL for size 0) */
    size_t map_len;
    int fd;           /* file arenas: kept open until free; -1 otherwise */
    char *path;       /* file arenas: for messages and sm_arena_path */
};

/* The base of every empty arena: valid and aligned, never dereferenced. */
static _Alignas(SM_ARENA_ALIGN) unsigned char empty_base[SM_ARENA_ALIGN];

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static const char *errno_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) snprintf(buf, cap, "errno %d", err);
    return buf;
}

static const char *human(uint64_t bytes, char *buf) { return sm_format_bytes(bytes, buf, SM_BYTES_STR_MAX); }

/* ---- heap ---------------------------------------------------------------------------------------- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older headers lack the name, older kernels say EINVAL */
#endif

/* Makes every page of [p, p+len) resident now. 0 on success, else an errno. */
static int commit_pages(void *p, size_t len)
{
    if (madvise(p, len, MADV_POPULATE_WRITE) == 0) return 0;
    if (errno != EINVAL) return errno;   /* ENOMEM, EFAULT: the kernel could not provide the memory */
    /* A kernel without MADV_POPULATE_WRITE: one write per page faults it in (writing the zero the
     * page already holds changes nothing). */
    volatile unsigned char *bytes = p;
    size_t step = page_size();
    for (size_t off = 0; off < len; off += step) bytes[off] = 0;
    return 0;
}

/* An anonymous mapping of len bytes; 2 MiB aligned when len >= 2 MiB so huge pages can back it. */
static void *map_anonymous(size_t len, int *err)
{
    size_t reserve = len >= HUGE_PAGE ? len + HUGE_PAGE : len;
    if (reserve < len) {
        *err = ENOMEM;
        return NULL;
    }
    unsigned char *p = mmap(NULL, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        *err = errno;
        return NULL;
    }
    if (reserve == len) return p;
    /* Trim the over-reservation down to an aligned window of exactly len bytes. */
    unsigned char *aligned = (unsigned char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    size_t head = (size_t)(aligned - p), tail = reserve - head - len;
    if (head) munmap(p, head);
    if (tail) munmap(aligned + len, tail);
#ifdef MADV_HUGEPAGE
    madvise(aligned, len, MADV_HUGEPAGE);   /* a hint: without THP it fails, and nothing is lost */
#endif
    return aligned;
}

sm_status sm_arena_create_heap(size_t size, sm_arena **out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_arena_create_heap: out is NULL");
    *out = NULL;
    sm_arena *a = calloc(1, sizeof *a);
    if (!a) return sm_error(SM_ERR_NOMEM, "heap arena: out of memory for its descriptor");
    a->kind = SM_ARENA_HEAP;
    a->size = size;
    a->fd = -1;
    a->base = empty_base;
    if (size > 0) {
        char h[SM_BYTES_STR_MAX], e[128];
        size_t page = page_size();
        size_t len = (size + page - 1) / page * page;
        int err = 0;
        void *p = len >= size ? map_anonymous(len, &err) : NULL;
        if (!p) {
            free(a);
            return sm_error(SM_ERR_NOMEM, "heap arena of %s (%zu bytes): cannot reserve it: %s: lower the "
                            "budget, the batch or the context", human(size, h), size,
                            errno_text(err ? err : ENOMEM, e, sizeof e));
        }
        err = commit_pages(p, len);
        if (err) {
            munmap(p, len);
            free(a);
            return sm_error(SM_ERR_NOMEM, "heap arena of %s (%zu bytes): the kernel cannot commit it: %s: "
                            "free memory, or lower the budget, the batch or the context", human(size, h),
                            size, errno_text(err, e, sizeof e));
        }
        a->map = a->base = p;
        a->map_len = len;
    }
    *out = a;
    return SM_OK;
}

/* ---- file ---------------------------------------------------------------------------------------- */

/* The message for a failed file operation: names the path, the cause and the fix. */
static sm_status file_error(int err, const char *path, const char *doing, size_t size, unsigned flags)
{
    char e[128], h[SM_BYTES_STR_MAX];
    errno_text(err, e, sizeof e);
    switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
        return sm_error(SM_ERR_IO, "arena file '%s': cannot %s it: %s: choose a writable directory "
                        "(for example under $TMPDIR or $HOME) or fix the permissions", path, doing, e);
    case ENOENT:
        if (flags & SM_ARENA_FILE_MUST_EXIST)
            return sm_error(SM_ERR_IO, "arena file '%s' does not exist (it is opened to reuse saved data): "
                            "check the path, or create it by running without reuse", path);
        return sm_error(SM_ERR_IO, "arena file '%s': its directory does not exist: create the directory "
                        "or choose another path", path);
    case ENOTDIR:
        return sm_error(SM_ERR_IO, "arena file '%s': a component of the path is not a directory: "
                        "fix the path", path);
    case EISDIR:
        return sm_error(SM_ERR_IO, "arena file '%s' is a directory: give a file name inside it", path);
    case EEXIST:
        return sm_error(SM_ERR_IO, "%sarena file '%s' already exists and is never overwritten: "
                        "remove it or choose another name%s", (flags & SM_ARENA_FILE_TEMP) ? "temporary " : "", path,
                        (flags & SM_ARENA_FILE_TEMP) ? "" : " (or reuse it: resume the session it holds)");
    case ENOSPC:
    case EDQUOT:
        return sm_error(SM_ERR_IO, "arena file '%s': no space left on its filesystem for %s (%zu bytes): %s: "
                        "free disk space, put the file on a larger filesystem, or lower the context or KV "
                        "size", path, human(size, h), size, e);
    case EFBIG:
        return sm_error(SM_ERR_IO, "arena file '%s': %s (%zu bytes) is more than this filesystem or "
                        "`ulimit -f` allows in one file: choose another filesystem or a smaller size",
                        path, human(size, h), size);
    case ENODEV:
        return sm_error(SM_ERR_IO, "arena file '%s': its filesystem cannot be memory-mapped: put the file "
                        "on a local disk or tmpfs", path);
    case ENOMEM:
        return sm_error(SM_ERR_NOMEM, "arena file '%s': cannot map %s (%zu bytes): %s: the address space "
                        "is exhausted (check `ulimit -v`) or the size is too large", path, human(size, h),
                        size, e);
    default:
        return sm_error(SM_ERR_IO, "arena file '%s': cannot %s it: %s", path, doing, e);
    }
}

/* Opens (creating if allowed) the file; *created says whether this call made it. -1 + errno on error. */
static int open_file(const char *path, unsigned flags, int *created)
{
    *created = 0;
    if (flags & SM_ARENA_FILE_MUST_EXIST) return open(path, O_RDWR | O_CLOEXEC);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, (flags & SM_ARENA_FILE_TEMP) ? 0600 : 0644);
    if (fd >= 0) {
        *created = 1;
        return fd;
    }
    if (errno != EEXIST || (flags & (SM_ARENA_FILE_TEMP | SM_ARENA_FILE_NEW))) return -1;
    return open(path, O_RDWR | O_CLOEXEC);
}

/* Reserves the blocks of the first size bytes. Checks free space first, so a request that cannot fit
 * fails at once instead of filling the disk to the brim and then failing. 0 or an errno. */
static int reserve_blocks(int fd, const struct stat *st, size_t size)
{
    struct statvfs vfs;
    uint64_t allocated = (uint64_t)st->st_blocks * 512;
    if (fstatvfs(fd, &vfs) == 0 && vfs.f_blocks > 0 && size > allocated) {
        /* root may use the blocks reserved for it, others only f_bavail */
        uint64_t free_blocks = geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;
        if ((uint64_t)size - allocated > free_blocks * (uint64_t)vfs.f_frsize) return ENOSPC;
    }
    int err = posix_fallocate(fd, 0, (off_t)size);
    if (err == EOPNOTSUPP || err == EINVAL || err == ENOSYS)   /* a filesystem without fallocate */
        err = ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
    return err;
}

sm_status sm_arena_create_file(const char *path, size_t size, unsigned flags, sm_arena **out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_arena_create_file: out is NULL");
    *out = NULL;
    if (!path || !path[0])
        return sm_error(SM_ERR_INVALID_ARG, "file arena: the path is empty: give a file path");
    if (size > (size_t)INT64_MAX)
        return sm_error(SM_ERR_INVALID_ARG, "arena file '%s': size %zu is larger than a file can be", path,
                        size);

    sm_arena *a = calloc(1, sizeof *a);
    char *copy = malloc(strlen(path) + 1);
    if (!a || !copy) {
        free(a);
        free(copy);
        return sm_error(SM_ERR_NOMEM, "arena file '%s': out of memory for its descriptor", path);
    }
    a->kind = SM_ARENA_FILE;
    a->size = size;
    a->path = strcpy(copy, path);
    a->base = empty_base;

    int created;
    a->fd = open_file(path, flags, &created);
    if (a->fd < 0) {
        sm_status st = file_error(errno, path, "open", size, flags);
        sm_arena_free(a);
        return st;
    }
    /* Before anything touches the file: another session holding it keeps it, whole. */
    if ((flags & SM_ARENA_FILE_LOCK) && flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        sm_status st = e == EWOULDBLOCK ? sm_error(SM_ERR_IO, "arena file '%s' is in use by another session (it holds "
                                                    "the file's lock): wait for it to end or use another file", path)
                                        : file_error(e, path, "lock", size, flags);
        if (created) unlink(path);
        sm_arena_free(a);
        return st;
    }
    /* Unlinked now, a scratch file cannot be left behind by a crash; the fd keeps it alive. */
    if (flags & SM_ARENA_FILE_TEMP) unlink(path);

    struct stat st;
    int err = 0;
    const char *doing = "size";
    if (fstat(a->fd, &st) != 0) {
        err = errno;
        doing = "inspect";
    } else if (!S_ISREG(st.st_mode)) {
        sm_arena_free(a);
        return sm_error(SM_ERR_IO, "arena file '%s' is not a regular file: give the path of a file", path);
    } else if ((flags & SM_ARENA_FILE_MUST_EXIST) && (uint64_t)st.st_size < size) {
        char h1[SM_BYTES_STR_MAX], h2[SM_BYTES_STR_MAX];
        sm_status s = sm_error(SM_ERR_FORMAT, "arena file '%s' is %s (%lld bytes) but %s (%zu bytes) were "
                               "expected: it is truncated or belongs to another configuration", path,
                               human((uint64_t)st.st_size, h1), (long long)st.st_size, human(size, h2), size);
        sm_arena_free(a);
        return s;
    } else if (flags & SM_ARENA_FILE_SPARSE) {
        if ((uint64_t)st.st_size < size && ftruncate(a->fd, (off_t)size) != 0) err = errno;
    } else if (size > 0) {
        err = reserve_blocks(a->fd, &st, size);
    }
    if (!err && size > 0) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
        if (p == MAP_FAILED) {
            err = errno;
            doing = "map";
        } else {
            a->map = a->base = p;
            a->map_len = size;
        }
    }
    if (err) {
        sm_status s = file_error(err, path, doing, size, flags);
        if (created && !(flags & SM_ARENA_FILE_TEMP)) unlink(path);   /* leave no half-made file */
        sm_arena_free(a);
        return s;
    }
    *out = a;
    return SM_OK;
}

/* ---- common -------------------------------------------------------------------------------------- */

void *sm_arena_base(const sm_arena *a) { return a ? a->base : NULL; }
size_t sm_arena_size(const sm_arena *a) { return a ? a->size : 0; }
sm_arena_kind sm_arena_get_kind(const sm_arena *a) { return a ? a->kind : SM_ARENA_HEAP; }
const char *sm_arena_path(const sm_arena *a) { return a ? a->path : NULL; }

sm_status sm_arena_sync(sm_arena *a)
{
    if (!a) return sm_error(SM_ERR_INVALID_ARG, "sm_arena_sync: arena is NULL");
    if (a->kind != SM_ARENA_FILE) return SM_OK;
    if ((a->map && msync(a->map, a->map_len, MS_SYNC) != 0) || fsync(a->fd) != 0) {
        char e[128];
        return sm_error(SM_ERR_IO, "arena file '%s': cannot write it to disk: %s: check the disk and "
                        "free space", a->path, errno_text(errno, e, sizeof e));
    }
    return SM_OK;
}

void sm_arena_free(sm_arena *a)
{
    if (!a) return;
    if (a->map) munmap(a->map, a->map_len);
    if (a->fd >= 0) close(a->fd);
    free(a->path);
    free(a);
}
