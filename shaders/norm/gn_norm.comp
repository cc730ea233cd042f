#version 450
// GroupNorm, second stage: y = (x - mean) * rstd * gamma[c] + beta[c], then SiLU
// when FLAG_SILU.  Same (group, chunk) work items as gn_stats.comp; each
// workgroup first merges its group's chunk statistics (Chan), and chunk 0 of
// each group stores mean and rstd = 1/sqrt(var + eps) for the backward.
#include "dl_dtype.glsl"
#include "dl_act.glsl"
#include "norm_common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufG { B_STORE gamma[]; };
layout(std430, binding = 2) readonly buffer BufB { B_STORE beta[]; };
layout(std430, binding = 3) readonly buffer BufP { float part[]; };
layout(std430, binding = 4) writeonly buffer BufM { float mean_out[]; };
layout(std430, binding = 5) writeonly buffer BufR { float rstd_out[]; };
layout(std430, binding = 6) writeonly buffer BufY { A_STORE y[]; };

#define FLAG_GAMMA 1u
#define FLAG_BETA 2u
#define FLAG_SILU 4u
#define FLAG_STATS 8u

layout(push_constant) uniform Push {
  uint groups, M, chunk, nchunks;
  uint S, Cg, G;
  uint off_x, off_y, off_g, off_b, off_part, off_mean, off_rstd;
  float eps;
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

    uint n = 0u;
    float m = 0.0, s = 0.0;
    for (uint j = tid; j < p.nchunks; j += NORM_WG) {
      const uint idx = p.off_part + 2u * (q * p.nchunks + j);
      norm_merge(n, m, s, min(p.chunk, p.M - j * p.chunk), part[idx], part[idx + 1u]);
    }
    norm_reduce_moments(tid, n, m, s);
    const float r = 1.0 / sqrt(s / float(p.M) + p.eps);
    if (k == 0u && tid == 0u && (p.flags & FLAG_STATS) != 0u) {
      mean_out[p.off_mean + q] = m;
      rstd_out[p.off_rstd + q] = r;
    }

    const uint c0 = (q % p.G) * p.Cg;
    const uint e0 = k * p.chunk;
    const uint cnt = min(p.chunk, p.M - e0);
    // channel and position of element e0 + i, stepped without a division per element
    uint cl = (e0 + tid) / p.S, sp = (e0 + tid) % p.S;
    const uint dc = NORM_WG / p.S, ds = NORM_WG % p.S;
    const uint base = q * p.M + e0;
    for (uint i = tid; i < cnt; i += NORM_WG) {
      const uint c = c0 + cl;
      const float ga = has_g ? B_LOAD(gamma[p.off_g + c]) : 1.0;
      const float be = has_b ? B_LOAD(beta[p.off_b + c]) : 0.0;
      float z = (A_LOAD(x[p.off_x + base + i]) - m) * r * ga + be;
      if (silu)
        z *= dl_sigmoid(z);
      y[p.off_y + base + i] = A_CONV(z);
      cl += dc;
      sp += ds;
      if (sp >= p.S) {
        sp -= p.S;
        cl += 1u;
      }
    }
  }
}
