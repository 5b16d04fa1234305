/* dataset.c — corpus splitting and batch drawing. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../base/rng.h"
#include "dataset.h"

sm_status sm_dataset_init(sm_dataset *d, int32_t *tokens, int64_t n, double val_fraction, int T)
{
    memset(d, 0, sizeof *d);
    if (n < (int64_t)T + 1) {
        free(tokens);
        return sm_error(SM_ERR_INVALID_ARG, "the corpus has %lld tokens; a window needs T+1 = %d: use a larger "
                        "file or a smaller sequence length T", (long long)n, T + 1);
    }
    int64_t n_val = (int64_t)((double)n * val_fraction);
    if (n_val < (int64_t)T + 1 || n - n_val < (int64_t)T + 1) n_val = 0;   /* too small to split */
    d->tokens = tokens;
    d->n = n;
    d->n_train = n - n_val;
    return SM_OK;
}

void sm_dataset_free(sm_dataset *d)
{
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

void sm_dataset_train_batch(const sm_dataset *d, uint64_t seed, int64_t step, int B, int T, int32_t *x, int32_t *y)
{
    uint64_t span = (uint64_t)(d->n_train - T);   /* window starts 0..n_train-T-1 */
    for (int b = 0; b < B; b++) {
        uint64_t r = sm_rng_mix(seed ^ sm_rng_mix((uint64_t)step * 1024u + (uint64_t)b));
        int64_t start = (int64_t)(r % span);
        memcpy(x + (int64_t)b * T, d->tokens + start, sizeof *x * (size_t)T);
        memcpy(y + (int64_t)b * T, d->tokens + start + 1, sizeof *y * (size_t)T);
    }
}

int sm_dataset_seq_batch(const sm_dataset *d, int64_t begin, int64_t end, int64_t k, int B, int T, int32_t *x,
                         int32_t *y)
{
    int real = 0;
    for (int b = 0; b < B; b++) {
        int64_t start = begin + (k * B + b) * (int64_t)T;
        int32_t *xr = x + (int64_t)b * T, *yr = y + (int64_t)b * T;
        for (int t = 0; t < T; t++) {
            int64_t i = start + t;
            bool ok = i + 1 < end && i + 1 < d->n;
            xr[t] = ok ? d->tokens[i] : 0;
            yr[t] = ok ? d->tokens[i + 1] : -1;
        }
        if (start + 1 < end) real++;
    }
    return real;
}
