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
  uint contig; // bit 0: a is laid out like d, bit 1: b is (no index arithmetic needed)
} p;

float apply(float x, float y)
{
  if (p.op == OP_ADD)
    return x + y;
  if (p.op == OP_SUB)
    return x - y;
  if (p.op == OP_MUL)
    return x * y;
  return x / y;
}

void main()
{
  // Separate loops, not a per-element select: a select would still pay for the
  // index arithmetic (integer divisions) that the contiguous case never needs.
  if (p.contig == 3u) {
    for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE)
      d[p.off_d + i] = A_CONV(apply(A_LOAD(a[p.off_a + i]), A_LOAD(b[p.off_b + i])));
    return;
  }
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    uint ia = i, ib = i;
    if ((p.contig & 1u) == 0u)
      ia = dl_offset4(i, p.ne, p.st_a);
    if ((p.contig & 2u) == 0u)
      ib = dl_offset4(i, p.ne, p.st_b);
    d[p.off_d + i] = A_CONV(apply(A_LOAD(a[p.off_a + ia]), A_LOAD(b[p.off_b + ib])));
  }
}
