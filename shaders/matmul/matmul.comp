#version 450
// Batched D = alpha * op(A) * op(B) + bias + beta * D, fp32 accumulation.
//
// Tiled through shared memory: a workgroup owns a BM x BN tile of D and walks K in
// BK slices; each thread owns TM x TN outputs, strided by the thread grid so that
// shared-memory reads hit consecutive banks and global stores coalesce.
// Transposition is expressed by element strides, so one source covers A / Aᵀ and
// B / Bᵀ; the host says which operand is K-contiguous so tile loads walk memory in
// order.  Tile sizes are specialization constants (checked against the device's
// shared-memory limit by the host).  This is the scalar tier; a cooperative-matrix
// tier can sit beside it behind the same host entry point.
#include "dl_dtype.glsl"
#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) readonly buffer BufB { B_STORE b[]; };
layout(std430, binding = 2) buffer BufD { D_STORE d[]; };
layout(std430, binding = 3) readonly buffer BufBias { B_STORE bias[]; };

#define FLAG_BIAS 1u
#define FLAG_ACCUMULATE 2u
#define FLAG_A_K_CONTIG 4u
#define FLAG_B_N_CONTIG 8u

layout(push_constant) uniform Push {
  uint M, N, K;
  uint sa_m, sa_k;   // element strides of A along m and k
  uint sb_k, sb_n;   // element strides of B along k and n
  uint sd_m;         // row stride of D (D is n-contiguous)
  uint bsa, bsb, bsd; // batch strides (0 broadcasts)
  uint off_a, off_b, off_d, off_bias;
  uint flags;
  float alpha;
  float beta;
} p;

const uint WG = (BM / TM) * (BN / TN);

shared float As[BK * BM];
shared float Bs[BK * BN];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint batch = gl_WorkGroupID.z;
  const uint m0 = gl_WorkGroupID.y * BM;
  const uint n0 = gl_WorkGroupID.x * BN;
  const uint TX = BN / TN;
  const uint TY = BM / TM;
  const uint tx = tid % TX;
  const uint ty = tid / TX;

  const uint base_a = p.off_a + batch * p.bsa;
  const uint base_b = p.off_b + batch * p.bsb;
  const bool a_kc = (p.flags & FLAG_A_K_CONTIG) != 0u;
  const bool b_nc = (p.flags & FLAG_B_N_CONTIG) != 0u;

  float acc[TM * TN];
  [[unroll]] for (uint i = 0; i < TM * TN; i++)
    acc[i] = 0.0;

  for (uint k0 = 0; k0 < p.K; k0 += BK) {
    for (uint e = tid; e < BM * BK; e += WG) {
      const uint mm = a_kc ? e / BK : e % BM;
      const uint kk = a_kc ? e % BK : e / BM;
      const uint gm = m0 + mm, gk = k0 + kk;
      float v = 0.0;
      if (gm < p.M && gk < p.K)
        v = A_LOAD(a[base_a + gm * p.sa_m + gk * p.sa_k]);
      As[kk * BM + mm] = v;
    }
    for (uint e = tid; e < BN * BK; e += WG) {
      const uint nn = b_nc ? e % BN : e / BK;
      const uint kk = b_nc ? e / BN : e % BK;
      const uint gn = n0 + nn, gk = k0 + kk;
      float v = 0.0;
      if (gn < p.N && gk < p.K)
        v = B_LOAD(b[base_b + gk * p.sb_k + gn * p.sb_n]);
      Bs[kk * BN + nn] = v;
    }
    barrier();

    [[unroll]] for (uint kk = 0; kk < BK; kk++) {
      float ar[TM];
      float br[TN];
      [[unroll]] for (uint i = 0; i < TM; i++)
        ar[i] = As[kk * BM + ty + i * TY];
      [[unroll]] for (uint j = 0; j < TN; j++)
        br[j] = Bs[kk * BN + tx + j * TX];
      [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++)
          acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
    }
    barrier();
  }

  const uint base_d = p.off_d + batch * p.bsd;
  [[unroll]] for (uint i = 0; i < TM; i++) {
    const uint gm = m0 + ty + i * TY;
    if (gm >= p.M)
      continue;
    [[unroll]] for (uint j = 0; j < TN; j++) {
      const uint gn = n0 + tx + j * TX;
      if (gn >= p.N)
        continue;
      float v = p.alpha * acc[i * TN + j];
      if ((p.flags & FLAG_BIAS) != 0u)
        v += B_LOAD(bias[p.off_bias + gn]);
      const uint idx = base_d + gm * p.sd_m + gn;
      if ((p.flags & FLAG_ACCUMULATE) != 0u)
        v += p.beta * D_LOAD(d[idx]);
      d[idx] = D_CONV(v);
    }
  }
}
