/* buf.h — a growable string buffer: the one the library writes text with (plan reports, JSON, SVG,
 * graph files). Appends never fail visibly: an allocation failure sets `failed`, later appends do
 * nothing, and the caller checks once at the end. data is NUL-terminated when non-NULL. */
#ifndef SM_BUF_H
#define SM_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sm_buf {
    char *data;
    size_t len, cap;
    bool failed;
} sm_buf;

void sm_buf_init(sm_buf *b);   /* or = {0} */
void sm_buf_free(sm_buf *b);
void sm_buf_append(sm_buf *b, const void *s, size_t n);
void sm_buf_puts(sm_buf *b, const char *s);
void sm_buf_printf(sm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0..n) as a quoted JSON string: escapes ", \ and control characters, keeps other UTF-8.
 * The one JSON string escaper. */
void sm_buf_json_string(sm_buf *b, const char *s, size_t n);
/* Appends x with `decimals` digits after the point, or null when x is NaN or infinite: JSON has no
 * such numbers, so a value that is not one (an empty average, a diverged loss) reads as null. */
void sm_buf_json_number(sm_buf *b, double x, int decimals);

#endif
