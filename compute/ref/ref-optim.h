/* ref-optim.h: CPU references of the optimizer step. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* reference: torch.optim.AdamW (_single_tensor_adamw, amsgrad off) for step t
 * (1-based), in double from the float state, results rounded to float:
 *   g = grad * grad_scale * clip
 *   p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
void ref_adamw_step (float *param, float *m, float *v, const float *grad, int64_t n, double lr, double beta1,
                     double beta2, double eps, double weight_decay, double grad_scale, double clip, int64_t step);

/* sqrt of the sum of squares of every element of every array, in double. */
double ref_global_norm (const float *const *arrays, const int64_t *lengths, int n_arrays);

G_END_DECLS
