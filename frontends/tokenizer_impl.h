/* tokenizer_impl.h — the tokenizer record shared by tokenizer.c (byte tokenizer, decode, streaming)
 * and tokenizer_bpe.c (GPT-2 BPE). */
#ifndef SM_TOKENIZER_IMPL_H
#define SM_TOKENIZER_IMPL_H

#include <stdbool.h>

#include "tokenizer.h"

#define SM_TOKEN_NONE UINT32_MAX   /* tok_len of an id that vocab.json skipped */

typedef enum sm_tokenizer_kind { SM_TOKENIZER_BYTE = 0, SM_TOKENIZER_GPT2 } sm_tokenizer_kind;

/* One BPE merge: the pair (a, b) becomes token `result`; lower rank merges first. */
typedef struct sm_bpe_merge {
    uint64_t key;              /* (a << 32) | b */
    int32_t rank;              /* -1 marks an empty slot */
    int32_t result;
} sm_bpe_merge;

struct sm_tokenizer {
    sm_tokenizer_kind kind;
    int vocab_size;
    char *blob;                /* every token's bytes, back to back */
    uint32_t *tok_off, *tok_len;
    size_t max_token_bytes;
    int32_t byte_token[256];   /* the single-byte token of each byte */
    sm_bpe_merge *merges;      /* open-addressing hash table, merge_cap slots (power of two) */
    size_t merge_cap;
    int32_t *lookup;           /* bytes -> id hash table, lookup_cap slots, -1 = empty */
    size_t lookup_cap;
};

/* Fills the bytes -> id table from blob/tok_off/tok_len (both kinds use it for token_id). */
sm_status sm_tokenizer_build_lookup(sm_tokenizer *t);
/* GPT-2 encode of one piece of text (after pre-tokenization), appending to ids[*n]. */
sm_status sm_bpe_encode_piece(const sm_tokenizer *t, const unsigned char *s, size_t len, int32_t *ids, size_t *n,
                              void **scratch, size_t *scratch_cap);

#endif
