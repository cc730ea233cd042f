/* dl-nn-lora.h: a Linear or Conv2d module together with its low-rank adapters
 * (LoRA, LoCon) as one taped op:
 *
 *   y = base(x) + Σ_i scale_i · up_i(down_i(x))
 *
 * The adapters add into the base op's output in place (matrix products with
 * accumulation), and one tape entry covers the module and all its adapters, so
 * an adapter costs two dispatches forward and about four backward, with no
 * extra tensors the size of y or x.  Parameter gradients (base weight and bias,
 * adapter matrices) go into the buffers registered with dl_tape_set_param_grad,
 * accumulated; frozen ones get none; a disabled tape records nothing. */
#pragma once

#include "nn/dl-tape.h"

G_BEGIN_DECLS

/* One adapter.  Linear: down [r, in], up [out, r].  Conv: down [r, in, kh, kw]
 * (applied with the module's stride and padding), up [out, r, 1, 1].  f32 or
 * f16, whatever the activations are; the rank-r intermediate is kept in f32. */
typedef struct
{
  DlTensor *down;
  DlTensor *up;
  float scale; /* the adapter's multiplier: strength · alpha / rank */
} DlLoraAdapter;

/* y [..., out] = x [..., in] wᵀ + b + Σ scale · (x downᵀ) upᵀ;  w [out, in], b
 * may be NULL. */
DlTensor *dl_nn_lora_linear (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, const DlLoraAdapter *adapters,
                             guint n_adapters, GError **error);

/* NCHW: y = conv (x, w, b) + Σ scale · conv1x1 (conv (x, down), up), where the
 * down convolution takes the module's stride and padding. */
DlTensor *dl_nn_lora_conv2d (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, int stride, int padding,
                             const DlLoraAdapter *adapters, guint n_adapters, GError **error);

G_END_DECLS
