/* attention_kernel.h — causal multi-head self-attention, tiled with an online softmax: no T×T matrix
 * is ever stored, so memory is linear in T. */
#ifndef SM_ATTENTION_KERNEL_H
#define SM_ATTENTION_KERNEL_H

#include <stddef.h>

/* qkv [B,T,3C] packed as in GPT-2 (q | k | v along the last dim, head h uses columns h*D..h*D+D-1 of
 * each part, D = C/H). out [B,T,C]. span: 0 = full causal; span > 0 = query t attends to keys
 * max(0, t-span+1)..t (sliding window). Scale 1/sqrt(D).
 * Team calls (see gemm.h): called by every thread of the team, bitwise the same for any thread count.
 * work: per-thread scratch of sm_attention_workspace(T, C, H) bytes. */
void sm_attention_forward(const float *qkv, float *out, int B, int T, int C, int H, int span, void *work);
size_t sm_attention_workspace(int T, int C, int H);

/* Gradient: given qkv, dout [B,T,C], writes dqkv [B,T,3C] (overwrites). Recomputes the probabilities
 * tile by tile (no T×T matrix). work: per-thread scratch of sm_attention_backward_workspace bytes. */
void sm_attention_backward(const float *qkv, const float *dout, float *dqkv, int B, int T, int C, int H,
                           int span, void *work);
size_t sm_attention_backward_workspace(int T, int C, int H);

/* Plain references (serial; they may materialise T×T): what the tests compare against. */
void sm_attention_forward_ref(const float *qkv, float *out, int B, int T, int C, int H, int span);
void sm_attention_backward_ref(const float *qkv, const float *dout, float *dqkv, int B, int T, int C, int H,
                               int span);

#endif
