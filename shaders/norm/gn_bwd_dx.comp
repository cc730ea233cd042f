#version 450
// GroupNorm backward, input gradient.  With dxhat = dz * gamma[c] and the group's
// sums s1 = sum dxhat, s2 = sum dxhat * xhat (M elements),
//   dx = rstd * (dxhat - (s1 + xhat * s2) / M).
// s1 and s2 come from the per-row sums of gn_bwd_rows.comp:
//   s1 = sum_c gamma[c] * ab[n, c].x,  s2 = sum_c gamma[c] * ab[n, c].y.
// Work items are (group, chunk) as in gn_norm.comp; dz is recomputed as there.
#include "dl_dtype.glsl"
#include "dl_act.glsl"
#include "norm_common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 2) readonly buffer BufG { B_STORE gamma[]; };
layout(std430, binding = 3) readonly buffer BufB { B_STORE beta[]; };
layout(std430, binding = 4) readonly buffer BufM { float mean[]; };
layout(std430, binding = 5) readonly buffer BufR { float rstd[]; };
layout(std430, binding = 6) readonly buffer BufAB { float ab[]; };
layout(std430, binding = 7) writeonly buffer BufDx { A_STORE dx[]; };

#define FLAG_GAMMA 1u
#define FLAG_BETA 2u
#define FLAG_SILU 4u

layout(push_constant) uniform Push {
  uint groups, M, chunk, nchunks;
  uint S, Cg, G;
  uint off_x, off_dy, off_dx, off_g, off_b, off_mean, off_rstd, off_ab;
  uint flags;
} p;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint items = p.groups * p.nchunks;
  const bool has_g = (p.flags & FLAG_GAMMA) != 0u, has_b = (p.flags & FLAG_BETA) != 0u;
  const bool silu = (p.flags & FLAG_SILU) != 0u;
  for (uint w = gl_WorkGroupID.x; w < items; w += gl_NumWorkGroups.x) {
    const uint q = w / p.nchunks;
    const uint k = w - q * p.nchunks;
    const uint c0 = (q % p.G) * p.Cg;
    const uint row0 = q * p.Cg;  // (n * C + c0): groups tile the rows in order

    float s1 = 0.0, s2 = 0.0;
    for (uint j = tid; j < p.Cg; j += NORM_WG) {
      const float ga = has_g ? B_LOAD(gamma[p.off_g + c0 + j]) : 1.0;
      s1 += ga * ab[p.off_ab + 2u * (row0 + j)];
      s2 += ga * ab[p.off_ab + 2u * (row0 + j) + 1u];
    }
    norm_reduce_sum2(tid, s1, s2);
    const float m = mean[p.off_mean + q], r = rstd[p.off_rstd + q];
    const float inv_m = 1.0 / float(p.M);

    const uint e0 = k * p.chunk;
    const uint cnt = min(p.chunk, p.M - e0);
    uint cl = (e0 + tid) / p.S, sp = (e0 + tid) % p.S;
    const uint dc = NORM_WG / p.S, ds = NORM_WG % p.S;
    const uint base = q * p.M + e0;
    for (uint i = tid; i < cnt; i += NORM_WG) {
      const uint c = c0 + cl;
      const float ga = has_g ? B_LOAD(gamma[p.off_g + c]) : 1.0;
      const float xh = (A_LOAD(x[p.off_x + base + i]) - m) * r;
      float d = A_LOAD(dy[p.off_dy + base + i]);
      if (silu) {
        const float be = has_b ? B_LOAD(beta[p.off_b + c]) : 0.0;
        const float z = xh * ga + be;
        const float sg = dl_sigmoid(z);
        d *= sg * (1.0 + z * (1.0 - sg));
      }
      dx[p.off_dx + base + i] = A_CONV(r * (d * ga - (s1 + xh * s2) * inv_m));
      cl += dc;
      sp += ds;
      if (sp >= p.S) {
        sp -= p.S;
        cl += 1u;
      }
    }
  }
}
