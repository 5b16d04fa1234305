/* test_dataset.c — corpus split and batches: deterministic, in range, targets shifted by one. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/dataset.h"

static sm_dataset make(int64_t n, double val, int T)
{
    int32_t *tok = malloc(sizeof *tok * (size_t)n);
    for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)i;   /* token = its position */
    sm_dataset d;
    cr_assert_eq(sm_dataset_init(&d, tok, n, val, T), SM_OK);
    return d;
}

Test(dataset, train_batches_are_shifted_windows_in_the_train_split)
{
    sm_dataset d = make(1000, 0.1, 16);
    cr_assert_eq(d.n_train, 900);
    int32_t x[4 * 16], y[4 * 16], x2[4 * 16], y2[4 * 16];
    for (int step = 0; step < 50; step++) {
        sm_dataset_train_batch(&d, 7, step, 4, 16, x, y);
        for (int i = 0; i < 4 * 16; i++) {
            cr_assert_eq(y[i], x[i] + 1);
            cr_assert(y[i] < 900, "target %d leaks into the validation split", y[i]);
        }
        for (int b = 0; b < 4; b++)
            for (int t = 1; t < 16; t++) cr_assert_eq(x[b * 16 + t], x[b * 16 + t - 1] + 1);
        sm_dataset_train_batch(&d, 7, step, 4, 16, x2, y2);
        cr_assert(memcmp(x, x2, sizeof x) == 0, "same seed and step, same batch");
    }
    sm_dataset_train_batch(&d, 8, 0, 4, 16, x2, y2);
    sm_dataset_train_batch(&d, 7, 0, 4, 16, x, y);
    cr_assert(memcmp(x, x2, sizeof x) != 0, "another seed, another batch");
    sm_dataset_free(&d);
}

Test(dataset, sequential_windows_cover_the_range_once_and_pad)
{
    sm_dataset d = make(100, 0.0, 8);
    int32_t x[3 * 8], y[3 * 8];
    int64_t seen = 0;
    for (int64_t k = 0;; k++) {
        int real = sm_dataset_seq_batch(&d, 0, 100, k, 3, 8, x, y);
        if (!real) break;
        for (int i = 0; i < 24; i++)
            if (y[i] >= 0) {
                cr_assert_eq(y[i], x[i] + 1);
                cr_assert_eq(x[i], seen, "windows are consecutive");
                seen++;
            }
    }
    cr_assert_eq(seen, 99, "every token but the last is predicted exactly once");
    sm_dataset_free(&d);
}

Test(dataset, too_small_corpus_is_refused)
{
    int32_t *tok = calloc(5, sizeof *tok);
    sm_dataset d;
    cr_assert_eq(sm_dataset_init(&d, tok, 5, 0.1, 16), SM_ERR_INVALID_ARG);
    cr_assert(strstr(sm_last_error(), "T+1"));
}
