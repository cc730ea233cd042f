#include "ref-softmax.h"

#include <math.h>

void
ref_softmax_forward (float *y, const float *x, int64_t rows, int64_t n, float scale)
{
  for (int64_t r = 0; r < rows; r++)
    {
      const float *xr = x + r * n;
      float *yr = y + r * n;
      double m = -INFINITY;
      for (int64_t i = 0; i < n; i++)
        m = fmax (m, (double)xr[i] * scale);
      if (isinf (m) && m < 0)
        {
          for (int64_t i = 0; i < n; i++)
            yr[i] = 0;
          continue;
        }
      double s = 0;
      for (int64_t i = 0; i < n; i++)
        s += exp ((double)xr[i] * scale - m);
      for (int64_t i = 0; i < n; i++)
        yr[i] = (float)(exp ((double)xr[i] * scale - m) / s);
    }
}

void
ref_softmax_backward (float *dx, const float *y, const float *dy, int64_t rows, int64_t n, float scale)
{
  for (int64_t r = 0; r < rows; r++)
    {
      const float *yr = y + r * n, *gr = dy + r * n;
      double dot = 0;
      for (int64_t i = 0; i < n; i++)
        dot += (double)yr[i] * gr[i];
      for (int64_t i = 0; i < n; i++)
        dx[r * n + i] = (float)((double)scale * yr[i] * (gr[i] - dot));
    }
}
