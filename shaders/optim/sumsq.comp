#version 450
// Global gradient norm in two fixed-shape steps (the summation order depends
// only on the tensor sizes, so the norm has the same bits on every device):
//   PARTIAL: partial[first + c] = sum over chunk c of the tensor of x^2
//   FINAL:   out[0] = sqrt(sum of all partials), out[1] = clip coefficient
//            min(1, max_norm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_),
//            1 when max_norm <= 0.
#include "dl_dtype.glsl"

layout(local_size_x = 256) in;

#ifdef PARTIAL
layout(std430, binding = 0) readonly buffer BufA { A_STORE x[]; };
layout(std430, binding = 1) writeonly buffer BufP { float partial[]; };
#else
layout(std430, binding = 0) readonly buffer BufP { float partial[]; };
layout(std430, binding = 1) writeonly buffer BufO { float result[]; };
#endif

layout(push_constant) uniform Push {
  uint n;       // PARTIAL: elements of this tensor (range); FINAL: partials
  uint chunk;   // elements per partial
  uint first;   // PARTIAL: index of this tensor's first partial
  uint off_a, off_out;
  float max_norm;
} p;

shared float red[256];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  float s = 0.0;
#ifdef PARTIAL
  const uint c = gl_WorkGroupID.x;
  const uint start = c * p.chunk;
  const uint end = min(start + p.chunk, p.n);
  for (uint i = start + tid; i < end; i += 256u) {
    const float v = A_LOAD(x[p.off_a + i]);
    s = fma(v, v, s);
  }
#else
  for (uint i = tid; i < p.n; i += 256u)
    s += partial[p.off_a + i];
#endif
  red[tid] = s;
  barrier();
  for (uint k = 128u; k > 0u; k >>= 1) {
    if (tid < k)
      red[tid] += red[tid + k];
    barrier();
  }
  if (tid == 0u) {
#ifdef PARTIAL
    partial[p.off_out + p.first + c] = red[0];
#else
    const float norm = sqrt(red[0]);
    result[p.off_out] = norm;
    result[p.off_out + 1u] = p.max_norm > 0.0 ? min(1.0, p.max_norm / (norm + 1e-6)) : 1.0;
#endif
  }
}
