/* ref-conv.h: CPU references for conv2d and linear (torch.nn.Conv2d and
 * torch.nn.Linear), forward and backward, with double accumulators.  Row-major
 * float arrays; NCHW activations, [Cout, Cin, KH, KW] weights. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct
{
  int64_t N, Cin, H, W; /* input */
  int64_t Cout, KH, KW; /* weight */
  int64_t stride, pad;  /* same on both axes */
  int64_t Ho, Wo;       /* output, from ref_conv2d_shape_init */
} RefConv2dShape;

/* Fills Ho and Wo: floor((H + 2 pad - KH) / stride) + 1 (likewise for W). */
void ref_conv2d_shape_init (RefConv2dShape *s);

/* reference: torch.nn.functional.conv2d.
 * y[n, co, oh, ow] = bias[co] + sum_{ci, kh, kw} w[co, ci, kh, kw] *
 *                    x[n, ci, oh*stride - pad + kh, ow*stride - pad + kw]  (zero outside)
 * bias may be NULL. */
void ref_conv2d_forward (float *y, const float *x, const float *w, const float *bias, const RefConv2dShape *s);

/* Gradients of conv2d from dy [N, Cout, Ho, Wo].  Any of dx, dw, dbias may be
 * NULL.  dx is overwritten; dw and dbias are overwritten, or added into when
 * `accumulate`. */
void ref_conv2d_backward (float *dx, float *dw, float *dbias, const float *x, const float *w, const float *dy,
                          const RefConv2dShape *s, gboolean accumulate);

/* reference: torch.nn.functional.linear.  y [R, N] = x [R, K] · wᵀ + bias, w [N, K];
 * bias may be NULL. */
void ref_linear_forward (float *y, const float *x, const float *w, const float *bias, int64_t R, int64_t K, int64_t N);

/* dx = dy · w (overwritten); dw = dyᵀ · x and dbias = Σ_rows dy (overwritten or,
 * when `accumulate`, added into).  Any output may be NULL. */
void ref_linear_backward (float *dx, float *dw, float *dbias, const float *x, const float *w, const float *dy,
                          int64_t R, int64_t K, int64_t N, gboolean accumulate);

G_END_DECLS
