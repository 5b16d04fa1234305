/* GPT-2 byte-level BPE: loading vocab.json + merges.txt, and encoding one pre-tokenized piece. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../base/atomic_file.h"
#include "../base/json.h"
#include "pretokenize.h"
#include "tokenizer_impl.h"

#define MAX_FILE_BYTES ((size_t)256 << 20)
#define MAX_VOCAB (1 << 24)
#define N_BYTE_CPS 324 /* bytes map to code points below 256 + 68 */

/* ---- GPT-2's byte <-> unicode alphabet -------------------------------------------------------- */

/* GPT-2 writes each byte as a printable character so vocab.json and merges.txt are readable text:
 * the printable Latin-1 bytes stand for themselves, the other 68 bytes take U+0100.. in byte order. */
static void byte_alphabet(int16_t cp_to_byte[N_BYTE_CPS])
{
    for (int i = 0; i < N_BYTE_CPS; i++) cp_to_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp_to_byte[printable ? b : 256 + extra++] = (int16_t)b;
    }
}

/* Converts a token written in the alphabet to its bytes (out has room for len bytes). Returns false
 * and the offending code point if a character is outside the alphabet. */
static bool alphabet_to_bytes(const int16_t *cp_to_byte, const char *s, size_t len, char *out, size_t *out_len,
                              uint32_t *bad)
{
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = sm_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (cp == SM_UTF8_INVALID || cp >= N_BYTE_CPS || cp_to_byte[cp] < 0) {
            *bad = cp == SM_UTF8_INVALID ? (unsigned char)s[i] : cp;
            return false;
        }
        out[k++] = (char)cp_to_byte[cp];
        i += l;
    }
    *out_len = k;
    return true;
}

/* ---- merge table ------------------------------------------------------------------------------ */

static size_t merge_hash(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static const sm_bpe_merge *merge_find(const sm_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = merge_hash(key, t->merge_cap);; i = (i + 1) & (t->merge_cap - 1)) {
        const sm_bpe_merge *m = &t->merges[i];
        if (m->rank < 0) return NULL;
        if (m->key == key) return m;
    }
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Reads vocab.json's {token: id} object; the doc is freed on every path, after any message that
 * quotes from it has been formatted. */
static sm_status load_vocab(sm_tokenizer *t, const char *text, size_t len, const char *name, const int16_t *cp_to_byte)
{
    sm_json_doc *doc;
    sm_status s = sm_json_parse(text, len, name, NULL, &doc);
    if (s) return s;
    const sm_json_value *root = sm_json_root(doc);
    size_t *where = NULL; /* source offset of each id, for messages */
    int line, col;
    int32_t max_id = -1;
    size_t blob_bytes = 0;
    if (root->type != SM_JSON_OBJECT) {
        s = sm_error(SM_ERR_FORMAT, "%s: expected a JSON object mapping token strings to ids, found %s", name,
                     sm_json_type_name(root->type));
        goto done;
    }
    for (size_t i = 0; i < root->len; i++) {
        const sm_json_value *m = &root->items[i];
        int64_t id;
        if (sm_json_to_i64(m, &id) || id < 0 || id >= MAX_VOCAB) {
            sm_json_line_col(text, len, m->offset, &line, &col);
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: the id of token \"%.60s\" must be an integer from 0 to %d", name,
                         line, m->key, MAX_VOCAB - 1);
            goto done;
        }
        if (id > max_id) max_id = (int32_t)id;
        blob_bytes += m->key_len;
    }
    if (max_id < 0) {
        s = sm_error(SM_ERR_FORMAT, "%s: the vocabulary is empty", name);
        goto done;
    }
    t->vocab_size = max_id + 1;
    t->blob = malloc(blob_bytes + 1);
    t->tok_off = malloc((size_t)t->vocab_size * sizeof *t->tok_off);
    t->tok_len = malloc((size_t)t->vocab_size * sizeof *t->tok_len);
    where = malloc((size_t)t->vocab_size * sizeof *where);
    if (!t->blob || !t->tok_off || !t->tok_len || !where) {
        s = sm_error(SM_ERR_NOMEM, "%s: out of memory for %d tokens", name, t->vocab_size);
        goto done;
    }
    for (int32_t i = 0; i < t->vocab_size; i++) t->tok_len[i] = SM_TOKEN_NONE;
    size_t off = 0;
    for (size_t i = 0; i < root->len; i++) {
        const sm_json_value *m = &root->items[i];
        int32_t id = (int32_t)m->num;
        /* the line is only worked out for a message: it costs a scan from the start of the text */
        if (t->tok_len[id] != SM_TOKEN_NONE) {
            sm_json_line_col(text, len, m->offset, &line, &col);
            int first, c2;
            sm_json_line_col(text, len, where[id], &first, &c2);
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: id %d of token \"%.60s\" is already used by the token at line %d",
                         name, line, (int)id, m->key, first);
            goto done;
        }
        size_t n;
        uint32_t bad;
        if (!alphabet_to_bytes(cp_to_byte, m->key, m->key_len, t->blob + off, &n, &bad)) {
            sm_json_line_col(text, len, m->offset, &line, &col);
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: token \"%.60s\" has the character U+%04X, which is not in GPT-2's "
                         "byte alphabet; is this a GPT-2 (byte-level BPE) vocabulary?", name, line, m->key,
                         (unsigned)bad);
            goto done;
        }
        if (n == 0) {
            sm_json_line_col(text, len, m->offset, &line, &col);
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: empty token string", name, line);
            goto done;
        }
        t->tok_off[id] = (uint32_t)off;
        t->tok_len[id] = (uint32_t)n;
        where[id] = m->offset;
        off += n;
        if (n > t->max_token_bytes) t->max_token_bytes = n;
    }
done:
    free(where);
    sm_json_free(doc);
    if (s) return s;
    if ((s = sm_tokenizer_build_lookup(t))) return sm_error_prefix(s, "%s: ", name);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if (sm_tokenizer_token_id(t, &c, 1, &t->byte_token[b]))
            return sm_error(SM_ERR_FORMAT, "%s: no token for the byte 0x%02X; a byte-level BPE vocabulary must hold all "
                            "256 single bytes", name, b);
    }
    return SM_OK;
}

/* One line of merges.txt: "left right", both in the byte alphabet. */
static sm_status parse_merge_line(sm_tokenizer *t, const char *line, size_t n, const char *name, int lineno,
                                  const int16_t *cp_to_byte, int32_t *a, int32_t *b, int32_t *result)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1)))
        return sm_error(SM_ERR_FORMAT, "%s: line %d: expected two symbols separated by one space, found \"%.*s\"", name,
                        lineno, (int)(n > 80 ? 80 : n), line);
    size_t la = (size_t)(sp - line), lb = n - la - 1;
    char *buf = malloc(n);
    if (!buf) return sm_error(SM_ERR_NOMEM, "%s: out of memory", name);
    size_t ba, bb;
    uint32_t bad;
    sm_status s = SM_OK;
    if (!alphabet_to_bytes(cp_to_byte, line, la, buf, &ba, &bad) ||
        !alphabet_to_bytes(cp_to_byte, sp + 1, lb, buf + ba, &bb, &bad))
        s = sm_error(SM_ERR_FORMAT, "%s: line %d: the character U+%04X is not in GPT-2's byte alphabet", name, lineno,
                     (unsigned)bad);
    else if (sm_tokenizer_token_id(t, buf, ba, a))
        s = sm_error(SM_ERR_FORMAT, "%s: line %d: \"%.*s\" is not a token of the vocabulary; vocab.json and merges.txt "
                     "do not belong together", name, lineno, (int)la, line);
    else if (sm_tokenizer_token_id(t, buf + ba, bb, b))
        s = sm_error(SM_ERR_FORMAT, "%s: line %d: \"%.*s\" is not a token of the vocabulary; vocab.json and merges.txt "
                     "do not belong together", name, lineno, (int)lb, sp + 1);
    else if (sm_tokenizer_token_id(t, buf, ba + bb, result))
        s = sm_error(SM_ERR_FORMAT, "%s: line %d: the merged token \"%.*s%.*s\" is not in the vocabulary; vocab.json "
                     "and merges.txt do not belong together", name, lineno, (int)la, line, (int)lb, sp + 1);
    free(buf);
    return s;
}

static sm_status load_merges(sm_tokenizer *t, const char *text, size_t len, const char *name, const int16_t *cp_to_byte)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    size_t cap = 16;
    while (cap < 2 * lines) cap *= 2;
    t->merges = malloc(cap * sizeof *t->merges);
    int *rank_line = malloc(lines * sizeof *rank_line); /* for duplicate messages */
    if (!t->merges || !rank_line) {
        free(rank_line);
        return sm_error(SM_ERR_NOMEM, "%s: out of memory for %zu merges", name, lines);
    }
    for (size_t i = 0; i < cap; i++) t->merges[i].rank = -1;
    t->merge_cap = cap;
    sm_status s = SM_OK;
    int32_t rank = 0;
    int lineno = 0;
    for (size_t pos = 0; pos < len && !s;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;
        const char *line = text + pos;
        pos = end + 1;
        lineno++;
        if (n && line[n - 1] == '\r') n--;
        if (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        if (n == 0) {
            if (pos >= len) break; /* the file's final newline */
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: empty line (expected \"left right\")", name, lineno);
            break;
        }
        int32_t a, b, result;
        if ((s = parse_merge_line(t, line, n, name, lineno, cp_to_byte, &a, &b, &result))) break;
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        size_t i = merge_hash(key, cap);
        while (t->merges[i].rank >= 0 && t->merges[i].key != key) i = (i + 1) & (cap - 1);
        if (t->merges[i].rank >= 0) {
            s = sm_error(SM_ERR_FORMAT, "%s: line %d: duplicate merge \"%.*s\" (first at line %d)", name, lineno,
                         (int)(n > 80 ? 80 : n), line, rank_line[t->merges[i].rank]);
            break;
        }
        t->merges[i] = (sm_bpe_merge){key, rank, result};
        rank_line[rank++] = lineno;
    }
    free(rank_line);
    return s;
}

sm_status sm_tokenizer_gpt2_from_memory(const char *vocab_json, size_t vocab_len, const char *vocab_name,
                                        const char *merges_txt, size_t merges_len, const char *merges_name,
                                        sm_tokenizer **out)
{
    *out = NULL;
    if (!vocab_name) vocab_name = "vocab.json";
    if (!merges_name) merges_name = "merges.txt";
    if ((!vocab_json && vocab_len) || (!merges_txt && merges_len))
        return sm_error(SM_ERR_INVALID_ARG, "GPT-2 tokenizer: null text");
    sm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sm_error(SM_ERR_NOMEM, "GPT-2 tokenizer: out of memory");
    t->kind = SM_TOKENIZER_GPT2;
    int16_t cp_to_byte[N_BYTE_CPS];
    byte_alphabet(cp_to_byte);
    sm_status s = load_vocab(t, vocab_json ? vocab_json : "", vocab_len, vocab_name, cp_to_byte);
    if (!s) s = load_merges(t, merges_txt ? merges_txt : "", merges_len, merges_name, cp_to_byte);
    if (s) {
        sm_tokenizer_free(t);
        return s;
    }
    *out = t;
    return SM_OK;
}

sm_status sm_tokenizer_gpt2_load(const char *vocab_json_path, const char *merges_txt_path, sm_tokenizer **out)
{
    *out = NULL;
    void *v = NULL, *m = NULL;
    size_t vn, mn;
    sm_status s = sm_file_read_all(vocab_json_path, MAX_FILE_BYTES, &v, &vn);
    if (!s) s = sm_file_read_all(merges_txt_path, MAX_FILE_BYTES, &m, &mn);
    if (!s) s = sm_tokenizer_gpt2_from_memory(v, vn, vocab_json_path, m, mn, merges_txt_path, out);
    free(v);
    free(m);
    return s;
}

/* ---- encoding --------------------------------------------------------------------------------- */

/* A candidate merge of the adjacent symbols (pos, right), valid while both still hold these ids. */
typedef struct cand {
    int32_t rank, pos, right, left_id, right_id, result;
} cand;

static bool cand_less(const cand *x, const cand *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void heap_push(cand *h, size_t *n, cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n)
{
    cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < *n && cand_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && cand_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

/*
 * BPE of one piece, with the semantics of GPT-2's encoder.py: repeatedly take the lowest-ranked pair
 * present and merge all its occurrences left to right (non-overlapping), until no pair has a rank.
 * Symbols form a linked list over the piece's bytes; candidates sit in a heap ordered by (rank,
 * position), so all occurrences of the lowest rank come out together, left to right: O(n log n)
 * instead of the reference's O(n^2) rescans, with the same result.
 */
sm_status sm_bpe_encode_piece(const sm_tokenizer *t, const unsigned char *s, size_t len, int32_t *ids, size_t *n,
                              void **scratch, size_t *scratch_cap)
{
    if (len == 1) {
        ids[(*n)++] = t->byte_token[s[0]];
        return SM_OK;
    }
    if (len > INT32_MAX / 4) return sm_error(SM_ERR_UNSUPPORTED, "tokenizer: a single piece of %zu bytes is too long", len);
    size_t need = len * 3 * sizeof(int32_t) + 2 * (3 * len) * sizeof(cand) + len * sizeof(int32_t);
    if (*scratch_cap < need) {
        void *p = realloc(*scratch, need);
        if (!p) return sm_error(SM_ERR_NOMEM, "tokenizer: out of memory for a piece of %zu bytes", len);
        *scratch = p;
        *scratch_cap = need;
    }
    cand *heap = *scratch, *batch = heap + 3 * len;
    int32_t *id = (int32_t *)(batch + 3 * len), *prev = id + len, *next = prev + len, *merged = next + len;
    size_t hn = 0;
    for (size_t i = 0; i < len; i++) {
        id[i] = t->byte_token[s[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
    }
#define TRY_PAIR(l, r)                                                                             \
    do {                                                                                           \
        const sm_bpe_merge *m_ = merge_find(t, id[l], id[r]);                                      \
        if (m_) heap_push(heap, &hn, (cand){m_->rank, (l), (r), id[l], id[r], m_->result});        \
    } while (0)
    for (size_t i = 0; i + 1 < len; i++) TRY_PAIR((int32_t)i, (int32_t)i + 1);
    while (hn) {
        size_t nb = 0, nm = 0;
        batch[nb++] = heap_pop(heap, &hn);
        while (hn && heap[0].rank == batch[0].rank) batch[nb++] = heap_pop(heap, &hn);
        for (size_t k = 0; k < nb; k++) {
            const cand *c = &batch[k];
            /* stale: an earlier merge consumed or changed one of the two symbols */
            if (id[c->pos] != c->left_id || next[c->pos] != c->right || id[c->right] != c->right_id) continue;
            int32_t r = c->right;
            id[c->pos] = c->result;
            id[r] = -1;
            next[c->pos] = next[r];
            if (next[r] >= 0) prev[next[r]] = c->pos;
            merged[nm++] = c->pos;
        }
        for (size_t k = 0; k < nm; k++) {
            int32_t p = merged[k];
            if (prev[p] >= 0) TRY_PAIR(prev[p], p);
            if (next[p] >= 0) TRY_PAIR(p, next[p]);
        }
    }
#undef TRY_PAIR
    for (int32_t i = 0; i >= 0; i = next[i]) ids[(*n)++] = id[i];
    return SM_OK;
}
