#version 450
// GroupNorm backward, first stage: for every (n, c) row of S spatial elements,
//   ab[row] = (sum dz, sum dz * xhat),  xhat = (x - mean) * rstd,
// where dz = dy, or with FLAG_SILU dz = dy * silu'(z) for the pre-activation
// z = xhat * gamma[c] + beta[c] recomputed here.  These give dbeta and dgamma
// (summed over n by norm_param_reduce.comp) and the per-group sums of dx.
// A workgroup takes 256 / L rows with L lanes each (L a power of two chosen by
// the host from S), so short rows do not leave most lanes idle.
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
layout(std430, binding = 6) writeonly buffer BufAB { float ab[]; };

#define FLAG_GAMMA 1u
#define FLAG_BETA 2u
#define FLAG_SILU 4u

layout(push_constant) uniform Push {
  uint rows, S, C, Cg, G, lanes;
  uint off_x, off_dy, off_g, off_b, off_mean, off_rstd, off_ab;
  uint flags;
} p;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint lane = tid % p.lanes;
  const uint per_wg = NORM_WG / p.lanes;
  const uint blocks = (p.rows + per_wg - 1u) / per_wg;
  const bool has_g = (p.flags & FLAG_GAMMA) != 0u, has_b = (p.flags & FLAG_BETA) != 0u;
  const bool silu = (p.flags & FLAG_SILU) != 0u;
  for (uint blk = gl_WorkGroupID.x; blk < blocks; blk += gl_NumWorkGroups.x) {
    const uint row = blk * per_wg + tid / p.lanes;
    float sa = 0.0, sb = 0.0;
    if (row < p.rows) {
      const uint c = row % p.C;
      const uint st = (row / p.C) * p.G + c / p.Cg;
      const float m = mean[p.off_mean + st], r = rstd[p.off_rstd + st];
      const float ga = has_g ? B_LOAD(gamma[p.off_g + c]) : 1.0;
      const float be = has_b ? B_LOAD(beta[p.off_b + c]) : 0.0;
      const uint base = row * p.S;
      for (uint i = lane; i < p.S; i += p.lanes) {
        const float xh = (A_LOAD(x[p.off_x + base + i]) - m) * r;
        float d = A_LOAD(dy[p.off_dy + base + i]);
        if (silu) {
          const float z = xh * ga + be;
          const float sg = dl_sigmoid(z);
          d *= sg * (1.0 + z * (1.0 - sg));
        }
        sa += d;
        sb += d * xh;
      }
    }
    // tree over the lanes of each row (a row's lanes are adjacent)
    sh_a[tid] = sa;
    sh_b[tid] = sb;
    barrier();
    for (uint h = p.lanes / 2u; h > 0u; h >>= 1) {
      if (lane < h) {
        sh_a[tid] += sh_a[tid + h];
        sh_b[tid] += sh_b[tid + h];
      }
      barrier();
    }
    if (lane == 0u && row < p.rows) {
      ab[p.off_ab + 2u * row] = sh_a[tid];
      ab[p.off_ab + 2u * row + 1u] = sh_b[tid];
    }
    barrier();
  }
}
