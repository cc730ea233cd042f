// Float functions that give the same bits on every device: the GLSL twin of
// compute/dl-detmath.c, statement for statement (keep them in step).  Only
// correctly rounded +, -, * and exact conversions are used; `precise` stops the
// compiler from fusing multiply-adds, whose rounding would differ per device.
#ifndef DL_DETMATH_GLSL
#define DL_DETMATH_GLSL

#define DLM_PIO2_1 uintBitsToFloat(0x3fc91000u)
#define DLM_PIO2_2 uintBitsToFloat(0xb6957000u)
#define DLM_PIO2_3 uintBitsToFloat(0xb06f5000u)
#define DLM_PIO2_4 uintBitsToFloat(0x298c234cu)
#define DLM_TWO_OVER_PI uintBitsToFloat(0x3f22f983u)
#define DLM_LN2_HI uintBitsToFloat(0x3f317200u)
#define DLM_LN2_LO uintBitsToFloat(0x35bfbe8eu)
#define DLM_INV_LN2 uintBitsToFloat(0x3fb8aa3bu)
#define DLM_F2 uintBitsToFloat(0x3f000000u)
#define DLM_F3 uintBitsToFloat(0x3e2aaaabu)
#define DLM_F4 uintBitsToFloat(0x3d2aaaabu)
#define DLM_F5 uintBitsToFloat(0x3c088889u)
#define DLM_F6 uintBitsToFloat(0x3ab60b61u)
#define DLM_F7 uintBitsToFloat(0x39500d01u)
#define DLM_F8 uintBitsToFloat(0x37d00d01u)
#define DLM_F9 uintBitsToFloat(0x3638ef1du)
#define DLM_F10 uintBitsToFloat(0x3493f27eu)
#define DLM_F11 uintBitsToFloat(0x32d7322bu)
#define DLM_F12 uintBitsToFloat(0x310f76c7u)
#define DLM_T3 uintBitsToFloat(0x3f2aaaabu)
#define DLM_T5 uintBitsToFloat(0x3ecccccdu)
#define DLM_T7 uintBitsToFloat(0x3e924925u)
#define DLM_T9 uintBitsToFloat(0x3e638e39u)
#define DLM_T11 uintBitsToFloat(0x3e3a2e8cu)
#define DLM_T13 uintBitsToFloat(0x3e1d89d9u)
#define DLM_INF uintBitsToFloat(0x7f800000u)
#define DLM_NAN uintBitsToFloat(0x7fc00000u)

float dl_det_u32_to_f32(uint x)
{
  if (x < 0x1000000u)
    return float(x);
  int sh = findMSB(x) - 23;
  uint m = x >> uint(sh);
  uint rem = x & ((1u << uint(sh)) - 1u);
  uint half_ = 1u << uint(sh - 1);
  if (rem > half_ || (rem == half_ && (m & 1u) != 0u))
    m += 1u;
  precise float scale = uintBitsToFloat(uint(127 + sh) << 23);
  precise float r = float(m) * scale;
  return r;
}

void dl_det_two_prod(float a, float b, out float p, out float e)
{
  precise float ca = 4097.0 * a;
  precise float ta = ca - a;
  precise float ah = ca - ta;
  precise float al = a - ah;
  precise float cb = 4097.0 * b;
  precise float tb = cb - b;
  precise float bh = cb - tb;
  precise float bl = b - bh;
  precise float pp = a * b;
  precise float t1 = ah * bh;
  precise float t2 = t1 - pp;
  precise float t3 = ah * bl;
  precise float t4 = t2 + t3;
  precise float t5 = al * bh;
  precise float t6 = t4 + t5;
  precise float t7 = al * bl;
  precise float ee = t6 + t7;
  p = pp;
  e = ee;
}

float dl_det_recip(float d)
{
  precise float ad = abs(d);
  precise float r = uintBitsToFloat(0x7ef311c3u - floatBitsToUint(ad));
  for (int i = 0; i < 4; i++) {
    precise float t = ad * r;
    precise float u = 2.0 - t;
    r = r * u;
  }
  return d < 0.0 ? -r : r;
}

float dl_det_div(float a, float b)
{
  precise float r = dl_det_recip(b);
  precise float q = a * r;
  float p, pe;
  dl_det_two_prod(q, b, p, pe);
  precise float e1 = a - p;
  precise float e = e1 - pe;
  precise float c = e * r;
  precise float res = q + c;
  return res;
}

float dl_det_log(float x)
{
  if (!(x > 0.0))
    return x == 0.0 ? -DLM_INF : DLM_NAN;
  if (isinf(x))
    return x;
  int k = 0;
  uint b = floatBitsToUint(x);
  if (b < 0x00800000u) {
    precise float y = x * 33554432.0;
    b = floatBitsToUint(y);
    k = -25;
  }
  k += int(b >> 23) - 127;
  b = (b & 0x007fffffu) | 0x3f800000u;
  if (b > 0x3fb504f3u) {
    b -= 0x00800000u;
    k += 1;
  }
  precise float m = uintBitsToFloat(b);
  precise float f = m - 1.0;
  precise float d = 2.0 + f;
  precise float r = dl_det_recip(d);
  precise float s = f * r;
  precise float z = s * s;
  precise float p = DLM_T13;
  p = p * z;
  p = p + DLM_T11;
  p = p * z;
  p = p + DLM_T9;
  p = p * z;
  p = p + DLM_T7;
  p = p * z;
  p = p + DLM_T5;
  p = p * z;
  p = p + DLM_T3;
  precise float rr = z * p;
  precise float fr = f - rr;
  precise float sfr = s * fr;
  precise float l1p = f - sfr;
  precise float kf = float(k);
  precise float hi = kf * DLM_LN2_HI;
  precise float lo = kf * DLM_LN2_LO;
  precise float t = l1p + lo;
  precise float res = hi + t;
  return res;
}

float dl_det_exp(float x)
{
  if (isnan(x))
    return x;
  if (x > 88.72283)
    return DLM_INF;
  if (x < -87.33654)
    return 0.0;
  precise float t = x * DLM_INV_LN2;
  precise float t5 = t + 0.5;
  precise float kf = floor(t5);
  precise float hi = kf * DLM_LN2_HI;
  precise float r1 = x - hi;
  precise float lo = kf * DLM_LN2_LO;
  precise float r = r1 - lo;
  precise float p = DLM_F9;
  p = p * r;
  p = p + DLM_F8;
  p = p * r;
  p = p + DLM_F7;
  p = p * r;
  p = p + DLM_F6;
  p = p * r;
  p = p + DLM_F5;
  p = p * r;
  p = p + DLM_F4;
  p = p * r;
  p = p + DLM_F3;
  p = p * r;
  p = p + DLM_F2;
  p = p * r;
  p = p + 1.0;
  p = p * r;
  p = p + 1.0;
  int k = int(kf);
  if (k > 127) {
    p = p * 2.0;
    k -= 1;
  }
  precise float scale = uintBitsToFloat(uint(k + 127) << 23);
  precise float res = p * scale;
  return res;
}

float dl_det_sqrt(float x)
{
  if (x == 0.0 || isinf(x) || isnan(x))
    return x;
  if (x < 0.0)
    return DLM_NAN;
  precise float r = uintBitsToFloat(0x5f3759dfu - (floatBitsToUint(x) >> 1));
  precise float hx = 0.5 * x;
  for (int i = 0; i < 4; i++) {
    precise float t = r * r;
    precise float u = hx * t;
    precise float v = 1.5 - u;
    r = r * v;
  }
  precise float s = x * r;
  float p, pe;
  dl_det_two_prod(s, s, p, pe);
  precise float e1 = x - p;
  precise float e = e1 - pe;
  precise float hr = 0.5 * r;
  precise float c = e * hr;
  precise float res = s + c;
  return res;
}

float dl_det_sin_poly(float r)
{
  precise float z = r * r;
  precise float p = -DLM_F11;
  p = p * z;
  p = p + DLM_F9;
  p = p * z;
  p = p - DLM_F7;
  p = p * z;
  p = p + DLM_F5;
  p = p * z;
  p = p - DLM_F3;
  precise float t = z * p;
  precise float rt = r * t;
  precise float res = r + rt;
  return res;
}

float dl_det_cos_poly(float r)
{
  precise float z = r * r;
  precise float p = DLM_F12;
  p = p * z;
  p = p - DLM_F10;
  p = p * z;
  p = p + DLM_F8;
  p = p * z;
  p = p - DLM_F6;
  p = p * z;
  p = p + DLM_F4;
  precise float w = z * z;
  precise float t = w * p;
  precise float hz = 0.5 * z;
  precise float c = 1.0 - hz;
  precise float res = c + t;
  return res;
}

float dl_det_reduce_pio2(float x, out int quadrant)
{
  precise float y = x * DLM_TWO_OVER_PI;
  precise float y5 = y + 0.5;
  precise float kf = floor(y5);
  precise float a = kf * DLM_PIO2_1;
  precise float r = x - a;
  precise float b = kf * DLM_PIO2_2;
  r = r - b;
  precise float c = kf * DLM_PIO2_3;
  r = r - c;
  precise float d = kf * DLM_PIO2_4;
  r = r - d;
  quadrant = int(kf) & 3;
  return r;
}

float dl_det_sin(float x)
{
  if (isinf(x) || isnan(x))
    return DLM_NAN;
  int q;
  float r = dl_det_reduce_pio2(x, q);
  if (q == 0)
    return dl_det_sin_poly(r);
  if (q == 1)
    return dl_det_cos_poly(r);
  if (q == 2)
    return -dl_det_sin_poly(r);
  return -dl_det_cos_poly(r);
}

float dl_det_cos(float x)
{
  if (isinf(x) || isnan(x))
    return DLM_NAN;
  int q;
  float r = dl_det_reduce_pio2(x, q);
  if (q == 0)
    return dl_det_cos_poly(r);
  if (q == 1)
    return -dl_det_sin_poly(r);
  if (q == 2)
    return -dl_det_cos_poly(r);
  return dl_det_sin_poly(r);
}

#endif
