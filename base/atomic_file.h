/* atomic_file.h — whole-file writes that either fully happen or leave the old file untouched, and
 * bounded whole-file reads.
 *
 * A write goes to a temp file "<path>.<pid>.<n>.tmp" in the same directory (so rename(2) stays on
 * one filesystem and is atomic), is flushed and fsync'd, renamed over <path>, and the directory is
 * fsync'd so the rename itself survives a crash. On any failure the temp file is removed and <path>
 * is as it was; the message names the path, what failed and the errno text (ENOSPC says the disk is
 * full).
 *
 * <path> must be absent or a regular file: a symbolic link, named pipe, device, socket or directory
 * there is refused before anything is created (the rename would replace it, not write into it). A
 * write also removes the temp files of earlier writes of <path> whose process is gone (killed
 * mid-write). Files read must be regular files too: anything else is refused without blocking. */
#ifndef SM_ATOMIC_FILE_H
#define SM_ATOMIC_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

/* Writes the concatenation of n chunks (chunks[i], sizes[i] bytes) to path atomically. */
sm_status sm_file_write_atomic(const char *path, const void *const *chunks, const size_t *sizes, int n);

/* Streaming variant for files too large to assemble in memory: open, write any number of times,
 * then sm_file_writer_commit (rename into place) or sm_file_writer_abort (remove the temp file). Both
 * free the writer, whatever happens; after a failed write only sm_file_writer_abort succeeds. */
typedef struct sm_file_writer sm_file_writer;

sm_status sm_file_writer_open(const char *path, sm_file_writer **out);
sm_status sm_file_writer_write(sm_file_writer *w, const void *data, size_t n);
/* Bytes accepted so far. */
uint64_t sm_file_writer_offset(const sm_file_writer *w);
sm_status sm_file_writer_commit(sm_file_writer *w);
void sm_file_writer_abort(sm_file_writer *w);

/* Checks now what writing path later needs (sm_file_writer_open's checks: path absent or a regular
 * file, its directory there and taking a new file) by creating and removing a temp file: for a
 * long job to fail at its start, not at its end. */
sm_status sm_file_check_writable(const char *path);
/* 1 if both paths exist and are the same file (device and inode; links followed), else 0. */
int sm_file_same(const char *a, const char *b);

/* Reads a whole regular file into a malloc'd buffer (free() it) with a NUL byte appended (not counted
 * in *size) so text can be parsed in place. Files larger than max_bytes are refused (SM_ERR_FORMAT)
 * before anything is allocated. */
sm_status sm_file_read_all(const char *path, size_t max_bytes, void **data, size_t *size);
/* The check sm_file_read_all and sm_file_map_open make, alone: path opens for reading and is a
 * regular file (a named pipe or device is refused at once, naming its kind). For readers that open
 * files themselves. */
sm_status sm_file_check_input(const char *path);

/* A read-only, private memory map of a whole regular file. An empty file maps to data == NULL,
 * size == 0. The file must not be truncated by another process while mapped (that would raise
 * SIGBUS on access); files the engine writes are replaced by rename, never truncated, so a map of
 * the old file stays valid. */
typedef struct sm_file_map {
    const void *data;
    size_t size;
} sm_file_map;

sm_status sm_file_map_open(const char *path, sm_file_map *m);
void sm_file_map_close(sm_file_map *m);

#endif
