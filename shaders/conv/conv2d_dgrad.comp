#version 450
// conv2d gradient with respect to the input: a transposed convolution, done as
// an implicit GEMM with fp32 accumulation.
//
//   dx[n, ci, ih, iw] = sum over (co, kh, kw) with ih = oh*S - pad + kh, iw likewise,
//                       of w[co, ci, kh, kw] * dy[n, co, oh, ow]
//
// With stride S only the taps kh ≡ ih + pad (mod S) reach a given row, so the
// input pixels are split into S*S phases (rh, rw) = (ih mod S, iw mod S), one per
// gl_WorkGroupID.z.  Within a phase every pixel uses the same taps
// kh = kh0 + a*S (a < NKA = ceil(KH/S)), and oh = ch + ih/S - a exactly: the taps
// a stride skips are never visited, and no division happens.  Per phase:
//   M = Cin, N = images * Hp * Wp (the phase's pixels), K = Cout * ceil(KH/S) * ceil(KW/S)
//   A[ci, (co,a,b)] = w[co, ci, kh0 + a*S, kw0 + b*S]   (0 when the tap is past the kernel)
//   B[(co,a,b), j]  = dy[n, co, ch + ihp - a, cw + iwp - b] (0 outside dy)
#include "dl_dtype.glsl"
#include "conv_gemm.glsl"

layout(std430, binding = 0) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 1) readonly buffer BufW { B_STORE w[]; };
layout(std430, binding = 2) writeonly buffer BufDx { D_STORE dx[]; };

layout(push_constant) uniform Push {
  uint N, Cin, H, W;  // images in this dispatch; input geometry
  uint Cout, Ho, Wo;
  uint KH, KW, stride, pad;
  uint nka, nkb;      // ceil(KH / stride), ceil(KW / stride)
  uint off_dy, off_w, off_dx;
  uint mp_nkab, l_nkab, mp_nkb, l_nkb; // fastdiv by nka*nkb and by nkb
} p;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint m0 = gl_WorkGroupID.y * BM;
  const uint j0 = gl_WorkGroupID.x * BN;
  const uint S = p.stride;
  const uint rh = gl_WorkGroupID.z / S;
  const uint rw = gl_WorkGroupID.z % S;
  const uint Hp = p.H > rh ? (p.H - rh + S - 1) / S : 0u;
  const uint Wp = p.W > rw ? (p.W - rw + S - 1) / S : 0u;
  const uint HpWp = Hp * Wp;
  const uint NPQ = p.N * HpWp;
  if (j0 >= NPQ)
    return; // the whole workgroup: phases with fewer pixels need fewer tiles

  const uint kh0 = (rh + p.pad) % S;
  const uint kw0 = (rw + p.pad) % S;
  const int ch = int((rh + p.pad - kh0) / S);
  const int cw = int((rw + p.pad - kw0) / S);
  const uint KHW = p.KH * p.KW;
  const uint NKB = p.nkb;
  const uint NKAB = p.nka * NKB;
  const uint Kp = p.Cout * NKAB;
  const uint HoWo = p.Ho * p.Wo;

  // this thread's B column: one input pixel of the phase
  const uint nn = tid % BN;
  const uint jb = j0 + nn;
  const bool col_ok = jb < NPQ;
  const uint bn_img = col_ok ? jb / HpWp : 0u;
  const uint bpix = col_ok ? jb % HpWp : 0u;
  const int oh0 = ch + int(bpix / Wp);
  const int ow0 = cw + int(bpix % Wp);
  const uint dybase = p.off_dy + bn_img * p.Cout * HoWo;

  const uint ka = tid % BK;

  gemm_clear();
  for (uint k0 = 0; k0 < Kp; k0 += BK) {
    {
      const uint gk = k0 + ka;
      const uint co = fastdiv(gk, p.mp_nkab, p.l_nkab);
      const uint ab = gk - co * NKAB;
      const uint a = fastdiv(ab, p.mp_nkb, p.l_nkb);
      const uint kh = kh0 + a * S;
      const uint kw = kw0 + (ab - a * NKB) * S;
      const bool k_ok = gk < Kp && kh < p.KH && kw < p.KW;
      const uint wbase = p.off_w + co * p.Cin * KHW + kh * p.KW + kw;
      [[unroll]] for (uint r = 0; r < A_LOADS; r++) {
        const uint mm = tid / BK + r * (WG / BK);
        const uint ci = m0 + mm;
        float v = 0.0;
        if (k_ok && ci < p.Cin)
          v = B_LOAD(w[wbase + ci * KHW]);
        As[ka * AS + mm] = v;
      }
    }
    [[unroll]] for (uint r = 0; r < B_LOADS; r++) {
      const uint kk = tid / BN + r * (WG / BN);
      const uint gk = k0 + kk;
      float v = 0.0;
      if (col_ok && gk < Kp) {
        const uint co = fastdiv(gk, p.mp_nkab, p.l_nkab);
        const uint ab = gk - co * NKAB;
        const uint a = fastdiv(ab, p.mp_nkb, p.l_nkb);
        const uint b = ab - a * NKB;
        const int oh = oh0 - int(a);
        const int ow = ow0 - int(b);
        if (kh0 + a * S < p.KH && kw0 + b * S < p.KW && uint(oh) < p.Ho && uint(ow) < p.Wo)
          v = A_LOAD(dy[dybase + co * HoWo + uint(oh) * p.Wo + uint(ow)]);
      }
      Bs[kk * BS + nn] = v;
    }
    barrier();
    gemm_step();
    barrier();
  }

  const uint tx = tid % TX;
  const uint ty = tid / TX;
  const uint HW = p.H * p.W;
  uint xbase[TN];
  [[unroll]] for (uint j = 0; j < TN; j++) {
    const uint gj = j0 + tx + j * TX;
    if (gj < NPQ) {
      const uint pix = gj % HpWp;
      const uint ih = rh + (pix / Wp) * S;
      const uint iw = rw + (pix % Wp) * S;
      xbase[j] = p.off_dx + (gj / HpWp) * p.Cin * HW + ih * p.W + iw;
    } else {
      xbase[j] = 0xffffffffu;
    }
  }
  [[unroll]] for (uint i = 0; i < TM; i++) {
    const uint ci = m0 + ty + i * TY;
    if (ci >= p.Cin)
      continue;
    [[unroll]] for (uint j = 0; j < TN; j++) {
      if (xbase[j] == 0xffffffffu)
        continue;
      dx[xbase[j] + ci * HW] = D_CONV(acc[i * TN + j]);
    }
  }
}
