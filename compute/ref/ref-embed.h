/* ref-embed.h: CPU references of the embedding lookups. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: CLIPTextEmbeddings: out[b, t] = table[ids[b, t]] + pos[t + pos_offset]
 * (pos may be NULL); ids outside [0, V) give zero rows (torch would raise). */
void ref_embedding_forward (float *out, const int32_t *ids, const float *table, const float *pos, int64_t B, int64_t T,
                            int64_t C, int64_t V, int64_t pos_offset);

/* The same with row r of the table holding id id_base + r (ids outside
 * [id_base, id_base + V) give zero rows).  With `accumulate` the float sum
 * row + pos is added to out in float (A1111's Textual Inversion rows on top of the
 * frozen table's lookup), and the elements of ids outside the table are left
 * alone when pos is NULL. */
void ref_embedding_forward_ex (float *out, const int32_t *ids, const float *table, int64_t id_base, const float *pos,
                               int64_t B, int64_t T, int64_t C, int64_t V, int64_t pos_offset, gboolean accumulate);

/* Gradient of the above, added into dtable [V, C] and dpos (either may be NULL),
 * summed in double. */
void ref_embedding_backward (float *dtable, float *dpos, const int32_t *ids, const float *dout, int64_t B, int64_t T,
                             int64_t C, int64_t V, int64_t pos_offset);
/* The same with row r of dtable holding id id_base + r (other ids skipped). */
void ref_embedding_backward_ex (float *dtable, int64_t id_base, float *dpos, const int32_t *ids, const float *dout,
                                int64_t B, int64_t T, int64_t C, int64_t V, int64_t pos_offset);

/* reference: diffusers get_timestep_embedding(timesteps, dim, flip_sin_to_cos,
 * downscale_freq_shift, scale, max_period), step by step in float32 as PyTorch
 * evaluates it (libm expf, sinf, cosf). */
void ref_timestep_embedding (float *out, const float *timesteps, int64_t B, int64_t dim, gboolean flip_sin_to_cos,
                             float freq_shift, float scale, double max_period);

G_END_DECLS
