#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* Small writes (headers, names) are gathered so a checkpoint is not thousands of syscalls; large
 * tensor payloads bypass the buffer. */
#define WRITER_BUF (64 * 1024)

struct sm_file_writer {
    int fd;
    int failed;              /* a write failed: only abort is meaningful now */
    uint64_t offset;         /* bytes accepted */
    size_t buf_used;
    char *path;
    char *tmp;
    unsigned char buf[WRITER_BUF];
};

/* strerror_r because strerror is not thread-safe; glibc has two variants depending on _GNU_SOURCE. */
static const char *errtext(int e, char *buf, size_t cap)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, cap);
#else
    if (strerror_r(e, buf, cap) != 0) snprintf(buf, cap, "errno %d", e);
    return buf;
#endif
}

/* What to do about an errno, for the message tail. */
static const char *errhint(int e)
{
    switch (e) {
    case ENOSPC: return "the disk is full (ENOSPC): free space or write somewhere else";
    case EDQUOT: return "the disk quota is exhausted (EDQUOT): free space or write somewhere else";
    case EFBIG: return "the file exceeds the size limit (EFBIG): check ulimit -f or the filesystem";
    case EACCES:
    case EPERM: return "permission denied: check the directory's permissions";
    case EROFS: return "the filesystem is read-only: write somewhere else";
    case ENOENT: return "the directory does not exist: create it first";
    case ENOTDIR: return "a component of the path is not a directory";
    default: return "check the path and the disk";
    }
}

static sm_status io_error(const char *what, const char *path, const char *tmp, int e)
{
    char eb[128];
    if (tmp)
        return sm_error(SM_ERR_IO, "%s '%s' (temp file '%s'): %s; %s; '%s' was left unchanged", what, path,
                        tmp, errtext(e, eb, sizeof eb), errhint(e), path);
    return sm_error(SM_ERR_IO, "%s '%s': %s; %s", what, path, errtext(e, eb, sizeof eb), errhint(e));
}

static int write_full(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, p, step);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The directory part of path, for the directory fsync after rename. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* What a file type is called in messages. */
static const char *kind_of(mode_t m)
{
    if (S_ISLNK(m)) return "symbolic link";
    if (S_ISFIFO(m)) return "named pipe (FIFO)";
    if (S_ISCHR(m)) return "character device";
    if (S_ISBLK(m)) return "block device";
    if (S_ISDIR(m)) return "directory";
    if (S_ISSOCK(m)) return "socket";
    return "special file";
}

/* The rename that ends a write replaces whatever is at path: it would turn a device, pipe or socket
 * into a regular file (as root, `--save /dev/null` would break the system) and replace a symbolic
 * link instead of writing where it points. So only a regular file or nothing may be there. *mode
 * gets the existing file's permission bits (0 when absent). */
static sm_status check_target(const char *path, mode_t *mode)
{
    struct stat st;
    *mode = 0;
    /* absent, or unreachable: creating the temp file next to it then says why */
    if (lstat(path, &st) != 0) return SM_OK;
    if (!S_ISREG(st.st_mode))
        return sm_error(SM_ERR_IO, "will not write '%s': it is a %s, not a regular file, and saving would replace "
                        "it; remove it or choose another path", path, kind_of(st.st_mode));
    *mode = st.st_mode & 07777;
    return SM_OK;
}

/* 1 and *pid if name is "<pid>.<n>.tmp" (what follows "<target>." in our temp files' names). */
static int temp_suffix_pid(const char *name, long *pid)
{
    char *end;
    if (*name < '1' || *name > '9') return 0;
    errno = 0;
    long p = strtol(name, &end, 10);
    if (errno || *end != '.' || p > INT_MAX) return 0;
    name = end + 1;
    if (*name < '0' || *name > '9') return 0;
    while (*name >= '0' && *name <= '9') name++;
    if (strcmp(name, ".tmp") != 0) return 0;
    *pid = p;
    return 1;
}

/* A writer killed mid-write (SIGKILL, a power cut) leaves its temp file "<path>.<pid>.<n>.tmp"
 * behind. The next write of the same path removes those whose process no longer exists; a live
 * process's (ours included) may still be writing. Best effort: what cannot be removed stays. (A
 * process of another PID namespace writing into the same directory would look dead: not a case
 * this engine has.) */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    char *dir = dir_of(path);
    DIR *d = blen && dir ? opendir(dir) : NULL;
    free(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long pid;
        if (strncmp(e->d_name, base, blen) != 0 || e->d_name[blen] != '.' ||
            !temp_suffix_pid(e->d_name + blen + 1, &pid))
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

sm_status sm_file_writer_open(const char *path, sm_file_writer **out)
{
    static atomic_uint counter;
    *out = NULL;
    if (!path || !*path) return sm_error(SM_ERR_INVALID_ARG, "atomic write: empty path");
    mode_t mode;
    sm_status s = check_target(path, &mode);
    if (s) return s;
    remove_stale_temps(path);
    sm_file_writer *w = malloc(sizeof *w);
    if (!w) return sm_error(SM_ERR_NOMEM, "writing '%s': out of memory for the writer", path);
    w->fd = -1;
    w->failed = 0;
    w->offset = 0;
    w->buf_used = 0;
    w->path = strdup(path);
    size_t cap = strlen(path) + 64;
    w->tmp = malloc(cap);
    if (!w->path || !w->tmp) {
        free(w->path);
        free(w->tmp);
        free(w);
        return sm_error(SM_ERR_NOMEM, "writing '%s': out of memory for the writer", path);
    }
    for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
        snprintf(w->tmp, cap, "%s.%ld.%u.tmp", path, (long)getpid(), atomic_fetch_add(&counter, 1u));
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd < 0 && errno != EEXIST) break;
    }
    if (w->fd < 0) {
        int e = errno;
        char eb[128];
        s = sm_error(SM_ERR_IO, "cannot create temp file '%s' to write '%s': %s; %s", w->tmp, path,
                     errtext(e, eb, sizeof eb), errhint(e));
        free(w->path);
        free(w->tmp);
        free(w);
        return s;
    }
    /* Replacing a file keeps its permissions (a 0600 key file stays private). */
    if (mode) (void)fchmod(w->fd, mode);
    *out = w;
    return SM_OK;
}

static sm_status writer_flush(sm_file_writer *w)
{
    if (w->buf_used == 0) return SM_OK;
    int e = write_full(w->fd, w->buf, w->buf_used);
    w->buf_used = 0;
    if (e) {
        w->failed = 1;
        char what[96];
        snprintf(what, sizeof what, "writing (after %llu bytes)", (unsigned long long)w->offset);
        return io_error(what, w->path, w->tmp, e);
    }
    return SM_OK;
}

sm_status sm_file_writer_write(sm_file_writer *w, const void *data, size_t n)
{
    if (!w) return sm_error(SM_ERR_INVALID_ARG, "atomic write: null writer");
    if (w->failed)
        return sm_error(SM_ERR_STATE, "writing '%s': an earlier write failed; abort this writer", w->path);
    if (n == 0) return SM_OK;
    if (!data) return sm_error(SM_ERR_INVALID_ARG, "writing '%s': null data for %zu bytes", w->path, n);
    if (w->buf_used + n <= WRITER_BUF) {
        memcpy(w->buf + w->buf_used, data, n);
        w->buf_used += n;
        w->offset += n;
        return SM_OK;
    }
    sm_status s = writer_flush(w);
    if (s) return s;
    if (n < WRITER_BUF) {
        memcpy(w->buf, data, n);
        w->buf_used = n;
        w->offset += n;
        return SM_OK;
    }
    int e = write_full(w->fd, data, n);
    if (e) {
        w->failed = 1;
        char what[96];
        snprintf(what, sizeof what, "writing (after %llu bytes)", (unsigned long long)w->offset);
        return io_error(what, w->path, w->tmp, e);
    }
    w->offset += n;
    return SM_OK;
}

uint64_t sm_file_writer_offset(const sm_file_writer *w) { return w ? w->offset : 0; }

static void writer_free(sm_file_writer *w)
{
    free(w->path);
    free(w->tmp);
    free(w);
}

void sm_file_writer_abort(sm_file_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    writer_free(w);
}

sm_status sm_file_writer_commit(sm_file_writer *w)
{
    if (!w) return sm_error(SM_ERR_INVALID_ARG, "atomic write: null writer");
    sm_status s = SM_OK;
    if (w->failed)
        s = sm_error(SM_ERR_STATE, "writing '%s': an earlier write failed; nothing was committed and '%s' "
                     "was left unchanged", w->path, w->path);
    if (!s) s = writer_flush(w);
    if (!s && fsync(w->fd) != 0) s = io_error("syncing", w->path, w->tmp, errno);
    int fd = w->fd;
    w->fd = -1;
    /* close can report deferred write errors (NFS), so it is checked like a write. */
    if (close(fd) != 0 && !s) s = io_error("closing", w->path, w->tmp, errno);
    if (!s && rename(w->tmp, w->path) != 0) s = io_error("renaming the temp file onto", w->path, w->tmp, errno);
    if (s) {
        sm_file_writer_abort(w);
        return s;
    }
    char *dir = dir_of(w->path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* Some filesystems cannot fsync a directory (EINVAL); the rename is then as durable as it gets. */
        if (dfd >= 0) {
            if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP) {
                char eb[128];
                s = sm_error(SM_ERR_IO, "'%s' was written, but syncing its directory '%s' failed: %s; the new "
                             "file may not survive a power loss", w->path, dir, errtext(errno, eb, sizeof eb));
            }
            close(dfd);
        }
        free(dir);
    }
    writer_free(w);
    return s;
}

sm_status sm_file_write_atomic(const char *path, const void *const *chunks, const size_t *sizes, int n)
{
    if (n < 0 || (n > 0 && (!chunks || !sizes)))
        return sm_error(SM_ERR_INVALID_ARG, "writing '%s': bad chunk list", path ? path : "(null)");
    sm_file_writer *w;
    sm_status s = sm_file_writer_open(path, &w);
    if (s) return s;
    for (int i = 0; i < n; i++) {
        s = sm_file_writer_write(w, chunks[i], sizes[i]);
        if (s) {
            sm_file_writer_abort(w);
            return s;
        }
    }
    return sm_file_writer_commit(w);
}

sm_status sm_file_check_writable(const char *path)
{
    sm_file_writer *w;
    sm_status s = sm_file_writer_open(path, &w);
    if (!s) sm_file_writer_abort(w);
    return s;
}

int sm_file_same(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Opens path for reading and checks it is a regular file; returns the fd or -1 with the error set.
 * O_NONBLOCK because opening a named pipe for reading otherwise waits for a writer, forever if none
 * comes: this way the check below is reached and refuses it. */
static int open_regular(const char *path, off_t *size, sm_status *s)
{
    char eb[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        *s = sm_error(SM_ERR_IO, "cannot open '%s': %s%s", path, errtext(e, eb, sizeof eb),
                      e == ENOENT ? "; check the path" : "");
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *s = sm_error(SM_ERR_IO, "cannot stat '%s': %s", path, errtext(errno, eb, sizeof eb));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        *s = sm_error(SM_ERR_IO, "'%s' is a %s, not a regular file: give a regular file (a pipe or device could "
                      "block the read forever)", path, kind_of(st.st_mode));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        *s = sm_error(SM_ERR_IO, "cannot read '%s': %s", path, errtext(errno, eb, sizeof eb));
        close(fd);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

sm_status sm_file_check_input(const char *path)
{
    if (!path) return sm_error(SM_ERR_INVALID_ARG, "read: null path");
    sm_status s = SM_OK;
    off_t size;
    int fd = open_regular(path, &size, &s);
    if (fd >= 0) close(fd);
    return s;
}

sm_status sm_file_read_all(const char *path, size_t max_bytes, void **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (!path) return sm_error(SM_ERR_INVALID_ARG, "read: null path");
    sm_status s = SM_OK;
    off_t fsize;
    int fd = open_regular(path, &fsize, &s);
    if (fd < 0) return s;
    if ((uint64_t)fsize > (uint64_t)max_bytes) {
        close(fd);
        return sm_error(SM_ERR_FORMAT, "'%s' is %lld bytes, more than the %zu bytes allowed for this kind of "
                        "file; is it the right file?", path, (long long)fsize, max_bytes);
    }
    size_t n = (size_t)fsize;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return sm_error(SM_ERR_NOMEM, "reading '%s': out of memory for %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            char eb[128];
            s = sm_error(SM_ERR_IO, "reading '%s': %s", path, errtext(errno, eb, sizeof eb));
            break;
        }
        if (r == 0) {
            s = sm_error(SM_ERR_IO, "reading '%s': the file shrank while being read (%zu of %zu bytes); is "
                         "another process writing it?", path, got, n);
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (s) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return SM_OK;
}

sm_status sm_file_map_open(const char *path, sm_file_map *m)
{
    m->data = NULL;
    m->size = 0;
    if (!path) return sm_error(SM_ERR_INVALID_ARG, "map: null path");
    sm_status s = SM_OK;
    off_t fsize;
    int fd = open_regular(path, &fsize, &s);
    if (fd < 0) return s;
    if ((uint64_t)fsize > (uint64_t)SIZE_MAX) {
        close(fd);
        return sm_error(SM_ERR_UNSUPPORTED, "'%s' is too large to map on this system", path);
    }
    if (fsize == 0) {
        close(fd);
        return SM_OK;
    }
    void *p = mmap(NULL, (size_t)fsize, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        char eb[128];
        return sm_error(SM_ERR_IO, "cannot map '%s' (%lld bytes): %s", path, (long long)fsize,
                        errtext(e, eb, sizeof eb));
    }
    m->data = p;
    m->size = (size_t)fsize;
    return SM_OK;
}

void sm_file_map_close(sm_file_map *m)
{
    if (m && m->data) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}
