/* plan_report.h — a growing string for the plan's text, JSON and SVG writers. */
#ifndef SM_PLAN_REPORT_H
#define SM_PLAN_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "smallmind.h"

typedef struct sm_sb {
    char *s;
    size_t n, cap;
    bool failed;          /* an allocation failed: later appends do nothing; check once at the end */
} sm_sb;

sm_status sm_sb_printf(sm_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes data to path atomically (plan_io.c). */
sm_status sm_plan_write_file(const char *path, const void *data, size_t n);

#endif
