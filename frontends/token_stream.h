/* token_stream.h — the tokens of a file, read and encoded one piece at a time, so a reader's memory
 * is a piece, not the file. */
#ifndef SM_TOKEN_STREAM_H
#define SM_TOKEN_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* Receives the next n tokens of the stream. */
typedef sm_status (*sm_token_sink)(void *ctx, const int32_t *ids, int64_t n);

/* Reads the regular file path `chunk` bytes at a time and hands its tokens to fn in order. Text is
 * encoded with tok, cut only where a line starts with a printable ASCII character (a boundary of
 * GPT-2's pre-tokenizer, so the tokens are those of encoding the whole file at once; the byte
 * tokenizer has no boundaries to respect); a line longer than a piece makes the piece grow. With
 * ids_file the file holds whitespace-separated decimal ids, each checked against the vocabulary
 * (errors name the line and the id's position). */
sm_status sm_token_stream_file(const char *path, const sm_tokenizer *tok, int ids_file, size_t chunk,
                               sm_token_sink fn, void *ctx);

#endif
