#version 450
// GroupNorm statistics, first stage.  x is [groups, M] (a group's Cg channels x
// spatial elements are contiguous); each group is cut into nchunks chunks of
// `chunk` elements (the last may be shorter) so that a few large groups still
// spread over many workgroups.  One workgroup per (group, chunk), grid-stride:
// Welford per thread, Chan's merge across threads; writes the chunk's mean and
// sum of squared deviations to part[(group * nchunks + k) * 2 + {0, 1}].
#include "dl_dtype.glsl"
#include "norm_common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) writeonly buffer BufP { float part[]; };

layout(push_constant) uniform Push {
  uint groups, M, chunk, nchunks;
  uint off_x, off_part;
} p;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint items = p.groups * p.nchunks;
  for (uint w = gl_WorkGroupID.x; w < items; w += gl_NumWorkGroups.x) {
    const uint q = w / p.nchunks;
    const uint k = w - q * p.nchunks;
    const uint start = p.off_x + q * p.M + k * p.chunk;
    const uint cnt = min(p.chunk, p.M - k * p.chunk);
    uint n = 0u;
    float m = 0.0, s = 0.0;
    for (uint i = tid; i < cnt; i += NORM_WG)
      norm_push(n, m, s, A_LOAD(x[start + i]));
    norm_reduce_moments(tid, n, m, s);
    if (tid == 0u) {
      part[p.off_part + 2u * w] = m;
      part[p.off_part + 2u * w + 1u] = s;
    }
  }
}
