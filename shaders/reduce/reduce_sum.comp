#version 450
// Partial sums over the middle axis of a tensor viewed as [outer, R, inner]:
//   d[o, c, i] = scale * sum_{r in chunk c} a[o, r, i]
// With nchunks == 1 this is the final result; the host chains passes otherwise, so
// a reduction over millions of elements still spreads over many workgroups.
// ROW mode (inner == 1): one workgroup per (o, c), tree reduction in shared memory.
// COL mode (inner > 1): one thread per (o, c, i), each loops over its chunk, so
// consecutive threads read consecutive addresses.
#include "dl_dtype.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) writeonly buffer BufD { D_STORE d[]; };

layout(push_constant) uniform Push {
  uint outer;
  uint R;
  uint inner;
  uint chunk;
  uint nchunks;
  uint off_a;
  uint off_d;
  float scale;
  uint col_mode;
} p;

shared float partial[256];

void main()
{
  const uint tid = gl_LocalInvocationID.x;

  if (p.col_mode != 0u) {
    const uint total = p.outer * p.nchunks * p.inner;
    for (uint g = gl_GlobalInvocationID.x; g < total; g += gl_NumWorkGroups.x * 256u) {
      const uint i = g % p.inner;
      const uint c = (g / p.inner) % p.nchunks;
      const uint o = g / (p.inner * p.nchunks);
      const uint r0 = c * p.chunk;
      const uint r1 = min(r0 + p.chunk, p.R);
      float s = 0.0;
      for (uint r = r0; r < r1; r++)
        s += A_LOAD(a[p.off_a + (o * p.R + r) * p.inner + i]);
      d[p.off_d + g] = D_CONV(s * p.scale);
    }
    return;
  }

  const uint groups = p.outer * p.nchunks;
  for (uint g = gl_WorkGroupID.x; g < groups; g += gl_NumWorkGroups.x) {
    const uint c = g % p.nchunks;
    const uint o = g / p.nchunks;
    const uint r0 = c * p.chunk;
    const uint r1 = min(r0 + p.chunk, p.R);
    float s = 0.0;
    for (uint r = r0 + tid; r < r1; r += 256u)
      s += A_LOAD(a[p.off_a + o * p.R + r]);
    partial[tid] = s;
    barrier();
    for (uint w = 128u; w > 0u; w >>= 1) {
      if (tid < w)
        partial[tid] += partial[tid + w];
      barrier();
    }
    if (tid == 0u)
      d[p.off_d + g] = D_CONV(partial[0] * p.scale);
    barrier();
  }
}
