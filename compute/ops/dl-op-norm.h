/* dl-op-norm.h: GroupNorm (optionally fused with SiLU) and LayerNorm, forward
 * and backward.  Statistics are computed in fp32 (two-pass / Welford, never
 * E[x²]-E[x]² in single precision) and saved for the backward. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* torch.nn.GroupNorm(groups, C, eps, affine) then, when `silu`, SiLU.
 * x, y: [N, C, ...] (channel axis 1; any trailing spatial dims, e.g. [N, C, H, W]),
 * one float dtype; C divisible by `groups`.  gamma, beta: [C] (either may be NULL
 * for 1 and 0).  mean, rstd: [N, groups] f32 outputs (may be NULL when no backward
 * follows); rstd = 1/sqrt(var + eps) with the biased variance. */
gboolean dl_op_group_norm (DlRecorder *rec, DlTensor *y, DlTensor *mean, DlTensor *rstd, DlTensor *x, DlTensor *gamma,
                           DlTensor *beta, int groups, float eps, gboolean silu, GError **error);

/* Backward of the above from dy, using the saved mean/rstd.  With `silu` the
 * pre-activation is recomputed from x, gamma and beta (nothing else saved).
 * dx may be NULL; dgamma/dbeta may be NULL (frozen); dx is overwritten, dgamma and
 * dbeta overwritten or added into when `accumulate`. */
gboolean dl_op_group_norm_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dgamma, DlTensor *dbeta, DlTensor *x,
                                    DlTensor *gamma, DlTensor *beta, DlTensor *mean, DlTensor *rstd, DlTensor *dy,
                                    int groups, gboolean silu, gboolean accumulate, GError **error);

/* torch.nn.LayerNorm over the last dimension.  x, y: [..., C]; gamma, beta [C]
 * (may be NULL); mean, rstd: f32 with one element per row (shape [rows] or the
 * leading dims of x), may be NULL when no backward follows. */
gboolean dl_op_layer_norm (DlRecorder *rec, DlTensor *y, DlTensor *mean, DlTensor *rstd, DlTensor *x, DlTensor *gamma,
                           DlTensor *beta, float eps, GError **error);

gboolean dl_op_layer_norm_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dgamma, DlTensor *dbeta, DlTensor *x,
                                    DlTensor *gamma, DlTensor *mean, DlTensor *rstd, DlTensor *dy, gboolean accumulate,
                                    GError **error);

G_END_DECLS
