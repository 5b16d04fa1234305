/* procfs.h — reading small text files of /proc and /sys under a root prefix.
 *
 * Every path is root + an absolute path ("/proc/meminfo"); root "" or NULL is the real system. The
 * prefix exists so tests can point the readers at fake trees (tests/fixtures/sysinfo/...). */
#ifndef SM_MEMORY_PROCFS_H
#define SM_MEMORY_PROCFS_H

#include <stddef.h>
#include <stdint.h>

/* Joins root and path into buf; 0 on success, -1 if it does not fit. */
int sm_procfs_path(const char *root, const char *path, char *buf, size_t cap);
/* Whole file as a malloc'd NUL-terminated string (files in /proc report size 0, so this reads to
 * EOF); NULL if it cannot be read. The caller frees it. */
char *sm_procfs_slurp(const char *root, const char *path);
/* 1 if root + path exists. */
int sm_procfs_exists(const char *root, const char *path);
/* Finds the line "key:<spaces>N[ kB]" in text and stores N in bytes if unit_kb (N * 1024),
 * otherwise N as it is; 1 if found and numeric, 0 otherwise. */
int sm_procfs_field(const char *text, const char *key, int unit_kb, uint64_t *out);
/* The value after "key<spaces/tabs>:" on the first line starting with key (cpuinfo style), as a
 * pointer into text and its length up to the end of the line; NULL if there is none. */
const char *sm_procfs_line_value(const char *text, const char *key, size_t *len);

#endif
