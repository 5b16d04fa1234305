/* Tests of the byte tokenizer, the GPT-2 pre-tokenizer and byte-level BPE, and streaming decode.
 *
 * The BPE fixture (tests/fixtures/tokenizer/vocab.json, merges.txt) is a hand-made GPT-2-style
 * vocabulary: the 256 byte tokens in GPT-2's order (so ' ' is 220 "Ġ", '\n' is 198 "Ċ", and a
 * printable ASCII byte b is b - 33), then 13 merges creating ids 256..268, then "<|endoftext|>" = 269:
 *     rank 0  "Ġ t"    -> 256 " t"        rank 7  "Ġ l"     -> 263 " l"
 *     rank 1  "h e"    -> 257 "he"        rank 8  "Ġl ow"   -> 264 " low"
 *     rank 2  "Ġt he"  -> 258 " the"      rank 9  "e r"     -> 265 "er"
 *     rank 3  "l l"    -> 259 "ll"        rank 10 "Ġlow er" -> 266 " lower"
 *     rank 4  "e ll"   -> 260 "ell"       rank 11 "a a"     -> 267 "aa"
 *     rank 5  "h ell"  -> 261 "hell"      rank 12 "aa aa"   -> 268 "aaaa"
 *     rank 6  "o w"    -> 262 "ow"
 * The expected encodings below are derived by hand from these ranks (see each case).
 * The pre-tokenizer cases (pretokenize_cases.tsv) and the U+FFFD cases (utf8_replace_cases.tsv) were
 * produced by Python: GPT-2's regex with the `regex` module, and bytes.decode("utf-8", "replace"). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/pretokenize.h"
#include "frontends/tokenizer.h"
#include "base/atomic_file.h"

static const char *fixture(const char *name)
{
    static char buf[2][1024];
    static int k;
    k ^= 1;
    const char *root = getenv("SM_FIXTURES");
    cr_assert_not_null(root, "SM_FIXTURES must point at tests/fixtures (ctest sets it)");
    snprintf(buf[k], sizeof buf[k], "%s/tokenizer/%s", root, name);
    return buf[k];
}

static sm_tokenizer *load_fixture(void)
{
    sm_tokenizer *t;
    cr_assert_eq(sm_tokenizer_gpt2_load(fixture("vocab.json"), fixture("merges.txt"), &t), SM_OK, "%s",
                 sm_last_error());
    return t;
}

static void expect_ids(const sm_tokenizer *t, const char *text, const int32_t *want, size_t n_want)
{
    int32_t *ids;
    size_t n;
    cr_assert_eq(sm_tokenizer_encode(t, text, strlen(text), &ids, &n), SM_OK, "%s", sm_last_error());
    cr_assert_eq(n, n_want, "'%s': %zu tokens, expected %zu", text, n, n_want);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], want[i], "'%s' token %zu: %d, expected %d", text, i, ids[i], want[i]);
    char *back;
    size_t len;
    cr_assert_eq(sm_tokenizer_decode(t, ids, n, &back, &len), SM_OK);
    cr_assert_eq(len, strlen(text));
    cr_assert_eq(memcmp(back, text, len), 0);
    free(back);
    free(ids);
}

#define EXPECT_IDS(t, text, ...)                                                                   \
    do {                                                                                           \
        const int32_t w_[] = {__VA_ARGS__};                                                        \
        expect_ids(t, text, w_, sizeof w_ / sizeof w_[0]);                                         \
    } while (0)

static uint32_t rng_state = 99991;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* ---- byte tokenizer --------------------------------------------------------------------------- */

Test(tokenizer, byte_round_trip)
{
    sm_tokenizer *t;
    cr_assert_eq(sm_tokenizer_byte_create(&t), SM_OK);
    cr_assert_eq(sm_tokenizer_vocab_size(t), 256);
    cr_assert_eq(sm_tokenizer_max_token_bytes(t), 1);
    char text[4096];
    for (size_t i = 0; i < sizeof text; i++) text[i] = (char)(i < 256 ? i : rng());
    int32_t *ids;
    size_t n;
    cr_assert_eq(sm_tokenizer_encode(t, text, sizeof text, &ids, &n), SM_OK);
    cr_assert_eq(n, sizeof text);
    for (size_t i = 0; i < n; i++) cr_assert_eq(ids[i], (unsigned char)text[i]);
    char *back;
    size_t len;
    cr_assert_eq(sm_tokenizer_decode(t, ids, n, &back, &len), SM_OK);
    cr_assert_eq(len, sizeof text);
    cr_assert_eq(memcmp(back, text, len), 0);
    free(back);
    free(ids);
    int32_t id;
    cr_assert_eq(sm_tokenizer_token_id(t, "A", 1, &id), SM_OK);
    cr_assert_eq(id, 65);
    cr_assert_eq(sm_tokenizer_token_id(t, "AB", 2, &id), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_tokenizer_encode(t, "", 0, &ids, &n), SM_OK);
    cr_assert_eq(n, 0);
    int32_t bad[] = {65, 256};
    cr_assert_eq(sm_tokenizer_decode(t, bad, 2, &back, &len), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "token id 256 is out of range (the vocabulary has 256 tokens)"), "%s",
              sm_last_error());
    sm_tokenizer_free(t);
}

/* ---- pre-tokenizer ---------------------------------------------------------------------------- */

static void expect_pieces(const char *text, const char *const *want, int n_want)
{
    size_t n = strlen(text), pos = 0;
    int k = 0;
    while (pos < n) {
        size_t end = sm_gpt2_pretoken_end(text, n, pos);
        cr_assert_lt(k, n_want, "'%s': more pieces than expected", text);
        cr_assert_eq(end - pos, strlen(want[k]), "'%s' piece %d: '%.*s', expected '%s'", text, k, (int)(end - pos),
                     text + pos, want[k]);
        cr_assert_eq(memcmp(text + pos, want[k], end - pos), 0);
        pos = end;
        k++;
    }
    cr_assert_eq(k, n_want, "'%s': %d pieces, expected %d", text, k, n_want);
}

#define PIECES(text, ...)                                                                          \
    do {                                                                                           \
        const char *const w_[] = {__VA_ARGS__};                                                    \
        expect_pieces(text, w_, (int)(sizeof w_ / sizeof w_[0]));                                  \
    } while (0)

Test(pretokenize, tricky_strings)
{
    PIECES("Hello world", "Hello", " world");
    PIECES("Hello  world", "Hello", " ", " world");               /* the space before a word stays with it */
    PIECES("I'm here, isn't it? You'll've", "I", "'m", " here", ",", " isn", "'t", " it", "?", " You", "'ll", "'ve");
    PIECES("  leading", " ", " leading");
    PIECES("trailing  ", "trailing", "  ");                        /* whitespace at the end stays whole */
    PIECES("a\n\nb", "a", "\n", "\n", "b");
    PIECES("x  \n y", "x", "  \n", " y");
    PIECES("123abc 4.5", "123", "abc", " 4", ".", "5");
    PIECES("'s's", "'s", "'s");
    PIECES("don't'LL", "don", "'t", "'", "LL");                     /* contractions are case-sensitive */
    PIECES("na\xc3\xafve caf\xc3\xa9", "na\xc3\xafve", " caf\xc3\xa9");
    PIECES("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    PIECES("emoji \xf0\x9f\x98\x80\xf0\x9f\x98\x80 !", "emoji", " \xf0\x9f\x98\x80\xf0\x9f\x98\x80", " !");
    PIECES("\xe3\x80\x80wide", "\xe3\x80\x80", "wide");             /* U+3000 is whitespace */
    PIECES("a\xc2\xa0" "b", "a", "\xc2\xa0", "b");                   /* NBSP is whitespace, not ' ' */
    PIECES("    ", "    ");
    PIECES("!!!???", "!!!???");
    PIECES(" ' ", " '", " ");
    PIECES("foo'bar", "foo", "'", "bar");
    PIECES("\xe2\x85\xab 5\xc2\xb2", "\xe2\x85\xab", " 5\xc2\xb2");   /* Roman numeral and superscript are \p{N} */
    PIECES("<|endoftext|>", "<|", "endoftext", "|>");
    PIECES("\xff\xfe" "ab \xc3", "\xff\xfe", "ab", " \xc3");        /* invalid bytes count as "other" */
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static size_t unhex(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n / 2; i++) out[i] = (char)(hexval(s[2 * i]) * 16 + hexval(s[2 * i + 1]));
    return n / 2;
}

Test(pretokenize, matches_the_reference_regex)
{
    void *data;
    size_t size;
    cr_assert_eq(sm_file_read_all(fixture("pretokenize_cases.tsv"), 1 << 20, &data, &size), SM_OK, "%s",
                 sm_last_error());
    int cases = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *tab = strchr(line, '\t');
        cr_assert_not_null(tab);
        char text[256];
        size_t n = unhex(line, (size_t)(tab - line), text);
        size_t pos = 0;
        char *lens = tab + 1;
        int piece = 0;
        while (*lens) {
            size_t want = strtoul(lens, &lens, 10);
            if (*lens == ',') lens++;
            size_t end = sm_gpt2_pretoken_end(text, n, pos);
            cr_assert_eq(end - pos, want, "case '%s' piece %d", line, piece);
            pos = end;
            piece++;
        }
        cr_assert_eq(pos, n, "case '%s': pieces left over", line);
        cases++;
    }
    cr_assert_eq(cases, 400);
    free(data);
}

Test(pretokenize, tiles_any_bytes)
{
    char text[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + rng() % sizeof text;
        for (size_t i = 0; i < n; i++) text[i] = iter & 1 ? (char)rng() : " 'a1\n\xc3\xa9\xe3\x80\x80!"[rng() % 11];
        for (size_t pos = 0; pos < n;) {
            size_t end = sm_gpt2_pretoken_end(text, n, pos);
            cr_assert(end > pos && end <= n);
            pos = end;
        }
    }
}

/* ---- GPT-2 BPE -------------------------------------------------------------------------------- */

Test(bpe, hand_derived_encodings)
{
    sm_tokenizer *t = load_fixture();
    cr_assert_eq(sm_tokenizer_vocab_size(t), 270);
    cr_assert_eq(sm_tokenizer_max_token_bytes(t), 13); /* "<|endoftext|>" */
    /* h e l l o: (h,e) rank 1 beats (l,l) rank 3 -> he l l o -> he ll o. "ell"/"hell" (ranks 4, 5) never
     * apply: e was merged with h first. */
    EXPECT_IDS(t, "hello", 257, 259, 78);
    /* Ġ t h e: (Ġ,t) 0 -> Ġt h e; (h,e) 1 -> Ġt he; (Ġt,he) 2 -> Ġthe */
    EXPECT_IDS(t, " the", 258);
    /* Ġ l o w e r: (o,w) 6, (Ġ,l) 7, (Ġl,ow) 8, (e,r) 9, (Ġlow,er) 10 -> one token */
    EXPECT_IDS(t, " lower", 266);
    /* a a a a a: all (a,a) pairs merge left to right without overlap: aa aa a; then (aa,aa): aaaa a */
    EXPECT_IDS(t, "aaaaa", 268, 64);
    EXPECT_IDS(t, "aaa", 267, 64);
    /* four pieces: "hello", " the", " lower", " aaaaa" (Ġ stays alone: no (Ġ,a) merge) */
    EXPECT_IDS(t, "hello the lower aaaaa", 257, 259, 78, 258, 266, 220, 268, 64);
    /* "he" + the contraction "'s" (bytes ' = 6, s = 82) */
    EXPECT_IDS(t, "he's", 257, 6, 82);
    /* special tokens are plain text to encode: "<|" "endoftext" "|>" as single bytes */
    EXPECT_IDS(t, "<|endoftext|>", 27, 91, 68, 77, 67, 78, 69, 83, 68, 87, 83, 91, 29);
    EXPECT_IDS(t, "a\n", 64, 198);
    EXPECT_IDS(t, " ", 220);
    EXPECT_IDS(t, "tthe", 83, 83, 257); /* no space: (Ġ,t) cannot apply; t t he */
    int32_t id;
    cr_assert_eq(sm_tokenizer_token_id(t, "<|endoftext|>", 13, &id), SM_OK);
    cr_assert_eq(id, 269);
    cr_assert_eq(sm_tokenizer_token_id(t, " lower", 6, &id), SM_OK);
    cr_assert_eq(id, 266);
    const char *b;
    size_t len;
    cr_assert_eq(sm_tokenizer_token_bytes(t, 258, &b, &len), SM_OK);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(b, " the", 4), 0);
    cr_assert_eq(sm_tokenizer_token_bytes(t, 270, &b, &len), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_tokenizer_token_bytes(t, -1, &b, &len), SM_ERR_INVALID_ARG);
    sm_tokenizer_free(t);
}

/* GPT-2's encoder.py bpe(), transcribed: symbols are byte strings; merge every occurrence of the
 * lowest-ranked pair left to right, repeat. Ranks are read from merges.txt here, independently. */
typedef struct merge_rule {
    char a[16], b[16];
} merge_rule;

static int n_rules;
static merge_rule rules[32];

static void read_rules(void)
{
    FILE *f = fopen(fixture("merges.txt"), "r");
    cr_assert_not_null(f);
    char line[128];
    n_rules = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        *sp = '\0';
        /* "Ġ" (C4 A0) stands for the space byte in this fixture */
        const char *parts[2] = {line, sp + 1};
        char *outs[2] = {rules[n_rules].a, rules[n_rules].b};
        for (int p = 0; p < 2; p++) {
            size_t k = 0;
            for (const char *c = parts[p]; *c; c++) {
                if ((unsigned char)c[0] == 0xC4 && (unsigned char)c[1] == 0xA0) {
                    outs[p][k++] = ' ';
                    c++;
                } else {
                    outs[p][k++] = *c;
                }
            }
            outs[p][k] = '\0';
        }
        n_rules++;
    }
    fclose(f);
}

static int rank_of(const char *a, const char *b)
{
    for (int r = 0; r < n_rules; r++)
        if (!strcmp(rules[r].a, a) && !strcmp(rules[r].b, b)) return r;
    return -1;
}

/* Appends the ids of one piece (NUL-free ASCII) to ids. */
static void reference_bpe(const sm_tokenizer *t, const char *piece, size_t len, int32_t *ids, size_t *n)
{
    char sym[256][64];
    int ns = 0;
    for (size_t i = 0; i < len; i++) {
        sym[ns][0] = piece[i];
        sym[ns++][1] = '\0';
    }
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < ns; i++) {
            int r = rank_of(sym[i], sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) break;
        int w = 0;
        for (int i = 0; i < ns;) {
            if (i + 1 < ns && !strcmp(sym[i], rules[best].a) && !strcmp(sym[i + 1], rules[best].b)) {
                char merged[64];
                size_t la = strlen(sym[i]), lb = strlen(sym[i + 1]);
                cr_assert_lt(la + lb, sizeof merged);
                memcpy(merged, sym[i], la);
                memcpy(merged + la, sym[i + 1], lb + 1);
                memcpy(sym[w++], merged, la + lb + 1);
                i += 2;
            } else {
                if (w != i) memmove(sym[w], sym[i], strlen(sym[i]) + 1);
                w++;
                i++;
            }
        }
        ns = w;
    }
    for (int i = 0; i < ns; i++)
        cr_assert_eq(sm_tokenizer_token_id(t, sym[i], strlen(sym[i]), &ids[(*n)++]), SM_OK);
}

Test(bpe, matches_reference_algorithm)
{
    sm_tokenizer *t = load_fixture();
    read_rules();
    cr_assert_eq(n_rules, 13);
    const char alphabet[] = "ahelowrt '";
    char text[200];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 1 + rng() % 120;
        for (size_t i = 0; i < n; i++) text[i] = alphabet[rng() % (iter % 3 == 0 ? 4 : sizeof alphabet - 1)];
        int32_t want[256], *ids;
        size_t nw = 0, ni;
        for (size_t pos = 0; pos < n;) {
            size_t end = sm_gpt2_pretoken_end(text, n, pos);
            reference_bpe(t, text + pos, end - pos, want, &nw);
            pos = end;
        }
        cr_assert_eq(sm_tokenizer_encode(t, text, n, &ids, &ni), SM_OK);
        cr_assert_eq(ni, nw, "'%.*s'", (int)n, text);
        for (size_t i = 0; i < ni; i++) cr_assert_eq(ids[i], want[i], "'%.*s' token %zu", (int)n, text, i);
        free(ids);
    }
    sm_tokenizer_free(t);
}

Test(bpe, long_pieces_and_round_trips)
{
    sm_tokenizer *t = load_fixture();
    /* one piece of 200000 letters: must stay fast (the heap keeps it O(n log n)) */
    size_t n = 200000;
    char *text = malloc(n);
    memset(text, 'a', n);
    int32_t *ids;
    size_t ni;
    cr_assert_eq(sm_tokenizer_encode(t, text, n, &ids, &ni), SM_OK);
    cr_assert_eq(ni, n / 4);
    for (size_t i = 0; i < ni; i++) cr_assert_eq(ids[i], 268);
    free(ids);
    /* arbitrary bytes, invalid UTF-8 included, come back exactly */
    for (int iter = 0; iter < 200; iter++) {
        size_t len = rng() % 2000;
        for (size_t i = 0; i < len; i++) text[i] = iter & 1 ? (char)rng() : "hel ow\n\xc3\xa9!'"[rng() % 11];
        cr_assert_eq(sm_tokenizer_encode(t, text, len, &ids, &ni), SM_OK);
        char *back;
        size_t blen;
        cr_assert_eq(sm_tokenizer_decode(t, ids, ni, &back, &blen), SM_OK);
        cr_assert_eq(blen, len);
        cr_assert_eq(memcmp(back, text, len), 0);
        free(back);
        free(ids);
    }
    free(text);
    sm_tokenizer_free(t);
}

/* ---- loader errors ---------------------------------------------------------------------------- */

/* The GPT-2 alphabet, written out independently: printable Latin-1 stands for itself, the other bytes
 * take U+0100.. in order. Returns the UTF-8 of byte b's character. */
static const char *alpha(int b, char *buf)
{
    int extra = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        int printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
        int c = printable ? x : 256 + extra++;
        if (x == b) cp = c;
    }
    if (cp < 0x80) {
        buf[0] = (char)cp;
        buf[1] = '\0';
    } else {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        buf[2] = '\0';
    }
    return buf;
}

/* A vocab.json with the 256 bytes (one per line, line 2 + b, id b, byte `skip` left out) and extra
 * lines appended. */
static char *vocab_text(int skip, const char *extra)
{
    size_t cap = 16384;
    char *v = malloc(cap), c[4];
    size_t k = (size_t)snprintf(v, cap, "{\n");
    for (int b = 0; b < 256; b++) {
        if (b == skip) continue;
        const char *s = alpha(b, c);
        k += (size_t)snprintf(v + k, cap - k, "\"%s%s\": %d,\n", s[0] == '"' || s[0] == '\\' ? "\\" : "", s, b);
    }
    snprintf(v + k, cap - k, "%s\"zz_end\": 999\n}", extra);
    return v;
}

static void expect_load_error(const char *vocab, const char *merges, const char *substr)
{
    sm_tokenizer *t = (sm_tokenizer *)1;
    sm_status s = sm_tokenizer_gpt2_from_memory(vocab, strlen(vocab), "vocab.json", merges, strlen(merges),
                                                "merges.txt", &t);
    cr_assert_eq(s, SM_ERR_FORMAT, "expected a failure: %s", sm_status_name(s));
    cr_assert_null(t);
    cr_assert(strstr(sm_last_error(), substr), "'%s' lacks '%s'", sm_last_error(), substr);
}

Test(bpe, loader_errors_name_file_and_line)
{
    /* the base files load (ids 256.. "ab" "abc", and "zz_end" 999 leaving gaps) */
    char *v = vocab_text(-1, "\"ab\": 300,\n\"abc\": 301,\n");
    sm_tokenizer *t;
    cr_assert_eq(sm_tokenizer_gpt2_from_memory(v, strlen(v), "vocab.json", "#version: 0.2\na b\nab c\n", 23,
                                               "merges.txt", &t), SM_OK, "%s", sm_last_error());
    EXPECT_IDS(t, "abc", 301);
    char *back;
    size_t len;
    int32_t gap = 500;
    cr_assert_eq(sm_tokenizer_decode(t, &gap, 1, &back, &len), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "token id 500 is not assigned"), "%s", sm_last_error());
    sm_tokenizer_free(t);

    /* merges.txt: line numbers count the #version line */
    expect_load_error(v, "#version: 0.2\na b\na b c\n", "merges.txt: line 3: expected two symbols separated by one space");
    expect_load_error(v, "a  b\n", "merges.txt: line 1: expected two symbols");
    expect_load_error(v, "a\n", "merges.txt: line 1: expected two symbols");
    expect_load_error(v, "a b\nab qq\n", "merges.txt: line 2: \"qq\" is not a token of the vocabulary");
    expect_load_error(v, "a b\nb c\n", "merges.txt: line 2: the merged token \"bc\" is not in the vocabulary");
    expect_load_error(v, "a b\nab c\na b\n", "merges.txt: line 3: duplicate merge \"a b\" (first at line 1)");
    expect_load_error(v, "a b\n\nab c\n", "merges.txt: line 2: empty line");
    expect_load_error(v, "a \xe4\xb8\x80\n", "merges.txt: line 1: the character U+4E00 is not in GPT-2's byte alphabet");
    free(v);

    /* vocab.json: the byte tokens sit on lines 2..257 */
    v = vocab_text(-1, "\"\\u4e00\": 300,\n");
    expect_load_error(v, "", "vocab.json: line 258: token \"\xe4\xb8\x80\" has the character U+4E00");
    free(v);
    v = vocab_text(-1, "\"ab\": 5,\n");
    expect_load_error(v, "", "vocab.json: line 258: id 5 of token \"ab\" is already used by the token at line 7");
    free(v);
    v = vocab_text(-1, "\"ab\": -1,\n");
    expect_load_error(v, "", "vocab.json: line 258: the id of token \"ab\" must be an integer");
    free(v);
    v = vocab_text(-1, "\"ab\": 1.5,\n");
    expect_load_error(v, "", "vocab.json: line 258: the id of token \"ab\" must be an integer");
    free(v);
    v = vocab_text(65, "");
    expect_load_error(v, "", "vocab.json: no token for the byte 0x41");
    free(v);
    expect_load_error("{\"a\": 1,\n \"b\" 2}", "", "vocab.json: line 2, column 6: expected ':'");
    expect_load_error("[1, 2]", "", "vocab.json: expected a JSON object");
    expect_load_error("{}", "", "vocab.json: the vocabulary is empty");

    sm_status s = sm_tokenizer_gpt2_load(fixture("vocab.json"), "/nonexistent/merges.txt", &t);
    cr_assert_eq(s, SM_ERR_IO);
    cr_assert(strstr(sm_last_error(), "/nonexistent/merges.txt"), "%s", sm_last_error());
}

/* ---- streaming decode ------------------------------------------------------------------------- */

/* Feeds ids one at a time, then flushes; returns the concatenated output (malloc'd). */
static char *stream_all(const sm_tokenizer *t, const int32_t *ids, size_t n, size_t *len, size_t *steps_out)
{
    size_t cap = SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(t));
    char *out = malloc(n * cap + 4), *step = malloc(cap);
    size_t k = 0;
    sm_decode_stream st;
    sm_decode_stream_init(&st);
    for (size_t i = 0; i < n; i++) {
        size_t m;
        cr_assert_eq(sm_tokenizer_decode_step(t, &st, ids[i], step, cap, &m), SM_OK, "%s", sm_last_error());
        if (steps_out) steps_out[i] = m;
        memcpy(out + k, step, m);
        k += m;
    }
    k += sm_decode_stream_flush(&st, out + k);
    free(step);
    *len = k;
    return out;
}

Test(stream, holds_back_unfinished_characters)
{
    sm_tokenizer *t;
    cr_assert_eq(sm_tokenizer_byte_create(&t), SM_OK);
    const char *text = "h\xc3\xa9 \xf0\x9f\x98\x80!";
    size_t n = strlen(text), len, steps[16];
    int32_t ids[16];
    for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)text[i];
    char *out = stream_all(t, ids, n, &len, steps);
    const size_t want_steps[] = {1, 0, 2, 1, 0, 0, 0, 4, 1};
    for (size_t i = 0; i < n; i++) cr_assert_eq(steps[i], want_steps[i], "step %zu wrote %zu bytes", i, steps[i]);
    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(out, text, n), 0);
    free(out);
    char small[4];
    sm_decode_stream st;
    sm_decode_stream_init(&st);
    size_t m;
    cr_assert_eq(sm_tokenizer_decode_step(t, &st, 'a', small, 2, &m), SM_ERR_INVALID_ARG);
    cr_assert_eq(sm_tokenizer_decode_step(t, &st, 300, small, 4, &m), SM_ERR_INVALID_ARG);
    sm_tokenizer_free(t);
}

Test(stream, replacement_matches_python)
{
    sm_tokenizer *t;
    cr_assert_eq(sm_tokenizer_byte_create(&t), SM_OK);
    void *data;
    size_t size;
    cr_assert_eq(sm_file_read_all(fixture("utf8_replace_cases.tsv"), 1 << 20, &data, &size), SM_OK, "%s",
                 sm_last_error());
    int cases = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *tab = strchr(line, '\t');
        char in[64], want[256];
        size_t n = unhex(line, (size_t)(tab - line), in), nw = unhex(tab + 1, strlen(tab + 1), want);
        int32_t ids[64];
        for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)in[i];
        size_t len;
        char *out = stream_all(t, ids, n, &len, NULL);
        cr_assert_eq(len, nw, "case %s", line);
        cr_assert_eq(memcmp(out, want, nw), 0, "case %s", line);
        free(out);
        cases++;
    }
    cr_assert_eq(cases, 300);
    free(data);
    sm_tokenizer_free(t);
}

Test(stream, bpe_tokens_equal_decode)
{
    sm_tokenizer *t = load_fixture();
    const char *text = "hello the lower caf\xc3\xa9 \xf0\x9f\x98\x80 aaaaa\n";
    int32_t *ids;
    size_t n, len;
    cr_assert_eq(sm_tokenizer_encode(t, text, strlen(text), &ids, &n), SM_OK);
    char *out = stream_all(t, ids, n, &len, NULL);
    cr_assert_eq(len, strlen(text));
    cr_assert_eq(memcmp(out, text, len), 0);
    free(out);
    free(ids);
    sm_tokenizer_free(t);
}
