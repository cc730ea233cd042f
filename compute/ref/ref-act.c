#include "ref-act.h"

#include <math.h>

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2_PI 0.79788456080286535588 /* √(2/π) */
#define TANH_CUBIC 0.044715
#define QUICK_K 1.702

#define LEAKY_SLOPE 0.01

static double
sigmoid (double z)
{
  return 1.0 / (1.0 + exp (-z));
}

static double
softplus (double x)
{
  return fmax (x, 0.0) + log1p (exp (-fabs (x)));
}

double
ref_act_value (int act, double x)
{
  switch (act)
    {
    case REF_ACT_SILU:
      return x * sigmoid (x);
    case REF_ACT_GELU:
      return 0.5 * x * (1.0 + erf (x * SQRT1_2));
    case REF_ACT_GELU_TANH:
      return 0.5 * x * (1.0 + tanh (SQRT_2_PI * (x + TANH_CUBIC * x * x * x)));
    case REF_ACT_QUICK_GELU:
      return x * sigmoid (QUICK_K * x);
    case REF_ACT_RELU:
      return x > 0 ? x : 0.0;
    case REF_ACT_LEAKY_RELU:
      return x > 0 ? x : LEAKY_SLOPE * x;
    case REF_ACT_ELU:
      return x > 0 ? x : expm1 (x);
    case REF_ACT_HARDSWISH:
      return x * fmin (fmax (x + 3.0, 0.0), 6.0) / 6.0;
    case REF_ACT_TANH:
      return tanh (x);
    case REF_ACT_SIGMOID:
      return sigmoid (x);
    case REF_ACT_MISH:
      return x * tanh (softplus (x));
    case REF_ACT_SOFTSIGN:
      return x / (1.0 + fabs (x));
    default:
      g_return_val_if_reached (NAN);
    }
}

double
ref_act_derivative (int act, double x)
{
  switch (act)
    {
    case REF_ACT_SILU:
      {
        double s = sigmoid (x);
        return s * (1.0 + x * (1.0 - s));
      }
    case REF_ACT_GELU:
      return 0.5 * (1.0 + erf (x * SQRT1_2)) + x * INV_SQRT_2PI * exp (-0.5 * x * x);
    case REF_ACT_GELU_TANH:
      {
        double t = tanh (SQRT_2_PI * (x + TANH_CUBIC * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_PI * (1.0 + 3.0 * TANH_CUBIC * x * x);
      }
    case REF_ACT_QUICK_GELU:
      {
        double s = sigmoid (QUICK_K * x);
        return s * (1.0 + QUICK_K * x * (1.0 - s));
      }
    /* at the kinks, what torch's backward kernels take */
    case REF_ACT_RELU:
      return x > 0 ? 1.0 : 0.0;
    case REF_ACT_LEAKY_RELU:
      return x > 0 ? 1.0 : LEAKY_SLOPE;
    case REF_ACT_ELU:
      return x > 0 ? 1.0 : exp (x);
    case REF_ACT_HARDSWISH:
      return x < -3.0 ? 0.0 : x <= 3.0 ? x / 3.0 + 0.5 : 1.0;
    case REF_ACT_TANH:
      {
        double t = tanh (x);
        return 1.0 - t * t;
      }
    case REF_ACT_SIGMOID:
      return sigmoid (x) * sigmoid (-x);
    case REF_ACT_MISH:
      {
        double t = tanh (softplus (x));
        return t + x * sigmoid (x) * (1.0 - t * t);
      }
    case REF_ACT_SOFTSIGN:
      return 1.0 / ((1.0 + fabs (x)) * (1.0 + fabs (x)));
    default:
      g_return_val_if_reached (NAN);
    }
}

void
ref_activation_forward (float *y, const float *x, gsize n, int act)
{
  for (gsize i = 0; i < n; i++)
    y[i] = (float)ref_act_value (act, x[i]);
}

void
ref_activation_backward (float *dx, const float *x, const float *dy, gsize n, int act)
{
  for (gsize i = 0; i < n; i++)
    dx[i] = (float)((double)dy[i] * ref_act_derivative (act, x[i]));
}

void
ref_geglu_forward (float *y, const float *x, int64_t rows, int64_t F)
{
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < F; j++)
      y[r * F + j] = (float)((double)x[r * 2 * F + j] * ref_act_value (REF_ACT_GELU, x[r * 2 * F + F + j]));
}

void
ref_geglu_backward (float *dx, const float *x, const float *dy, int64_t rows, int64_t F)
{
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < F; j++)
      {
        double h = x[r * 2 * F + j], g = x[r * 2 * F + F + j], d = dy[r * F + j];
        dx[r * 2 * F + j] = (float)(d * ref_act_value (REF_ACT_GELU, g));
        dx[r * 2 * F + F + j] = (float)(d * h * ref_act_derivative (REF_ACT_GELU, g));
      }
}
