#include "ref-attention.h"

#include <math.h>

/* element (batch b, token t, head h, column d) of a [B, N, H*D] array */
#define AT(x, b, N, t, h, d) (x)[(((b) * (N) + (t)) * H + (h)) * D + (d)]

/* Softmax probabilities of one (batch, head) into P [Nq, Nk]; returns nothing
 * but fills lse when given. */
static void
probabilities (double *P, float *lse, const float *q, const float *k, int64_t b, int64_t h, int64_t H, int64_t Nq,
               int64_t Nk, int64_t D, float scale, gboolean causal)
{
  for (int64_t i = 0; i < Nq; i++)
    {
      double *row = P + i * Nk;
      double m = -INFINITY;
      for (int64_t j = 0; j < Nk; j++)
        {
          if (causal && j > i)
            {
              row[j] = -INFINITY;
              continue;
            }
          double s = 0;
          for (int64_t d = 0; d < D; d++)
            s += (double)AT (q, b, Nq, i, h, d) * AT (k, b, Nk, j, h, d);
          row[j] = s * scale;
          m = fmax (m, row[j]);
        }
      double sum = 0;
      for (int64_t j = 0; j < Nk; j++)
        {
          row[j] = isinf (row[j]) && row[j] < 0 ? 0.0 : exp (row[j] - m);
          sum += row[j];
        }
      for (int64_t j = 0; j < Nk; j++)
        row[j] = sum > 0 ? row[j] / sum : 0.0;
      if (lse)
        lse[(b * H + h) * Nq + i] = (float)(m + log (sum));
    }
}

void
ref_attention_forward (float *o, float *lse, const float *q, const float *k, const float *v, int64_t B, int64_t H,
                       int64_t Nq, int64_t Nk, int64_t D, float scale, gboolean causal)
{
  double *P = g_new (double, MAX (Nq * Nk, 1));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      {
        probabilities (P, lse, q, k, b, h, H, Nq, Nk, D, scale, causal);
        for (int64_t i = 0; i < Nq; i++)
          for (int64_t d = 0; d < D; d++)
            {
              double s = 0;
              for (int64_t j = 0; j < Nk; j++)
                s += P[i * Nk + j] * AT (v, b, Nk, j, h, d);
              AT (o, b, Nq, i, h, d) = (float)s;
            }
      }
  g_free (P);
}

void
ref_attention_backward (float *dq, float *dk, float *dv, const float *q, const float *k, const float *v,
                        const float *dout, int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D, float scale,
                        gboolean causal)
{
  double *P = g_new (double, MAX (Nq * Nk, 1));
  double *dS = g_new (double, MAX (Nq * Nk, 1));
  double *gk = g_new (double, MAX (Nk * D, 1));
  double *gv = g_new (double, MAX (Nk * D, 1));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      {
        probabilities (P, NULL, q, k, b, h, H, Nq, Nk, D, scale, causal);
        /* dP = dO vᵀ; dS = P * (dP - rowsum(P * dP)) */
        for (int64_t i = 0; i < Nq; i++)
          {
            double rowdot = 0;
            for (int64_t j = 0; j < Nk; j++)
              {
                double dp = 0;
                for (int64_t d = 0; d < D; d++)
                  dp += (double)AT (dout, b, Nq, i, h, d) * AT (v, b, Nk, j, h, d);
                dS[i * Nk + j] = dp;
                rowdot += P[i * Nk + j] * dp;
              }
            for (int64_t j = 0; j < Nk; j++)
              dS[i * Nk + j] = P[i * Nk + j] * (dS[i * Nk + j] - rowdot);
          }
        if (dq)
          for (int64_t i = 0; i < Nq; i++)
            for (int64_t d = 0; d < D; d++)
              {
                double s = 0;
                for (int64_t j = 0; j < Nk; j++)
                  s += dS[i * Nk + j] * AT (k, b, Nk, j, h, d);
                AT (dq, b, Nq, i, h, d) = (float)(s * scale);
              }
        /* dK = scale dSᵀ q, dV = Pᵀ dO, accumulated row by row (cache-friendly) */
        for (int64_t x = 0; x < Nk * D; x++)
          gk[x] = gv[x] = 0;
        for (int64_t i = 0; i < Nq; i++)
          for (int64_t j = 0; j < Nk; j++)
            {
              double ds = dS[i * Nk + j], pr = P[i * Nk + j];
              for (int64_t d = 0; d < D; d++)
                {
                  gk[j * D + d] += ds * AT (q, b, Nq, i, h, d);
                  gv[j * D + d] += pr * AT (dout, b, Nq, i, h, d);
                }
            }
        for (int64_t j = 0; j < Nk; j++)
          for (int64_t d = 0; d < D; d++)
            {
              if (dk)
                AT (dk, b, Nk, j, h, d) = (float)(gk[j * D + d] * scale);
              if (dv)
                AT (dv, b, Nk, j, h, d) = (float)gv[j * D + d];
            }
      }
  g_free (P);
  g_free (dS);
  g_free (gk);
  g_free (gv);
}
