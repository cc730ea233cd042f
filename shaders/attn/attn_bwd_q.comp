#version 450
// Attention backward, query-major pass: dQ = scale * dS K with
// dS = P * (dO Vᵀ - delta), P = exp(Q Kᵀ scale - lse) recomputed tile by tile
// from the saved row log-sum-exp.  Each workgroup owns BR query rows and writes
// their dQ once: no atomics, the result does not depend on scheduling.
#include "dl_dtype.glsl"
#include "attn_common.glsl"

layout(std430, binding = 0) readonly buffer BufQ { A_STORE q[]; };
layout(std430, binding = 1) readonly buffer BufK { A_STORE k[]; };
layout(std430, binding = 2) readonly buffer BufV { A_STORE v[]; };
layout(std430, binding = 3) readonly buffer BufG { A_STORE dout[]; };
layout(std430, binding = 4) readonly buffer BufL { float lse[]; };
layout(std430, binding = 5) readonly buffer BufDl { float delta[]; };
layout(std430, binding = 6) writeonly buffer BufDq { A_STORE dq[]; };

const uint WG = BR * T;
const uint CT = BC / T;
const uint PS = BC + 1;

shared float Qs[BR * DP];
shared float Gs[BR * DP]; // dO
shared float Ks[BC * DP];
shared float Vs[BC * DP];
shared float Ss[BR * PS]; // dS

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint r = tid / T, lane = tid % T;
  const uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y;
  const uint r0 = gl_WorkGroupID.x * BR;
  const uint i = r0 + r;

  for (uint e = tid; e < BR * D; e += WG) {
    const uint rr = e / D, dd = e % D;
    const bool ok = r0 + rr < p.Nq;
    Qs[rr * DP + dd] = ok ? A_LOAD(q[attn_index(p.off_q, b, p.Nq, r0 + rr, h, dd)]) : 0.0;
    Gs[rr * DP + dd] = ok ? A_LOAD(dout[attn_index(p.off_o, b, p.Nq, r0 + rr, h, dd)]) : 0.0;
  }
  const float lse2 = i < p.Nq ? lse[attn_row_stat(p.off_l, b, h, i)] * LOG2E : 0.0;
  const float dl = i < p.Nq ? delta[attn_row_stat(p.off_dl, b, h, i)] : 0.0;

  float acc[DT];
  [[unroll]] for (uint x = 0; x < DT; x++)
    acc[x] = 0.0;

  const uint kend = (p.flags & ATTN_CAUSAL) != 0u ? min(p.Nk, r0 + BR) : p.Nk;
  for (uint c0 = 0; c0 < kend; c0 += BC) {
    barrier();
    for (uint e = tid; e < BC * D; e += WG) {
      const uint cc = e / D, dd = e % D;
      const bool ok = c0 + cc < p.Nk;
      Ks[cc * DP + dd] = ok ? A_LOAD(k[attn_index(p.off_k, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
      Vs[cc * DP + dd] = ok ? A_LOAD(v[attn_index(p.off_v, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
    }
    barrier();

    float s[CT], dp[CT];
    [[unroll]] for (uint j = 0; j < CT; j++) {
      s[j] = 0.0;
      dp[j] = 0.0;
    }
    for (uint dd = 0; dd < D; dd++) {
      const float qv = Qs[r * DP + dd], gv = Gs[r * DP + dd];
      [[unroll]] for (uint j = 0; j < CT; j++) {
        const uint c = lane + j * T;
        s[j] = fma(qv, Ks[c * DP + dd], s[j]);
        dp[j] = fma(gv, Vs[c * DP + dd], dp[j]);
      }
    }
    [[unroll]] for (uint j = 0; j < CT; j++) {
      const uint c = lane + j * T;
      const bool ok = i < p.Nq && attn_visible(i, c0 + c);
      const float pr = ok ? exp2(s[j] * p.scale_log2 - lse2) : 0.0;
      Ss[r * PS + c] = pr * (dp[j] - dl);
    }
    barrier();
    for (uint c = 0; c < BC; c++) {
      const float ds = Ss[r * PS + c];
      [[unroll]] for (uint x = 0; x < DT; x++) {
        const uint dd = lane + x * T;
        if (D_EVEN || dd < D)
          acc[x] = fma(ds, Ks[c * DP + dd], acc[x]);
      }
    }
  }

  if (i < p.Nq) {
    [[unroll]] for (uint x = 0; x < DT; x++) {
      const uint dd = lane + x * T;
      if (D_EVEN || dd < D)
        dq[attn_index(p.off_g0, b, p.Nq, i, h, dd)] = A_CONV(acc[x] * p.scale);
    }
  }
}
