#version 450
// Backward into the position table: dpos[t + pos_offset, c] (+)= sum_b dout[b, t, c],
// one thread per (t, c), batches summed in order.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufG { A_STORE g[]; };
layout(std430, binding = 1) buffer BufPos { float dpos[]; };

layout(push_constant) uniform Push {
  uint B, T, C;
  uint off_g, off_pos;
  uint pos_offset;
  uint accumulate;
} p;

void main()
{
  const uint n = p.T * p.C;
  for (uint e = DL_GLOBAL_ID; e < n; e += DL_GLOBAL_STRIDE) {
    float s = 0.0;
    for (uint b = 0; b < p.B; b++)
      s += A_LOAD(g[p.off_g + b * n + e]);
    const uint idx = p.off_pos + p.pos_offset * p.C + e;
    dpos[idx] = p.accumulate != 0u ? dpos[idx] + s : s;
  }
}
