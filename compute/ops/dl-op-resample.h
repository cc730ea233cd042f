/* dl-op-resample.h: nearest ×2 upsampling and channel concat/split (the UNet's
 * up path and skip connections), forward and backward. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* y [N, C, 2H, 2W] = x [N, C, H, W] repeated (F.interpolate(scale_factor=2, mode="nearest")). */
gboolean dl_op_upsample_nearest2x (DlRecorder *rec, DlTensor *y, DlTensor *x, GError **error);

/* dx [N, C, H, W] = sum of dy over each 2x2 block. */
gboolean dl_op_upsample_nearest2x_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dy, GError **error);

/* y [N, Ca+Cb, ...] = torch.cat([a, b], dim=1); a, b, y share the trailing dims
 * and dtype. */
gboolean dl_op_concat_channels (DlRecorder *rec, DlTensor *y, DlTensor *a, DlTensor *b, GError **error);

/* The inverse (and concat's backward): a = y[:, :Ca], b = y[:, Ca:].  Either
 * output may be NULL; Ca comes from a (or from y and b when a is NULL). */
gboolean dl_op_split_channels (DlRecorder *rec, DlTensor *a, DlTensor *b, DlTensor *y, GError **error);

G_END_DECLS
