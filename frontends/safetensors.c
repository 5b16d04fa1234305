#include "safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../base/error.h"
#include "../base/atomic_file.h"
#include "../base/fp16.h"
#include "../base/buf.h"
#include "../base/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

#define CORRUPT "the file is corrupt: re-save it or restore it from a backup"
#define NOT_ST "the file is truncated or not a safetensors file"
#define KEY_VERSION "sm.format_version"
#define KEY_SUM "sm.xxh3."
#define NAME_SHOWN 200 /* longest name quoted in a message */

static const struct {
    const char *name;
    size_t size;
} dtypes[SM_ST_DTYPE_COUNT] = {
    [SM_ST_BOOL] = {"BOOL", 1}, [SM_ST_U8] = {"U8", 1},     [SM_ST_I8] = {"I8", 1},
    [SM_ST_F8_E5M2] = {"F8_E5M2", 1}, [SM_ST_F8_E4M3] = {"F8_E4M3", 1},
    [SM_ST_I16] = {"I16", 2},   [SM_ST_U16] = {"U16", 2},   [SM_ST_F16] = {"F16", 2},
    [SM_ST_BF16] = {"BF16", 2}, [SM_ST_I32] = {"I32", 4},   [SM_ST_U32] = {"U32", 4},
    [SM_ST_F32] = {"F32", 4},   [SM_ST_F64] = {"F64", 8},   [SM_ST_I64] = {"I64", 8},
    [SM_ST_U64] = {"U64", 8},
};

const char *sm_st_dtype_name(sm_st_dtype t) { return (unsigned)t < SM_ST_DTYPE_COUNT ? dtypes[t].name : "?"; }
size_t sm_st_dtype_size(sm_st_dtype t) { return (unsigned)t < SM_ST_DTYPE_COUNT ? dtypes[t].size : 0; }

bool sm_st_dtype_parse(const char *name, sm_st_dtype *out)
{
    for (int i = 0; i < SM_ST_DTYPE_COUNT; i++)
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = (sm_st_dtype)i;
            return true;
        }
    return false;
}

sm_st_dtype sm_st_dtype_from_sm(sm_dtype t)
{
    switch (t) {
    case SM_F16: return SM_ST_F16;
    case SM_BF16: return SM_ST_BF16;
    case SM_I32: return SM_ST_I32;
    default: return SM_ST_F32;
    }
}

bool sm_st_dtype_to_sm(sm_st_dtype t, sm_dtype *out)
{
    switch (t) {
    case SM_ST_F32: *out = SM_F32; return true;
    case SM_ST_F16: *out = SM_F16; return true;
    case SM_ST_BF16: *out = SM_BF16; return true;
    case SM_ST_I32: *out = SM_I32; return true;
    default: return false;
    }
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct meta_entry {
    const char *key, *value;
} meta_entry;

struct sm_st_file {
    char *name;
    sm_file_map map;                 /* empty when opened from memory */
    const unsigned char *bytes;
    size_t size;
    sm_json_doc *doc;                /* owns the names and metadata strings */
    sm_st_tensor *t;                 /* in data-section order */
    int n;
    int *by_name;                    /* indices of t sorted by name, for lookup */
    meta_entry *meta;
    int n_meta;
};

static int name_shown(const char *s) { return (int)(strlen(s) > NAME_SHOWN ? NAME_SHOWN : strlen(s)); }

/* "file: tensor 'x': " + message */
static sm_status tensor_error(const sm_st_file *f, const char *tname, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sm_status tensor_error(const sm_st_file *f, const char *tname, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sm_error(SM_ERR_FORMAT, "%s: tensor '%.*s': %s", f->name, name_shown(tname), tname, msg);
}

static void shape_str(const sm_st_tensor *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static sm_status parse_tensor(sm_st_file *f, const sm_json_value *m, uint64_t data_size, sm_st_tensor *t)
{
    const char *nm = m->key;
    if (strlen(nm) != m->key_len) return tensor_error(f, nm, "the name contains a NUL character; " CORRUPT);
    memset(t, 0, sizeof *t);
    t->name = nm;
    if (m->type != SM_JSON_OBJECT)
        return tensor_error(f, nm, "expected an object with dtype, shape and data_offsets, found %s; " CORRUPT,
                            sm_json_type_name(m->type));
    const sm_json_value *dt = NULL, *sh = NULL, *off = NULL;
    for (size_t i = 0; i < m->len; i++) {
        const sm_json_value *fld = &m->items[i];
        if (strcmp(fld->key, "dtype") == 0) dt = fld;
        else if (strcmp(fld->key, "shape") == 0) sh = fld;
        else if (strcmp(fld->key, "data_offsets") == 0) off = fld;
        else return tensor_error(f, nm, "unknown field '%.*s' (expected dtype, shape, data_offsets); " CORRUPT,
                                 name_shown(fld->key), fld->key);
    }
    if (!dt || !sh || !off)
        return tensor_error(f, nm, "missing field '%s'; " CORRUPT, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (dt->type != SM_JSON_STRING)
        return tensor_error(f, nm, "dtype is a JSON %s, not a string; " CORRUPT, sm_json_type_name(dt->type));
    if (!sm_st_dtype_parse(dt->str, &t->dtype))
        return tensor_error(f, nm, "unknown dtype '%.*s' (known: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 "
                            "F32 F64 I64 U64); the file is corrupt or from a newer writer",
                            name_shown(dt->str), dt->str);
    if (sh->type != SM_JSON_ARRAY) return tensor_error(f, nm, "shape is not an array; " CORRUPT);
    if (sh->len > SM_ST_MAX_DIMS)
        return tensor_error(f, nm, "shape has %zu dimensions, more than the %d supported", sh->len, SM_ST_MAX_DIMS);
    t->ndim = (int)sh->len;
    uint64_t numel = 1;
    bool overflow = false;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t v;
        if (sm_json_to_u64(&sh->items[d], &v) || v > (uint64_t)INT64_MAX)
            return tensor_error(f, nm, "shape entry %d is not a non-negative integer; " CORRUPT, d);
        t->shape[d] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, v, &numel);
    }
    uint64_t nbytes;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)sm_st_dtype_size(t->dtype), &nbytes);
    if (overflow || numel > (uint64_t)INT64_MAX) return tensor_error(f, nm, "shape is too large (overflow); " CORRUPT);
    t->numel = (int64_t)numel;
    if (off->type != SM_JSON_ARRAY || off->len != 2 || sm_json_to_u64(&off->items[0], &t->begin) ||
        sm_json_to_u64(&off->items[1], &t->end))
        return tensor_error(f, nm, "data_offsets must be an array of two non-negative integers; " CORRUPT);
    if (t->end < t->begin)
        return tensor_error(f, nm, "data_offsets [%llu, %llu] end before they begin; " CORRUPT,
                            (unsigned long long)t->begin, (unsigned long long)t->end);
    char sbuf[160];
    shape_str(t, sbuf, sizeof sbuf);
    if (t->end - t->begin != nbytes)
        return tensor_error(f, nm, "shape %s of %s needs %llu bytes but data_offsets [%llu, %llu] span %llu; " CORRUPT,
                            sbuf, sm_st_dtype_name(t->dtype), (unsigned long long)nbytes,
                            (unsigned long long)t->begin, (unsigned long long)t->end,
                            (unsigned long long)(t->end - t->begin));
    if (t->end > data_size)
        return tensor_error(f, nm, "data ends at byte %llu of the data section, but the file holds only %llu data "
                            "bytes: the file is truncated; re-save it or restore it from a backup",
                            (unsigned long long)t->end, (unsigned long long)data_size);
    t->nbytes = (size_t)nbytes;
    return SM_OK;
}

static int cmp_offsets(const void *a, const void *b)
{
    const sm_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_names_ctx(const sm_st_tensor *t, int a, int b) { return strcmp(t[a].name, t[b].name); }

/* Sorts idx by tensor name: a merge sort, because qsort cannot carry the tensor array. */
static void sort_by_name(const sm_st_tensor *t, int *idx, int *tmp, int n)
{
    if (n < 2) return;
    int h = n / 2;
    sort_by_name(t, idx, tmp, h);
    sort_by_name(t, idx + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp_names_ctx(t, idx[i], idx[j]) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static sm_st_tensor *find_tensor(const sm_st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static bool parse_hex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0 || i >= 16) return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return i == 16;
}

static sm_status parse_metadata(sm_st_file *f, const sm_json_value *m)
{
    if (m->type == SM_JSON_NULL) return SM_OK;
    if (m->type != SM_JSON_OBJECT)
        return sm_error(SM_ERR_FORMAT, "%s: __metadata__ must be an object of strings, found %s; " CORRUPT, f->name,
                        sm_json_type_name(m->type));
    f->meta = malloc((m->len ? m->len : 1) * sizeof *f->meta);
    if (!f->meta) return sm_error(SM_ERR_NOMEM, "%s: out of memory for the metadata", f->name);
    for (size_t i = 0; i < m->len; i++) {
        const sm_json_value *e = &m->items[i];
        if (e->type != SM_JSON_STRING)
            return sm_error(SM_ERR_FORMAT, "%s: __metadata__ entry '%.*s' is a %s, not a string; " CORRUPT, f->name,
                            name_shown(e->key), e->key, sm_json_type_name(e->type));
        if (strlen(e->key) != e->key_len || strlen(e->str) != e->len)
            return sm_error(SM_ERR_FORMAT, "%s: __metadata__ entry '%.*s' contains a NUL character; " CORRUPT,
                            f->name, name_shown(e->key), e->key);
        f->meta[f->n_meta++] = (meta_entry){e->key, e->str};
    }
    return SM_OK;
}

/* Reads sm.format_version and the sm.xxh3.* entries, then verifies each tensor's bytes. */
static sm_status verify_checksums(sm_st_file *f)
{
    const char *ver = sm_st_metadata_get(f, KEY_VERSION);
    if (ver) {
        char *end;
        long v = strtol(ver, &end, 10);
        if (!*ver || *end || v < 1)
            return sm_error(SM_ERR_FORMAT, "%s: bad %s '%.*s'; " CORRUPT, f->name, KEY_VERSION, name_shown(ver), ver);
        if (v > SM_ST_FORMAT_VERSION)
            return sm_error(SM_ERR_UNSUPPORTED, "%s: written with SmallMind format version %ld, newer than this "
                            "build's %d; upgrade SmallMind to read it", f->name, v, SM_ST_FORMAT_VERSION);
    }
    size_t plen = strlen(KEY_SUM);
    for (int i = 0; i < f->n_meta; i++) {
        const char *k = f->meta[i].key;
        if (strncmp(k, KEY_SUM, plen) != 0) continue;
        sm_st_tensor *t = find_tensor(f, k + plen);
        if (!t)
            return sm_error(SM_ERR_FORMAT, "%s: __metadata__ has a checksum for tensor '%.*s', which the file does not "
                            "contain; " CORRUPT, f->name, name_shown(k + plen), k + plen);
        if (!parse_hex64(f->meta[i].value, &t->checksum))
            return tensor_error(f, t->name, "checksum '%.*s' is not 16 lowercase hex digits; " CORRUPT,
                                name_shown(f->meta[i].value), f->meta[i].value);
        t->has_checksum = true;
    }
    for (int i = 0; i < f->n; i++) {
        sm_st_tensor *t = &f->t[i];
        if (!t->has_checksum) {
            if (ver)
                return tensor_error(f, t->name, "no checksum, although the file was written by SmallMind (it has %s); "
                                    CORRUPT, KEY_VERSION);
            continue;
        }
        uint64_t h = XXH3_64bits(t->data, t->nbytes);
        if (h != t->checksum)
            return tensor_error(f, t->name, "data checksum mismatch (file corrupt or truncated); re-save or restore "
                                "from backup");
    }
    return SM_OK;
}

static sm_status parse_file(sm_st_file *f)
{
    if (f->size < 8)
        return sm_error(SM_ERR_FORMAT, "%s: the file is %zu bytes, too small to hold a safetensors header length; "
                        NOT_ST, f->name, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->bytes[i];
    if (hlen > SM_ST_MAX_HEADER)
        return sm_error(SM_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u bytes; " NOT_ST, f->name,
                        (unsigned long long)hlen, SM_ST_MAX_HEADER);
    if (hlen > f->size - 8)
        return sm_error(SM_ERR_FORMAT, "%s: header length %llu, but only %zu bytes follow; " NOT_ST, f->name,
                        (unsigned long long)hlen, f->size - 8);
    const char *hdr = (const char *)f->bytes + 8;
    if (hlen == 0 || hdr[0] != '{')
        return sm_error(SM_ERR_FORMAT, "%s: the header does not start with '{'; " NOT_ST, f->name);
    uint64_t data_size = f->size - 8 - hlen;
    const unsigned char *data = f->bytes + 8 + hlen;

    char source[512];
    snprintf(source, sizeof source, "%s: header", f->name);
    sm_status s = sm_json_parse(hdr, (size_t)hlen, source, NULL, &f->doc);
    if (s) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sm_last_error());
        return sm_error(s, "%s; %s", msg, s == SM_ERR_FORMAT ? CORRUPT : "free memory and retry");
    }
    const sm_json_value *root = sm_json_root(f->doc);
    if (root->type != SM_JSON_OBJECT)
        return sm_error(SM_ERR_FORMAT, "%s: the header is a JSON %s, not an object; " NOT_ST, f->name,
                        sm_json_type_name(root->type));
    f->t = malloc((root->len ? root->len : 1) * sizeof *f->t);
    f->by_name = malloc((root->len ? root->len : 1) * sizeof *f->by_name);
    if (!f->t || !f->by_name) return sm_error(SM_ERR_NOMEM, "%s: out of memory for %zu tensors", f->name, root->len);
    for (size_t i = 0; i < root->len; i++) {
        const sm_json_value *m = &root->items[i];
        if (strcmp(m->key, "__metadata__") == 0 && m->key_len == 12) {
            if ((s = parse_metadata(f, m))) return s;
            continue;
        }
        if ((s = parse_tensor(f, m, data_size, &f->t[f->n]))) return s;
        f->n++;
    }

    /* The tensors must tile the data section: sorted by offset, each begins where the last ended. */
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offsets);
    uint64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const sm_st_tensor *t = &f->t[i];
        if (t->begin < at)
            return tensor_error(f, t->name, "bytes [%llu, %llu) overlap tensor '%.*s' [%llu, %llu); " CORRUPT,
                                (unsigned long long)t->begin, (unsigned long long)t->end, name_shown(f->t[i - 1].name),
                                f->t[i - 1].name, (unsigned long long)f->t[i - 1].begin,
                                (unsigned long long)f->t[i - 1].end);
        if (t->begin > at)
            return tensor_error(f, t->name, "begins at byte %llu, leaving a gap of %llu unused bytes after byte %llu; "
                                CORRUPT, (unsigned long long)t->begin, (unsigned long long)(t->begin - at),
                                (unsigned long long)at);
        at = t->end;
    }
    if (at != data_size)
        return sm_error(SM_ERR_FORMAT, "%s: the tensors cover %llu bytes, but the data section has %llu: %llu bytes "
                        "of trailing garbage; " CORRUPT, f->name, (unsigned long long)at,
                        (unsigned long long)data_size, (unsigned long long)(data_size - at));
    for (int i = 0; i < f->n; i++) {
        f->t[i].data = data + f->t[i].begin;
        f->by_name[i] = i;
    }
    int *tmp = malloc((size_t)(f->n ? f->n : 1) * sizeof *tmp);
    if (!tmp) return sm_error(SM_ERR_NOMEM, "%s: out of memory", f->name);
    sort_by_name(f->t, f->by_name, tmp, f->n);
    free(tmp);
    return verify_checksums(f);
}

static sm_status open_common(sm_st_file *f, sm_st_file **out)
{
    sm_status s = parse_file(f);
    if (s) {
        sm_st_close(f);
        return s;
    }
    *out = f;
    return SM_OK;
}

sm_status sm_st_open_memory(const void *bytes, size_t size, const char *name, sm_st_file **out)
{
    *out = NULL;
    if (!name) name = "(memory)";
    if (!bytes && size) return sm_error(SM_ERR_INVALID_ARG, "%s: null bytes", name);
    sm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return sm_error(SM_ERR_NOMEM, "%s: out of memory", name);
    }
    f->bytes = bytes;
    f->size = size;
    return open_common(f, out);
}

sm_status sm_st_open(const char *path, sm_st_file **out)
{
    *out = NULL;
    if (!path) return sm_error(SM_ERR_INVALID_ARG, "safetensors: null path");
    sm_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(path))) {
        free(f);
        return sm_error(SM_ERR_NOMEM, "%s: out of memory", path);
    }
    sm_status s = sm_file_map_open(path, &f->map);
    if (s) {
        sm_st_close(f);
        return s;
    }
    f->bytes = f->map.data;
    f->size = f->map.size;
    return open_common(f, out);
}

void sm_st_close(sm_st_file *f)
{
    if (!f) return;
    sm_file_map_close(&f->map);
    sm_json_free(f->doc);
    free(f->t);
    free(f->by_name);
    free(f->meta);
    free(f->name);
    free(f);
}

const char *sm_st_name(const sm_st_file *f) { return f->name; }
int sm_st_count(const sm_st_file *f) { return f->n; }
const sm_st_tensor *sm_st_at(const sm_st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const sm_st_tensor *sm_st_find(const sm_st_file *f, const char *name) { return name ? find_tensor(f, name) : NULL; }

sm_status sm_st_get(const sm_st_file *f, const char *name, const sm_st_tensor **out)
{
    *out = sm_st_find(f, name);
    if (*out) return SM_OK;
    char some[256] = "";
    size_t k = 0;
    for (int i = 0; i < f->n && i < 3 && k < sizeof some; i++)
        k += (size_t)snprintf(some + k, sizeof some - k, "%s'%.60s'", i ? ", " : "", f->t[i].name);
    return sm_error(SM_ERR_FORMAT, "%s: no tensor named '%.*s' (the file has %d tensors%s%s%s); is it the right file?",
                    f->name, name ? name_shown(name) : 6, name ? name : "(null)", f->n, f->n ? ", e.g. " : "", some,
                    f->n > 3 ? ", ..." : "");
}

int sm_st_metadata_count(const sm_st_file *f) { return f->n_meta; }

void sm_st_metadata_at(const sm_st_file *f, int i, const char **key, const char **value)
{
    bool ok = i >= 0 && i < f->n_meta;
    *key = ok ? f->meta[i].key : NULL;
    *value = ok ? f->meta[i].value : NULL;
}

const char *sm_st_metadata_get(const sm_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

sm_status sm_st_check_finite(const char *source, const char *tensor, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return sm_error(SM_ERR_FORMAT, "%s: tensor '%.*s' holds %s at element %zu (of %zu): weights must be finite "
                            "numbers; the file is damaged or comes from a run that diverged: use an earlier "
                            "checkpoint", source, name_shown(tensor), tensor, isnan(x[i]) ? "NaN" : x[i] > 0 ? "+Inf" : "-Inf",
                            i, n);
    return SM_OK;
}

/* The tensor's n values as f32, whatever float type the file holds. */
static sm_status convert_f32(const char *fname, const sm_st_tensor *t, float *dst, size_t n)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case SM_ST_F32:
        if (n) memcpy(dst, p, n * 4);
        return SM_OK;
    case SM_ST_F16:
    case SM_ST_BF16:
        if ((uintptr_t)p % 2 == 0) {
            if (t->dtype == SM_ST_F16) sm_f16_to_f32_array((const uint16_t *)(const void *)p, dst, n);
            else sm_bf16_to_f32_array((const uint16_t *)(const void *)p, dst, n);
            return SM_OK;
        }
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == SM_ST_F16 ? sm_f16_to_f32(h) : sm_bf16_to_f32(h);
        }
        return SM_OK;
    case SM_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return SM_OK;
    default:
        return sm_error(SM_ERR_UNSUPPORTED, "%s: tensor '%.*s' has dtype %s; expected a float type (F32, F16, BF16, "
                        "F64)", fname, name_shown(t->name), t->name, sm_st_dtype_name(t->dtype));
    }
}

sm_status sm_st_read_f32(const sm_st_file *f, const sm_st_tensor *t, float *dst, size_t n)
{
    const char *fname = f ? f->name : "safetensors";
    if ((uint64_t)n != (uint64_t)t->numel)
        return sm_error(SM_ERR_SHAPE, "%s: tensor '%.*s' has %lld elements, but %zu were asked for", fname,
                        name_shown(t->name), t->name, (long long)t->numel, n);
    sm_status s = convert_f32(fname, t, dst, n);
    return s ? s : sm_st_check_finite(fname, t->name, dst, n);
}

/* ---- writing ---------------------------------------------------------------------------------- */

static int cmp_idx_name(const sm_st_entry *e, int a, int b) { return strcmp(e[a].name, e[b].name); }

/* Merge sort of entry indices by name, or (by_dtype) in the reference writer's order: element size
 * descending, then name. */
static void sort_entries(const sm_st_entry *e, int *idx, int *tmp, int n, bool by_dtype)
{
    if (n < 2) return;
    int h = n / 2;
    sort_entries(e, idx, tmp, h, by_dtype);
    sort_entries(e, idx + h, tmp, n - h, by_dtype);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int a = idx[i], b = idx[j];
        int c = by_dtype && e[a].dtype != e[b].dtype ? (e[a].dtype > e[b].dtype ? -1 : 1) : cmp_idx_name(e, a, b);
        tmp[k++] = c <= 0 ? idx[i++] : idx[j++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static sm_status write_error(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static sm_status write_error(const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sm_error(SM_ERR_INVALID_ARG, "writing '%s': %s", path, msg);
}

static sm_status check_entries(const char *path, const sm_st_entry *e, int n, uint64_t *nbytes)
{
    for (int i = 0; i < n; i++) {
        const char *nm = e[i].name;
        if (!nm) return write_error(path, "tensor %d has no name", i);
        if (!sm_utf8_valid(nm, strlen(nm)))
            return write_error(path, "tensor name '%.*s' is not valid UTF-8", name_shown(nm), nm);
        if (strcmp(nm, "__metadata__") == 0) return write_error(path, "a tensor cannot be named '__metadata__'");
        if ((unsigned)e[i].dtype >= SM_ST_DTYPE_COUNT)
            return write_error(path, "tensor '%.*s': invalid dtype %d", name_shown(nm), nm, (int)e[i].dtype);
        if (e[i].ndim < 0 || e[i].ndim > SM_ST_MAX_DIMS)
            return write_error(path, "tensor '%.*s': %d dimensions (0 to %d supported)", name_shown(nm), nm, e[i].ndim,
                               SM_ST_MAX_DIMS);
        uint64_t numel = 1;
        bool overflow = false;
        for (int d = 0; d < e[i].ndim; d++) {
            if (e[i].shape[d] < 0)
                return write_error(path, "tensor '%.*s': negative dimension %lld", name_shown(nm), nm,
                                   (long long)e[i].shape[d]);
            overflow |= __builtin_mul_overflow(numel, (uint64_t)e[i].shape[d], &numel);
        }
        overflow |= __builtin_mul_overflow(numel, (uint64_t)sm_st_dtype_size(e[i].dtype), &nbytes[i]);
        if (overflow || nbytes[i] > SIZE_MAX)
            return write_error(path, "tensor '%.*s': shape too large", name_shown(nm), nm);
        if (nbytes[i] && !e[i].data) return write_error(path, "tensor '%.*s': null data", name_shown(nm), nm);
    }
    return SM_OK;
}

static sm_status check_meta(const char *path, const sm_st_kv *meta, int n_meta, unsigned flags)
{
    for (int i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].value;
        if (!k || !v) return write_error(path, "metadata entry %d has a null key or value", i);
        if (!sm_utf8_valid(k, strlen(k)) || !sm_utf8_valid(v, strlen(v)))
            return write_error(path, "metadata entry '%.*s' is not valid UTF-8", name_shown(k), k);
        if (!(flags & SM_ST_WRITE_PLAIN) && strncmp(k, "sm.", 3) == 0)
            return write_error(path, "metadata key '%.*s' is reserved for SmallMind (keys starting with 'sm.')",
                               name_shown(k), k);
        for (int j = 0; j < i; j++)
            if (strcmp(meta[j].key, k) == 0)
                return write_error(path, "metadata key '%.*s' appears twice", name_shown(k), k);
    }
    return SM_OK;
}

static void put_meta(sm_buf *b, bool *first, const char *k, size_t klen, const char *v)
{
    if (!*first) sm_buf_puts(b, ",");
    *first = false;
    sm_buf_json_string(b, k, klen);
    sm_buf_puts(b, ":");
    sm_buf_json_string(b, v, strlen(v));
}

static sm_status build_header(const char *path, const sm_st_entry *e, const int *order, int n,
                              const uint64_t *nbytes, const sm_st_kv *meta, int n_meta, unsigned flags,
                              sm_buf *b)
{
    bool ours = !(flags & SM_ST_WRITE_PLAIN);
    sm_buf_puts(b, "{");
    if (ours || n_meta > 0) {
        bool first = true;
        sm_buf_puts(b, "\"__metadata__\":{");
        char num[32];
        if (ours) {
            snprintf(num, sizeof num, "%d", SM_ST_FORMAT_VERSION);
            put_meta(b, &first, KEY_VERSION, strlen(KEY_VERSION), num);
        }
        for (int i = 0; i < n_meta; i++) put_meta(b, &first, meta[i].key, strlen(meta[i].key), meta[i].value);
        if (ours) {
            sm_buf key;
            sm_buf_init(&key);
            for (int k = 0; k < n; k++) {
                const sm_st_entry *t = &e[order[k]];
                key.len = 0;
                sm_buf_puts(&key, KEY_SUM);
                sm_buf_puts(&key, t->name);
                snprintf(num, sizeof num, "%016llx",
                         (unsigned long long)XXH3_64bits(t->data, (size_t)nbytes[order[k]]));
                if (!key.failed) put_meta(b, &first, key.data, key.len, num);
            }
            if (key.failed) b->failed = true;
            sm_buf_free(&key);
        }
        sm_buf_puts(b, "}");
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const sm_st_entry *t = &e[order[k]];
        if (k || ours || n_meta > 0) sm_buf_puts(b, ",");
        sm_buf_json_string(b, t->name, strlen(t->name));
        sm_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", sm_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) sm_buf_printf(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        sm_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                           (unsigned long long)(off + nbytes[order[k]]));
        off += nbytes[order[k]];
    }
    sm_buf_puts(b, "}");
    while (b->len % 8) sm_buf_puts(b, " ");
    if (b->failed) return sm_error(SM_ERR_NOMEM, "writing '%s': out of memory for the header", path);
    if (b->len > SM_ST_MAX_HEADER)
        return write_error(path, "the header would be %zu bytes, more than the %u readers accept", b->len,
                           SM_ST_MAX_HEADER);
    return SM_OK;
}

sm_status sm_st_write(const char *path, const sm_st_entry *tensors, int n, const sm_st_kv *meta, int n_meta,
                      unsigned flags)
{
    if (!path) return sm_error(SM_ERR_INVALID_ARG, "safetensors write: null path");
    if (n < 0 || (n > 0 && !tensors) || n_meta < 0 || (n_meta > 0 && !meta))
        return write_error(path, "bad tensor or metadata list");
    size_t cnt = (size_t)(n ? n : 1);
    uint64_t *nbytes = malloc(cnt * sizeof *nbytes);
    int *order = malloc(cnt * sizeof *order), *tmp = malloc(cnt * sizeof *tmp);
    sm_buf hdr;
    sm_buf_init(&hdr);
    sm_status s = SM_OK;
    if (!nbytes || !order || !tmp) s = sm_error(SM_ERR_NOMEM, "writing '%s': out of memory", path);
    if (!s) s = check_entries(path, tensors, n, nbytes);
    if (!s) s = check_meta(path, meta, n_meta, flags);
    if (!s) {
        /* duplicate names: sort by name and compare neighbours */
        for (int i = 0; i < n; i++) order[i] = i;
        sort_entries(tensors, order, tmp, n, false);
        for (int i = 1; i < n && !s; i++)
            if (strcmp(tensors[order[i - 1]].name, tensors[order[i]].name) == 0)
                s = write_error(path, "two tensors are named '%.*s'", name_shown(tensors[order[i]].name),
                                tensors[order[i]].name);
    }
    if (!s) {
        for (int i = 0; i < n; i++) order[i] = i;
        if (flags & SM_ST_WRITE_SORTED) sort_entries(tensors, order, tmp, n, true);
        s = build_header(path, tensors, order, n, nbytes, meta, n_meta, flags, &hdr);
    }
    sm_file_writer *w = NULL;
    if (!s) s = sm_file_writer_open(path, &w);
    if (!s) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
        s = sm_file_writer_write(w, len8, 8);
        if (!s) s = sm_file_writer_write(w, hdr.data, hdr.len);
        for (int k = 0; k < n && !s; k++)
            s = sm_file_writer_write(w, tensors[order[k]].data, (size_t)nbytes[order[k]]);
        if (s) sm_file_writer_abort(w);
        else s = sm_file_writer_commit(w);
    }
    sm_buf_free(&hdr);
    free(nbytes);
    free(order);
    free(tmp);
    return s;
}
