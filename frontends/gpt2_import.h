/* gpt2_import.h — GPT-2 weights from llm.c checkpoints and Hugging Face safetensors, as named f32
 * arrays in one neutral layout that the GPT template binds to its parameters.
 *
 * Canonical names and shapes (C = n_embd, L = n_layer, V = vocab, T = max positions), every matrix
 * in Linear layout [out, in] so y = x·Wᵀ + b:
 *   wte [V,C]  wpe [T,C]
 *   h{i}.ln1.w [C]  h{i}.ln1.b [C]
 *   h{i}.attn.qkv.w [3C,C]  h{i}.attn.qkv.b [3C]  h{i}.attn.proj.w [C,C]  h{i}.attn.proj.b [C]
 *   h{i}.ln2.w [C]  h{i}.ln2.b [C]
 *   h{i}.mlp.fc.w [4C,C]  h{i}.mlp.fc.b [4C]  h{i}.mlp.proj.w [C,4C]  h{i}.mlp.proj.b [C]
 *   lnf.w [C]  lnf.b [C]
 * The array list is in that order: wte, wpe, layer 0's twelve, ..., layer L-1's, lnf.w, lnf.b.
 * wte has V rows even where llm.c pads the file to Vp rows (the padding rows are dropped). */
#ifndef SM_GPT2_IMPORT_H
#define SM_GPT2_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "safetensors.h"
#include "smallmind.h"

#define SM_LLMC_MAGIC 20240326
#define SM_LLMC_VERSION_F32 3
#define SM_LLMC_VERSION_BF16 5

typedef struct sm_gpt2_hparams {
    int max_seq;        /* T: learned positions */
    int vocab;          /* V */
    int padded_vocab;   /* Vp: rows of wte in an llm.c file (V for Hugging Face files) */
    int n_layer;        /* L */
    int n_head;         /* H (0 when unknown: Hugging Face keeps it in config.json, not the weights) */
    int n_embd;         /* C */
} sm_gpt2_hparams;

typedef struct sm_named_array {
    char name[SM_NAME_MAX];
    int ndim;
    int64_t shape[SM_MAX_DIMS];
    int64_t numel;
    float *data;        /* owned by the sm_gpt2_weights */
} sm_named_array;

typedef struct sm_gpt2_weights {
    sm_gpt2_hparams hp;
    int n;
    sm_named_array *arrays;
    float *storage;     /* one block holding every array's data */
} sm_gpt2_weights;

/* llm.c's gpt2_*.bin: 256 int32 header (magic, version 3 = f32 or 5 = bf16, maxT, V, L, H, C, Vp),
 * then the parameters in llm.c order. Validates the header and that the file size matches exactly. */
sm_status sm_gpt2_load_llmc(const char *path, sm_gpt2_weights *out);

/* Hugging Face GPT-2 weights (names with or without a "transformer." prefix; F32, F16 or BF16).
 * n_head is stored as given (0 = unknown); it must divide C. The attention mask buffers
 * (h.{i}.attn.bias, h.{i}.attn.masked_bias) and a tied lm_head.weight are ignored; any other unknown
 * tensor is an error. */
sm_status sm_gpt2_load_hf(const sm_st_file *f, int n_head, sm_gpt2_weights *out);
/* The same from a file. The weights do not store the number of heads; Hugging Face keeps it, with the
 * other sizes, in the config.json saved next to them. When that file exists it is read: n_head > 0 must
 * agree with it, n_head 0 takes its head count, and every size it gives (layers, channels, vocabulary,
 * positions) must match the tensors, or the load fails naming the size and both values. Without a
 * config.json the heads are n_head (0 = unknown: out->hp.n_head stays 0). */
sm_status sm_gpt2_load_hf_file(const char *path, int n_head, sm_gpt2_weights *out);
/* Reads a Hugging Face config.json: n_head (or num_attention_heads), n_layer (num_hidden_layers),
 * n_embd (hidden_size), vocab_size and n_positions (max_position_embeddings) into hp; an absent key
 * leaves 0, a present one must be an integer in range (the message gives line and column). */
sm_status sm_gpt2_hf_config_load(const char *path, sm_gpt2_hparams *hp);

void sm_gpt2_weights_free(sm_gpt2_weights *w);
const sm_named_array *sm_gpt2_weights_find(const sm_gpt2_weights *w, const char *name);

/* The parameter table, in llm.c file order. A dim is a multiple of C (mult > 0) or V / T. */
typedef enum sm_gpt2_dim_kind { SM_GPT2_DIM_C = 0, SM_GPT2_DIM_V, SM_GPT2_DIM_T } sm_gpt2_dim_kind;

typedef struct sm_gpt2_dim {
    sm_gpt2_dim_kind kind;
    int mult;                /* for SM_GPT2_DIM_C: the dim is mult * C */
} sm_gpt2_dim;

typedef struct sm_gpt2_param {
    const char *canon;       /* canonical name; "%d" stands for the layer when per_layer */
    const char *hf;          /* Hugging Face name, same convention: "h.%d.attn.c_attn.weight" */
    bool per_layer;
    bool hf_transposed;      /* Hugging Face Conv1D keeps [in, out]: transpose to get [out, in] */
    int ndim;                /* canonical shape: dims[0..ndim) */
    sm_gpt2_dim dims[2];
} sm_gpt2_param;

/* The 16 parameter kinds, in llm.c order (wte, wpe, ln1w, ..., lnfb). */
const sm_gpt2_param *sm_gpt2_param_table(int *n);

#endif
