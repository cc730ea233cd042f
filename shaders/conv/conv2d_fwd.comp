#version 450
// conv2d forward as an implicit GEMM, NCHW, fp32 accumulation:
//   M = Cout, N = images * Ho * Wo (output pixels), K = Cin * KH * KW
//   A[co, k] = w[co, k]  (the weight is already [Cout, Cin*KH*KW], row-major)
//   B[k, j]  = x[n, ci, oh*S - pad + kh, ow*S - pad + kw]  (0 in the padding)
// The B gather happens while loading each tile; no im2col buffer exists.  A
// thread loads B for one fixed output pixel (its column), whose coordinates are
// worked out once; consecutive threads take consecutive pixels, so loads walk x
// along its rows.
#include "dl_dtype.glsl"
#include "conv_gemm.glsl"

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
layout(std430, binding = 1) readonly buffer BufW { B_STORE w[]; };
layout(std430, binding = 2) writeonly buffer BufY { D_STORE y[]; };
layout(std430, binding = 3) readonly buffer BufBias { B_STORE bias[]; };

#define FLAG_BIAS 1u

layout(push_constant) uniform Push {
  uint N, Cin, H, W;  // images in this dispatch; input geometry
  uint Cout, Ho, Wo;
  uint KH, KW, stride, pad;
  uint off_x, off_w, off_y, off_b;
  uint flags;
  uint mp_khw, l_khw, mp_kw, l_kw; // fastdiv by KH*KW and by KW
} p;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint m0 = gl_WorkGroupID.y * BM;
  const uint j0 = gl_WorkGroupID.x * BN;
  const uint KHW = p.KH * p.KW;
  const uint CRS = p.Cin * KHW;
  const uint HW = p.H * p.W;
  const uint HoWo = p.Ho * p.Wo;
  const uint NPQ = p.N * HoWo;

  // this thread's B column: one output pixel
  const uint nn = tid % BN;
  const uint jb = j0 + nn;
  const bool col_ok = jb < NPQ;
  const uint bn_img = col_ok ? jb / HoWo : 0u;
  const uint bpq = col_ok ? jb % HoWo : 0u;
  const int ih0 = int((bpq / p.Wo) * p.stride) - int(p.pad);
  const int iw0 = int((bpq % p.Wo) * p.stride) - int(p.pad);
  const uint xbase = p.off_x + bn_img * p.Cin * HW;

  const uint ka = tid % BK;

  gemm_clear();
  for (uint k0 = 0; k0 < CRS; k0 += BK) {
    const uint gka = k0 + ka;
    [[unroll]] for (uint r = 0; r < A_LOADS; r++) {
      const uint mm = tid / BK + r * (WG / BK);
      const uint co = m0 + mm;
      float v = 0.0;
      if (co < p.Cout && gka < CRS)
        v = B_LOAD(w[p.off_w + co * CRS + gka]);
      As[ka * AS + mm] = v;
    }
    [[unroll]] for (uint r = 0; r < B_LOADS; r++) {
      const uint kk = tid / BN + r * (WG / BN);
      const uint gk = k0 + kk;
      float v = 0.0;
      if (col_ok && gk < CRS) {
        const uint ci = fastdiv(gk, p.mp_khw, p.l_khw);
        const uint rem = gk - ci * KHW;
        const uint kh = fastdiv(rem, p.mp_kw, p.l_kw);
        const int ih = ih0 + int(kh);
        const int iw = iw0 + int(rem - kh * p.KW);
        if (uint(ih) < p.H && uint(iw) < p.W)
          v = A_LOAD(x[xbase + ci * HW + uint(ih) * p.W + uint(iw)]);
      }
      Bs[kk * BS + nn] = v;
    }
    barrier();
    gemm_step();
    barrier();
  }

  const uint tx = tid % TX;
  const uint ty = tid / TX;
  uint ybase[TN];
  [[unroll]] for (uint j = 0; j < TN; j++) {
    const uint gj = j0 + tx + j * TX;
    ybase[j] = gj < NPQ ? p.off_y + (gj / HoWo) * p.Cout * HoWo + gj % HoWo : 0xffffffffu;
  }
  [[unroll]] for (uint i = 0; i < TM; i++) {
    const uint co = m0 + ty + i * TY;
    if (co >= p.Cout)
      continue;
    const float b = (p.flags & FLAG_BIAS) != 0u ? B_LOAD(bias[p.off_b + co]) : 0.0;
    [[unroll]] for (uint j = 0; j < TN; j++) {
      if (ybase[j] == 0xffffffffu)
        continue;
      y[ybase[j] + co * HoWo] = D_CONV(acc[i * TN + j] + b);
    }
  }
}
