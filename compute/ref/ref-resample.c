#include "ref-resample.h"

#include <string.h>

void
ref_upsample_nearest2x (float *y, const float *x, int64_t planes, int64_t H, int64_t W)
{
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < 2 * H; i++)
      for (int64_t j = 0; j < 2 * W; j++)
        y[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
}

void
ref_upsample_nearest2x_backward (float *dx, const float *dy, int64_t planes, int64_t H, int64_t W)
{
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < H; i++)
      for (int64_t j = 0; j < W; j++)
        {
          double s = 0;
          for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
              s += dy[(p * 2 * H + 2 * i + a) * 2 * W + 2 * j + b];
          dx[(p * H + i) * W + j] = (float)s;
        }
}

void
ref_concat_channels (float *y, const float *a, const float *b, int64_t N, int64_t Ca, int64_t Cb, int64_t inner)
{
  for (int64_t n = 0; n < N; n++)
    {
      memcpy (y + n * (Ca + Cb) * inner, a + n * Ca * inner, (gsize)(Ca * inner) * sizeof (float));
      memcpy (y + (n * (Ca + Cb) + Ca) * inner, b + n * Cb * inner, (gsize)(Cb * inner) * sizeof (float));
    }
}
