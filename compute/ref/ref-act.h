/* ref-act.h: CPU references of the pointwise activations and GEGLU, forward and
 * backward, evaluated in double. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Activation codes in DlActivation order (ops/dl-op-activation.h). */
enum
{
  REF_ACT_SILU,       /* x·σ(x) */
  REF_ACT_GELU,       /* x·Φ(x) = 0.5x(1 + erf(x/√2)) */
  REF_ACT_GELU_TANH,  /* 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) */
  REF_ACT_QUICK_GELU, /* x·σ(1.702x) */
  REF_ACT_RELU,       /* max(x, 0) */
  REF_ACT_LEAKY_RELU, /* x > 0 ? x : 0.01x */
  REF_ACT_ELU,        /* x > 0 ? x : exp(x) - 1 */
  REF_ACT_HARDSWISH,  /* x·min(max(x + 3, 0), 6)/6 */
  REF_ACT_TANH,
  REF_ACT_SIGMOID,
  REF_ACT_MISH,     /* x·tanh(log(1 + exp(x))) */
  REF_ACT_SOFTSIGN, /* x/(1 + |x|) */
  REF_ACT_COUNT
};

/* The activation and its derivative at one point. */
double ref_act_value (int act, double x);
double ref_act_derivative (int act, double x);

void ref_activation_forward (float *y, const float *x, gsize n, int act);
/* dx = dy · act'(x) */
void ref_activation_backward (float *dx, const float *x, const float *dy, gsize n, int act);

/* diffusers GEGLU: x [rows, 2F] = (hidden | gate); y [rows, F] = hidden · gelu(gate). */
void ref_geglu_forward (float *y, const float *x, int64_t rows, int64_t F);
/* dx [rows, 2F] from x and dy [rows, F]. */
void ref_geglu_backward (float *dx, const float *x, const float *dy, int64_t rows, int64_t F);

G_END_DECLS
