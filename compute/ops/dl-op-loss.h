/* dl-op-loss.h: the training loss (epsilon/v-prediction MSE) and its gradient. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* loss (f32, one element) = 1/B sum_b w_b * mean_i (pred[b, i] - target[b, i])^2
 * over the first dimension B (the samples) and everything else (i).  weights: f32
 * [B] (per-sample factors such as min-SNR-gamma, computed by the caller) or NULL
 * for F.mse_loss's plain mean.  per_sample (f32 [B], may be NULL) receives
 * w_b * mean_i (...)^2.  pred and target: same shape, f32 or f16 each.  The sum
 * order depends only on the shape: the same bits on every device and run. */
gboolean dl_op_mse_loss (DlRecorder *rec, DlTensor *loss, DlTensor *per_sample, DlTensor *pred, DlTensor *target,
                         DlTensor *weights, GError **error);

/* dpred = grad_scale * d loss / d pred = grad_scale * 2 w_b (pred - target) / numel
 * (grad_scale: 1, or a loss scale / accumulation factor); dpred f32 or f16 with
 * pred's shape.  dpred may be pred. */
gboolean dl_op_mse_loss_backward (DlRecorder *rec, DlTensor *dpred, DlTensor *pred, DlTensor *target, DlTensor *weights,
                                  float grad_scale, GError **error);

G_END_DECLS
