/* dl-op-reduce.h: sums and means, over one axis or over everything. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* dst = sum of src along `axis` (negative counts from the end).  dst may have any
 * shape holding numel(src) / src.shape[axis] elements (keepdim or not).
 * src f32 or f16; dst f32 or f16; accumulation in f32. */
gboolean dl_op_sum (DlRecorder *rec, DlTensor *dst, DlTensor *src, int axis, GError **error);
gboolean dl_op_mean (DlRecorder *rec, DlTensor *dst, DlTensor *src, int axis, GError **error);

/* dst (one element) = sum / mean of every element of src. */
gboolean dl_op_sum_all (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error);
gboolean dl_op_mean_all (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error);

G_END_DECLS
