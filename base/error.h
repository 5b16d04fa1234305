/* error.h — the thread-local last-error message behind sm_last_error(). */
#ifndef SM_ERROR_H
#define SM_ERROR_H

#include "smallmind.h"

/* Formats the message for the last error on this thread and returns s, so callers write
 * `return sm_error(SM_ERR_SHAPE, "node %s: ...", ...);`. */
sm_status sm_error(sm_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context ("loading x.safetensors: " + old message). */
sm_status sm_error_prefix(sm_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sm_error_clear(void);

#endif
