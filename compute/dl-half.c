#include "dl-half.h"

#include <math.h>
#include <string.h>

static inline uint32_t
f32_bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, 4);
  return u;
}

static inline float
bits_f32 (uint32_t u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

uint16_t
dl_f32_to_f16 (float f)
{
  uint32_t x = f32_bits (f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;

  if (ax >= 0x7f800000u) /* Inf or NaN */
    return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
  if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
    return (uint16_t)(sign | 0x7c00u);
  if (ax < 0x38800000u)
    {
      /* Result is subnormal (or zero): shift the full mantissa into place, RNE. */
      if (ax < 0x33000000u) /* below half the smallest subnormal */
        return (uint16_t)sign;
      uint32_t e = ax >> 23;
      uint32_t m = (ax & 0x7fffffu) | 0x800000u;
      uint32_t shift = 126 - e; /* 14 + (112 - e) + ... */
      uint32_t r = m >> shift;
      uint32_t rem = m & ((1u << shift) - 1);
      uint32_t half = 1u << (shift - 1);
      if (rem > half || (rem == half && (r & 1u)))
        r++;
      return (uint16_t)(sign | r);
    }
  /* Normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even. */
  uint32_t r = ((ax >> 13) - (112u << 10));
  uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
    r++;
  return (uint16_t)(sign | r);
}

float
dl_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;

  if (e == 0x1f)
    return bits_f32 (sign | 0x7f800000u | (m << 13));
  if (e == 0)
    {
      if (m == 0)
        return bits_f32 (sign);
      float v = ldexpf ((float)m, -24);
      return sign ? -v : v;
    }
  return bits_f32 (sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t
dl_f32_to_bf16 (float f)
{
  uint32_t u = f32_bits (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float
dl_bf16_to_f32 (uint16_t h)
{
  return bits_f32 ((uint32_t)h << 16);
}

static inline double
load_as_double (const void *src, DlDType dt, gsize i)
{
  switch (dt)
    {
    case DL_DTYPE_F32:
      return ((const float *)src)[i];
    case DL_DTYPE_F16:
      return dl_f16_to_f32 (((const uint16_t *)src)[i]);
    case DL_DTYPE_BF16:
      return dl_bf16_to_f32 (((const uint16_t *)src)[i]);
    case DL_DTYPE_I32:
      return ((const int32_t *)src)[i];
    case DL_N_DTYPES:
    default:
      g_assert_not_reached ();
    }
}

void
dl_convert (void *dst, DlDType dst_dtype, const void *src, DlDType src_dtype, gsize n)
{
  if (dst_dtype == src_dtype)
    {
      memmove (dst, src, n * dl_dtype_size (dst_dtype));
      return;
    }
  for (gsize i = 0; i < n; i++)
    {
      if (src_dtype == DL_DTYPE_I32 && dst_dtype == DL_DTYPE_F32)
        {
          ((float *)dst)[i] = (float)((const int32_t *)src)[i];
          continue;
        }
      /* Going through float (not double) keeps f32 -> f16 single-rounded. */
      float v =
        src_dtype == DL_DTYPE_I32 ? (float)((const int32_t *)src)[i] : (float)load_as_double (src, src_dtype, i);
      switch (dst_dtype)
        {
        case DL_DTYPE_F32:
          ((float *)dst)[i] = v;
          break;
        case DL_DTYPE_F16:
          ((uint16_t *)dst)[i] = dl_f32_to_f16 (v);
          break;
        case DL_DTYPE_BF16:
          ((uint16_t *)dst)[i] = dl_f32_to_bf16 (v);
          break;
        case DL_DTYPE_I32:
          ((int32_t *)dst)[i] = (int32_t)v;
          break;
        case DL_N_DTYPES:
        default:
          g_assert_not_reached ();
        }
    }
}
