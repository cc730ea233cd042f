#include "ref.h"

#include "dl-half.h"

void
ref_round_to_dtype (float *x, gsize n, DlDType dtype)
{
  for (gsize i = 0; i < n; i++)
    switch (dtype)
      {
      case DL_DTYPE_F16:
        x[i] = dl_f16_to_f32 (dl_f32_to_f16 (x[i]));
        break;
      case DL_DTYPE_BF16:
        x[i] = dl_bf16_to_f32 (dl_f32_to_bf16 (x[i]));
        break;
      case DL_DTYPE_I32:
        x[i] = (float)(int32_t)x[i];
        break;
      case DL_DTYPE_F32:
      case DL_N_DTYPES:
      default:
        break;
      }
}

/* offset of linear index i of a 4-D shape, given per-dimension strides */
static int64_t
offset4 (int64_t i, const int64_t ne[4], const int64_t st[4])
{
  int64_t off = 0;
  for (int k = 3; k >= 0; k--)
    {
      off += (i % ne[k]) * st[k];
      i /= ne[k];
    }
  return off;
}

static void
pad4 (int ndim, const int64_t *shape, int64_t out[4])
{
  for (int k = 0; k < 4; k++)
    {
      int s = ndim - (4 - k);
      out[k] = s >= 0 ? shape[s] : 1;
    }
}

static void
broadcast_strides (int ndim, const int64_t *shape, const int64_t dne[4], int64_t st[4])
{
  int64_t ne[4];
  pad4 (ndim, shape, ne);
  int64_t acc = 1;
  for (int k = 3; k >= 0; k--)
    {
      st[k] = (ne[k] == 1 && dne[k] != 1) ? 0 : acc;
      acc *= ne[k];
    }
}

void
ref_binary (int op, float *d, int d_ndim, const int64_t *d_shape, const float *a, int a_ndim, const int64_t *a_shape,
            const float *b, int b_ndim, const int64_t *b_shape)
{
  int64_t ne[4], sa[4], sb[4];
  pad4 (d_ndim, d_shape, ne);
  broadcast_strides (a_ndim, a_shape, ne, sa);
  broadcast_strides (b_ndim, b_shape, ne, sb);
  int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
  for (int64_t i = 0; i < n; i++)
    {
      double x = a[offset4 (i, ne, sa)], y = b[offset4 (i, ne, sb)];
      double r = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
      d[i] = (float)r;
    }
}

void
ref_copy_strided (float *d, int ndim, const int64_t *shape, const float *src, int64_t offset, const int64_t *strides)
{
  int64_t ne[4], st[4] = { 0, 0, 0, 0 };
  pad4 (ndim, shape, ne);
  for (int k = 0; k < ndim; k++)
    st[4 - ndim + k] = strides[k];
  int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
  for (int64_t i = 0; i < n; i++)
    d[i] = src[offset + offset4 (i, ne, st)];
}

void
ref_sum (float *d, const float *src, int64_t outer, int64_t R, int64_t inner, double scale)
{
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++)
      {
        double s = 0;
        for (int64_t r = 0; r < R; r++)
          s += src[(o * R + r) * inner + i];
        d[o * inner + i] = (float)(s * scale);
      }
}

void
ref_matmul (float *d, const float *a, gboolean trans_a, const float *b, gboolean trans_b, const float *bias,
            int64_t batch, int64_t batch_a, int64_t batch_b, int64_t M, int64_t N, int64_t K, float alpha, float beta)
{
  for (int64_t p = 0; p < batch; p++)
    {
      const float *ap = a + (batch_a == 1 ? 0 : p * M * K);
      const float *bp = b + (batch_b == 1 ? 0 : p * K * N);
      float *dp = d + p * M * N;
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
          {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
              {
                double x = trans_a ? ap[k * M + m] : ap[m * K + k];
                double y = trans_b ? bp[n * K + k] : bp[k * N + n];
                s += x * y;
              }
            double v = alpha * s;
            if (bias)
              v += bias[n];
            if (beta != 0.0f)
              v += (double)beta * dp[m * N + n];
            dp[m * N + n] = (float)v;
          }
    }
}
