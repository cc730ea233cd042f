#version 450
// Token (+ position) embedding lookup:
//   out[b, t, c] = table[ids[b, t], c] (+ pos[t, c])
// Grid-stride over output elements, c fastest, so each table row is read
// contiguously.  An id outside [0, V) reads nothing and contributes zeros: the
// shader cannot report errors, and must never read out of bounds.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufIds { int ids[]; };
layout(std430, binding = 1) readonly buffer BufTable { A_STORE table[]; };
layout(std430, binding = 2) readonly buffer BufPos { A_STORE pos[]; };
layout(std430, binding = 3) writeonly buffer BufOut { D_STORE o[]; };

layout(push_constant) uniform Push {
  uint n;       // B * T * C
  uint T, C, V;
  uint off_ids, off_table, off_pos, off_o;
  uint pos_offset; // position of token 0 (0 for CLIP)
  uint has_pos;
} p;

void main()
{
  for (uint e = DL_GLOBAL_ID; e < p.n; e += DL_GLOBAL_STRIDE) {
    const uint c = e % p.C;
    const uint bt = e / p.C;
    const uint t = bt % p.T;
    const int id = ids[p.off_ids + bt];
    float v = 0.0;
    if (id >= 0 && uint(id) < p.V)
      v = A_LOAD(table[p.off_table + uint(id) * p.C + c]);
    if (p.has_pos != 0u)
      v += A_LOAD(pos[p.off_pos + (t + p.pos_offset) * p.C + c]);
    o[p.off_o + e] = D_CONV(v);
  }
}
