#version 450
// Pointwise activation (the code in p.act, see dl_act.glsl), grid-stride:
//   forward:  y = act(x)
//   BACKWARD: dx = dy * act'(x)
// The output may alias an input (in place): each element is read before the same
// thread writes it.
#include "dl_dtype.glsl"
#include "dl_index.glsl"
#include "dl_act.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
#ifdef BACKWARD
layout(std430, binding = 1) readonly buffer BufG { A_STORE g[]; };   // dy
layout(std430, binding = 2) writeonly buffer BufD { A_STORE d[]; };  // dx
#else
layout(std430, binding = 1) writeonly buffer BufD { A_STORE d[]; };  // y
#endif

layout(push_constant) uniform Push {
  uint n;
  uint act;
  uint off_x, off_g, off_d;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    const float v = A_LOAD(x[p.off_x + i]);
#ifdef BACKWARD
    d[p.off_d + i] = A_CONV(A_LOAD(g[p.off_g + i]) * dl_act_grad(p.act, v));
#else
    d[p.off_d + i] = A_CONV(dl_act(p.act, v));
#endif
  }
}
