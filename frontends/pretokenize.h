/* pretokenize.h — GPT-2's pre-tokenizer, the regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * implemented by hand: text is cut into pieces that BPE then encodes one at a time.
 *
 * Text is UTF-8; a byte that does not start a well-formed sequence counts as one character that is
 * neither letter, number nor space, so any byte string is split (and round-trips) deterministically. */
#ifndef SM_PRETOKENIZE_H
#define SM_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* End (exclusive) of the piece that starts at byte pos (pos < n). Pieces tile the text: call again
 * from the returned position until it reaches n. */
size_t sm_gpt2_pretoken_end(const char *text, size_t n, size_t pos);

/* Decodes the UTF-8 character at s[0..n) (n > 0): returns its byte length and stores the code point,
 * or returns 1 and stores SM_UTF8_INVALID for a byte that does not start a well-formed sequence. */
#define SM_UTF8_INVALID 0xFFFFFFFFu
size_t sm_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
