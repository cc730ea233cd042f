/* dl-op-conv2d.h: 2-D convolution (NCHW), forward and backward, as implicit GEMM:
 * no im2col buffer is ever materialised, so 320 channels on 64x64 at batch 2
 * costs only its input, weight and output. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef struct
{
  int stride;      /* 1 or 2 */
  int padding;     /* zero padding on every side (SD: 1 for 3x3, 0 for 1x1) */
  int padding_end; /* more zero rows and columns at the bottom and right: the VAE
                    * encoder's downsampler (diffusers Downsample2D pads (0, 1,
                    * 0, 1) before its stride-2 convolution), without a padded copy */
} DlConv2dParams;

#define DL_CONV2D_PARAMS(s, p) ((DlConv2dParams){ .stride = (s), .padding = (p) })

/* Output size along one axis for input size `in` and kernel size `k`. */
int64_t dl_conv2d_out_size (int64_t in, int64_t k, const DlConv2dParams *params);

/* y [N, Cout, Ho, Wo] = conv(x [N, Cin, H, W], w [Cout, Cin, KH, KW]) + bias [Cout]
 * (bias may be NULL).  Kernels 1x1 and 3x3 (any KH, KW ≤ 7 accepted).  x, w, y:
 * one dtype each of f32/f16; bias: w's dtype; fp32 accumulation. */
gboolean dl_op_conv2d (DlRecorder *rec, DlTensor *y, DlTensor *x, DlTensor *w, DlTensor *bias,
                       const DlConv2dParams *params, GError **error);

/* Gradients from dy [N, Cout, Ho, Wo].  Any of dx, dw, dbias may be NULL (not
 * wanted).  dx is overwritten; dw and dbias are overwritten, or added into when
 * `accumulate` (gradient accumulation over micro-batches).  x is needed only for
 * dw, w only for dx. */
gboolean dl_op_conv2d_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dw, DlTensor *dbias, DlTensor *x, DlTensor *w,
                                DlTensor *dy, const DlConv2dParams *params, gboolean accumulate, GError **error);

G_END_DECLS
