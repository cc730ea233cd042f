/* dl-op-softmax.h: softmax over the last dimension, forward and backward. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* y = softmax(x * scale) along the last dimension (scale 1 for a plain softmax).
 * x and y: same shape and dtype (f32 or f16); accumulation in f32.  A row that is
 * entirely -inf gives zeros.  y may be x. */
gboolean dl_op_softmax (DlRecorder *rec, DlTensor *y, DlTensor *x, float scale, GError **error);

/* dx = scale * y * (dy - sum(dy * y)) along the last dimension, from the forward
 * output y.  All three share shape and dtype; dx may be dy. */
gboolean dl_op_softmax_backward (DlRecorder *rec, DlTensor *dx, DlTensor *y, DlTensor *dy, float scale, GError **error);

G_END_DECLS
