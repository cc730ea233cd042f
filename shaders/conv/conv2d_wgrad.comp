#version 450
// conv2d gradient with respect to the weight, as an implicit GEMM reducing over
// every output pixel of every image:
//   M = Cout, N = Cin * KH * KW, K = images * Ho * Wo
//   A[co, (n,oh,ow)]        = dy[n, co, oh, ow]
//   B[(n,oh,ow), (ci,kh,kw)] = x[n, ci, oh*S - pad + kh, ow*S - pad + kw]  (0 in the padding)
// K is huge and M x N can be small (conv_in: 320 x 36 over 8192 pixels), so K is
// split: workgroup z reduces pixels [z*kchunk, (z+1)*kchunk) and writes its partial
// sum to slice z of D (f32), which conv2d_wgrad_reduce.comp sums.  With one split
// D is the weight gradient itself, overwritten or (FLAG_ACCUMULATE) added into.
//
// Both slices are loaded with the fixed-k mapping: a thread decodes its one pixel
// per K step (two fastdivs) and reuses it for all its A and B loads; the kernel
// taps of its B columns are decoded once.
#include "dl_dtype.glsl"
#include "conv_gemm.glsl"

layout(std430, binding = 0) readonly buffer BufDy { A_STORE dy[]; };
layout(std430, binding = 1) readonly buffer BufX { B_STORE x[]; };
layout(std430, binding = 2) buffer BufD { D_STORE d[]; };

#define FLAG_ACCUMULATE 1u

layout(push_constant) uniform Push {
  uint N, Cin, H, W;  // images in this dispatch; input geometry
  uint Cout, Ho, Wo;
  uint KH, KW, stride, pad;
  uint off_dy, off_x, off_d;
  uint kchunk;        // pixels per split, a multiple of BK
  uint slice;         // elements between the splits' outputs in D
  uint flags;
  uint mp_howo, l_howo, mp_wo, l_wo; // fastdiv by Ho*Wo and by Wo
  uint mp_khw, l_khw, mp_kw, l_kw;     // and by KH*KW and by KW
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
  const uint kbeg = gl_WorkGroupID.z * p.kchunk;
  const uint kend = min(kbeg + p.kchunk, NPQ);

  const uint ka = tid % BK;

  // the kernel taps (ci, kh, kw) of this thread's B columns
  uint xoff[B_LOADS];
  uint tap[B_LOADS]; // kh << 16 | kw, or ~0 past N
  [[unroll]] for (uint r = 0; r < B_LOADS; r++) {
    const uint gj = j0 + tid / BK + r * (WG / BK);
    const uint ci = fastdiv(gj, p.mp_khw, p.l_khw);
    const uint rem = gj - ci * KHW;
    const uint kh = fastdiv(rem, p.mp_kw, p.l_kw);
    xoff[r] = ci * HW;
    tap[r] = gj < CRS ? (kh << 16) | (rem - kh * p.KW) : 0xffffffffu;
  }

  gemm_clear();
  for (uint k0 = kbeg; k0 < kend; k0 += BK) {
    const uint gk = k0 + ka;
    const bool k_ok = gk < kend;
    const uint n = fastdiv(gk, p.mp_howo, p.l_howo);
    const uint pq = gk - n * HoWo;
    const uint oh = fastdiv(pq, p.mp_wo, p.l_wo);
    const uint ow = pq - oh * p.Wo;
    const uint dybase = p.off_dy + n * p.Cout * HoWo + pq;
    [[unroll]] for (uint r = 0; r < A_LOADS; r++) {
      const uint mm = tid / BK + r * (WG / BK);
      const uint co = m0 + mm;
      float v = 0.0;
      if (k_ok && co < p.Cout)
        v = A_LOAD(dy[dybase + co * HoWo]);
      As[ka * AS + mm] = v;
    }
    const int ih0 = int(oh * p.stride) - int(p.pad);
    const int iw0 = int(ow * p.stride) - int(p.pad);
    const uint xbase = p.off_x + n * p.Cin * HW;
    [[unroll]] for (uint r = 0; r < B_LOADS; r++) {
      const uint nn = tid / BK + r * (WG / BK);
      const int ih = ih0 + int(tap[r] >> 16);
      const int iw = iw0 + int(tap[r] & 0xffffu);
      float v = 0.0;
      if (k_ok && tap[r] != 0xffffffffu && uint(ih) < p.H && uint(iw) < p.W)
        v = B_LOAD(x[xbase + xoff[r] + uint(ih) * p.W + uint(iw)]);
      Bs[ka * BS + nn] = v;
    }
    barrier();
    gemm_step();
    barrier();
  }

  const uint tx = tid % TX;
  const uint ty = tid / TX;
  const uint dbase = p.off_d + gl_WorkGroupID.z * p.slice;
  [[unroll]] for (uint i = 0; i < TM; i++) {
    const uint co = m0 + ty + i * TY;
    if (co >= p.Cout)
      continue;
    [[unroll]] for (uint j = 0; j < TN; j++) {
      const uint gj = j0 + tx + j * TX;
      if (gj >= CRS)
        continue;
      const uint idx = dbase + co * CRS + gj;
      float v = acc[i * TN + j];
      if ((p.flags & FLAG_ACCUMULATE) != 0u)
        v += D_LOAD(d[idx]);
      d[idx] = D_CONV(v);
    }
  }
}
