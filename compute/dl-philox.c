/* Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011) and the value mappings described in dl-philox.h. */
#include "dl-philox.h"

#include "dl-detmath.h"

#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* 2^-32, and 2 pi 2^-32 rounded to float */
#define INV_2_32 0x2f800000u
#define TWO_PI_INV_2_32 0x30c90fdbu

static inline float
f_bits (uint32_t b)
{
  float f;
  memcpy (&f, &b, 4);
  return f;
}

void
dl_philox4x32_10 (uint32_t ctr[4], uint32_t key_lo, uint32_t key_hi)
{
  uint32_t k0 = key_lo, k1 = key_hi;
  for (int round = 0; round < 10; round++)
    {
      uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
      uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
      uint32_t c0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ k0;
      uint32_t c1 = (uint32_t)p1;
      uint32_t c2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1;
      uint32_t c3 = (uint32_t)p0;
      ctr[0] = c0;
      ctr[1] = c1;
      ctr[2] = c2;
      ctr[3] = c3;
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
}

float
dl_philox_box_muller (uint32_t w_radius, uint32_t w_angle, gboolean cosine)
{
  float inv = f_bits (INV_2_32);
  float fa = dl_det_u32_to_f32 (w_radius);
  float ua = fa * inv;
  float half = 0.5f * inv;
  float u = ua + half;
  float step = f_bits (TWO_PI_INV_2_32);
  float fb = dl_det_u32_to_f32 (w_angle);
  float va = fb * step;
  float vhalf = 0.5f * step;
  float v = va + vhalf;
  float l = dl_det_log (u);
  float m = -2.0f * l;
  float s = dl_det_sqrt (m);
  float t = cosine ? dl_det_cos (v) : dl_det_sin (v);
  return s * t;
}

static void
native_block (guint64 seed, guint64 offset, guint64 block, uint32_t w[4])
{
  w[0] = (uint32_t)block;
  w[1] = (uint32_t)(block >> 32);
  w[2] = (uint32_t)offset;
  w[3] = (uint32_t)(offset >> 32);
  dl_philox4x32_10 (w, (uint32_t)seed, (uint32_t)(seed >> 32));
}

float
dl_philox_normal (DlRandomMode mode, guint64 seed, guint64 offset, guint64 index)
{
  uint32_t w[4];
  if (mode == DL_RANDOM_A1111)
    {
      w[0] = (uint32_t)offset;
      w[1] = 0;
      w[2] = (uint32_t)index;
      w[3] = 0;
      dl_philox4x32_10 (w, (uint32_t)seed, (uint32_t)(seed >> 32));
      return dl_philox_box_muller (w[0], w[1], FALSE);
    }
  native_block (seed, offset, index / 4, w);
  guint lane = (guint)(index % 4);
  guint pair = lane / 2;
  return dl_philox_box_muller (w[2 * pair], w[2 * pair + 1], lane & 1);
}

uint32_t
dl_philox_word (guint64 seed, guint64 offset, guint64 index)
{
  uint32_t w[4];
  native_block (seed, offset, index / 4, w);
  return w[index % 4];
}

float
dl_philox_uniform (guint64 seed, guint64 offset, guint64 index)
{
  uint32_t top = dl_philox_word (seed, offset, index) >> 8;
  float f = (float)top;            /* exact: below 2^24 */
  return f * f_bits (0x33800000u); /* 2^-24 */
}

void
dl_philox_fill_normal (float *out, gsize n, DlRandomMode mode, guint64 seed, guint64 offset, guint64 first, float mean,
                       float std)
{
  for (gsize i = 0; i < n; i++)
    {
      float z = dl_philox_normal (mode, seed, offset, first + i);
      float sz = std * z;
      out[i] = mean + sz;
    }
}
