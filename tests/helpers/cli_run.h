/* cli_run.h — running the smallmind binary from tests, and reading the files it writes. */
#ifndef SM_TEST_CLI_RUN_H
#define SM_TEST_CLI_RUN_H

#include <stdarg.h>
#include <stddef.h>

const char *sm_test_cli(void);      /* path of the smallmind binary ($SM_CLI) */
const char *sm_test_corpus(void);   /* data/kjv-genesis-exodus.txt */
/* dir/name, in one of 8 rotating buffers, so that several can be used in one call. */
const char *sm_test_path(const char *dir, const char *name);
/* The whole file (malloc'd, NUL-terminated; free() it) and its size in *n (n may be NULL); fails the
 * test if it cannot be read. */
char *sm_test_read(const char *path, size_t *n);
/* Runs a shell command built like printf; returns its exit status (128 + the signal if one killed it). */
int sm_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, keeping its standard output in out (at most cap - 1 bytes, NUL-terminated). */
int sm_test_capture(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
