/* ref-loss.h: CPU reference of the training loss. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: diffusers' min-SNR form of F.mse_loss:
 *   per_sample[b] = w[b] * mean_i (pred[b, i] - target[b, i])^2   (w NULL: 1)
 *   return mean_b per_sample[b]
 * which is F.mse_loss(pred, target) (mean over everything) when w is NULL.
 * per_sample may be NULL. */
double ref_mse_loss (float *per_sample, const float *pred, const float *target, const float *w, int64_t B, int64_t M);
/* d(grad_scale * loss) / d pred */
void ref_mse_loss_backward (float *dpred, const float *pred, const float *target, const float *w, int64_t B, int64_t M,
                            float grad_scale);

G_END_DECLS
