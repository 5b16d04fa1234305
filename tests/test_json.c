/* Tests of the strict JSON parser and the JSON string and number writers. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"

static sm_json_doc *parse_ok(const char *text)
{
    sm_json_doc *d = NULL;
    sm_status s = sm_json_parse(text, strlen(text), "t.json", NULL, &d);
    cr_assert_eq(s, SM_OK, "parse of %s failed: %s", text, sm_last_error());
    return d;
}

/* Parses text (len bytes), expects SM_ERR_FORMAT and a message containing want. */
static void parse_fails_n(const char *text, size_t len, const char *want)
{
    sm_json_doc *d = (sm_json_doc *)1;
    sm_status s = sm_json_parse(text, len, "t.json", NULL, &d);
    cr_assert_eq(s, SM_ERR_FORMAT, "parse of '%.*s' should fail", (int)len, text);
    cr_assert_null(d);
    cr_assert(strstr(sm_last_error(), want), "message '%s' lacks '%s'", sm_last_error(), want);
    cr_assert(strncmp(sm_last_error(), "t.json: line ", 13) == 0, "message '%s' names no source/line", sm_last_error());
}

static void parse_fails(const char *text, const char *want) { parse_fails_n(text, strlen(text), want); }

Test(json, structure_and_order)
{
    sm_json_doc *d = parse_ok(" {\"b\": [1, 2.5, -3e2, true, false, null, {}, []], \"a\": {\"x\": \"y\"}, \"\": 0 }\n");
    const sm_json_value *r = sm_json_root(d);
    cr_assert_eq(r->type, SM_JSON_OBJECT);
    cr_assert_eq(r->len, 3);
    cr_assert_str_eq(r->items[0].key, "b");
    cr_assert_str_eq(r->items[1].key, "a");
    cr_assert_str_eq(r->items[2].key, "");
    const sm_json_value *b = sm_json_get(r, "b");
    cr_assert_eq(b->type, SM_JSON_ARRAY);
    cr_assert_eq(b->len, 8);
    cr_assert_eq(b->items[0].num, 1.0);
    cr_assert_eq(b->items[1].num, 2.5);
    cr_assert_eq(b->items[2].num, -300.0);
    cr_assert_str_eq(b->items[2].str, "-3e2");
    cr_assert_eq(b->items[3].type, SM_JSON_TRUE);
    cr_assert_eq(b->items[4].type, SM_JSON_FALSE);
    cr_assert_eq(b->items[5].type, SM_JSON_NULL);
    cr_assert_eq(b->items[6].type, SM_JSON_OBJECT);
    cr_assert_eq(b->items[6].len, 0);
    cr_assert_eq(b->items[7].type, SM_JSON_ARRAY);
    cr_assert_eq(b->items[7].len, 0);
    cr_assert_str_eq(sm_json_get(sm_json_get(r, "a"), "x")->str, "y");
    cr_assert_null(sm_json_get(r, "missing"));
    cr_assert_null(sm_json_get(b, "b"), "get on an array finds nothing");
    sm_json_free(d);
}

Test(json, scalars_at_top_level)
{
    const char *ok[] = {"0", "-0", "\"s\"", "true", "null", "  12  ", "1E+2", "0.5e-3"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) sm_json_free(parse_ok(ok[i]));
}

Test(json, string_escapes)
{
    sm_json_doc *d = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", \"\\ud83d\\ude00\", \"x\\u0000y\", \"caf\xc3\xa9 \xf0\x9f\x98\x80\"]");
    const sm_json_value *r = sm_json_root(d);
    cr_assert_str_eq(r->items[0].str, "a\"b\\c/d\b\f\n\r\t");
    cr_assert_str_eq(r->items[1].str, "\xc3\xa9\xe2\x82\xac");
    cr_assert_str_eq(r->items[2].str, "\xf0\x9f\x98\x80");
    cr_assert_eq(r->items[3].len, 3);
    cr_assert_eq(memcmp(r->items[3].str, "x\0y", 3), 0);
    cr_assert_str_eq(r->items[4].str, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    sm_json_free(d);
}

Test(json, integers_exact)
{
    sm_json_doc *d = parse_ok("[18446744073709551615, 18446744073709551616, 9223372036854775807, -9223372036854775808,"
                              " -9223372036854775809, 1.0, 1e3, -1, 0, 9007199254740993]");
    const sm_json_value *a = sm_json_root(d)->items;
    uint64_t u;
    int64_t i;
    cr_assert_eq(sm_json_to_u64(&a[0], &u), SM_OK);
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(sm_json_to_u64(&a[1], &u), SM_ERR_FORMAT);
    cr_assert_eq(sm_json_to_i64(&a[2], &i), SM_OK);
    cr_assert_eq(i, INT64_MAX);
    cr_assert_eq(sm_json_to_i64(&a[3], &i), SM_OK);
    cr_assert_eq(i, INT64_MIN);
    cr_assert_eq(sm_json_to_i64(&a[4], &i), SM_ERR_FORMAT);
    cr_assert_eq(sm_json_to_u64(&a[5], &u), SM_ERR_FORMAT, "1.0 is not an integer here");
    cr_assert_eq(sm_json_to_u64(&a[6], &u), SM_ERR_FORMAT, "1e3 is not an integer here");
    cr_assert_eq(sm_json_to_u64(&a[7], &u), SM_ERR_FORMAT, "negative");
    cr_assert_eq(sm_json_to_i64(&a[7], &i), SM_OK);
    cr_assert_eq(i, -1);
    cr_assert_eq(sm_json_to_u64(&a[8], &u), SM_OK);
    cr_assert_eq(u, 0);
    cr_assert_eq(sm_json_to_u64(&a[9], &u), SM_OK);
    cr_assert_eq(u, 9007199254740993ull, "beyond 2^53 stays exact");
    cr_assert_eq(sm_json_to_u64(sm_json_root(d), &u), SM_ERR_FORMAT, "an array is not an integer");
    sm_json_free(d);
}

Test(json, syntax_errors)
{
    parse_fails("", "unexpected end of input");
    parse_fails("   ", "unexpected end of input");
    parse_fails("[1,2,]", "unexpected ']'");
    parse_fails("{\"a\":1,}", "expected a string key");
    parse_fails("{\"a\" 1}", "expected ':'");
    parse_fails("{a:1}", "expected a string key");
    parse_fails("['a']", "unexpected '''");
    parse_fails("[1 2]", "expected ',' or ']'");
    parse_fails("{\"a\":1 \"b\":2}", "expected ',' or '}'");
    parse_fails("01", "leading zero");
    parse_fails("-", "expected a digit");
    parse_fails("1.", "expected a digit after '.'");
    parse_fails(".5", "unexpected '.'");
    parse_fails("1e", "expected a digit in the exponent");
    parse_fails("+1", "unexpected '+'");
    parse_fails("NaN", "unexpected 'N'");
    parse_fails("Infinity", "unexpected 'I'");
    parse_fails("1e400", "out of the range");
    parse_fails("tru", "unexpected 't'");
    parse_fails("nul", "unexpected 'n'");
    parse_fails("\"abc", "unterminated string");
    parse_fails("\"a\\", "unterminated string");
    parse_fails("\"\\x\"", "bad escape");
    parse_fails("\"\\u12g4\"", "bad \\u escape");
    parse_fails("\"\\u12\"", "bad \\u escape");
    parse_fails("\"\\ud800\"", "not followed by a low surrogate");
    parse_fails("\"\\ud800\\u0041\"", "not a low surrogate");
    parse_fails("\"\\udc00\"", "lone low surrogate");
    parse_fails("\"a\tb\"", "raw control character 0x09");
    parse_fails("\"\xc0\x80\"", "invalid UTF-8");          /* overlong NUL */
    parse_fails("\"\xed\xa0\x80\"", "invalid UTF-8");      /* encoded surrogate */
    parse_fails("\"\xf4\x90\x80\x80\"", "invalid UTF-8");  /* above U+10FFFF */
    parse_fails("\"\xe2\x82\"", "invalid UTF-8");          /* truncated sequence */
    parse_fails("\"\xff\"", "invalid UTF-8");
    parse_fails("{} x", "after the JSON value");
    parse_fails("[] []", "after the JSON value");
    parse_fails("// c\n{}", "unexpected '/'");
    parse_fails("[1] /* c */", "after the JSON value");
    parse_fails("\xef\xbb\xbf{}", "byte 0xEF"); /* a BOM is not JSON */
    parse_fails_n("[1,\0 2]", 7, "byte 0x00");
}

Test(json, error_positions)
{
    parse_fails("{\n  \"a\": 1,\n  \"b\": [1,\n    2,, 3]\n}", "line 4, column 7");
    parse_fails("[\"\xc3\xa9\xc3\xa9\", x]", "line 1, column 8"); /* columns count characters, not bytes */
}

Test(json, duplicate_keys)
{
    parse_fails("{\"a\": 1, \"b\": 2,\n \"a\": 3}", "duplicate key \"a\" (first at line 1)");
    /* many members: the sorted check must find it too */
    char buf[4096];
    size_t k = (size_t)snprintf(buf, sizeof buf, "{");
    for (int i = 0; i < 200; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "\"k%d\":%d,", i, i);
    snprintf(buf + k, sizeof buf - k, "\"k137\":0}");
    parse_fails(buf, "duplicate key \"k137\"");
    buf[k] = '\0';
    snprintf(buf + k, sizeof buf - k, "\"k200\":0}");
    sm_json_free(parse_ok(buf));
    /* keys equal up to an embedded NUL are different keys */
    sm_json_free(parse_ok("{\"a\\u0000b\": 1, \"a\": 2, \"a\\u0000c\": 3}"));
    sm_json_options o = {.allow_duplicate_keys = true};
    sm_json_doc *d;
    const char *t = "{\"a\": 1, \"a\": 2}";
    cr_assert_eq(sm_json_parse(t, strlen(t), "t", &o, &d), SM_OK);
    cr_assert_eq(sm_json_get(sm_json_root(d), "a")->num, 1.0, "first of the duplicates");
    sm_json_free(d);
}

Test(json, depth_limit)
{
    char buf[300];
    for (int depth = 63; depth <= 65; depth++) {
        memset(buf, '[', (size_t)depth);
        memset(buf + depth, ']', (size_t)depth);
        sm_json_doc *d = NULL;
        sm_status s = sm_json_parse(buf, 2 * (size_t)depth, "deep", NULL, &d);
        if (depth <= 64) {
            cr_assert_eq(s, SM_OK, "depth %d: %s", depth, sm_last_error());
            sm_json_free(d);
        } else {
            cr_assert_eq(s, SM_ERR_FORMAT);
            cr_assert(strstr(sm_last_error(), "nesting deeper than 64 levels"), "%s", sm_last_error());
        }
    }
    sm_json_options o = {.max_depth = 3};
    sm_json_doc *d;
    cr_assert_eq(sm_json_parse("[[[1]]]", 7, "t", &o, &d), SM_OK);
    sm_json_free(d);
    cr_assert_eq(sm_json_parse("[{\"a\":[[1]]}]", 13, "t", &o, &d), SM_ERR_FORMAT);
    /* a deep unbalanced input must not recurse without bound */
    static char deep[1 << 20];
    memset(deep, '[', sizeof deep);
    cr_assert_eq(sm_json_parse(deep, sizeof deep, "t", NULL, &d), SM_ERR_FORMAT);
}

/* Any prefix of a document is malformed, and any mutation parses or fails cleanly (the sanitizer
 * build turns a bad read into a crash). */
Test(json, truncations_and_mutations_never_crash)
{
    const char *doc = "{\"__metadata__\":{\"k\":\"v\\u00e9\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                      "\"data_offsets\":[0,24]},\"x\":[true,false,null,-1.5e-3,\"\\ud83d\\ude00\"]}";
    size_t n = strlen(doc);
    sm_json_doc *d;
    for (size_t len = 0; len < n; len++) {
        char *copy = malloc(len ? len : 1); /* exact size: a read past the end is caught */
        memcpy(copy, doc, len);
        cr_assert_eq(sm_json_parse(copy, len, "t", NULL, &d), SM_ERR_FORMAT, "prefix of %zu bytes parsed", len);
        free(copy);
    }
    uint32_t x = 2463534242u;
    for (int iter = 0; iter < 20000; iter++) {
        char *copy = malloc(n);
        memcpy(copy, doc, n);
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t at = x % n;
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            copy[at] = (iter & 1) ? (char)x : "{}[]\",:\\u0e-. \n"[x % 16];
        }
        sm_status s = sm_json_parse(copy, n, "t", NULL, &d);
        cr_assert(s == SM_OK || s == SM_ERR_FORMAT);
        if (s == SM_OK) sm_json_free(d);
        free(copy);
    }
}

Test(json, utf8_validation)
{
    cr_assert(sm_utf8_valid("", 0));
    cr_assert(sm_utf8_valid("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 20));
    cr_assert_not(sm_utf8_valid("\xc3", 1));
    cr_assert_not(sm_utf8_valid("\xc1\xbf", 2));
    cr_assert_not(sm_utf8_valid("\xe0\x9f\xbf", 3));   /* overlong 3-byte */
    cr_assert_not(sm_utf8_valid("\xed\xbf\xbf", 3));   /* surrogate */
    cr_assert_not(sm_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong 4-byte */
    cr_assert_not(sm_utf8_valid("\xf5\x80\x80\x80", 4));
    cr_assert_not(sm_utf8_valid("\x80", 1));
}

Test(json, writer_round_trip)
{
    char all[200];
    size_t n = 0;
    for (int c = 1; c < 128; c++) all[n++] = (char)c;
    memcpy(all + n, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    n += 6;
    sm_buf b;
    sm_buf_init(&b);
    sm_buf_puts(&b, "{");
    sm_buf_json_string(&b, all, n);
    sm_buf_printf(&b, ":[%d,%s]}", 42, "true");
    cr_assert_not(b.failed);
    cr_assert(strstr(b.data, "\\u001f") && strstr(b.data, "\\\"") && strstr(b.data, "\\\\") && strstr(b.data, "\\n"));
    sm_json_doc *d = parse_ok(b.data);
    const sm_json_value *m = &sm_json_root(d)->items[0];
    cr_assert_eq(m->key_len, n);
    cr_assert_eq(memcmp(m->key, all, n), 0);
    cr_assert_eq(m->items[0].num, 42.0);
    sm_json_free(d);
    sm_buf_free(&b);
}

Test(json, numbers_that_json_cannot_hold_are_written_as_null)
{
    sm_buf b;
    sm_buf_init(&b);
    sm_buf_puts(&b, "[");
    sm_buf_json_number(&b, 2.5, 3);
    sm_buf_puts(&b, ",");
    sm_buf_json_number(&b, NAN, 3);
    sm_buf_puts(&b, ",");
    sm_buf_json_number(&b, INFINITY, 6);
    sm_buf_puts(&b, ",");
    sm_buf_json_number(&b, -INFINITY, 0);
    sm_buf_puts(&b, "]");
    cr_assert_not(b.failed);
    cr_assert_str_eq(b.data, "[2.500,null,null,null]");
    sm_json_free(parse_ok(b.data));
    sm_buf_free(&b);
}
