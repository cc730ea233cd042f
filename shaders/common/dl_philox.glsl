// Philox-4x32-10 and its value mappings: the GLSL twin of compute/dl-philox.c
// (see dl-philox.h for the streams).  Bit-identical to the CPU on any device.
#ifndef DL_PHILOX_GLSL
#define DL_PHILOX_GLSL

#include "dl_detmath.glsl"

uvec4 dl_philox4x32_10(uvec4 c, uvec2 k)
{
  for (int round_ = 0; round_ < 10; round_++) {
    uint hi0, lo0, hi1, lo1;
    umulExtended(0xD2511F53u, c.x, hi0, lo0);
    umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
    c = uvec4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += uvec2(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

float dl_philox_box_muller(uint w_radius, uint w_angle, bool cosine)
{
  precise float inv = uintBitsToFloat(0x2f800000u);
  precise float fa = dl_det_u32_to_f32(w_radius);
  precise float ua = fa * inv;
  precise float half_ = 0.5 * inv;
  precise float u = ua + half_;
  precise float step_ = uintBitsToFloat(0x30c90fdbu);
  precise float fb = dl_det_u32_to_f32(w_angle);
  precise float va = fb * step_;
  precise float vhalf = 0.5 * step_;
  precise float v = va + vhalf;
  precise float l = dl_det_log(u);
  precise float m = -2.0 * l;
  precise float s = dl_det_sqrt(m);
  precise float t = cosine ? dl_det_cos(v) : dl_det_sin(v);
  precise float res = s * t;
  return res;
}

#endif
