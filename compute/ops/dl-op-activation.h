/* dl-op-activation.h: pointwise activations and GEGLU, forward and backward.
 * The torch.nn module of each is named; RELU .. SOFTSIGN are the activations
 * A1111 hypernetworks offer. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef enum
{
  DL_ACT_SILU,       /* x·σ(x)                     (UNet, VAE) */
  DL_ACT_GELU,       /* x·Φ(x), erf form           (torch default) */
  DL_ACT_GELU_TANH,  /* tanh approximation         (approximate="tanh") */
  DL_ACT_QUICK_GELU, /* x·σ(1.702x)                (CLIP ViT-L/14) */
  DL_ACT_RELU,       /* max(x, 0); derivative 0 at 0              (ReLU) */
  DL_ACT_LEAKY_RELU, /* x > 0 ? x : 0.01x; slope 0.01 at 0        (LeakyReLU) */
  DL_ACT_ELU,        /* x > 0 ? x : exp(x) - 1                    (ELU, alpha 1) */
  DL_ACT_HARDSWISH,  /* x·min(max(x + 3, 0), 6)/6                 (Hardswish) */
  DL_ACT_TANH,       /* tanh(x)                                   (Tanh) */
  DL_ACT_SIGMOID,    /* 1/(1 + exp(-x))                           (Sigmoid) */
  DL_ACT_MISH,       /* x·tanh(softplus(x))                       (Mish) */
  DL_ACT_SOFTSIGN,   /* x/(1 + |x|)                               (Softsign) */
} DlActivation;

#define DL_ACT_COUNT (DL_ACT_SOFTSIGN + 1)

/* y = act(x), same shape and float dtype; y may be x (in place). */
gboolean dl_op_activation (DlRecorder *rec, DlTensor *y, DlTensor *x, DlActivation act, GError **error);

/* dx = dy · act'(x); dx may be dy (in place). */
gboolean dl_op_activation_backward (DlRecorder *rec, DlTensor *dx, DlTensor *x, DlTensor *dy, DlActivation act,
                                    GError **error);

/* diffusers GEGLU after its projection: x [..., 2F] splits into (hidden, gate) =
 * (x[..., :F], x[..., F:]); y [..., F] = hidden · gelu(gate) (erf form). */
gboolean dl_op_geglu (DlRecorder *rec, DlTensor *y, DlTensor *x, GError **error);

/* dx [..., 2F] from x and dy [..., F]. */
gboolean dl_op_geglu_backward (DlRecorder *rec, DlTensor *dx, DlTensor *x, DlTensor *dy, GError **error);

G_END_DECLS
