/* dl-op-attention.h: multi-head scaled-dot-product attention, memory-efficient
 * (FlashAttention-2 style): neither pass ever holds the Nq x Nk score matrix,
 * only one log-sum-exp float per query row and head.
 *
 * Layout (token-major, what the q/k/v projections produce, no head transposes):
 *   q, o, dO, dq: [B, Nq, H*D];  k, v, dk, dv: [B, Nk, H*D]  (or 2-D, B = 1)
 * head h uses channels h*D .. h*D+D-1 of every token (diffusers' head_to_batch_dim
 * split).  All of these share one dtype, f32 or f16; arithmetic is f32.
 *   lse, delta: [B, H, Nq] f32. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef struct
{
  int n_heads;
  float scale;     /* scores are q·k * scale; 0 means 1/sqrt(D) (SD, CLIP) */
  gboolean causal; /* key j hidden from query i when j > i (CLIP's mask) */
  guint block_q;   /* tile sizes; 0 picks from the head size and the device */
  guint block_k;
} DlAttentionParams;

#define DL_ATTENTION_PARAMS(heads) ((DlAttentionParams){ .n_heads = (heads) })

/* o = softmax(q kᵀ · scale) v per head.  lse (may be NULL when no backward
 * follows) receives the natural log of each row's softmax denominator (with the
 * row's scores already scaled). */
gboolean dl_op_attention (DlRecorder *rec, DlTensor *o, DlTensor *lse, DlTensor *q, DlTensor *k, DlTensor *v,
                          const DlAttentionParams *params, GError **error);

/* Gradients from dO, the forward's inputs, its output o and lse.  dq may be NULL
 * (no dQ pass); dk and dv are both given or both NULL.  Results overwrite the
 * gradient tensors.  Needs B*H*Nq floats of scratch. */
gboolean dl_op_attention_backward (DlRecorder *rec, DlTensor *dq, DlTensor *dk, DlTensor *dv, DlTensor *q, DlTensor *k,
                                   DlTensor *v, DlTensor *o, DlTensor *lse, DlTensor *dout,
                                   const DlAttentionParams *params, GError **error);

typedef enum
{
  DL_ATTENTION_PASS_FORWARD,
  DL_ATTENTION_PASS_BACKWARD_Q,
  DL_ATTENTION_PASS_BACKWARD_KV,
} DlAttentionPass;

/* The tiles a pass uses for head size D on this device (honouring the block
 * sizes in params when set), and their shared memory in bytes; FALSE when
 * nothing fits. */
gboolean dl_attention_tiles (DlDevice *device, DlAttentionPass pass, int64_t D, const DlAttentionParams *params,
                             guint *block_q, guint *block_k, guint *shared_bytes);

G_END_DECLS
