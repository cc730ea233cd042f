#version 450
// diffusers GEGLU on x viewed as [rows, 2F] = (hidden | gate), one thread per
// output element (grid-stride over rows * F):
//   forward:  y[r, j] = x[r, j] * gelu(x[r, F + j])                  (erf GELU)
//   BACKWARD: dx[r, j] = dy[r, j] * gelu(gate), dx[r, F + j] = dy[r, j] * hidden * gelu'(gate)
#include "dl_dtype.glsl"
#include "dl_index.glsl"
#include "dl_act.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufX { A_STORE x[]; };
#ifdef BACKWARD
layout(std430, binding = 1) readonly buffer BufG { A_STORE g[]; };   // dy [rows, F]
layout(std430, binding = 2) writeonly buffer BufD { A_STORE d[]; };  // dx [rows, 2F]
#else
layout(std430, binding = 1) writeonly buffer BufD { A_STORE d[]; };  // y [rows, F]
#endif

layout(push_constant) uniform Push {
  uint n;  // rows * F
  uint F;
  uint off_x, off_g, off_d;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    const uint r = i / p.F;
    const uint xi = i + r * p.F;  // r * 2F + j
    const float h = A_LOAD(x[p.off_x + xi]);
    const float gate = A_LOAD(x[p.off_x + xi + p.F]);
#ifdef BACKWARD
    const float dy = A_LOAD(g[p.off_g + i]);
    d[p.off_d + xi] = A_CONV(dy * dl_gelu(gate));
    d[p.off_d + xi + p.F] = A_CONV(dy * h * dl_gelu_grad(gate));
#else
    d[p.off_d + i] = A_CONV(h * dl_gelu(gate));
#endif
  }
}
