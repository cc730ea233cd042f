/* dl-op-adamw.h: the optimizer step: fused AdamW over fp32 master weights, the
 * global gradient norm with clipping, and the per-step scalars they read from a
 * small device buffer (so a recorded step needs no re-recording when the
 * learning rate or the step number change).  Gradient accumulation is
 * dl_op_axpby (dst = src + 1 * dst). */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef struct
{
  double lr;
  double beta1, beta2;
  double eps;
  double weight_decay;
  double grad_scale; /* gradients are multiplied by this first (1; 1/loss-scale) */
} DlAdamWParams;

/* torch.optim.AdamW's defaults at lr 1e-3 */
#define DL_ADAMW_PARAMS_DEFAULT \
  ((DlAdamWParams){ .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2, .grad_scale = 1.0 })

/* The hyper buffer: DL_ADAMW_HYPER_LEN f32 values, in this order. */
enum
{
  DL_ADAMW_H_DECAY, /* 1 - lr * weight_decay */
  DL_ADAMW_H_BETA1,
  DL_ADAMW_H_ONE_MINUS_BETA1,
  DL_ADAMW_H_BETA2,
  DL_ADAMW_H_ONE_MINUS_BETA2,
  DL_ADAMW_H_STEP_SIZE, /* lr / (1 - beta1^t) */
  DL_ADAMW_H_BC2_SQRT,  /* sqrt(1 - beta2^t) */
  DL_ADAMW_H_EPS,
  DL_ADAMW_H_GRAD_SCALE,
  DL_ADAMW_HYPER_LEN
};

/* The values for step t (1 for the first step), computed in double as PyTorch
 * does, then rounded to float. */
void dl_adamw_hyper_values (float out[DL_ADAMW_HYPER_LEN], const DlAdamWParams *params, guint64 step);
/* Write them into `hyper` (f32, at least DL_ADAMW_HYPER_LEN elements).  A plain
 * upload: call it between steps, not while a recorder holds unfinished work
 * that reads the buffer. */
gboolean dl_adamw_hyper_upload (DlTensor *hyper, const DlAdamWParams *params, guint64 step, GError **error);

/* One AdamW step over tensors of equal element count:
 *   param, m, v: f32 (updated in place); grad: f32 or f16;
 *   hyper: the buffer above; clip: NULL or the f32 [2] output of
 *   dl_op_grad_norm (its coefficient multiplies the gradient; a norm that is
 *   not finite leaves param, moments and copy as they are);
 *   model_copy: NULL or an f16/bf16 tensor that receives the new weights.
 * Tensors of any size: large ones are split into several dispatches. */
gboolean dl_op_adamw (DlRecorder *rec, DlTensor *param, DlTensor *grad, DlTensor *m, DlTensor *v, DlTensor *hyper,
                      DlTensor *clip, DlTensor *model_copy, GError **error);

/* out (f32 [2]) = { sqrt(sum over all tensors of x^2), clip coefficient
 * min(1, max_norm / (norm + 1e-6)) } as torch.nn.utils.clip_grad_norm_ computes
 * them; the coefficient is 1 when max_norm <= 0.  Tensors f32 or f16, any sizes;
 * the sum order depends only on their sizes (same bits on every device). */
gboolean dl_op_grad_norm (DlRecorder *rec, DlTensor *out, DlTensor *const *grads, guint n_grads, float max_norm,
                          GError **error);

G_END_DECLS
