/* dl-op-embedding.h: token and position embedding lookups (CLIP's input) with
 * their deterministic scatter-add backward, and the sinusoidal timestep
 * embedding of the UNet. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* out[b, t, :] (+)= table[ids[b, t] - id_base, :] + pos[t + pos_offset, :] (pos may
 * be NULL): row r of the table holds id id_base + r (0 <= id_base < 2^31).
 * ids: i32 [B, T] (or [T]); table [V, C] and pos [P, C] share a dtype (f32 or
 * f16), P >= pos_offset + T; out [B, T, C] (or [T, C]) f32 or f16, of any of the
 * two dtypes.  Ids outside [id_base, id_base + V) cannot be reported from the
 * device: their rows read as zeros.  With `accumulate` the lookup (+ pos) is
 * added to what out holds (in f32, rounded once to out's dtype), and elements of
 * ids outside the table are left alone when pos is NULL; so a second, small
 * table of new tokens (Textual Inversion: id_base 49408) adds its rows on top of
 * the frozen table's lookup.  A table larger than one binding
 * (maxStorageBufferRange) is looked up in one dispatch per range of rows, with
 * the same result bits. */
gboolean dl_op_embedding_ex (DlRecorder *rec, DlTensor *out, DlTensor *ids, DlTensor *table, int64_t id_base,
                             DlTensor *pos, int64_t pos_offset, gboolean accumulate, GError **error);
/* dl_op_embedding_ex with id_base 0, overwriting out. */
gboolean dl_op_embedding (DlRecorder *rec, DlTensor *out, DlTensor *ids, DlTensor *table, DlTensor *pos,
                          int64_t pos_offset, GError **error);

/* Gradients of dl_op_embedding_ex from dout ([B, T, C], f32 or f16) into dtable
 * [V, C] (row r: id id_base + r) and dpos [P, C] (f32; either may be NULL).
 * Every table row used gets the sum of its positions' gradients in position
 * order, written by one thread per element: no atomics, the same bits on every
 * run and device (a Textual Inversion step reads exactly its token's row); ids
 * outside the table are skipped.  A table gradient larger than one binding is
 * written in one dispatch per range of rows, with the same bits.  With
 * `accumulate` the sums are added to what the tensors hold; otherwise the
 * tensors are overwritten (dtable zeroed first). */
gboolean dl_op_embedding_backward_ex (DlRecorder *rec, DlTensor *dtable, int64_t id_base, DlTensor *dpos, DlTensor *ids,
                                      DlTensor *dout, int64_t pos_offset, gboolean accumulate, GError **error);
/* dl_op_embedding_backward_ex with id_base 0. */
gboolean dl_op_embedding_backward (DlRecorder *rec, DlTensor *dtable, DlTensor *dpos, DlTensor *ids, DlTensor *dout,
                                   int64_t pos_offset, gboolean accumulate, GError **error);

typedef struct
{
  gboolean flip_sin_to_cos; /* [cos | sin] (SD: TRUE) instead of [sin | cos] */
  float freq_shift;         /* diffusers downscale_freq_shift (SD UNet: 0) */
  float scale;              /* multiplies the arguments (1) */
  double max_period;        /* 10000 */
} DlTimestepEmbeddingParams;

#define DL_TIMESTEP_EMBEDDING_SD \
  ((DlTimestepEmbeddingParams){ .flip_sin_to_cos = TRUE, .freq_shift = 0.0f, .scale = 1.0f, .max_period = 10000.0 })

/* out [B, dim] (f32 or f16) = sinusoidal embedding of timesteps [B] (f32 or i32;
 * fractional timesteps allowed).  No backward: nothing upstream is trained. */
gboolean dl_op_timestep_embedding (DlRecorder *rec, DlTensor *out, DlTensor *timesteps,
                                   const DlTimestepEmbeddingParams *params, GError **error);

G_END_DECLS
