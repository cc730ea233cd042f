#version 450
// Nearest-neighbour x2 upsampling of planes [P, H, W] (P = N * C), grid-stride:
//   forward:  one thread per output: y[p, i, j] = x[p, i/2, j/2]
//   BACKWARD: one thread per input:  dx[p, i, j] = sum of dy over the 2x2 block
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufS { A_STORE src[]; };
layout(std430, binding = 1) writeonly buffer BufD { A_STORE dst[]; };

layout(push_constant) uniform Push {
  uint n;  // elements of dst
  uint H, W;
  uint off_s, off_d;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
#ifdef BACKWARD
    const uint j = i % p.W;
    const uint t = i / p.W;
    const uint h = t % p.H;
    const uint pl = t / p.H;
    const uint W2 = 2u * p.W;
    const uint s = p.off_s + (pl * 2u * p.H + 2u * h) * W2 + 2u * j;
    const float v = (A_LOAD(src[s]) + A_LOAD(src[s + 1u])) + (A_LOAD(src[s + W2]) + A_LOAD(src[s + W2 + 1u]));
    dst[p.off_d + i] = A_CONV(v);
#else
    const uint W2 = 2u * p.W;
    const uint j = i % W2;
    const uint t = i / W2;
    const uint h = t % (2u * p.H);
    const uint pl = t / (2u * p.H);
    dst[p.off_d + i] = A_CONV(A_LOAD(src[p.off_s + (pl * p.H + h / 2u) * p.W + j / 2u]));
#endif
  }
}
