/* tokenizer.h — text <-> token ids.
 *
 * Two kinds: the byte tokenizer (the built-in default: 256 tokens, id = byte value) and GPT-2's
 * byte-level BPE loaded from vocab.json + merges.txt. Both work on bytes: encode accepts any byte
 * string (UTF-8 expected, invalid bytes still round-trip) and decode(encode(x)) == x exactly.
 * Special tokens such as "<|endoftext|>" are never produced from text; look their ids up with
 * sm_tokenizer_token_id and append them yourself. */
#ifndef SM_TOKENIZER_H
#define SM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

typedef struct sm_tokenizer sm_tokenizer;

sm_status sm_tokenizer_byte_create(sm_tokenizer **out);
/* GPT-2 BPE from files; errors name the file and line. */
sm_status sm_tokenizer_gpt2_load(const char *vocab_json_path, const char *merges_txt_path, sm_tokenizer **out);
/* Same from texts in memory; the names are used in messages. */
sm_status sm_tokenizer_gpt2_from_memory(const char *vocab_json, size_t vocab_len, const char *vocab_name,
                                        const char *merges_txt, size_t merges_len, const char *merges_name,
                                        sm_tokenizer **out);
void sm_tokenizer_free(sm_tokenizer *t);

/* Ids run from 0 to vocab_size - 1. */
int sm_tokenizer_vocab_size(const sm_tokenizer *t);
/* SM_ERR_INVALID_ARG unless every id fits a model with model_vocab rows of embeddings (named `model`
 * in the message): a larger tokenizer would feed ids the model has no row for. */
sm_status sm_tokenizer_check_vocab(const sm_tokenizer *t, int model_vocab, const char *model);
/* Bytes of the longest token (sizes buffers for streaming decode). */
size_t sm_tokenizer_max_token_bytes(const sm_tokenizer *t);

/* Encodes text[0..len) into a malloc'd array of *n ids (free() it; NULL when *n == 0). */
sm_status sm_tokenizer_encode(const sm_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n);
/* Decodes ids into a malloc'd, NUL-terminated byte string of *len bytes (free() it): the exact bytes,
 * which may be invalid UTF-8 if the ids are (use the stream below for display). */
sm_status sm_tokenizer_decode(const sm_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len);
/* The bytes of one token (not NUL-terminated; valid while t lives). */
sm_status sm_tokenizer_token_bytes(const sm_tokenizer *t, int32_t id, const char **bytes, size_t *len);
/* The id of the token whose bytes are exactly bytes[0..len); SM_ERR_INVALID_ARG if there is none. */
sm_status sm_tokenizer_token_id(const sm_tokenizer *t, const char *bytes, size_t len, int32_t *id);

/* Streaming decode for display, one token at a time (a token may end inside a UTF-8 character):
 * each step writes only complete, valid UTF-8, holding back an unfinished character for the next
 * step; bytes that cannot form a character become U+FFFD (one per maximal invalid subpart, like
 * Python's errors="replace"). The concatenated output of the steps and the final flush is valid UTF-8,
 * and equals sm_tokenizer_decode's output whenever that is valid UTF-8. */
typedef struct sm_decode_stream {
    unsigned char pending[4];
    int n_pending;
} sm_decode_stream;

#define SM_DECODE_STEP_CAP(max_token_bytes) (3 * ((max_token_bytes) + 3) + 1)

void sm_decode_stream_init(sm_decode_stream *s);
/* out needs SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(t)) bytes; *n bytes are written (no NUL). */
sm_status sm_tokenizer_decode_step(const sm_tokenizer *t, sm_decode_stream *s, int32_t id, char *out, size_t cap,
                                   size_t *n);
/* Ends the stream: an unfinished character becomes U+FFFD. out needs 3 bytes; returns bytes written. */
size_t sm_decode_stream_flush(sm_decode_stream *s, char *out);

#endif
