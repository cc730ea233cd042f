#version 450
// LayerNorm backward, input gradient, one workgroup per row:
//   dxhat = dy * gamma,  dx = rstd * (dxhat - (sum dxhat + xhat * sum dxhat*xhat) / C).
#include "dl_dtype.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 2) readonly buffer BufG { B_STORE gamma[]; };
layout(std430, binding = 3) readonly buffer BufM { float mean[]; };
layout(std430, binding = 4) readonly buffer BufR { float rstd[]; };
layout(std430, binding = 5) writeonly buffer BufDx { A_STORE dx[]; };

#define FLAG_GAMMA 1u

layout(push_constant) uniform Push {
  uint rows, C;
  uint off_x, off_dy, off_dx, off_g, off_mean, off_rstd;
  uint flags;
} p;

shared float red_a[gl_WorkGroupSize.x];
shared float red_b[gl_WorkGroupSize.x];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint WG = gl_WorkGroupSize.x;
  const bool has_g = (p.flags & FLAG_GAMMA) != 0u;
  const float inv_c = 1.0 / float(p.C);
  for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
    const uint base = row * p.C;
    const float m = mean[p.off_mean + row], r = rstd[p.off_rstd + row];
    float s1 = 0.0, s2 = 0.0;
    for (uint i = tid; i < p.C; i += WG) {
      const float ga = has_g ? B_LOAD(gamma[p.off_g + i]) : 1.0;
      const float d = A_LOAD(dy[p.off_dy + base + i]) * ga;
      s1 += d;
      s2 += d * (A_LOAD(x[p.off_x + base + i]) - m) * r;
    }
    red_a[tid] = s1;
    red_b[tid] = s2;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1) {
      if (tid < w) {
        red_a[tid] += red_a[tid + w];
        red_b[tid] += red_b[tid + w];
      }
      barrier();
    }
    s1 = red_a[0];
    s2 = red_b[0];
    barrier();  // the arrays are reused by the next row
    for (uint i = tid; i < p.C; i += WG) {
      const float ga = has_g ? B_LOAD(gamma[p.off_g + i]) : 1.0;
      const float xh = (A_LOAD(x[p.off_x + base + i]) - m) * r;
      dx[p.off_dx + base + i] = A_CONV(r * (A_LOAD(dy[p.off_dy + base + i]) * ga - (s1 + xh * s2) * inv_c));
    }
  }
}
