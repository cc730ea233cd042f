#include "ref-loss.h"

double
ref_mse_loss (float *per_sample, const float *pred, const float *target, const float *w, int64_t B, int64_t M)
{
  double total = 0;
  for (int64_t b = 0; b < B; b++)
    {
      double s = 0;
      for (int64_t i = 0; i < M; i++)
        {
          double d = (double)pred[b * M + i] - target[b * M + i];
          s += d * d;
        }
      double ps = (w ? w[b] : 1.0) * s / (double)M;
      if (per_sample)
        per_sample[b] = (float)ps;
      total += ps;
    }
  return B > 0 ? total / (double)B : 0.0;
}

void
ref_mse_loss_backward (float *dpred, const float *pred, const float *target, const float *w, int64_t B, int64_t M,
                       float grad_scale)
{
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < M; i++)
      {
        double d = (double)pred[b * M + i] - target[b * M + i];
        dpred[b * M + i] = (float)(2.0 * grad_scale * (w ? w[b] : 1.0) * d / ((double)B * M));
      }
}
