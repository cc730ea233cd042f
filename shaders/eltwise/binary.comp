#version 450
// d = a (op) b with numpy broadcasting: the host gives each input a stride of 0
// along the dimensions it broadcasts.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) readonly buffer BufB { A_STORE b[]; };
layout(std430, binding = 2) buffer BufD { A_STORE d[]; };

#define OP_ADD 0u
#define OP_SUB 1u
#define OP_MUL 2u
#define OP_DIV 3u

layout(push_constant) uniform Push {
  uvec4 ne;   // output shape
  uvec4 st_a;
  uvec4 st_b;
  uint n;
  uint off_a;
  uint off_b;
  uint off_d;
  uint op;
} p;

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    const float x = A_LOAD(a[p.off_a + dl_offset4(i, p.ne, p.st_a)]);
    const float y = A_LOAD(b[p.off_b + dl_offset4(i, p.ne, p.st_b)]);
    float r;
    if (p.op == OP_ADD)
      r = x + y;
    else if (p.op == OP_SUB)
      r = x - y;
    else if (p.op == OP_MUL)
      r = x * y;
    else
      r = x / y;
    d[p.off_d + i] = A_CONV(r);
  }
}
