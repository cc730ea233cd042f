#version 450
// Second stage of the split-K weight gradient (and of a split bias gradient):
// d[i] (+)= sum_z part[z * slice + i], the splits summed in a fixed order (the
// result does not depend on timing).
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufP { float part[]; };
layout(std430, binding = 1) buffer BufD { D_STORE d[]; };

#define FLAG_ACCUMULATE 1u

layout(push_constant) uniform Push {
  uint n;       // elements of d
  uint splits;
  uint slice;   // elements between splits in part
  uint off_p, off_d;
  uint flags;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    float s = 0.0;
    for (uint z = 0; z < p.splits; z++)
      s += part[p.off_p + z * p.slice + i];
    if ((p.flags & FLAG_ACCUMULATE) != 0u)
      s += D_LOAD(d[p.off_d + i]);
    d[p.off_d + i] = D_CONV(s);
  }
}
