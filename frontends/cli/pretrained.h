/* pretrained.h — a trained model for generate and eval, from a checkpoint or imported GPT-2 weights. */
#ifndef SM_CLI_PRETRAINED_H
#define SM_CLI_PRETRAINED_H

#include "session.h"

typedef struct sm_pretrained_options {
    const char *checkpoint;   /* a `smallmind train --save` file */
    const char *gpt2;         /* llm.c gpt2_*.bin or Hugging Face gpt2 model.safetensors */
    const char *tokenizer;    /* overrides the checkpoint's; required with --gpt2 */
    int n_head;               /* heads of a Hugging Face file (not in the weights); 0 = its config.json's */
    int batch, seq;           /* 0 = the model's */
    bool inference;           /* logits, no loss (generate) */
    int threads;
    sm_precision precision;   /* --precision: bf16/fp16 store the weights in 16 bits */
} sm_pretrained_options;

sm_status sm_pretrained_open(const sm_pretrained_options *o, sm_session *s, sm_tokenizer **tok);

#endif
