/* ref-resample.h: CPU references of nearest ×2 upsampling and channel
 * concatenation. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: F.interpolate(x, scale_factor=2, mode="nearest") on x [planes, H, W];
 * y [planes, 2H, 2W]. */
void ref_upsample_nearest2x (float *y, const float *x, int64_t planes, int64_t H, int64_t W);
/* dx [planes, H, W] = sum of dy [planes, 2H, 2W] over each 2x2 block. */
void ref_upsample_nearest2x_backward (float *dx, const float *dy, int64_t planes, int64_t H, int64_t W);

/* reference: torch.cat([a, b], dim=1) for a [N, Ca, inner], b [N, Cb, inner]. */
void ref_concat_channels (float *y, const float *a, const float *b, int64_t N, int64_t Ca, int64_t Cb, int64_t inner);

G_END_DECLS
