/* safetensors.h — reader and writer of the Hugging Face safetensors format.
 *
 * Layout: u64 little-endian N | N bytes of JSON header | data section. The header maps each tensor
 * name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the data
 * section) and may hold "__metadata__": {string: string}. Tensors must tile the data section exactly:
 * no overlap, no gap, nothing after the last one.
 *
 * SmallMind's additions live in __metadata__ so other readers still load our files:
 *   "sm.format_version": "1"
 *   "sm.xxh3.<tensor name>": 16 lowercase hex digits, XXH3-64 of the tensor's bytes.
 * The reader verifies every checksum present, and when sm.format_version is present it requires one
 * for every tensor. Every error names the file, the tensor and what to do. */
#ifndef SM_SAFETENSORS_H
#define SM_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smallmind.h"

#define SM_ST_FORMAT_VERSION 1
#define SM_ST_MAX_DIMS 8
#define SM_ST_MAX_HEADER 100000000u   /* the reference implementation's limit */

/* In the reference's order (increasing alignment), which the sorted writer relies on. */
typedef enum sm_st_dtype {
    SM_ST_BOOL = 0,
    SM_ST_U8,
    SM_ST_I8,
    SM_ST_F8_E5M2,
    SM_ST_F8_E4M3,
    SM_ST_I16,
    SM_ST_U16,
    SM_ST_F16,
    SM_ST_BF16,
    SM_ST_I32,
    SM_ST_U32,
    SM_ST_F32,
    SM_ST_F64,
    SM_ST_I64,
    SM_ST_U64,
    SM_ST_DTYPE_COUNT
} sm_st_dtype;

const char *sm_st_dtype_name(sm_st_dtype t);          /* "F32"; "?" if invalid */
size_t sm_st_dtype_size(sm_st_dtype t);               /* bytes per element; 0 if invalid */
bool sm_st_dtype_parse(const char *name, sm_st_dtype *out);
/* Between SmallMind's storage types and safetensors' (all four of sm_dtype have one). */
sm_st_dtype sm_st_dtype_from_sm(sm_dtype t);
bool sm_st_dtype_to_sm(sm_st_dtype t, sm_dtype *out);

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct sm_st_tensor {
    const char *name;
    sm_st_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[SM_ST_MAX_DIMS];   /* outermost first */
    int64_t numel;
    uint64_t begin, end;             /* byte range inside the data section */
    const void *data;                /* the bytes, little-endian; may be unaligned for the dtype */
    size_t nbytes;
    bool has_checksum;
    uint64_t checksum;               /* verified when the file was opened */
} sm_st_tensor;

typedef struct sm_st_file sm_st_file;

/* Maps the file, validates the whole header against the file size and verifies the checksums. */
sm_status sm_st_open(const char *path, sm_st_file **out);
/* Same on bytes already in memory (not copied: they must outlive the result); name is for messages. */
sm_status sm_st_open_memory(const void *bytes, size_t size, const char *name, sm_st_file **out);
void sm_st_close(sm_st_file *f);

const char *sm_st_name(const sm_st_file *f);          /* the path or name given at open */
int sm_st_count(const sm_st_file *f);
/* Tensor i in data-section order, 0 <= i < count. */
const sm_st_tensor *sm_st_at(const sm_st_file *f, int i);
/* By name: NULL if absent (sm_st_get sets an error naming the file and a few tensors it has). */
const sm_st_tensor *sm_st_find(const sm_st_file *f, const char *name);
sm_status sm_st_get(const sm_st_file *f, const char *name, const sm_st_tensor **out);

int sm_st_metadata_count(const sm_st_file *f);
void sm_st_metadata_at(const sm_st_file *f, int i, const char **key, const char **value);
const char *sm_st_metadata_get(const sm_st_file *f, const char *key);   /* NULL if absent */

/* Converts a tensor of dtype F32, F16, BF16 or F64 to n f32 values (n must equal its numel). Weights
 * are finite numbers: a NaN or an infinity (also an F64 value beyond the f32 range) is SM_ERR_FORMAT
 * naming the tensor and the element, so a damaged file never runs. */
sm_status sm_st_read_f32(const sm_st_file *f, const sm_st_tensor *t, float *dst, size_t n);
/* SM_ERR_FORMAT naming source, tensor and the first element of x[0..n) that is NaN or infinite. */
sm_status sm_st_check_finite(const char *source, const char *tensor, const float *x, size_t n);

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct sm_st_entry {
    const char *name;
    sm_st_dtype dtype;
    int ndim;
    int64_t shape[SM_ST_MAX_DIMS];
    const void *data;                /* numel * dtype size bytes, little-endian */
} sm_st_entry;

typedef struct sm_st_kv {
    const char *key;
    const char *value;
} sm_st_kv;

enum {
    /* Order tensors like the reference writer (alignment descending, then name) instead of as given:
     * keeps every tensor aligned to its element size. */
    SM_ST_WRITE_SORTED = 1u << 0,
    /* Write no sm.* metadata (no version, no checksums): exactly what the reference would write. */
    SM_ST_WRITE_PLAIN = 1u << 1,
};

/* Writes the tensors and the metadata (keys starting with "sm." are reserved unless PLAIN)
 * atomically to path. Header padded with spaces to a multiple of 8 bytes like the reference. */
sm_status sm_st_write(const char *path, const sm_st_entry *tensors, int n, const sm_st_kv *meta, int n_meta,
                      unsigned flags);

#endif
