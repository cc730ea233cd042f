/* ref-softmax.h: CPU reference of softmax over the last dimension. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: torch.softmax(x * scale, dim=-1) for `rows` rows of n elements.
 * A row that is entirely -inf gives zeros (torch gives NaN). */
void ref_softmax_forward (float *y, const float *x, int64_t rows, int64_t n, float scale);
/* Gradient of the above: dx = scale * y * (dy - sum(dy * y)). */
void ref_softmax_backward (float *dx, const float *y, const float *dy, int64_t rows, int64_t n, float scale);

G_END_DECLS
