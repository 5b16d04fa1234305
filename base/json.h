/* json.h — a small, strict JSON (RFC 8259) parser into an immutable tree (writing JSON: buf.h).
 *
 * Strict: no comments, trailing commas, leading zeros, NaN/Infinity, lone surrogates, invalid UTF-8 or
 * raw control characters in strings; duplicate object keys are an error unless allowed; numbers that
 * overflow a double are an error. Safe on any input: bounded nesting depth (recursion), memory linear
 * in the input size, every error names the source, line and column. Numbers keep their source text,
 * so integers beyond 2^53 can still be read exactly with sm_json_to_u64/i64. */
#ifndef SM_JSON_H
#define SM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

typedef enum sm_json_type {
    SM_JSON_NULL = 0,
    SM_JSON_FALSE,
    SM_JSON_TRUE,
    SM_JSON_NUMBER,
    SM_JSON_STRING,
    SM_JSON_ARRAY,
    SM_JSON_OBJECT
} sm_json_type;

typedef struct sm_json_value sm_json_value;
struct sm_json_value {
    sm_json_type type;
    size_t offset;          /* byte offset in the source text (of the key for object members) */
    const char *key;        /* object members: decoded key, NUL-terminated; NULL elsewhere */
    size_t key_len;
    const char *str;        /* string: decoded UTF-8, NUL-terminated (may hold NUL from \u0000, see len);
                               number: its source text, NUL-terminated */
    size_t len;             /* string/number: bytes of str; array/object: number of items */
    double num;             /* number: nearest double */
    sm_json_value *items;   /* array elements or object members, in source order */
};

typedef struct sm_json_options {
    int max_depth;              /* nesting limit of arrays/objects; 0 = 64, at most 1024 */
    bool allow_duplicate_keys;  /* false: a key twice in one object is an error */
} sm_json_options;

typedef struct sm_json_doc sm_json_doc;

/* Parses text[0..len) (need not be NUL-terminated). source names the text in messages ("vocab.json");
 * opts may be NULL for the defaults. The whole text must be one value plus whitespace. */
sm_status sm_json_parse(const char *text, size_t len, const char *source, const sm_json_options *opts,
                        sm_json_doc **out);
void sm_json_free(sm_json_doc *d);
const sm_json_value *sm_json_root(const sm_json_doc *d);

/* The member of obj with this key (first one if duplicates were allowed); NULL if obj is not an
 * object or has no such key. Linear in the member count. */
const sm_json_value *sm_json_get(const sm_json_value *obj, const char *key);
/* Exact integer value of a number written without fraction or exponent; SM_ERR_FORMAT (message says
 * what was expected, without context: callers prefix it) for anything else or out of range. */
sm_status sm_json_to_u64(const sm_json_value *v, uint64_t *out);
sm_status sm_json_to_i64(const sm_json_value *v, int64_t *out);
const char *sm_json_type_name(sm_json_type t);
/* 1-based line and column of a byte offset in text (for messages about values). */
void sm_json_line_col(const char *text, size_t len, size_t offset, int *line, int *col);
/* True if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
bool sm_utf8_valid(const char *s, size_t n);

#endif
