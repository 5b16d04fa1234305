/* test_token_stream.c — a file's tokens read a piece at a time are exactly the tokens of the whole
 * file encoded at once, for the byte tokenizer and GPT-2's BPE (the fixture), and ids files are
 * parsed and checked as before. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontends/token_stream.h"
#include "helpers/cli_run.h"
#include "base/atomic_file.h"

typedef struct collected {
    int32_t *v;
    int64_t n, pieces;
} collected;

static sm_status collect(void *ctx, const int32_t *ids, int64_t n)
{
    collected *c = ctx;
    c->v = realloc(c->v, sizeof *c->v * (size_t)(c->n + n));
    memcpy(c->v + c->n, ids, sizeof *ids * (size_t)n);
    c->n += n;
    c->pieces++;
    return SM_OK;
}

static void same_as_whole(const sm_tokenizer *tok, const char *path, size_t piece)
{
    void *text;
    size_t len, n;
    int32_t *whole;
    cr_assert_eq(sm_file_read_all(path, (size_t)1 << 30, &text, &len), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_tokenizer_encode(tok, text, len, &whole, &n), SM_OK);
    collected c = {0};
    cr_assert_eq(sm_token_stream_file(path, tok, 0, piece, collect, &c), SM_OK, "%s", sm_last_error());
    cr_assert_gt(c.pieces, 10, "the file was read in pieces (%lld)", (long long)c.pieces);
    cr_assert_eq(c.n, (int64_t)n);
    cr_assert_arr_eq(c.v, whole, sizeof *whole * n, "piece %zu", piece);
    free(c.v), free(whole), free(text);
}

Test(token_stream, pieces_encode_as_the_whole_file)
{
    char vocab[1024], merges[1024];
    snprintf(vocab, sizeof vocab, "%s/tokenizer/vocab.json", getenv("SM_FIXTURES"));
    snprintf(merges, sizeof merges, "%s/tokenizer/merges.txt", getenv("SM_FIXTURES"));
    sm_tokenizer *byte, *bpe;
    cr_assert_eq(sm_tokenizer_byte_create(&byte), SM_OK);
    cr_assert_eq(sm_tokenizer_gpt2_load(vocab, merges, &bpe), SM_OK, "%s", sm_last_error());
    for (size_t piece = 7; piece < 40000; piece *= 13) {
        same_as_whole(byte, sm_test_corpus(), piece);
        same_as_whole(bpe, sm_test_corpus(), piece);
    }
    sm_tokenizer_free(byte);
    sm_tokenizer_free(bpe);
}

Test(token_stream, ids_files_are_parsed_in_pieces_and_checked)
{
    char path[] = "/tmp/sm_ids_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 3000; i++) fprintf(f, "%d%c", (i * 37) % 256, i % 10 == 9 ? '\n' : ' ');
    fclose(f);
    sm_tokenizer *byte;
    cr_assert_eq(sm_tokenizer_byte_create(&byte), SM_OK);
    collected c = {0};
    cr_assert_eq(sm_token_stream_file(path, byte, 1, 16, collect, &c), SM_OK, "%s", sm_last_error());
    cr_assert_eq(c.n, 3000);
    for (int i = 0; i < 3000; i++) cr_assert_eq(c.v[i], (i * 37) % 256);
    free(c.v);
    f = fopen(path, "a");
    fprintf(f, "12 300 4\n");
    fclose(f);
    collected d = {0};
    cr_assert_eq(sm_token_stream_file(path, byte, 1, 16, collect, &d), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), "token id 300 at position 3001 is outside the vocabulary"), "%s", sm_last_error());
    free(d.v);
    f = fopen(path, "w");
    fprintf(f, "1 2\n3x 4\n");
    fclose(f);
    collected e = {0};
    cr_assert_eq(sm_token_stream_file(path, byte, 1, 4, collect, &e), SM_ERR_FORMAT);
    cr_assert(strstr(sm_last_error(), ":2: expected a token id"), "%s", sm_last_error());
    free(e.v);
    sm_tokenizer_free(byte);
    unlink(path);
}
