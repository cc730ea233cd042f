#version 450
// d[i] = value for every element of a contiguous range.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) writeonly buffer BufD { D_STORE d[]; };

layout(push_constant) uniform Push {
  uint n;
  uint off_d;
  uint value_bits; // float bits, or the integer itself for i32
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
#if D_DT == DT_I32
    d[p.off_d + i] = int(p.value_bits);
#else
    d[p.off_d + i] = D_CONV(uintBitsToFloat(p.value_bits));
#endif
  }
}
