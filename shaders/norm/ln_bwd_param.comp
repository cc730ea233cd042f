#version 450
// LayerNorm backward, partial sums for dgamma and dbeta.  The rows are cut into
// nchunks chunks of `chunk` rows; one thread per (chunk, column), consecutive
// threads on consecutive columns (coalesced):
//   ab[k, c] = (sum dy, sum dy * xhat) over the rows of chunk k.
// norm_param_reduce.comp then sums over the chunks.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 2) readonly buffer BufM { float mean[]; };
layout(std430, binding = 3) readonly buffer BufR { float rstd[]; };
layout(std430, binding = 4) writeonly buffer BufAB { float ab[]; };

layout(push_constant) uniform Push {
  uint rows, C, chunk, nchunks;
  uint off_x, off_dy, off_mean, off_rstd, off_ab;
} p;

void main()
{
  const uint items = p.nchunks * p.C;
  for (uint t = DL_GLOBAL_ID; t < items; t += DL_GLOBAL_STRIDE) {
    const uint k = t / p.C;
    const uint c = t - k * p.C;
    const uint r1 = min(p.rows, (k + 1u) * p.chunk);
    float sa = 0.0, sb = 0.0;
    for (uint row = k * p.chunk; row < r1; row++) {
      const float d = A_LOAD(dy[p.off_dy + row * p.C + c]);
      const float xh = (A_LOAD(x[p.off_x + row * p.C + c]) - mean[p.off_mean + row]) * rstd[p.off_rstd + row];
      sa += d;
      sb += d * xh;
    }
    ab[p.off_ab + 2u * t] = sa;
    ab[p.off_ab + 2u * t + 1u] = sb;
  }
}
