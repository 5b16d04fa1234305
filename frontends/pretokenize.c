#include "pretokenize.h"

#include <stdbool.h>

#include "unicode_class.h"

size_t sm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    *cp = SM_UTF8_INVALID;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte (no overlongs/surrogates) */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1Fu; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0Fu; lo = c == 0xE0 ? 0xA0 : 0x80; hi = c == 0xED ? 0x9F : 0xBF; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07u; lo = c == 0xF0 ? 0x90 : 0x80; hi = c == 0xF4 ? 0x8F : 0xBF; }
    else return 1;
    if (n < len || s[1] < lo || s[1] > hi) return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    *cp = v;
    return len;
}

typedef enum cls { CLS_LETTER, CLS_NUMBER, CLS_SPACE, CLS_OTHER } cls;

static cls classify(uint32_t cp)
{
    if (cp == SM_UTF8_INVALID) return CLS_OTHER;
    if (sm_unicode_is_letter(cp)) return CLS_LETTER;
    if (sm_unicode_is_number(cp)) return CLS_NUMBER;
    if (sm_unicode_is_space(cp)) return CLS_SPACE;
    return CLS_OTHER;
}

/* Class of the character at pos and its byte length. */
static cls char_at(const char *t, size_t n, size_t pos, size_t *len)
{
    uint32_t cp;
    *len = sm_utf8_decode((const unsigned char *)t + pos, n - pos, &cp);
    return classify(cp);
}

/* End of the run of characters of class k starting at pos. */
static size_t run_end(const char *t, size_t n, size_t pos, cls k)
{
    while (pos < n) {
        size_t len;
        if (char_at(t, n, pos, &len) != k) break;
        pos += len;
    }
    return pos;
}

/* 's 't 'm 'd 're 've 'll: length of the contraction at pos, 0 if none. Case-sensitive, as GPT-2. */
static size_t contraction(const char *t, size_t n, size_t pos)
{
    if (t[pos] != '\'' || pos + 1 >= n) return 0;
    char a = t[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < n) {
        char b = t[pos + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

size_t sm_gpt2_pretoken_end(const char *t, size_t n, size_t pos)
{
    size_t k = contraction(t, n, pos);
    if (k) return pos + k;
    size_t len;
    cls c0 = char_at(t, n, pos, &len);
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional single ASCII space, then a run */
    if (t[pos] == ' ' && pos + 1 < n) {
        size_t len1;
        cls c1 = char_at(t, n, pos + 1, &len1);
        if (c1 != CLS_SPACE) return run_end(t, n, pos + 1, c1);
    } else if (c0 != CLS_SPACE) {
        return run_end(t, n, pos, c0);
    }
    /* "\s+(?!\S)|\s+": a whitespace run; if a non-space follows, leave the run's last character to
     * start the next piece (so " word" keeps its space), unless the run is a single character. */
    size_t last = pos, end = pos;
    int count = 0;
    while (end < n) {
        size_t l;
        if (char_at(t, n, end, &l) != CLS_SPACE) break;
        last = end;
        end += l;
        count++;
    }
    if (end == n || count < 2) return end;
    return last;
}
