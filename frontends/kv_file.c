/* kv_file.c — opening, checking and sealing KV cache files (kv_file.h, docs/kv-format.md). */
#include "kv_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "../base/error.h"

_Static_assert(sizeof(sm_kv_header) <= SM_KV_HEADER_BYTES, "the header fits its page");

void sm_kv_header_seal(sm_kv_header *h)
{
    h->checksum = XXH3_64bits(h, offsetof(sm_kv_header, checksum));
}

#define DIFF(field, what)                                                                                         \
    if (h->field != want->field)                                                                                  \
        return sm_error(SM_ERR_FORMAT, "KV file '%s' was made for %s %lld, this session has %lld: use the same " \
                        "model and cache settings, or another file", path, what, (long long)h->field,            \
                        (long long)want->field)

sm_status sm_kv_header_check(const sm_kv_header *h, const sm_kv_header *want, const char *path)
{
    if (memcmp(h->magic, SM_KV_MAGIC, 8))
        return sm_error(SM_ERR_FORMAT, "'%s' is not a SmallMind KV file (no '%s' magic at its start)", path,
                        SM_KV_MAGIC);
    if (h->version != SM_KV_VERSION)
        return sm_error(SM_ERR_FORMAT, "KV file '%s' has format version %u; this build reads version %u", path,
                        h->version, SM_KV_VERSION);
    uint64_t sum = XXH3_64bits(h, offsetof(sm_kv_header, checksum));
    if (sum != h->checksum)
        return sm_error(SM_ERR_FORMAT, "KV file '%s': its header is corrupt (checksum %016llx, the bytes give "
                        "%016llx): the file was damaged; start a new session", path, (unsigned long long)h->checksum,
                        (unsigned long long)sum);
    if (h->header_bytes != SM_KV_HEADER_BYTES)
        return sm_error(SM_ERR_FORMAT, "KV file '%s': header of %u bytes, expected %u", path, h->header_bytes,
                        SM_KV_HEADER_BYTES);
    DIFF(n_layer, "layers");
    DIFF(n_head, "heads");
    DIFF(head_dim, "head_dim");
    DIFF(dtype, "KV dtype (sm_dtype)");
    DIFF(positions, "cache positions");
    DIFF(span, "attention span");
    DIFF(sink, "sink positions");
    DIFF(ring, "ring");
    DIFF(batch, "batch");
    DIFF(kv_bytes, "KV bytes");
    if (h->model_hash != want->model_hash)
        return sm_error(SM_ERR_FORMAT, "KV file '%s' was made for another model (weights hash %016llx, this "
                        "session's %016llx): resume it with the weights that made it", path,
                        (unsigned long long)h->model_hash, (unsigned long long)want->model_hash);
    if (h->layout_hash != want->layout_hash)
        return sm_error(SM_ERR_FORMAT, "KV file '%s' lays the cache out differently (layout hash %016llx, this "
                        "session's %016llx)", path, (unsigned long long)h->layout_hash,
                        (unsigned long long)want->layout_hash);
    if (h->filled < 0 || h->filled > (want->ring ? INT32_MAX : want->positions))
        return sm_error(SM_ERR_FORMAT, "KV file '%s' says %lld positions are filled, outside 0..%lld", path,
                        (long long)h->filled, (long long)want->positions);
    return SM_OK;
}

/* Reads and checks the header of an existing file, and its size, before it is mapped: a clear
 * message for a file too short to hold even the header, or for one of another model. */
static sm_status precheck(const char *path, const sm_kv_header *want)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sm_error(SM_ERR_IO, "KV file '%s': cannot open it to resume: %s", path, strerror(errno));
    struct stat st;
    sm_kv_header h;
    sm_status s = SM_OK;
    if (fstat(fd, &st) != 0) s = sm_error(SM_ERR_IO, "KV file '%s': %s", path, strerror(errno));
    else if ((uint64_t)st.st_size < sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        s = sm_error(SM_ERR_FORMAT, "KV file '%s' is truncated: %lld bytes, less than its header", path,
                     (long long)st.st_size);
    else if (!(s = sm_kv_header_check(&h, want, path)) &&
             (uint64_t)st.st_size < (uint64_t)SM_KV_HEADER_BYTES + want->kv_bytes)
        s = sm_error(SM_ERR_FORMAT, "KV file '%s' is truncated: %lld bytes, its header and cache take %llu",
                     path, (long long)st.st_size, (unsigned long long)(SM_KV_HEADER_BYTES + want->kv_bytes));
    close(fd);
    return s;
}

sm_status sm_kv_file_open(const char *path, const sm_kv_header *want, int resume, sm_arena **out, sm_kv_header **hdr)
{
    sm_status s = resume ? precheck(path, want) : SM_OK;
    if (s) return s;
    size_t size = (size_t)SM_KV_HEADER_BYTES + (size_t)want->kv_bytes;
    unsigned flags = SM_ARENA_FILE_LOCK | (resume ? SM_ARENA_FILE_MUST_EXIST : SM_ARENA_FILE_NEW);
    sm_arena *a;
    if ((s = sm_arena_create_file(path, size, flags, &a))) return s;
    sm_kv_header *h = sm_arena_base(a);
    if (resume) {
        /* again, under the lock: the file may have changed since the precheck */
        if ((s = sm_kv_header_check(h, want, path))) {
            sm_arena_free(a);
            return s;
        }
    } else {
        *h = *want;
        h->filled = 0;
        h->last_token = -1;
        sm_kv_header_seal(h);
    }
    *out = a;
    *hdr = h;
    return SM_OK;
}
