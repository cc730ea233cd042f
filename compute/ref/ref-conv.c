/* Plain loops, written from the definition of cross-correlation in
 * torch.nn.Conv2d; every sum is accumulated in double. */
#include "ref-conv.h"

void
ref_conv2d_shape_init (RefConv2dShape *s)
{
  s->Ho = (s->H + 2 * s->pad - s->KH) / s->stride + 1;
  s->Wo = (s->W + 2 * s->pad - s->KW) / s->stride + 1;
}

/* Input row/column read by output position o and kernel tap k, or -1 when it
 * falls into the zero padding. */
static int64_t
tap (int64_t o, int64_t k, int64_t size, const RefConv2dShape *s)
{
  int64_t i = o * s->stride - s->pad + k;
  return i >= 0 && i < size ? i : -1;
}

void
ref_conv2d_forward (float *y, const float *x, const float *w, const float *bias, const RefConv2dShape *s)
{
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t co = 0; co < s->Cout; co++)
      for (int64_t oh = 0; oh < s->Ho; oh++)
        for (int64_t ow = 0; ow < s->Wo; ow++)
          {
            double acc = bias ? bias[co] : 0.0;
            for (int64_t ci = 0; ci < s->Cin; ci++)
              for (int64_t kh = 0; kh < s->KH; kh++)
                {
                  int64_t ih = tap (oh, kh, s->H, s);
                  if (ih < 0)
                    continue;
                  for (int64_t kw = 0; kw < s->KW; kw++)
                    {
                      int64_t iw = tap (ow, kw, s->W, s);
                      if (iw < 0)
                        continue;
                      acc += (double)w[((co * s->Cin + ci) * s->KH + kh) * s->KW + kw] *
                             x[((n * s->Cin + ci) * s->H + ih) * s->W + iw];
                    }
                }
            y[((n * s->Cout + co) * s->Ho + oh) * s->Wo + ow] = (float)acc;
          }
}

static void
store (float *dst, const double *src, int64_t n, gboolean accumulate)
{
  for (int64_t i = 0; i < n; i++)
    dst[i] = (float)(accumulate ? dst[i] + src[i] : src[i]);
}

void
ref_conv2d_backward (float *dx, float *dw, float *dbias, const float *x, const float *w, const float *dy,
                     const RefConv2dShape *s, gboolean accumulate)
{
  int64_t nx = s->N * s->Cin * s->H * s->W, nw = s->Cout * s->Cin * s->KH * s->KW;
  double *gx = dx ? g_new0 (double, MAX (nx, 1)) : NULL;
  double *gw = dw ? g_new0 (double, MAX (nw, 1)) : NULL;
  double *gb = dbias ? g_new0 (double, MAX (s->Cout, 1)) : NULL;

  /* every (output, tap) pair contributes to one dx, one dw and (per output) dbias */
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t co = 0; co < s->Cout; co++)
      for (int64_t oh = 0; oh < s->Ho; oh++)
        for (int64_t ow = 0; ow < s->Wo; ow++)
          {
            double g = dy[((n * s->Cout + co) * s->Ho + oh) * s->Wo + ow];
            if (gb)
              gb[co] += g;
            for (int64_t ci = 0; ci < s->Cin; ci++)
              for (int64_t kh = 0; kh < s->KH; kh++)
                {
                  int64_t ih = tap (oh, kh, s->H, s);
                  if (ih < 0)
                    continue;
                  for (int64_t kw = 0; kw < s->KW; kw++)
                    {
                      int64_t iw = tap (ow, kw, s->W, s);
                      if (iw < 0)
                        continue;
                      int64_t xi = ((n * s->Cin + ci) * s->H + ih) * s->W + iw;
                      int64_t wi = ((co * s->Cin + ci) * s->KH + kh) * s->KW + kw;
                      if (gx)
                        gx[xi] += g * w[wi];
                      if (gw)
                        gw[wi] += g * x[xi];
                    }
                }
          }
  if (gx)
    store (dx, gx, nx, FALSE);
  if (gw)
    store (dw, gw, nw, accumulate);
  if (gb)
    store (dbias, gb, s->Cout, accumulate);
  g_free (gx);
  g_free (gw);
  g_free (gb);
}

void
ref_linear_forward (float *y, const float *x, const float *w, const float *bias, int64_t R, int64_t K, int64_t N)
{
  for (int64_t r = 0; r < R; r++)
    for (int64_t n = 0; n < N; n++)
      {
        double acc = bias ? bias[n] : 0.0;
        for (int64_t k = 0; k < K; k++)
          acc += (double)x[r * K + k] * w[n * K + k];
        y[r * N + n] = (float)acc;
      }
}

void
ref_linear_backward (float *dx, float *dw, float *dbias, const float *x, const float *w, const float *dy, int64_t R,
                     int64_t K, int64_t N, gboolean accumulate)
{
  if (dx)
    for (int64_t r = 0; r < R; r++)
      for (int64_t k = 0; k < K; k++)
        {
          double acc = 0;
          for (int64_t n = 0; n < N; n++)
            acc += (double)dy[r * N + n] * w[n * K + k];
          dx[r * K + k] = (float)acc;
        }
  if (dw)
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++)
        {
          double acc = accumulate ? dw[n * K + k] : 0.0;
          for (int64_t r = 0; r < R; r++)
            acc += (double)dy[r * N + n] * x[r * K + k];
          dw[n * K + k] = (float)acc;
        }
  if (dbias)
    for (int64_t n = 0; n < N; n++)
      {
        double acc = accumulate ? dbias[n] : 0.0;
        for (int64_t r = 0; r < R; r++)
          acc += dy[r * N + n];
        dbias[n] = (float)acc;
      }
}
