#version 450
// Softmax over the last dimension, one workgroup per row (grid-stride over rows).
//   forward:  y = softmax(x * scale)
//   BACKWARD: dx = scale * y * (dy - sum(dy * y))
// Forward keeps a running (max, sum) per thread -- the online-softmax merge --
// so x is read twice, not three times.  Reductions go through shared memory, so
// nothing depends on the subgroup size.  WG is a power of two (host-chosen).
#include "dl_dtype.glsl"

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };   // x | y
#ifdef BACKWARD
layout(std430, binding = 1) readonly buffer BufB { A_STORE g[]; };   // dy
layout(std430, binding = 2) writeonly buffer BufD { A_STORE d[]; };  // dx
#else
layout(std430, binding = 1) writeonly buffer BufD { A_STORE d[]; };  // y
#endif

layout(push_constant) uniform Push {
  uint rows;
  uint n;
  uint off_a, off_g, off_d;
  float scale;
} p;

const float LOG2E = 1.4426950408889634;

shared float red_m[gl_WorkGroupSize.x];
shared float red_s[gl_WorkGroupSize.x];

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  const uint WG = gl_WorkGroupSize.x;
  for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
    const uint base = row * p.n;
#ifdef BACKWARD
    float s = 0.0;
    for (uint i = tid; i < p.n; i += WG)
      s += A_LOAD(a[p.off_a + base + i]) * A_LOAD(g[p.off_g + base + i]);
    red_s[tid] = s;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1) {
      if (tid < w)
        red_s[tid] += red_s[tid + w];
      barrier();
    }
    const float dot = red_s[0];
    for (uint i = tid; i < p.n; i += WG) {
      float y = A_LOAD(a[p.off_a + base + i]);
      d[p.off_d + base + i] = A_CONV(p.scale * y * (A_LOAD(g[p.off_g + base + i]) - dot));
    }
#else
    // scores in log2 units: exp(x*scale - m) = exp2(x*scale*log2e - m2)
    const float k = p.scale * LOG2E;
    float m = -1.0 / 0.0, s = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
      float v = A_LOAD(a[p.off_a + base + i]) * k;
      if (v > m) {
        s = s * exp2(m - v) + 1.0;  // exp2(-inf) = 0 on the first finite value
        m = v;
      } else if (v > -1.0 / 0.0) {
        s += exp2(v - m);
      }
    }
    red_m[tid] = m;
    red_s[tid] = s;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1) {
      if (tid < w) {
        float m1 = red_m[tid], m2 = red_m[tid + w];
        float mm = max(m1, m2);
        if (mm > -1.0 / 0.0)
          red_s[tid] = red_s[tid] * exp2(m1 - mm) + red_s[tid + w] * exp2(m2 - mm);
        red_m[tid] = mm;
      }
      barrier();
    }
    const float mrow = red_m[0];
    const float inv = mrow > -1.0 / 0.0 ? 1.0 / red_s[0] : 0.0;
    for (uint i = tid; i < p.n; i += WG) {
      float v = A_LOAD(a[p.off_a + base + i]) * k;
      d[p.off_d + base + i] = A_CONV(mrow > -1.0 / 0.0 ? exp2(v - mrow) * inv : 0.0);
    }
#endif
    barrier();  // the shared arrays are reused by the next row
  }
}
