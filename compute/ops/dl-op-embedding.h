/* dl-op-embedding.h: token and position embedding lookups (CLIP's input) with
 * their deterministic scatter-add backward, and the sinusoidal timestep
 * embedding of the UNet. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* out[b, t, :] = table[ids[b, t], :] + pos[t + pos_offset, :] (pos may be NULL).
 * ids: i32 [B, T] (or [T]); table [V, C] and pos [P, C] share a dtype (f32 or
 * f16), P >= pos_offset + T; out [B, T, C] (or [T, C]) f32 or f16.  Ids outside
 * [0, V) cannot be reported from the device: their rows read as zeros. */
gboolean dl_op_embedding (DlRecorder *rec, DlTensor *out, DlTensor *ids, DlTensor *table, DlTensor *pos,
                          int64_t pos_offset, GError **error);

/* Gradients of dl_op_embedding from dout ([B, T, C], f32 or f16) into dtable
 * [V, C] and dpos [P, C] (f32; either may be NULL).  Every table row used gets the
 * sum of its positions' gradients in position order, written by one thread per
 * element: no atomics, the same bits on every run and device (a Textual Inversion
 * step reads exactly its token's row).  With `accumulate` the sums are added to
 * what the tensors hold; otherwise the tensors are overwritten (dtable zeroed
 * first). */
gboolean dl_op_embedding_backward (DlRecorder *rec, DlTensor *dtable, DlTensor *dpos, DlTensor *ids, DlTensor *dout,
                                   int64_t pos_offset, gboolean accumulate, GError **error);

typedef struct {
  gboolean flip_sin_to_cos; /* [cos | sin] (SD: TRUE) instead of [sin | cos] */
  float freq_shift;         /* diffusers downscale_freq_shift (SD UNet: 0) */
  float scale;              /* multiplies the arguments (1) */
  double max_period;        /* 10000 */
} DlTimestepEmbeddingParams;

#define DL_TIMESTEP_EMBEDDING_SD \
  ((DlTimestepEmbeddingParams) { .flip_sin_to_cos = TRUE, .freq_shift = 0.0f, .scale = 1.0f, .max_period = 10000.0 })

/* out [B, dim] (f32 or f16) = sinusoidal embedding of timesteps [B] (f32 or i32;
 * fractional timesteps allowed).  No backward: nothing upstream is trained. */
gboolean dl_op_timestep_embedding (DlRecorder *rec, DlTensor *out, DlTensor *timesteps,
                                   const DlTimestepEmbeddingParams *params, GError **error);

G_END_DECLS
