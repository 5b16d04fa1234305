/* fuzz_safetensors.c — libFuzzer target for the safetensors reader: the input is a whole file (the
 * 8-byte header length, the JSON header, the data section) given to sm_st_open_memory, the same
 * parser sm_st_open runs on a mapped file. Besides crashes, leaks and sanitizer reports, it checks
 * the reader's contract: a failure returns no file and leaves a message; an accepted file's tensors
 * lie inside the input, tile its data section, are found by name, and convert to f32 where their
 * dtype allows. Build and run: fuzz/run.sh safetensors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/safetensors.h"
#include "smallmind.h"

static void check(int ok)
{
    if (!ok) __builtin_trap();
}

static bool converts_to_f32(sm_st_dtype t)
{
    return t == SM_ST_F32 || t == SM_ST_F16 || t == SM_ST_BF16 || t == SM_ST_F64;
}

/* Every accepted tensor: inside the input, found by its name, readable as f32 if it is a float. */
static void check_tensor(const sm_st_file *f, const sm_st_tensor *t, const uint8_t *data, size_t size)
{
    const uint8_t *p = t->data;
    check(p >= data && t->nbytes <= size && (size_t)(p - data) <= size - t->nbytes);
    check(t->end - t->begin == t->nbytes);
    check(sm_st_find(f, t->name) == t);
    /* a small tensor is converted whole; the size cap keeps each run fast */
    if (!converts_to_f32(t->dtype) || t->numel > 4096) return;
    float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *dst);
    if (!dst) return;
    check(sm_st_read_f32(f, t, dst, (size_t)t->numel) == SM_OK);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_st_file *f = NULL;
    sm_status s = sm_st_open_memory(data, size, "fuzz.safetensors", &f);
    if (s) {
        check(f == NULL && sm_last_error()[0] != '\0');
        return 0;
    }
    uint64_t covered = 0;
    for (int i = 0; i < sm_st_count(f); i++) {
        const sm_st_tensor *t = sm_st_at(f, i);
        check(t->begin == covered);   /* data-section order, no gap, no overlap */
        covered = t->end;
        check_tensor(f, t, data, size);
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | data[i];
    check(covered == size - 8 - header);   /* nothing after the last tensor */
    for (int i = 0; i < sm_st_metadata_count(f); i++) {
        const char *key, *value;
        sm_st_metadata_at(f, i, &key, &value);
        check(key && value && sm_st_metadata_get(f, key) != NULL);
    }
    sm_st_close(f);
    return 0;
}
