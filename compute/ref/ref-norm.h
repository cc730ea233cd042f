/* ref-norm.h: CPU references of GroupNorm (optionally followed by SiLU) and
 * LayerNorm, forward and backward.  Statistics and sums in double. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: torch.nn.GroupNorm(G, C, eps) on x viewed as [N, C, S], then SiLU when
 * `silu`.  gamma/beta may be NULL (1 and 0).  mean/rstd [N, G] may be NULL; rstd
 * uses the biased variance. */
void ref_group_norm_forward (float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                             int64_t N, int64_t C, int64_t S, int64_t G, double eps, gboolean silu);

/* Gradients of the above from dy and the saved mean/rstd.  dx, dgamma, dbeta may
 * each be NULL; all are overwritten. */
void ref_group_norm_backward (float *dx, float *dgamma, float *dbeta, const float *x, const float *gamma,
                              const float *beta, const float *mean, const float *rstd, const float *dy, int64_t N,
                              int64_t C, int64_t S, int64_t G, gboolean silu);

/* reference: torch.nn.LayerNorm(C, eps) over the last dimension of x [rows, C].
 * gamma/beta may be NULL; mean/rstd [rows] may be NULL. */
void ref_layer_norm_forward (float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                             int64_t rows, int64_t C, double eps);

/* dx, dgamma, dbeta (each may be NULL) overwritten. */
void ref_layer_norm_backward (float *dx, float *dgamma, float *dbeta, const float *x, const float *gamma,
                              const float *mean, const float *rstd, const float *dy, int64_t rows, int64_t C);

G_END_DECLS
