#version 450
// Bias gradient of conv2d and linear: for dy viewed as [outer, C, inner],
//   d[c] (+)= sum over o, i of dy[o, c, i].
// A workgroup owns CB consecutive channels (CB divides 256, a power of two) and
// 256 / CB lanes per channel.  CB = 1 suits conv (inner = Ho*Wo is long and
// contiguous: consecutive threads read consecutive pixels); CB = 32 suits linear
// (inner = 1: consecutive threads read consecutive channels of a row).  Lanes are
// summed by a tree in shared memory, so the result does not depend on timing.
// When few channels would leave the device idle, gl_WorkGroupID.y splits each
// channel's elements into `chunk`-sized runs: split y then writes its partial sum
// to d[y * C + c] (f32, no accumulation) and conv2d_wgrad_reduce.comp adds the
// splits up.
#include "dl_dtype.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 1) buffer BufD { D_STORE d[]; };

#define FLAG_ACCUMULATE 1u

layout(push_constant) uniform Push {
  uint outer, C, inner;
  uint cb;       // channels per workgroup
  uint chunk;    // elements per channel and split
  uint off_dy, off_d;
  uint flags;
} p;

shared float red[256];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint lanes = 256u / p.cb;
  const uint lc = tid % p.cb;
  const uint lr = tid / p.cb;
  const uint c = gl_WorkGroupID.x * p.cb + lc;
  const uint e0 = gl_WorkGroupID.y * p.chunk;
  const uint e1 = min(e0 + p.chunk, p.outer * p.inner);

  float s = 0.0;
  if (c < p.C) {
    for (uint e = e0 + lr; e < e1; e += lanes) {
      const uint o = e / p.inner;
      const uint i = e - o * p.inner;
      s += A_LOAD(dy[p.off_dy + (o * p.C + c) * p.inner + i]);
    }
  }
  red[tid] = s;
  barrier();
  for (uint h = lanes / 2u; h > 0u; h >>= 1) {
    if (lr < h)
      red[tid] += red[tid + h * p.cb];
    barrier();
  }
  if (lr == 0u && c < p.C) {
    const uint idx = p.off_d + gl_WorkGroupID.y * p.C + c;
    float v = red[tid];
    if ((p.flags & FLAG_ACCUMULATE) != 0u)
      v += D_LOAD(d[idx]);
    d[idx] = D_CONV(v);
  }
}
