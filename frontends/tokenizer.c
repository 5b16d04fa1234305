#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../base/error.h"
#include "pretokenize.h"
#include "tokenizer_impl.h"

void sm_tokenizer_free(sm_tokenizer *t)
{
    if (!t) return;
    free(t->blob);
    free(t->tok_off);
    free(t->tok_len);
    free(t->merges);
    free(t->lookup);
    free(t);
}

int sm_tokenizer_vocab_size(const sm_tokenizer *t) { return t->vocab_size; }

sm_status sm_tokenizer_check_vocab(const sm_tokenizer *t, int model_vocab, const char *model)
{
    if (t->vocab_size <= model_vocab) return SM_OK;
    return sm_error(SM_ERR_INVALID_ARG, "the tokenizer has %d tokens but model '%s' only %d (ids from %d up have no "
                    "embedding): use a model with a larger vocabulary, or the tokenizer the model was trained with",
                    t->vocab_size, model, model_vocab, model_vocab);
}
size_t sm_tokenizer_max_token_bytes(const sm_tokenizer *t) { return t->max_token_bytes; }

static size_t lookup_slot(const sm_tokenizer *t, const char *bytes, size_t len)
{
    return (size_t)XXH3_64bits(bytes, len) & (t->lookup_cap - 1);
}

sm_status sm_tokenizer_build_lookup(sm_tokenizer *t)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)t->vocab_size) cap *= 2;
    t->lookup = malloc(cap * sizeof *t->lookup);
    if (!t->lookup) return sm_error(SM_ERR_NOMEM, "tokenizer: out of memory for the lookup table");
    memset(t->lookup, 0xFF, cap * sizeof *t->lookup); /* -1: empty */
    t->lookup_cap = cap;
    for (int32_t id = 0; id < t->vocab_size; id++) {
        if (t->tok_len[id] == SM_TOKEN_NONE) continue;
        const char *b = t->blob + t->tok_off[id];
        size_t i = lookup_slot(t, b, t->tok_len[id]);
        while (t->lookup[i] >= 0) {
            int32_t o = t->lookup[i];
            if (t->tok_len[o] == t->tok_len[id] && memcmp(t->blob + t->tok_off[o], b, t->tok_len[id]) == 0)
                return sm_error(SM_ERR_FORMAT, "tokenizer: tokens %d and %d have the same bytes; the vocabulary is "
                                "corrupt", (int)o, (int)id);
            i = (i + 1) & (cap - 1);
        }
        t->lookup[i] = id;
    }
    return SM_OK;
}

sm_status sm_tokenizer_token_id(const sm_tokenizer *t, const char *bytes, size_t len, int32_t *id)
{
    *id = -1;
    if (t->lookup_cap && (bytes || !len)) {
        for (size_t i = lookup_slot(t, bytes ? bytes : "", len); t->lookup[i] >= 0; i = (i + 1) & (t->lookup_cap - 1)) {
            int32_t o = t->lookup[i];
            if (t->tok_len[o] == len && memcmp(t->blob + t->tok_off[o], bytes, len) == 0) {
                *id = o;
                return SM_OK;
            }
        }
    }
    return sm_error(SM_ERR_INVALID_ARG, "tokenizer: no token has the bytes \"%.*s\"", (int)(len > 80 ? 80 : len),
                    bytes ? bytes : "");
}

sm_status sm_tokenizer_byte_create(sm_tokenizer **out)
{
    *out = NULL;
    sm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sm_error(SM_ERR_NOMEM, "byte tokenizer: out of memory");
    t->kind = SM_TOKENIZER_BYTE;
    t->vocab_size = 256;
    t->max_token_bytes = 1;
    t->blob = malloc(256);
    t->tok_off = malloc(256 * sizeof *t->tok_off);
    t->tok_len = malloc(256 * sizeof *t->tok_len);
    if (!t->blob || !t->tok_off || !t->tok_len) {
        sm_tokenizer_free(t);
        return sm_error(SM_ERR_NOMEM, "byte tokenizer: out of memory");
    }
    for (int i = 0; i < 256; i++) {
        t->blob[i] = (char)i;
        t->tok_off[i] = (uint32_t)i;
        t->tok_len[i] = 1;
        t->byte_token[i] = i;
    }
    sm_status s = sm_tokenizer_build_lookup(t);
    if (s) {
        sm_tokenizer_free(t);
        return s;
    }
    *out = t;
    return SM_OK;
}

sm_status sm_tokenizer_encode(const sm_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (len == 0) return SM_OK;
    if (!text) return sm_error(SM_ERR_INVALID_ARG, "tokenizer: null text of %zu bytes", len);
    /* every byte yields at most one token */
    if (len > SIZE_MAX / sizeof(int32_t)) return sm_error(SM_ERR_NOMEM, "tokenizer: text too long");
    int32_t *out = malloc(len * sizeof *out);
    if (!out) return sm_error(SM_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", len);
    size_t k = 0;
    sm_status s = SM_OK;
    if (t->kind == SM_TOKENIZER_BYTE) {
        for (size_t i = 0; i < len; i++) out[k++] = t->byte_token[(unsigned char)text[i]];
    } else {
        void *scratch = NULL;
        size_t scratch_cap = 0;
        for (size_t pos = 0; pos < len && !s;) {
            size_t end = sm_gpt2_pretoken_end(text, len, pos);
            s = sm_bpe_encode_piece(t, (const unsigned char *)text + pos, end - pos, out, &k, &scratch, &scratch_cap);
            pos = end;
        }
        free(scratch);
    }
    if (s) {
        free(out);
        return s;
    }
    int32_t *shrunk = realloc(out, k * sizeof *out);
    *ids = shrunk ? shrunk : out;
    *n = k;
    return SM_OK;
}

static sm_status bad_id(const sm_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->vocab_size)
        return sm_error(SM_ERR_INVALID_ARG, "tokenizer: token id %d is out of range (the vocabulary has %d tokens)",
                        (int)id, t->vocab_size);
    return sm_error(SM_ERR_INVALID_ARG, "tokenizer: token id %d is not assigned in vocab.json", (int)id);
}

sm_status sm_tokenizer_token_bytes(const sm_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    if (id < 0 || id >= t->vocab_size || t->tok_len[id] == SM_TOKEN_NONE) return bad_id(t, id);
    *bytes = t->blob + t->tok_off[id];
    *len = t->tok_len[id];
    return SM_OK;
}

sm_status sm_tokenizer_decode(const sm_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size || t->tok_len[ids[i]] == SM_TOKEN_NONE) return bad_id(t, ids[i]);
        total += t->tok_len[ids[i]];
    }
    char *o = malloc(total + 1);
    if (!o) return sm_error(SM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes of text", total);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(o + k, t->blob + t->tok_off[ids[i]], t->tok_len[ids[i]]);
        k += t->tok_len[ids[i]];
    }
    o[k] = '\0';
    *text = o;
    *len = k;
    return SM_OK;
}

/* ---- streaming decode ------------------------------------------------------------------------- */

void sm_decode_stream_init(sm_decode_stream *s) { memset(s, 0, sizeof *s); }

static size_t put_fffd(char *o)
{
    o[0] = (char)0xEF;
    o[1] = (char)0xBF;
    o[2] = (char)0xBD;
    return 3;
}

/* For a lead byte: the sequence length and the allowed range of the second byte; 0 if not a lead. */
static size_t lead_info(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* Writes the valid characters of b[0..n) to o, replacing each maximal invalid subpart by U+FFFD; an
 * unfinished (but so far valid) sequence at the end is left: returns its start in *rest. */
static size_t emit_utf8(const unsigned char *b, size_t n, char *o, size_t *rest)
{
    size_t k = 0, i = 0;
    while (i < n) {
        unsigned char c = b[i];
        if (c < 0x80) {
            o[k++] = (char)c;
            i++;
            continue;
        }
        unsigned char lo, hi;
        size_t len = lead_info(c, &lo, &hi);
        if (!len) {
            k += put_fffd(o + k);
            i++;
            continue;
        }
        size_t j = 1;
        while (j < len && i + j < n) {
            unsigned char d = b[i + j];
            if (j == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80) break;
            j++;
        }
        if (j == len) {
            memcpy(o + k, b + i, len);
            k += len;
            i += len;
        } else if (i + j == n) {
            break; /* unfinished: wait for more bytes */
        } else {
            k += put_fffd(o + k);
            i += j;
        }
    }
    *rest = i;
    return k;
}

sm_status sm_tokenizer_decode_step(const sm_tokenizer *t, sm_decode_stream *s, int32_t id, char *out, size_t cap,
                                   size_t *n)
{
    *n = 0;
    const char *tb = NULL;
    size_t tl = 0;
    sm_status st = sm_tokenizer_token_bytes(t, id, &tb, &tl);
    if (st) return st;
    size_t total = (size_t)s->n_pending + tl;
    if (cap < 3 * total)
        return sm_error(SM_ERR_INVALID_ARG, "tokenizer: decode buffer of %zu bytes is too small for token %d; use "
                        "SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(t))", cap, (int)id);
    unsigned char small[64];
    unsigned char *b = total <= sizeof small ? small : malloc(total);
    if (!b) return sm_error(SM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(b, s->pending, (size_t)s->n_pending);
    memcpy(b + s->n_pending, tb, tl);
    size_t rest;
    *n = emit_utf8(b, total, out, &rest);
    s->n_pending = (int)(total - rest); /* at most 3: an unfinished sequence */
    memcpy(s->pending, b + rest, (size_t)s->n_pending);
    if (b != small) free(b);
    return SM_OK;
}

size_t sm_decode_stream_flush(sm_decode_stream *s, char *out)
{
    size_t k = s->n_pending ? put_fffd(out) : 0;
    s->n_pending = 0;
    return k;
}
