#include "ref-optim.h"

#include <math.h>

void
ref_adamw_step (float *param, float *m, float *v, const float *grad, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, double grad_scale, double clip, int64_t step)
{
  double bc1 = 1.0 - pow (beta1, (double)step);
  double bc2 = 1.0 - pow (beta2, (double)step);
  for (int64_t i = 0; i < n; i++)
    {
      double g = (double)grad[i] * grad_scale * clip;
      double p = (double)param[i] * (1.0 - lr * weight_decay);
      double mi = beta1 * m[i] + (1.0 - beta1) * g;
      double vi = beta2 * v[i] + (1.0 - beta2) * g * g;
      p -= lr / bc1 * mi / (sqrt (vi) / sqrt (bc2) + eps);
      param[i] = (float)p;
      m[i] = (float)mi;
      v[i] = (float)vi;
    }
}

double
ref_global_norm (const float *const *arrays, const int64_t *lengths, int n_arrays)
{
  double s = 0;
  for (int a = 0; a < n_arrays; a++)
    for (int64_t i = 0; i < lengths[a]; i++)
      s += (double)arrays[a][i] * arrays[a][i];
  return sqrt (s);
}
