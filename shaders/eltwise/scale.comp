#version 450
// d = alpha * a + beta * d over a contiguous range (beta == 0 never reads d, so an
// uninitialised destination holding NaN cannot leak through).
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) buffer BufD { A_STORE d[]; };

layout(push_constant) uniform Push {
  uint n;
  uint off_a;
  uint off_d;
  float alpha;
  float beta;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    float r = p.alpha * A_LOAD(a[p.off_a + i]);
    if (p.beta != 0.0)
      r += p.beta * A_LOAD(d[p.off_d + i]);
    d[p.off_d + i] = A_CONV(r);
  }
}
