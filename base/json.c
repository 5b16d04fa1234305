#include "json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pool.h"

#define DEFAULT_MAX_DEPTH 64
#define MAX_MAX_DEPTH 1024 /* parsing recurses once per level: keep the stack bounded */

struct sm_json_doc {
    sm_pool pool;   /* every string and item array of the document */
    sm_json_value root;
};

void sm_json_free(sm_json_doc *d)
{
    if (!d) return;
    sm_pool_free(&d->pool);
    free(d);
}

const sm_json_value *sm_json_root(const sm_json_doc *d) { return d ? &d->root : NULL; }

/* ---- parser ----------------------------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t n, pos;
    const char *source;
    int depth, max_depth;
    bool allow_dup;
    sm_json_doc *doc;
    /* children of the containers being parsed; a closed container moves its run into the arena */
    sm_json_value *stack;
    size_t sp, cap;
} parser;

void sm_json_line_col(const char *text, size_t len, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            c++; /* columns count characters, not UTF-8 continuation bytes */
        }
    }
    *line = l;
    *col = c;
}

static sm_status fail_at(const parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static sm_status fail_at(const parser *p, size_t at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    sm_json_line_col(p->s, p->n, at, &line, &col);
    return sm_error(SM_ERR_FORMAT, "%s: line %d, column %d: %s", p->source, line, col, msg);
}

static sm_status oom(const parser *p)
{
    return sm_error(SM_ERR_NOMEM, "%s: out of memory while parsing JSON", p->source);
}

/* A printable description of the byte at pos for messages. */
static const char *describe(const parser *p, size_t pos, char *buf, size_t cap)
{
    if (pos >= p->n) return "end of input";
    unsigned char c = (unsigned char)p->s[pos];
    if (c >= 0x20 && c < 0x7F) snprintf(buf, cap, "'%c'", c);
    else snprintf(buf, cap, "byte 0x%02X", c);
    return buf;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; } /* no surrogates */
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; } /* <= U+10FFFF */
    else return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

bool sm_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static sm_status read_hex4(parser *p, size_t at, uint32_t *out)
{
    if (p->n - at < 4) return fail_at(p, at, "bad \\u escape: expected 4 hex digits, found the end");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[at + (size_t)i]);
        if (h < 0) return fail_at(p, at + (size_t)i, "bad \\u escape: expected 4 hex digits");
        v = v * 16 + (uint32_t)h;
    }
    *out = v;
    return SM_OK;
}

/* p->pos is at the opening quote. Decodes into the arena. */
static sm_status parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t start = p->pos++;
    /* find the closing quote first: the decoded text is never longer than the raw text */
    size_t end = p->pos;
    while (end < p->n && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->n) return fail_at(p, start, "unterminated string");
    char *o = sm_pool_alloc(&p->doc->pool, end - p->pos + 1);
    if (!o) return oom(p);
    size_t k = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '\\') {
            size_t at = p->pos;
            char e = p->s[p->pos + 1];
            p->pos += 2;
            switch (e) {
            case '"': o[k++] = '"'; break;
            case '\\': o[k++] = '\\'; break;
            case '/': o[k++] = '/'; break;
            case 'b': o[k++] = '\b'; break;
            case 'f': o[k++] = '\f'; break;
            case 'n': o[k++] = '\n'; break;
            case 'r': o[k++] = '\r'; break;
            case 't': o[k++] = '\t'; break;
            case 'u': {
                uint32_t cp;
                sm_status s = read_hex4(p, p->pos, &cp);
                if (s) return s;
                p->pos += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(p, at, "lone low surrogate \\u%04X", (unsigned)cp);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->pos + 2 > end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return fail_at(p, at, "high surrogate \\u%04X not followed by a low surrogate", (unsigned)cp);
                    s = read_hex4(p, p->pos + 2, &lo);
                    if (s) return s;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail_at(p, at, "high surrogate \\u%04X followed by \\u%04X, not a low surrogate",
                                       (unsigned)cp, (unsigned)lo);
                    p->pos += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                k += put_utf8(o + k, cp);
                break;
            }
            default: {
                char d[16];
                return fail_at(p, at, "bad escape \\%s in string", describe(p, at + 1, d, sizeof d));
            }
            }
        } else if (c < 0x20) {
            return fail_at(p, p->pos, "raw control character 0x%02X in string (escape it)", c);
        } else {
            size_t len = utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
            if (!len) return fail_at(p, p->pos, "invalid UTF-8 (byte 0x%02X) in string", c);
            memcpy(o + k, p->s + p->pos, len);
            k += len;
            p->pos += len;
        }
    }
    o[k] = '\0';
    p->pos = end + 1;
    *out = o;
    *out_len = k;
    return SM_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static sm_status parse_number(parser *p, sm_json_value *v)
{
    size_t start = p->pos, i = p->pos;
    if (i < p->n && p->s[i] == '-') i++;
    if (i >= p->n || !is_digit(p->s[i])) return fail_at(p, start, "bad number: expected a digit");
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && is_digit(p->s[i])) return fail_at(p, start, "bad number: leading zero");
    } else {
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && p->s[i] == '.') {
        i++;
        if (i >= p->n || !is_digit(p->s[i])) return fail_at(p, i, "bad number: expected a digit after '.'");
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->n || !is_digit(p->s[i])) return fail_at(p, i, "bad number: expected a digit in the exponent");
        while (i < p->n && is_digit(p->s[i])) i++;
    }
    size_t len = i - start;
    char *t = sm_pool_alloc(&p->doc->pool, len + 1);
    if (!t) return oom(p);
    memcpy(t, p->s + start, len);
    t[len] = '\0';
    /* strtod follows LC_NUMERIC; JSON's decimal point is always '.', so convert a copy that uses the
     * current locale's point (the stored text keeps '.'). */
    const char *dp = localeconv()->decimal_point;
    char *conv = t, *heap = NULL;
    if (dp && (dp[0] != '.' || dp[1] != '\0') && strchr(t, '.')) {
        size_t dpl = strlen(dp);
        heap = malloc(len + dpl + 1);
        if (!heap) return oom(p);
        char *dot = strchr(t, '.');
        size_t pre = (size_t)(dot - t);
        memcpy(heap, t, pre);
        memcpy(heap + pre, dp, dpl);
        strcpy(heap + pre + dpl, dot + 1);
        conv = heap;
    }
    errno = 0;
    double d = strtod(conv, NULL);
    int e = errno;
    free(heap);
    if (e == ERANGE && isinf(d)) return fail_at(p, start, "number %s is out of the range of a double", t);
    v->type = SM_JSON_NUMBER;
    v->str = t;
    v->len = len;
    v->num = d;
    p->pos = i;
    return SM_OK;
}

static sm_status push(parser *p, const sm_json_value *v)
{
    if (p->sp == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        sm_json_value *s = realloc(p->stack, cap * sizeof *s);
        if (!s) return oom(p);
        p->stack = s;
        p->cap = cap;
    }
    p->stack[p->sp++] = *v;
    return SM_OK;
}

/* Moves the children pushed since base into the arena as v's items. */
static sm_status close_container(parser *p, sm_json_value *v, size_t base)
{
    size_t n = p->sp - base;
    v->len = n;
    v->items = NULL;
    if (n) {
        v->items = sm_pool_alloc(&p->doc->pool, n * sizeof *v->items);
        if (!v->items) return oom(p);
        memcpy(v->items, p->stack + base, n * sizeof *v->items);
    }
    p->sp = base;
    return SM_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const sm_json_value *x = *(const sm_json_value *const *)a, *y = *(const sm_json_value *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return x->offset < y->offset ? -1 : (x->offset > y->offset);
}

static sm_status check_duplicates(parser *p, const sm_json_value *obj)
{
    size_t n = obj->len;
    if (n < 2) return SM_OK;
    const sm_json_value **idx = malloc(n * sizeof *idx);
    if (!idx) return oom(p);
    for (size_t i = 0; i < n; i++) idx[i] = &obj->items[i];
    qsort(idx, n, sizeof *idx, key_cmp);
    sm_status s = SM_OK;
    for (size_t i = 1; i < n && !s; i++) {
        const sm_json_value *a = idx[i - 1], *b = idx[i];
        if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0) {
            int line, col;
            sm_json_line_col(p->s, p->n, a->offset, &line, &col);
            s = fail_at(p, b->offset, "duplicate key \"%.*s\" (first at line %d)", (int)(a->key_len > 200 ? 200 : a->key_len),
                        a->key, line);
        }
    }
    free(idx);
    return s;
}

static sm_status parse_value(parser *p, sm_json_value *v);

static sm_status parse_array(parser *p, sm_json_value *v)
{
    size_t base = p->sp;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ']') {
        p->pos++;
        return close_container(p, v, base);
    }
    for (;;) {
        sm_json_value item;
        sm_status s = parse_value(p, &item);
        if (s) return s;
        if ((s = push(p, &item))) return s;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == ']') {
            p->pos++;
            return close_container(p, v, base);
        }
        char d[16];
        return fail_at(p, p->pos, "expected ',' or ']' in array, found %s", describe(p, p->pos, d, sizeof d));
    }
}

static sm_status parse_object(parser *p, sm_json_value *v)
{
    size_t base = p->sp;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == '}') {
        p->pos++;
        return close_container(p, v, base);
    }
    for (;;) {
        char d[16];
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != '"')
            return fail_at(p, p->pos, "expected a string key in object, found %s", describe(p, p->pos, d, sizeof d));
        size_t key_at = p->pos;
        const char *key;
        size_t key_len;
        sm_status s = parse_string(p, &key, &key_len);
        if (s) return s;
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':')
            return fail_at(p, p->pos, "expected ':' after object key, found %s", describe(p, p->pos, d, sizeof d));
        p->pos++;
        sm_json_value item;
        if ((s = parse_value(p, &item))) return s;
        item.key = key;
        item.key_len = key_len;
        item.offset = key_at; /* messages about a member point at its key */
        if ((s = push(p, &item))) return s;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == '}') {
            p->pos++;
            if ((s = close_container(p, v, base))) return s;
            return p->allow_dup ? SM_OK : check_duplicates(p, v);
        }
        return fail_at(p, p->pos, "expected ',' or '}' in object, found %s", describe(p, p->pos, d, sizeof d));
    }
}

static sm_status parse_literal(parser *p, const char *word, sm_json_type t, sm_json_value *v)
{
    size_t n = strlen(word);
    if (p->n - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        char d[16];
        return fail_at(p, p->pos, "unexpected %s (expected a JSON value)", describe(p, p->pos, d, sizeof d));
    }
    p->pos += n;
    v->type = t;
    return SM_OK;
}

static sm_status parse_value(parser *p, sm_json_value *v)
{
    skip_ws(p);
    memset(v, 0, sizeof *v);
    v->offset = p->pos;
    if (p->pos >= p->n) return fail_at(p, p->pos, "unexpected end of input (expected a JSON value)");
    char c = p->s[p->pos];
    sm_status s;
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > p->max_depth)
            return fail_at(p, p->pos, "nesting deeper than %d levels", p->max_depth);
        v->type = c == '{' ? SM_JSON_OBJECT : SM_JSON_ARRAY;
        s = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
        return s;
    case '"':
        v->type = SM_JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't': return parse_literal(p, "true", SM_JSON_TRUE, v);
    case 'f': return parse_literal(p, "false", SM_JSON_FALSE, v);
    case 'n': return parse_literal(p, "null", SM_JSON_NULL, v);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        char d[16];
        return fail_at(p, p->pos, "unexpected %s (expected a JSON value)", describe(p, p->pos, d, sizeof d));
    }
}

sm_status sm_json_parse(const char *text, size_t len, const char *source, const sm_json_options *opts,
                        sm_json_doc **out)
{
    *out = NULL;
    if (!source) source = "JSON";
    if (!text && len) return sm_error(SM_ERR_INVALID_ARG, "%s: null text", source);
    sm_json_doc *d = calloc(1, sizeof *d);
    if (!d) return sm_error(SM_ERR_NOMEM, "%s: out of memory while parsing JSON", source);
    parser p = {
        .s = text ? text : "",
        .n = len,
        .source = source,
        .max_depth = opts && opts->max_depth > 0 ? (opts->max_depth < MAX_MAX_DEPTH ? opts->max_depth : MAX_MAX_DEPTH)
                                                   : DEFAULT_MAX_DEPTH,
        .allow_dup = opts && opts->allow_duplicate_keys,
        .doc = d,
    };
    sm_status s = parse_value(&p, &d->root);
    if (!s) {
        skip_ws(&p);
        if (p.pos < p.n) {
            char dsc[16];
            s = fail_at(&p, p.pos, "unexpected %s after the JSON value", describe(&p, p.pos, dsc, sizeof dsc));
        }
    }
    free(p.stack);
    if (s) {
        sm_json_free(d);
        return s;
    }
    *out = d;
    return SM_OK;
}

/* ---- queries ---------------------------------------------------------------------------------- */

const sm_json_value *sm_json_get(const sm_json_value *obj, const char *key)
{
    if (!obj || obj->type != SM_JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->len; i++) {
        const sm_json_value *m = &obj->items[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
    }
    return NULL;
}

const char *sm_json_type_name(sm_json_type t)
{
    static const char *names[] = {"null", "false", "true", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static sm_status integer_digits(const sm_json_value *v, const char **digits, bool *neg)
{
    if (!v || v->type != SM_JSON_NUMBER) return sm_error(SM_ERR_FORMAT, "expected an integer, found %s",
                                                          v ? sm_json_type_name(v->type) : "nothing");
    const char *s = v->str;
    *neg = s[0] == '-';
    if (*neg) s++;
    for (const char *c = s; *c; c++)
        if (!is_digit(*c)) return sm_error(SM_ERR_FORMAT, "expected an integer, found %s", v->str);
    *digits = s;
    return SM_OK;
}

sm_status sm_json_to_u64(const sm_json_value *v, uint64_t *out)
{
    const char *d = NULL;
    bool neg = false;
    sm_status s = integer_digits(v, &d, &neg);
    if (s) return s;
    uint64_t x = 0;
    for (; *d; d++) {
        uint64_t digit = (uint64_t)(*d - '0');
        if (x > (UINT64_MAX - digit) / 10) return sm_error(SM_ERR_FORMAT, "integer %s is too large", v->str);
        x = x * 10 + digit;
    }
    if (neg && x != 0) return sm_error(SM_ERR_FORMAT, "expected a non-negative integer, found %s", v->str);
    *out = x;
    return SM_OK;
}

sm_status sm_json_to_i64(const sm_json_value *v, int64_t *out)
{
    const char *d = NULL;
    bool neg = false;
    sm_status s = integer_digits(v, &d, &neg);
    if (s) return s;
    uint64_t x = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *d; d++) {
        uint64_t digit = (uint64_t)(*d - '0');
        if (x > (limit - digit) / 10) return sm_error(SM_ERR_FORMAT, "integer %s is out of range", v->str);
        x = x * 10 + digit;
    }
    *out = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
    return SM_OK;
}
