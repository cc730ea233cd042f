#version 450
// Mean squared error with per-sample weights, in three fixed-shape steps so
// the sum order depends only on the tensor shape (the same bits on every
// device and run):
//   PARTIAL: partial[b, c] = sum over chunk c of sample b of (pred - target)^2
//   FINAL:   per_sample[b] = w_b * sum_c partial[b, c] / M
//            loss = sum_b per_sample[b] / B
//   BACKWARD: dpred = grad_scale * 2 w_b (pred - target) / (B M)
#include "dl_dtype.glsl"
#include "dl_index.glsl"

#if defined(PARTIAL)
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer BufA { A_STORE pred[]; };
layout(std430, binding = 1) readonly buffer BufB { B_STORE target[]; };
layout(std430, binding = 2) writeonly buffer BufP { float partial[]; };
#elif defined(FINAL)
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer BufP { float partial[]; };
layout(std430, binding = 1) readonly buffer BufW { float w[]; };
layout(std430, binding = 2) buffer BufS { float per_sample[]; };
layout(std430, binding = 3) writeonly buffer BufL { float loss[]; };
#else
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer BufA { A_STORE pred[]; };
layout(std430, binding = 1) readonly buffer BufB { B_STORE target[]; };
layout(std430, binding = 2) readonly buffer BufW { float w[]; };
layout(std430, binding = 3) writeonly buffer BufD { D_STORE dpred[]; };
#endif

layout(push_constant) uniform Push {
  uint B, M;       // samples, elements per sample
  uint chunk;      // elements per partial sum
  uint nchunks;    // partial sums per sample
  uint off_a, off_b, off_w, off_out, off_l;
  uint has_w;
  float grad_scale;
} p;

#ifdef PARTIAL
shared float red[256];
#endif

void main()
{
#if defined(PARTIAL)
  const uint tid = gl_LocalInvocationID.x;
  const uint c = gl_WorkGroupID.x, b = gl_WorkGroupID.y;
  const uint start = c * p.chunk;
  const uint end = min(start + p.chunk, p.M);
  float s = 0.0;
  for (uint i = start + tid; i < end; i += 256u) {
    const uint e = b * p.M + i;
    const float d = A_LOAD(pred[p.off_a + e]) - B_LOAD(target[p.off_b + e]);
    s = fma(d, d, s);
  }
  red[tid] = s;
  barrier();
  for (uint k = 128u; k > 0u; k >>= 1) {
    if (tid < k)
      red[tid] += red[tid + k];
    barrier();
  }
  if (tid == 0u)
    partial[p.off_out + b * p.nchunks + c] = red[0];
#elif defined(FINAL)
  const uint tid = gl_LocalInvocationID.x;
  for (uint b = tid; b < p.B; b += 64u) {
    float s = 0.0;
    for (uint c = 0; c < p.nchunks; c++)
      s += partial[p.off_a + b * p.nchunks + c];
    const float wb = p.has_w != 0u ? w[p.off_w + b] : 1.0;
    per_sample[p.off_out + b] = wb * (s / float(p.M));
  }
  memoryBarrierBuffer(); // per_sample written by other threads, read below
  barrier();
  if (tid == 0u) {
    float s = 0.0;
    for (uint b = 0; b < p.B; b++)
      s += per_sample[p.off_out + b];
    loss[p.off_l] = s / float(p.B);
  }
#else
  const uint n = p.B * p.M;
  const float k = 2.0 * p.grad_scale / (float(p.B) * float(p.M));
  for (uint e = DL_GLOBAL_ID; e < n; e += DL_GLOBAL_STRIDE) {
    const uint b = e / p.M;
    const float wb = p.has_w != 0u ? w[p.off_w + b] : 1.0;
    const float d = A_LOAD(pred[p.off_a + e]) - B_LOAD(target[p.off_b + e]);
    dpred[p.off_out + e] = D_CONV(k * wb * d);
  }
#endif
}
