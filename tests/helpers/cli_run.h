/* cli_run.h — running the smallmind binary from tests. */
#ifndef SM_TEST_CLI_RUN_H
#define SM_TEST_CLI_RUN_H

#include <stdarg.h>

const char *sm_test_cli(void);      /* path of the smallmind binary ($SM_CLI) */
const char *sm_test_corpus(void);   /* data/kjv-genesis-exodus.txt */
/* dir/name, in one of 8 rotating buffers, so that several can be used in one call. */
const char *sm_test_path(const char *dir, const char *name);
/* Runs a shell command built like printf; returns its exit status. */
int sm_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
