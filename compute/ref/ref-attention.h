/* ref-attention.h: CPU reference of multi-head scaled-dot-product attention,
 * the naive way (the whole score matrix), in double. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: torch.nn.functional.scaled_dot_product_attention with heads split
 * from the channel dimension (diffusers' head_to_batch_dim): q, o [B, Nq, H*D];
 * k, v [B, Nk, H*D]; o = softmax(q kᵀ · scale) v per (batch, head), with keys
 * j > i masked when causal (is_causal=True, top-left aligned).  lse [B, H, Nq]
 * (may be NULL) receives log(sum_j exp(q_i·k_j · scale)) over the visible keys. */
void ref_attention_forward (float *o, float *lse, const float *q, const float *k, const float *v, int64_t B, int64_t H,
                            int64_t Nq, int64_t Nk, int64_t D, float scale, gboolean causal);

/* Gradients of the above given dO (any of dq, dk, dv may be NULL). */
void ref_attention_backward (float *dq, float *dk, float *dv, const float *q, const float *k, const float *v,
                             const float *dout, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D, float scale,
                             gboolean causal);

G_END_DECLS
