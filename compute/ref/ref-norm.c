#include "ref-norm.h"

#include <math.h>

static double
sigmoid (double z)
{
  return 1.0 / (1.0 + exp (-z));
}

/* Two passes over n values: the mean, then the biased variance. */
static void
moments (const float *v, int64_t n, double *mean, double *var)
{
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += v[i];
  double m = s / (double)n, q = 0;
  for (int64_t i = 0; i < n; i++)
    q += ((double)v[i] - m) * ((double)v[i] - m);
  *mean = m;
  *var = q / (double)n;
}

void
ref_group_norm_forward (float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                        int64_t N, int64_t C, int64_t S, int64_t G, double eps, gboolean silu)
{
  int64_t Cg = C / G, M = Cg * S;
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++)
      {
        const float *xg = x + (n * G + g) * M;
        float *yg = y + (n * G + g) * M;
        double m, var;
        moments (xg, M, &m, &var);
        double r = 1.0 / sqrt (var + eps);
        if (mean)
          mean[n * G + g] = (float)m;
        if (rstd)
          rstd[n * G + g] = (float)r;
        for (int64_t i = 0; i < M; i++)
          {
            int64_t c = g * Cg + i / S;
            double z = ((double)xg[i] - m) * r * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0);
            yg[i] = (float)(silu ? z * sigmoid (z) : z);
          }
      }
}

void
ref_group_norm_backward (float *dx, float *dgamma, float *dbeta, const float *x, const float *gamma, const float *beta,
                         const float *mean, const float *rstd, const float *dy, int64_t N, int64_t C, int64_t S,
                         int64_t G, gboolean silu)
{
  int64_t Cg = C / G, M = Cg * S;
  double *dg = g_new0 (double, C), *db = g_new0 (double, C);
  double *dz = g_new (double, M), *xh = g_new (double, M);
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++)
      {
        int64_t base = (n * G + g) * M;
        double m = mean[n * G + g], r = rstd[n * G + g];
        double s1 = 0, s2 = 0; /* sums of dxhat and dxhat * xhat over the group */
        for (int64_t i = 0; i < M; i++)
          {
            int64_t c = g * Cg + i / S;
            double gm = gamma ? gamma[c] : 1.0;
            xh[i] = ((double)x[base + i] - m) * r;
            double d = dy[base + i];
            if (silu)
              {
                double z = xh[i] * gm + (beta ? beta[c] : 0.0), s = sigmoid (z);
                d *= s * (1.0 + z * (1.0 - s));
              }
            dz[i] = d;
            dg[c] += d * xh[i];
            db[c] += d;
            s1 += d * gm;
            s2 += d * gm * xh[i];
          }
        if (dx)
          for (int64_t i = 0; i < M; i++)
            {
              double gm = gamma ? gamma[g * Cg + i / S] : 1.0;
              dx[base + i] = (float)(r * (dz[i] * gm - (s1 + xh[i] * s2) / (double)M));
            }
      }
  for (int64_t c = 0; c < C; c++)
    {
      if (dgamma)
        dgamma[c] = (float)dg[c];
      if (dbeta)
        dbeta[c] = (float)db[c];
    }
  g_free (dg);
  g_free (db);
  g_free (dz);
  g_free (xh);
}

void
ref_layer_norm_forward (float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                        int64_t rows, int64_t C, double eps)
{
  for (int64_t row = 0; row < rows; row++)
    {
      const float *xr = x + row * C;
      double m, var;
      moments (xr, C, &m, &var);
      double r = 1.0 / sqrt (var + eps);
      if (mean)
        mean[row] = (float)m;
      if (rstd)
        rstd[row] = (float)r;
      for (int64_t c = 0; c < C; c++)
        y[row * C + c] = (float)(((double)xr[c] - m) * r * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0));
    }
}

void
ref_layer_norm_backward (float *dx, float *dgamma, float *dbeta, const float *x, const float *gamma, const float *mean,
                         const float *rstd, const float *dy, int64_t rows, int64_t C)
{
  double *dg = g_new0 (double, C), *db = g_new0 (double, C);
  for (int64_t row = 0; row < rows; row++)
    {
      const float *xr = x + row * C, *gr = dy + row * C;
      double m = mean[row], r = rstd[row], s1 = 0, s2 = 0;
      for (int64_t c = 0; c < C; c++)
        {
          double xh = ((double)xr[c] - m) * r, d = gr[c], gm = gamma ? gamma[c] : 1.0;
          dg[c] += d * xh;
          db[c] += d;
          s1 += d * gm;
          s2 += d * gm * xh;
        }
      if (dx)
        for (int64_t c = 0; c < C; c++)
          {
            double xh = ((double)xr[c] - m) * r, gm = gamma ? gamma[c] : 1.0;
            dx[row * C + c] = (float)(r * (gr[c] * gm - (s1 + xh * s2) / (double)C));
          }
    }
  for (int64_t c = 0; c < C; c++)
    {
      if (dgamma)
        dgamma[c] = (float)dg[c];
      if (dbeta)
        dbeta[c] = (float)db[c];
    }
  g_free (dg);
  g_free (db);
}
