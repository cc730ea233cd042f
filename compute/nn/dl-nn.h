/* dl-nn.h: the ops as the models use them: each returns a new tensor (carved
 * from the tape's arena) and, when a gradient must flow, records its backward on
 * the tape.  Parameter gradients go into the buffers registered with
 * dl_tape_set_param_grad (accumulated); frozen parameters get none.
 * All return NULL with `error` set on failure. */
#pragma once

#include "nn/dl-tape.h"
#include "ops/dl-op-activation.h"
#include "ops/dl-op-conv2d.h"

G_BEGIN_DECLS

/* y [..., N] = x [..., K] wᵀ + b;  w [N, K] */
DlTensor *dl_nn_linear (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, GError **error);
/* NCHW convolution, w [Cout, Cin, KH, KW] */
DlTensor *dl_nn_conv2d (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, int stride, int padding, GError **error);
/* The same with every parameter of the op (end padding) */
DlTensor *dl_nn_conv2d_with (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, const DlConv2dParams *params,
                             GError **error);
DlTensor *dl_nn_group_norm (DlTape *tape, DlTensor *x, DlTensor *gamma, DlTensor *beta, int groups, float eps,
                            gboolean silu, GError **error);
DlTensor *dl_nn_layer_norm (DlTape *tape, DlTensor *x, DlTensor *gamma, DlTensor *beta, float eps, GError **error);
DlTensor *dl_nn_activation (DlTape *tape, DlTensor *x, DlActivation act, GError **error);
DlTensor *dl_nn_geglu (DlTape *tape, DlTensor *x, GError **error);
/* q [B, Nq, H*D], k/v [B, Nk, H*D] -> [B, Nq, H*D] */
DlTensor *dl_nn_attention (DlTape *tape, DlTensor *q, DlTensor *k, DlTensor *v, int n_heads, gboolean causal,
                           GError **error);
/* Bytes of score matrices dl_nn_attention holds besides q, k, v and its
 * output: none for the flash kernels; a single head wider than they take (the
 * VAE's mid block, one head of 512) materialises the scores and their softmax,
 * B x Nq x Nk floats each. */
guint64 dl_nn_attention_scores_bytes (int64_t batch, int64_t nq, int64_t nk, int n_heads, int64_t head_dim,
                                      gboolean causal);
/* a + b, same shapes */
DlTensor *dl_nn_add (DlTape *tape, DlTensor *a, DlTensor *b, GError **error);
/* x [N, C, H, W] + b [N, C] broadcast over H, W (the ResNet time embedding) */
DlTensor *dl_nn_add_channel (DlTape *tape, DlTensor *x, DlTensor *b, GError **error);
DlTensor *dl_nn_scale (DlTape *tape, DlTensor *x, float alpha, GError **error);
DlTensor *dl_nn_upsample2x (DlTape *tape, DlTensor *x, GError **error);
DlTensor *dl_nn_concat_channels (DlTape *tape, DlTensor *a, DlTensor *b, GError **error);
/* [N, C, H, W] -> [N, H*W, C] and back */
DlTensor *dl_nn_nchw_to_tokens (DlTape *tape, DlTensor *x, GError **error);
DlTensor *dl_nn_tokens_to_nchw (DlTape *tape, DlTensor *x, int64_t H, int64_t W, GError **error);
/* the same data seen with another shape */
DlTensor *dl_nn_reshape (DlTape *tape, DlTensor *x, int ndim, const int64_t *shape, GError **error);
/* table[ids] + pos[0..T): ids i32 [B, T] -> [B, T, C].  `added` (may be NULL)
 * [n, C] holds ids added_base .. added_base + n - 1 (Textual Inversion tokens
 * past the table's rows). */
DlTensor *dl_nn_embedding (DlTape *tape, DlTensor *ids, DlTensor *table, DlTensor *pos, DlTensor *added,
                           int64_t added_base, GError **error);
/* channels [start, start+count) of x [N, C, ...] */
DlTensor *dl_nn_slice_channels (DlTape *tape, DlTensor *x, int64_t start, int64_t count, GError **error);

/* Mean squared error (per-sample weights may be NULL) as a 1-element f32 tensor.
 * When `dpred` is given it receives grad_scale · dloss/dpred, ready for
 * dl_tape_backward (pred, *dpred). */
DlTensor *dl_nn_mse_loss (DlTape *tape, DlTensor *pred, DlTensor *target, DlTensor *weights, float grad_scale,
                          DlTensor **dpred, GError **error);

G_END_DECLS
