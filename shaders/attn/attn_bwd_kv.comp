#version 450
// Attention backward, key-major pass: each workgroup owns BC keys of one (batch,
// head), keeps their dK and dV in registers and walks the query tiles:
//   P = exp(Q Kᵀ scale - lse), dV += Pᵀ dO, dS = P * (dO Vᵀ - delta),
//   dK += scale * dSᵀ Q.
// Every dK/dV element is written by one thread: deterministic, no atomics.
#include "dl_dtype.glsl"
#include "attn_common.glsl"

layout(std430, binding = 0) readonly buffer BufQ { A_STORE q[]; };
layout(std430, binding = 1) readonly buffer BufK { A_STORE k[]; };
layout(std430, binding = 2) readonly buffer BufV { A_STORE v[]; };
layout(std430, binding = 3) readonly buffer BufG { A_STORE dout[]; };
layout(std430, binding = 4) readonly buffer BufL { float lse[]; };
layout(std430, binding = 5) readonly buffer BufDl { float delta[]; };
layout(std430, binding = 6) writeonly buffer BufDk { A_STORE dk[]; };
layout(std430, binding = 7) writeonly buffer BufDv { A_STORE dv[]; };

const uint WG = BC * T;
const uint RT = BR / T; // query rows per thread in the score tile
const uint QS = BR + 1;

shared float Ks[BC * DP];
shared float Vs[BC * DP];
shared float Qs[BR * DP];
shared float Gs[BR * DP]; // dO
shared float Ps[BC * QS];
shared float Ss[BC * QS]; // dS
shared float Ls[BR];      // lse in base-2 units
shared float Dl[BR];      // delta

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint c = tid / T, lane = tid % T;
  const uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y;
  const uint c0 = gl_WorkGroupID.x * BC;
  const uint j = c0 + c;

  for (uint e = tid; e < BC * D; e += WG) {
    const uint cc = e / D, dd = e % D;
    const bool ok = c0 + cc < p.Nk;
    Ks[cc * DP + dd] = ok ? A_LOAD(k[attn_index(p.off_k, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
    Vs[cc * DP + dd] = ok ? A_LOAD(v[attn_index(p.off_v, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
  }

  float gk[DT], gv[DT];
  [[unroll]] for (uint x = 0; x < DT; x++) {
    gk[x] = 0.0;
    gv[x] = 0.0;
  }

  // causal: rows before c0 see none of these keys
  const uint qstart = (p.flags & ATTN_CAUSAL) != 0u ? (c0 / BR) * BR : 0u;
  for (uint r0 = qstart; r0 < p.Nq; r0 += BR) {
    barrier();
    for (uint e = tid; e < BR * D; e += WG) {
      const uint rr = e / D, dd = e % D;
      const bool ok = r0 + rr < p.Nq;
      Qs[rr * DP + dd] = ok ? A_LOAD(q[attn_index(p.off_q, b, p.Nq, r0 + rr, h, dd)]) : 0.0;
      Gs[rr * DP + dd] = ok ? A_LOAD(dout[attn_index(p.off_o, b, p.Nq, r0 + rr, h, dd)]) : 0.0;
    }
    for (uint rr = tid; rr < BR; rr += WG) {
      const bool ok = r0 + rr < p.Nq;
      Ls[rr] = ok ? lse[attn_row_stat(p.off_l, b, h, r0 + rr)] * LOG2E : 0.0;
      Dl[rr] = ok ? delta[attn_row_stat(p.off_dl, b, h, r0 + rr)] : 0.0;
    }
    barrier();

    float s[RT], dp[RT];
    [[unroll]] for (uint y = 0; y < RT; y++) {
      s[y] = 0.0;
      dp[y] = 0.0;
    }
    for (uint dd = 0; dd < D; dd++) {
      const float kv = Ks[c * DP + dd], vv = Vs[c * DP + dd];
      [[unroll]] for (uint y = 0; y < RT; y++) {
        const uint rr = lane + y * T;
        s[y] = fma(kv, Qs[rr * DP + dd], s[y]);
        dp[y] = fma(vv, Gs[rr * DP + dd], dp[y]);
      }
    }
    [[unroll]] for (uint y = 0; y < RT; y++) {
      const uint rr = lane + y * T;
      const uint i = r0 + rr;
      const bool ok = i < p.Nq && attn_visible(i, j);
      const float pr = ok ? exp2(s[y] * p.scale_log2 - Ls[rr]) : 0.0;
      Ps[c * QS + rr] = pr;
      Ss[c * QS + rr] = pr * (dp[y] - Dl[rr]);
    }
    barrier();
    for (uint rr = 0; rr < BR; rr++) {
      const float pr = Ps[c * QS + rr], ds = Ss[c * QS + rr];
      [[unroll]] for (uint x = 0; x < DT; x++) {
        const uint dd = lane + x * T;
        if (D_EVEN || dd < D) {
          gv[x] = fma(pr, Gs[rr * DP + dd], gv[x]);
          gk[x] = fma(ds, Qs[rr * DP + dd], gk[x]);
        }
      }
    }
  }

  if (j < p.Nk) {
    [[unroll]] for (uint x = 0; x < DT; x++) {
      const uint dd = lane + x * T;
      if (D_EVEN || dd < D) {
        dk[attn_index(p.off_g0, b, p.Nk, j, h, dd)] = A_CONV(gk[x] * p.scale);
        dv[attn_index(p.off_g1, b, p.Nk, j, h, dd)] = A_CONV(gv[x]);
      }
    }
  }
}
