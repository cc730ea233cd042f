#version 450
// Channel slice of y viewed as [N, Ct, inner] against a contiguous t [N, Cs, inner]
// (channels c0 .. c0 + Cs - 1 of y), one thread per element of t, grid-stride:
//   default: t = y[:, c0 : c0 + Cs]   (split)
//   SCATTER: y[:, c0 : c0 + Cs] = t   (concat)
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufS { A_STORE src[]; };
layout(std430, binding = 1) writeonly buffer BufD { A_STORE dst[]; };

layout(push_constant) uniform Push {
  uint n;         // N * Cs * inner
  uint slice;     // Cs * inner
  uint row;       // Ct * inner
  uint start;     // c0 * inner
  uint off_s, off_d;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    const uint b = i / p.slice;
    const uint yi = b * p.row + p.start + (i - b * p.slice);
#ifdef SCATTER
    dst[p.off_d + yi] = A_CONV(A_LOAD(src[p.off_s + i]));
#else
    dst[p.off_d + i] = A_CONV(A_LOAD(src[p.off_s + yi]));
#endif
  }
}
