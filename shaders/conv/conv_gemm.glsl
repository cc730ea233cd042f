// The GEMM core shared by the three conv2d passes (implicit GEMM).
//
// Each pass is D[M, N] = A[M, K] · B[K, N] where A and B are never stored: the
// pass gathers the elements of a BM x BK slice of A and a BK x BN slice of B
// straight from the activations / weights into shared memory, then the whole
// workgroup multiplies the slices here.  A thread owns TM x TN outputs strided by
// the thread grid (TY x TX), like matmul.comp, so shared reads are conflict-free
// and global stores coalesce along N.
//
// Load mappings every pass uses (the host checks WG is a multiple of BN and BK):
//   A slice: thread loads column kk = tid % BK, rows tid / BK + r * (WG / BK);
//   B slice: either the same fixed-k mapping, or column nn = tid % BN fixed with
//            rows tid / BN + r * (WG / BN) — so a thread's gather indices are worked
//            out once per workgroup or once per K step, never per element.
// Shared rows are padded by one float: a warp storing down a column then hits
// distinct banks.
#ifndef CONV_GEMM_GLSL
#define CONV_GEMM_GLSL

#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
const uint WG = (BM / TM) * (BN / TN);
const uint TX = BN / TN;
const uint TY = BM / TM;
const uint AS = BM + 1; // padded row strides of the shared slices
const uint BS = BN + 1;
const uint A_LOADS = (BM * BK) / WG;
const uint B_LOADS = (BN * BK) / WG;

shared float As[BK * AS];
shared float Bs[BK * BS];

float acc[TM * TN];

void gemm_clear()
{
  [[unroll]] for (uint i = 0; i < TM * TN; i++)
    acc[i] = 0.0;
}

// acc += As · Bs over one K step; callers put barriers around it.  The kk loop
// stays rolled: each iteration already holds TM*TN independent FMAs, and
// unrolling it doubled the pipeline compile time on lavapipe (what CI pays for
// every tile and storage variant) without running faster there.
void gemm_step()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % TX;
  const uint ty = tid / TX;
  [[dont_unroll]] for (uint kk = 0; kk < BK; kk++) {
    float ar[TM];
    float br[TN];
    [[unroll]] for (uint i = 0; i < TM; i++)
      ar[i] = As[kk * AS + ty + i * TY];
    [[unroll]] for (uint j = 0; j < TN; j++)
      br[j] = Bs[kk * BS + tx + j * TX];
    [[unroll]] for (uint i = 0; i < TM; i++)
      [[unroll]] for (uint j = 0; j < TN; j++)
        acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]);
  }
}

// n / d for n < 2^31 with (mp, l) from the host (round-up reciprocal method): the
// kernel geometry is in push constants (one pipeline serves every kernel size and
// stride), and this keeps the gathers' index arithmetic free of divisions.
uint fastdiv(uint n, uint mp, uint l)
{
  uint hi, lo;
  umulExtended(n, mp, hi, lo);
  return (hi + n) >> l;
}

#endif
