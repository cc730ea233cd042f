#version 450
// dgamma / dbeta of GroupNorm and LayerNorm from f32 partial sums ab [R, C, 2]
// (per sample for GroupNorm, per row chunk for LayerNorm):
//   dbeta[c] (+)= sum_r ab[r, c, 0],  dgamma[c] (+)= sum_r ab[r, c, 1].
// One thread per channel, summing in a fixed order (deterministic).
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufAB { float ab[]; };
layout(std430, binding = 1) buffer BufDg { D_STORE dgamma[]; };
layout(std430, binding = 2) buffer BufDb { D_STORE dbeta[]; };

#define FLAG_DGAMMA 1u
#define FLAG_DBETA 2u
#define FLAG_ACCUMULATE 4u

layout(push_constant) uniform Push {
  uint R, C;
  uint off_ab, off_dg, off_db;
  uint flags;
} p;

void main()
{
  const bool acc = (p.flags & FLAG_ACCUMULATE) != 0u;
  for (uint c = DL_GLOBAL_ID; c < p.C; c += DL_GLOBAL_STRIDE) {
    float sa = 0.0, sb = 0.0;
    for (uint r = 0u; r < p.R; r++) {
      const uint idx = p.off_ab + 2u * (r * p.C + c);
      sa += ab[idx];
      sb += ab[idx + 1u];
    }
    if ((p.flags & FLAG_DBETA) != 0u) {
      if (acc)
        sa += D_LOAD(dbeta[p.off_db + c]);
      dbeta[p.off_db + c] = D_CONV(sa);
    }
    if ((p.flags & FLAG_DGAMMA) != 0u) {
      if (acc)
        sb += D_LOAD(dgamma[p.off_dg + c]);
      dgamma[p.off_dg + c] = D_CONV(sb);
    }
  }
}
