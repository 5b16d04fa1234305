/* arena.h — the big blocks of memory a plan's tensors live in.
 *
 * Two kinds:
 *  - heap: anonymous memory, committed at creation. It is an anonymous mmap rather than
 *    posix_memalign because the planner compares measured RSS with the plan, and mmap makes RSS
 *    follow the arenas exactly: every page is prefaulted now (MADV_POPULATE_WRITE, or touching each
 *    page on kernels before 5.14), so RSS rises by the arena's size at creation, not by whichever
 *    pages happen to be written later; and munmap returns it all at free, whereas malloc may keep it
 *    (glibc raises its mmap threshold after a large free and later serves big blocks from the brk
 *    heap, which it rarely trims). Creation also fails early where the kernel can say no (ENOMEM)
 *    instead of at some later first touch. Arenas of 2 MiB or more are 2 MiB aligned and marked
 *    MADV_HUGEPAGE: fewer TLB misses in the kernels; a huge page only ever covers whole 2 MiB pieces
 *    inside the mapping, so RSS still equals the size rounded up to the 4 KiB page. Memory starts
 *    zeroed.
 *  - file: a MAP_SHARED mapping of a file (KV caches larger than RAM, or persisted between runs).
 *    The file is created if needed and its blocks reserved with posix_fallocate (so a full disk is
 *    an error now, not a SIGBUS on some later write), or only sized with ftruncate (SM_ARENA_FILE_SPARSE).
 *    Existing contents are kept; a longer file is not shortened (only the first size bytes are mapped).
 * Every base is aligned to at least SM_ARENA_ALIGN bytes. A size of 0 is valid: the base is then a
 * non-NULL, aligned pointer that must not be read or written. */
#ifndef SM_MEMORY_ARENA_H
#define SM_MEMORY_ARENA_H

#include <stddef.h>

#include "smallmind.h"

#define SM_ARENA_ALIGN 64

typedef struct sm_arena sm_arena;

typedef enum sm_arena_kind { SM_ARENA_HEAP = 0, SM_ARENA_FILE } sm_arena_kind;

/* Flags of sm_arena_create_file. */
enum {
    /* A scratch file: created new (fails if the path exists, so nothing is ever clobbered) and
     * removed from the directory right after it is opened, so it cannot outlive the process even on
     * a crash; its space returns to the filesystem when the arena is freed. */
    SM_ARENA_FILE_TEMP = 1u << 0,
    /* Size the file with ftruncate only: no blocks reserved, so creation is instant and needs no free
     * space now, but a write into a hole on a full disk kills the process with SIGBUS. */
    SM_ARENA_FILE_SPARSE = 1u << 1,
    /* Open an existing file only (reusing persisted data): fails if it is missing or shorter than size. */
    SM_ARENA_FILE_MUST_EXIST = 1u << 2,
    /* Create the file: fail (SM_ERR_IO, EEXIST) if the path exists, so nothing is ever clobbered. */
    SM_ARENA_FILE_NEW = 1u << 3,
    /* Hold an exclusive lock (flock) on the file while mapped: a second arena on the same file, from
     * this process or another, is refused (SM_ERR_IO naming the path) instead of sharing it. */
    SM_ARENA_FILE_LOCK = 1u << 4,
};

/* A heap arena of size bytes (may be 0), committed and zeroed. SM_ERR_NOMEM if it cannot be had. */
sm_status sm_arena_create_heap(size_t size, sm_arena **out);
/* A file arena: size bytes of the file at path mapped read-write and shared. Errors name the path
 * and say what to do: SM_ERR_IO for permissions, a missing directory or a full disk; SM_ERR_FORMAT
 * when SM_ARENA_FILE_MUST_EXIST finds a file shorter than size. */
sm_status sm_arena_create_file(const char *path, size_t size, unsigned flags, sm_arena **out);

void *sm_arena_base(const sm_arena *a);
size_t sm_arena_size(const sm_arena *a);
sm_arena_kind sm_arena_get_kind(const sm_arena *a);
const char *sm_arena_path(const sm_arena *a);   /* the file's path; NULL for a heap arena */

/* Writes a file arena's contents to disk and waits (msync + fsync); nothing to do for a heap arena. */
sm_status sm_arena_sync(sm_arena *a);
/* Unmaps and closes; the file stays (unless SM_ARENA_FILE_TEMP). NULL is fine. */
void sm_arena_free(sm_arena *a);

#endif
