#version 450
// Memory-efficient attention forward (FlashAttention-2 style): for one (batch,
// head) and BR query rows, stream K/V in tiles of BC keys with an online softmax
// (running max m and sum l per row), so no Nq x Nk matrix ever exists.  Writes
// O = softmax(Q Kᵀ scale) V and, for the backward pass, the natural-log
// log-sum-exp of each row's scaled scores.
#include "dl_dtype.glsl"
#include "attn_common.glsl"

layout(std430, binding = 0) readonly buffer BufQ { A_STORE q[]; };
layout(std430, binding = 1) readonly buffer BufK { A_STORE k[]; };
layout(std430, binding = 2) readonly buffer BufV { A_STORE v[]; };
layout(std430, binding = 3) writeonly buffer BufO { A_STORE o[]; };
layout(std430, binding = 4) writeonly buffer BufL { float lse[]; };

const uint WG = BR * T;
const uint CT = BC / T; // score columns per thread
const uint PS = BC + 1;

shared float Qs[BR * DP];
shared float KVs[BC * DP]; // K, then V, of the current tile
shared float Ps[BR * PS];
shared float red[WG];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint r = tid / T, lane = tid % T;
  const uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y;
  const uint r0 = gl_WorkGroupID.x * BR;
  const uint i = r0 + r;

  for (uint e = tid; e < BR * D; e += WG) {
    const uint rr = e / D, dd = e % D;
    Qs[rr * DP + dd] = r0 + rr < p.Nq ? A_LOAD(q[attn_index(p.off_q, b, p.Nq, r0 + rr, h, dd)]) : 0.0;
  }

  float acc[DT];
  [[unroll]] for (uint c = 0; c < DT; c++)
    acc[c] = 0.0;
  float m = NEG_INF, l = 0.0;

  // causal: keys past the tile's last row are invisible to all its rows
  const uint kend = (p.flags & ATTN_CAUSAL) != 0u ? min(p.Nk, r0 + BR) : p.Nk;
  for (uint c0 = 0; c0 < kend; c0 += BC) {
    barrier(); // Qs ready / the previous tile's V and P are no longer read
    for (uint e = tid; e < BC * D; e += WG) {
      const uint cc = e / D, dd = e % D;
      KVs[cc * DP + dd] = c0 + cc < p.Nk ? A_LOAD(k[attn_index(p.off_k, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
    }
    barrier();

    float s[CT];
    [[unroll]] for (uint j = 0; j < CT; j++)
      s[j] = 0.0;
    for (uint dd = 0; dd < D; dd++) {
      const float qv = Qs[r * DP + dd];
      [[unroll]] for (uint j = 0; j < CT; j++)
        s[j] = fma(qv, KVs[(lane + j * T) * DP + dd], s[j]);
    }
    float mx = NEG_INF;
    [[unroll]] for (uint j = 0; j < CT; j++) {
      s[j] = attn_visible(i, c0 + lane + j * T) ? s[j] * p.scale_log2 : NEG_INF;
      mx = max(mx, s[j]);
    }
    red[tid] = mx;
    barrier();
    [[unroll]] for (uint t = 0; t < T; t++)
      mx = max(mx, red[r * T + t]);
    const float mnew = max(m, mx);
    const float muse = mnew == NEG_INF ? 0.0 : mnew; // a row with nothing visible yet
    const float alpha = exp2(m - muse);
    [[unroll]] for (uint j = 0; j < CT; j++)
      Ps[r * PS + lane + j * T] = exp2(s[j] - muse);
    m = mnew;
    l *= alpha;
    [[unroll]] for (uint c = 0; c < DT; c++)
      acc[c] *= alpha;
    barrier(); // K no longer read: load V over it

    for (uint e = tid; e < BC * D; e += WG) {
      const uint cc = e / D, dd = e % D;
      KVs[cc * DP + dd] = c0 + cc < p.Nk ? A_LOAD(v[attn_index(p.off_v, b, p.Nk, c0 + cc, h, dd)]) : 0.0;
    }
    barrier();
    for (uint c = 0; c < BC; c++) {
      const float pc = Ps[r * PS + c];
      l += pc;
      [[unroll]] for (uint x = 0; x < DT; x++) {
        const uint dd = lane + x * T;
        if (D_EVEN || dd < D)
          acc[x] = fma(pc, KVs[c * DP + dd], acc[x]);
      }
    }
  }

  if (i < p.Nq) {
    const float inv = l > 0.0 ? 1.0 / l : 0.0;
    [[unroll]] for (uint x = 0; x < DT; x++) {
      const uint dd = lane + x * T;
      if (D_EVEN || dd < D)
        o[attn_index(p.off_o, b, p.Nq, i, h, dd)] = A_CONV(acc[x] * inv);
    }
    if (lane == 0u && (p.flags & ATTN_WRITE_LSE) != 0u)
      lse[attn_row_stat(p.off_l, b, h, i)] = (m + log2(l)) * LN2;
  }
}
