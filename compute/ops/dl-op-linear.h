/* dl-op-linear.h: torch.nn.Linear, forward and backward. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* y [..., N] = x [..., K] · wᵀ + bias, with w [N, K] (PyTorch's layout) and bias
 * [N] or NULL.  Leading dimensions of x are flattened into rows. */
gboolean dl_op_linear (DlRecorder *rec, DlTensor *y, DlTensor *x, DlTensor *w, DlTensor *bias, GError **error);

/* dx = dy · w;  dw = dyᵀ · x (summed over all rows);  dbias = Σ_rows dy.  Any of
 * dx, dw, dbias may be NULL.  dx is overwritten; dw and dbias are overwritten or,
 * when `accumulate`, added into.  Also `accumulate_dx`-style adds are not needed:
 * callers sum branches with dl_op_add. */
gboolean dl_op_linear_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dw, DlTensor *dbias, DlTensor *x, DlTensor *w,
                                DlTensor *dy, gboolean accumulate, GError **error);

G_END_DECLS
