// Activation functions and their derivatives, in fp32.  Codes follow DlActivation.
#ifndef DL_ACT_GLSL
#define DL_ACT_GLSL

#include "dl_detmath.glsl"

#define ACT_SILU 0u
#define ACT_GELU 1u
#define ACT_GELU_TANH 2u
#define ACT_QUICK_GELU 3u
#define ACT_RELU 4u
#define ACT_LEAKY_RELU 5u
#define ACT_ELU 6u
#define ACT_HARDSWISH 7u
#define ACT_TANH 8u
#define ACT_SIGMOID 9u
#define ACT_MISH 10u
#define ACT_SOFTSIGN 11u

const float DL_SQRT1_2 = 0.70710678118654752;
const float DL_INV_SQRT_2PI = 0.39894228040143268;
const float DL_SQRT_2_PI = 0.79788456080286536;  // sqrt(2/pi)
const float DL_TANH_CUBIC = 0.044715;
const float DL_QUICK_K = 1.702;
const float DL_LEAKY_SLOPE = 0.01;  // torch.nn.LeakyReLU's default negative_slope

// 1/(1+exp(-z)): exp overflows to +inf for z < -88 and the quotient is then 0,
// never NaN.
float dl_sigmoid(float z)
{
  return 1.0 / (1.0 + exp(-z));
}

// erfc(z) for z >= 0 with a relative error below 1.2e-7 (in exact arithmetic):
// the Chebyshev fit t*exp(-z^2 + P(t)), t = 1/(1 + z/2), published as `erfcc` in
// Numerical Recipes.  Relative, so the tails of GELU keep their digits; in f32
// the rounding of z^2 adds ~z^2 * 6e-8 relative, and the result underflows (to 0,
// never NaN) past z ~ 9.
float dl_erfc_pos(float z)
{
  const float t = 1.0 / (1.0 + 0.5 * z);
  float s = 0.17087277;
  s = s * t - 0.82215223;
  s = s * t + 1.48851587;
  s = s * t - 1.13520398;
  s = s * t + 0.27886807;
  s = s * t - 0.18628806;
  s = s * t + 0.09678418;
  s = s * t + 0.37409196;
  s = s * t + 1.00002368;
  s = s * t - 1.26551223;
  return t * exp(s - z * z);
}

// erf(x) for |x| <= 1 (GLSL has no erf): the Maclaurin series of erf(x)/x in x^2
// through the x^21 term, truncation below 2e-9, no cancellation.
float dl_erf_small(float x)
{
  const float t = x * x;
  // (-1)^n / (n! (2n+1)), n = 10 .. 1, then 2/sqrt(pi)
  float s = 1.0 / 76204800.0;
  s = s * t - 1.0 / 6894720.0;
  s = s * t + 1.0 / 685440.0;
  s = s * t - 1.0 / 75600.0;
  s = s * t + 1.0 / 9360.0;
  s = s * t - 1.0 / 1320.0;
  s = s * t + 1.0 / 216.0;
  s = s * t - 1.0 / 42.0;
  s = s * t + 1.0 / 10.0;
  s = s * t - 1.0 / 3.0;
  s = s * t + 1.0;
  return 1.1283791670955126 * x * s;
}

// erf in f32, absolute error ~1e-7.
float dl_erf(float x)
{
  const float a = abs(x);
  if (a <= 1.0)
    return dl_erf_small(x);
  const float r = 1.0 - dl_erfc_pos(a);
  return x < 0.0 ? -r : r;
}

// The standard normal CDF Phi(x) = (1 + erf(x/sqrt2)) / 2, computed as erfc in
// the lower tail, where 1 + erf would cancel.
float dl_phi(float x)
{
  const float u = x * DL_SQRT1_2;
  if (abs(u) <= 1.0)
    return 0.5 + 0.5 * dl_erf_small(u);
  const float c = 0.5 * dl_erfc_pos(abs(u));
  return u < 0.0 ? c : 1.0 - c;
}

// tanh(u) in .x and 1 - |tanh(u)| in .y, both without cancellation and without
// the overflow of (e^2u - 1)/(e^2u + 1): a series for small |u| (where
// 1 - e^-2|u| would cancel), otherwise from e = e^-2|u|: tanh = (1 - e)/(1 + e),
// 1 - |tanh| = 2e/(1 + e).
vec2 dl_tanh2(float u)
{
  const float a = abs(u);
  if (a < 0.4) {
    const float t = u * u;
    float s = 21844.0 / 6081075.0;
    s = s * t - 1382.0 / 155925.0;
    s = s * t + 62.0 / 2835.0;
    s = s * t - 17.0 / 315.0;
    s = s * t + 2.0 / 15.0;
    s = s * t - 1.0 / 3.0;
    const float th = u + u * t * s;
    return vec2(th, 1.0 - abs(th));
  }
  const float e = exp(-2.0 * a);
  const float r = (1.0 - e) / (1.0 + e);
  return vec2(u < 0.0 ? -r : r, 2.0 * e / (1.0 + e));
}

float dl_gelu(float x)
{
  return x * dl_phi(x);
}

// d/dx x*Phi(x) = Phi(x) + x*phi(x)
float dl_gelu_grad(float x)
{
  return dl_phi(x) + x * DL_INV_SQRT_2PI * exp(-0.5 * x * x);
}

// GELU, tanh form: 0.5x(1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3).  1 + tanh
// is taken from 1 - |tanh| when tanh < 0, so the lower tail keeps its digits.
float dl_gelu_tanh(float x)
{
  const vec2 th = dl_tanh2(DL_SQRT_2_PI * (x + DL_TANH_CUBIC * x * x * x));
  const float one_plus = th.x < 0.0 ? th.y : 1.0 + th.x;
  return 0.5 * x * one_plus;
}

// 0.5(1 + tanh u) + 0.5x(1 - tanh^2 u) u', with 1 - tanh^2 = (1 - |t|)(2 - (1 - |t|))
float dl_gelu_tanh_grad(float x)
{
  const vec2 th = dl_tanh2(DL_SQRT_2_PI * (x + DL_TANH_CUBIC * x * x * x));
  const float one_plus = th.x < 0.0 ? th.y : 1.0 + th.x;
  const float sech2 = th.y * (2.0 - th.y);
  return 0.5 * one_plus + 0.5 * x * sech2 * DL_SQRT_2_PI * (1.0 + 3.0 * DL_TANH_CUBIC * x * x);
}

// exp(x) - 1 for x <= 0 without the cancellation near 0: the Maclaurin series
// through x^8 where |x| < 0.5 (truncation below 1e-8 relative), else exp(x) - 1.
float dl_expm1_neg(float x)
{
  if (x > -0.5) {
    float s = 1.0 / 40320.0;
    s = s * x + 1.0 / 5040.0;
    s = s * x + 1.0 / 720.0;
    s = s * x + 1.0 / 120.0;
    s = s * x + 1.0 / 24.0;
    s = s * x + 1.0 / 6.0;
    s = s * x + 0.5;
    s = s * x + 1.0;
    return x * s;
  }
  return exp(x) - 1.0;
}

// log(1 + e) for 0 <= e <= 1, accurate for tiny e: log(u) e / (u - 1) with u the
// rounded 1 + e cancels the rounding of u (`precise`: the compiler must not
// simplify (1 + e) - 1 to e).  The log is dl_det_log: GLSL's may be off by 2^-21
// absolute near 1, which is all of log(1 + e) for tiny e.
float dl_log1p_unit(float e)
{
  precise float u = 1.0 + e;
  precise float um1 = u - 1.0;
  if (um1 == 0.0)
    return e;
  return dl_det_log(u) * (e / um1);
}

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)), never overflowing.
float dl_softplus(float x)
{
  return max(x, 0.0) + dl_log1p_unit(exp(-abs(x)));
}

float dl_act(uint act, float x)
{
  if (act == ACT_SILU)
    return x * dl_sigmoid(x);
  if (act == ACT_GELU)
    return dl_gelu(x);
  if (act == ACT_GELU_TANH)
    return dl_gelu_tanh(x);
  if (act == ACT_QUICK_GELU)
    return x * dl_sigmoid(DL_QUICK_K * x);
  if (act == ACT_RELU)
    return max(x, 0.0);
  if (act == ACT_LEAKY_RELU)
    return x > 0.0 ? x : DL_LEAKY_SLOPE * x;
  if (act == ACT_ELU)
    return x > 0.0 ? x : dl_expm1_neg(x);
  if (act == ACT_HARDSWISH)
    return x * min(max(x + 3.0, 0.0), 6.0) / 6.0;
  if (act == ACT_TANH)
    return dl_tanh2(x).x;
  if (act == ACT_SIGMOID)
    return dl_sigmoid(x);
  if (act == ACT_MISH)
    return x * dl_tanh2(dl_softplus(x)).x;
  return x / (1.0 + abs(x));  // ACT_SOFTSIGN
}

float dl_act_grad(uint act, float x)
{
  if (act == ACT_SILU) {
    const float s = dl_sigmoid(x);
    return s * (1.0 + x * (1.0 - s));
  }
  if (act == ACT_GELU)
    return dl_gelu_grad(x);
  if (act == ACT_GELU_TANH)
    return dl_gelu_tanh_grad(x);
  if (act == ACT_QUICK_GELU) {
    const float s = dl_sigmoid(DL_QUICK_K * x);
    return s * (1.0 + DL_QUICK_K * x * (1.0 - s));
  }
  // torch's backward kernels: the derivative at a kink is the left one for ReLU
  // and LeakyReLU (x > 0 strictly), exp(0) = 1 for ELU, and Hardswish takes
  // x/3 + 1/2 on [-3, 3]
  if (act == ACT_RELU)
    return x > 0.0 ? 1.0 : 0.0;
  if (act == ACT_LEAKY_RELU)
    return x > 0.0 ? 1.0 : DL_LEAKY_SLOPE;
  if (act == ACT_ELU)
    return x > 0.0 ? 1.0 : exp(x);
  if (act == ACT_HARDSWISH)
    return x < -3.0 ? 0.0 : x <= 3.0 ? x / 3.0 + 0.5 : 1.0;
  if (act == ACT_TANH) {
    const float r = dl_tanh2(x).y;  // 1 - tanh^2 = (1 - |t|)(1 + |t|)
    return r * (2.0 - r);
  }
  if (act == ACT_SIGMOID)
    return dl_sigmoid(x) * dl_sigmoid(-x);
  if (act == ACT_MISH) {
    const vec2 t = dl_tanh2(dl_softplus(x));
    return t.x + x * dl_sigmoid(x) * t.y * (2.0 - t.y);
  }
  const float d = 1.0 + abs(x);  // ACT_SOFTSIGN
  return 1.0 / (d * d);
}

#endif
