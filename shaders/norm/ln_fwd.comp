#version 450
// LayerNorm over the last dimension of x [rows, C], one workgroup per row
// (grid-stride over rows), WG threads (a power of two, specialization constant):
// the mean, then the variance as the mean of squared deviations (two passes, the
// row stays in cache), then y = (x - mean) * rstd * gamma + beta.
#include "dl_dtype.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufG { B_STORE gamma[]; };
layout(std430, binding = 2) readonly buffer BufB { B_STORE beta[]; };
layout(std430, binding = 3) writeonly buffer BufM { float mean_out[]; };
layout(std430, binding = 4) writeonly buffer BufR { float rstd_out[]; };
layout(std430, binding = 5) writeonly buffer BufY { A_STORE y[]; };

#define FLAG_GAMMA 1u
#define FLAG_BETA 2u
#define FLAG_STATS 8u

layout(push_constant) uniform Push {
  uint rows, C;
  uint off_x, off_y, off_g, off_b, off_mean, off_rstd;
  float eps;
  uint flags;
} p;

shared float red[gl_WorkGroupSize.x];

// Workgroup sum; every thread gets it.
float row_sum(uint tid, float v)
{
  red[tid] = v;
  barrier();
  for (uint w = gl_WorkGroupSize.x / 2u; w > 0u; w >>= 1) {
    if (tid < w)
      red[tid] += red[tid + w];
    barrier();
  }
  const float s = red[0];
  barrier();
  return s;
}

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint WG = gl_WorkGroupSize.x;
  const bool has_g = (p.flags & FLAG_GAMMA) != 0u, has_b = (p.flags & FLAG_BETA) != 0u;
  const float inv_c = 1.0 / float(p.C);
  for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
    const uint base = p.off_x + row * p.C;
    float s = 0.0;
    for (uint i = tid; i < p.C; i += WG)
      s += A_LOAD(x[base + i]);
    const float m = row_sum(tid, s) * inv_c;
    float q = 0.0;
    for (uint i = tid; i < p.C; i += WG) {
      const float d = A_LOAD(x[base + i]) - m;
      q += d * d;
    }
    const float r = 1.0 / sqrt(row_sum(tid, q) * inv_c + p.eps);
    if (tid == 0u && (p.flags & FLAG_STATS) != 0u) {
      mean_out[p.off_mean + row] = m;
      rstd_out[p.off_rstd + row] = r;
    }
    const uint ybase = p.off_y + row * p.C;
    for (uint i = tid; i < p.C; i += WG) {
      const float ga = has_g ? B_LOAD(gamma[p.off_g + i]) : 1.0;
      const float be = has_b ? B_LOAD(beta[p.off_b + i]) : 0.0;
      y[ybase + i] = A_CONV((A_LOAD(x[base + i]) - m) * r * ga + be);
    }
  }
}
