/* dl-op-bias-grad.h: the bias gradient shared by conv2d and linear (not public
 * API; callers check shapes and dtypes). */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* dbias[c] = Σ_{o, i} dy[o, c, i] (added into dbias when `accumulate`), for the
 * elements of dy from `dy_start` viewed as [outer, C, inner].  dy and dbias f32 or
 * f16; fp32 accumulation; the order of the sum is fixed. */
gboolean dl_op_bias_grad (DlRecorder *rec, DlTensor *dbias, DlTensor *dy, int64_t dy_start, int64_t outer, int64_t C,
                          int64_t inner, gboolean accumulate, GError **error);

G_END_DECLS
