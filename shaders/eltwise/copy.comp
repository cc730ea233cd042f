#version 450
// Contiguous destination from a strided 4-D source, converting A_DT -> D_DT.
// Serves plain copies, casts, and permutes/transposes (strides chosen by the host).
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) writeonly buffer BufD { D_STORE d[]; };

layout(push_constant) uniform Push {
  uvec4 ne;    // destination shape, ne.x outermost
  uvec4 st_a;  // source element strides for that shape
  uint n;
  uint off_a;
  uint off_d;
  uint contig; // the source is contiguous in destination order
} p;

#if A_DT == DT_I32 && D_DT == DT_I32
#define CONVERT(v) (v)
#else
#define CONVERT(v) D_CONV(A_LOAD(v))
#endif

void main()
{
  if (p.contig != 0u) {
    for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE)
      d[p.off_d + i] = CONVERT(a[p.off_a + i]);
    return;
  }
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE)
    d[p.off_d + i] = CONVERT(a[p.off_a + dl_offset4(i, p.ne, p.st_a)]);
}
