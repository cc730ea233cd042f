/* Deterministic float functions; shaders/common/dl_detmath.glsl is the same code
 * in GLSL and must stay statement-for-statement identical. */
#include "dl-detmath.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static inline float
f_bits (uint32_t b)
{
  float f;
  memcpy (&f, &b, 4);
  return f;
}

static inline uint32_t
bits_f (float f)
{
  uint32_t b;
  memcpy (&b, &f, 4);
  return b;
}

/* pi/2 in four parts, the first three of 12 significant bits each, so k * part
 * is exact for |k| < 2^12 (Cody-Waite reduction) */
#define PIO2_1 0x3fc91000u
#define PIO2_2 0xb6957000u
#define PIO2_3 0xb06f5000u
#define PIO2_4 0x298c234cu
#define TWO_OVER_PI 0x3f22f983u
/* ln 2 = LN2_HI (16 significant bits) + LN2_LO */
#define LN2_HI 0x3f317200u
#define LN2_LO 0x35bfbe8eu
#define INV_LN2 0x3fb8aa3bu

/* 1/n! for n = 2..13 (float bits) */
#define F2 0x3f000000u
#define F3 0x3e2aaaabu
#define F4 0x3d2aaaabu
#define F5 0x3c088889u
#define F6 0x3ab60b61u
#define F7 0x39500d01u
#define F8 0x37d00d01u
#define F9 0x3638ef1du
#define F10 0x3493f27eu
#define F11 0x32d7322bu
#define F12 0x310f76c7u
/* 2/n for the odd n of the atanh series */
#define T3 0x3f2aaaabu
#define T5 0x3ecccccdu
#define T7 0x3e924925u
#define T9 0x3e638e39u
#define T11 0x3e3a2e8cu
#define T13 0x3e1d89d9u

float
dl_det_u32_to_f32 (uint32_t x)
{
  if (x < 0x1000000u)
    return (float)x; /* exact */
  int msb = 31;
  while (!(x >> msb))
    msb--;
  int sh = msb - 23;
  uint32_t m = x >> sh;
  uint32_t rem = x & ((1u << sh) - 1u);
  uint32_t half = 1u << (sh - 1);
  if (rem > half || (rem == half && (m & 1u)))
    m += 1u;
  /* m <= 2^24 converts exactly; the power of two is built from its bits */
  float scale = f_bits ((uint32_t)(127 + sh) << 23);
  return (float)m * scale;
}

/* Dekker's exact product without fma: a * b = p + e exactly. */
static inline void
two_prod (float a, float b, float *p, float *e)
{
  float ca = 4097.0f * a;
  float ta = ca - a;
  float ah = ca - ta;
  float al = a - ah;
  float cb = 4097.0f * b;
  float tb = cb - b;
  float bh = cb - tb;
  float bl = b - bh;
  float pp = a * b;
  float t1 = ah * bh;
  float t2 = t1 - pp;
  float t3 = ah * bl;
  float t4 = t2 + t3;
  float t5 = al * bh;
  float t6 = t4 + t5;
  float t7 = al * bl;
  *p = pp;
  *e = t6 + t7;
}

float
dl_det_recip (float d)
{
  float ad = fabsf (d);
  float r = f_bits (0x7ef311c3u - bits_f (ad));
  for (int i = 0; i < 4; i++)
    {
      float t = ad * r;
      float u = 2.0f - t;
      r = r * u;
    }
  return d < 0.0f ? -r : r;
}

float
dl_det_div (float a, float b)
{
  float r = dl_det_recip (b);
  float q = a * r;
  float p, pe;
  two_prod (q, b, &p, &pe);
  float e1 = a - p;
  float e = e1 - pe;
  float c = e * r;
  return q + c;
}

float
dl_det_log (float x)
{
  if (!(x > 0.0f))
    return x == 0.0f ? -INFINITY : NAN;
  if (isinf (x))
    return x;
  int k = 0;
  uint32_t b = bits_f (x);
  if (b < 0x00800000u)
    {
      float y = x * 33554432.0f; /* 2^25: denormal -> normal */
      b = bits_f (y);
      k = -25;
    }
  k += (int)(b >> 23) - 127;
  b = (b & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
  if (b > 0x3fb504f3u)                 /* m > sqrt 2: use m / 2 */
    {
      b -= 0x00800000u;
      k += 1;
    }
  float m = f_bits (b);
  float f = m - 1.0f;
  float d = 2.0f + f;
  float r = dl_det_recip (d);
  float s = f * r; /* log(1+f) = 2 atanh(s) */
  float z = s * s;
  float p = f_bits (T13);
  p = p * z;
  p = p + f_bits (T11);
  p = p * z;
  p = p + f_bits (T9);
  p = p * z;
  p = p + f_bits (T7);
  p = p * z;
  p = p + f_bits (T5);
  p = p * z;
  p = p + f_bits (T3);
  float rr = z * p;  /* 2 atanh(s) = 2s + s * rr */
  float fr = f - rr; /* and 2s = f - s f, so log(1+f) = f - s (f - rr) */
  float sfr = s * fr;
  float l1p = f - sfr;
  float kf = (float)k;
  float hi = kf * f_bits (LN2_HI);
  float lo = kf * f_bits (LN2_LO);
  float t = l1p + lo;
  return hi + t;
}

float
dl_det_exp (float x)
{
  if (isnan (x))
    return x;
  if (x > 88.72283f)
    return INFINITY;
  if (x < -87.33654f)
    return 0.0f;
  float t = x * f_bits (INV_LN2);
  float t5 = t + 0.5f;
  float kf = floorf (t5);
  float hi = kf * f_bits (LN2_HI);
  float r1 = x - hi;
  float lo = kf * f_bits (LN2_LO);
  float r = r1 - lo;
  float p = f_bits (F9);
  p = p * r;
  p = p + f_bits (F8);
  p = p * r;
  p = p + f_bits (F7);
  p = p * r;
  p = p + f_bits (F6);
  p = p * r;
  p = p + f_bits (F5);
  p = p * r;
  p = p + f_bits (F4);
  p = p * r;
  p = p + f_bits (F3);
  p = p * r;
  p = p + f_bits (F2);
  p = p * r;
  p = p + 1.0f;
  p = p * r;
  p = p + 1.0f;
  int k = (int)kf;
  if (k > 127)
    {
      p = p * 2.0f;
      k -= 1;
    }
  float scale = f_bits ((uint32_t)(k + 127) << 23);
  return p * scale;
}

float
dl_det_sqrt (float x)
{
  if (x == 0.0f || isinf (x) || isnan (x))
    return x;
  if (x < 0.0f)
    return NAN;
  float r = f_bits (0x5f3759dfu - (bits_f (x) >> 1));
  float hx = 0.5f * x;
  for (int i = 0; i < 4; i++)
    {
      float t = r * r;
      float u = hx * t;
      float v = 1.5f - u;
      r = r * v;
    }
  float s = x * r;
  /* one correction with the exact residual x - s^2 */
  float p, pe;
  two_prod (s, s, &p, &pe);
  float e1 = x - p;
  float e = e1 - pe;
  float hr = 0.5f * r;
  float c = e * hr;
  return s + c;
}

/* sin r and cos r for |r| <= pi/4 (Taylor series, exact enough there) */
static float
sin_poly (float r)
{
  float z = r * r;
  float p = -f_bits (F11);
  p = p * z;
  p = p + f_bits (F9);
  p = p * z;
  p = p - f_bits (F7);
  p = p * z;
  p = p + f_bits (F5);
  p = p * z;
  p = p - f_bits (F3);
  float t = z * p;
  float rt = r * t;
  return r + rt;
}

static float
cos_poly (float r)
{
  float z = r * r;
  float p = f_bits (F12);
  p = p * z;
  p = p - f_bits (F10);
  p = p * z;
  p = p + f_bits (F8);
  p = p * z;
  p = p - f_bits (F6);
  p = p * z;
  p = p + f_bits (F4);
  float w = z * z;
  float t = w * p;
  float hz = 0.5f * z;
  float c = 1.0f - hz;
  return c + t;
}

/* x = k pi/2 + r, |r| <= pi/4; returns r and k mod 4 */
static float
reduce_pio2 (float x, int *quadrant)
{
  float y = x * f_bits (TWO_OVER_PI);
  float y5 = y + 0.5f;
  float kf = floorf (y5);
  float a = kf * f_bits (PIO2_1);
  float r = x - a;
  float b = kf * f_bits (PIO2_2);
  r = r - b;
  float c = kf * f_bits (PIO2_3);
  r = r - c;
  float d = kf * f_bits (PIO2_4);
  r = r - d;
  *quadrant = ((int)kf) & 3;
  return r;
}

float
dl_det_sin (float x)
{
  if (isinf (x) || isnan (x))
    return NAN;
  int q;
  float r = reduce_pio2 (x, &q);
  switch (q)
    {
    case 0:
      return sin_poly (r);
    case 1:
      return cos_poly (r);
    case 2:
      return -sin_poly (r);
    default:
      return -cos_poly (r);
    }
}

float
dl_det_cos (float x)
{
  if (isinf (x) || isnan (x))
    return NAN;
  int q;
  float r = reduce_pio2 (x, &q);
  switch (q)
    {
    case 0:
      return cos_poly (r);
    case 1:
      return -sin_poly (r);
    case 2:
      return -cos_poly (r);
    default:
      return sin_poly (r);
    }
}
