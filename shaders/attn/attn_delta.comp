#version 450
// delta[b, h, i] = sum_d dO[b, i, h*D + d] * O[b, i, h*D + d], the row term of
// the softmax backward, once per row before the two attention backward passes.
// One thread per (token, head): a row of D values is contiguous.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufO { A_STORE o[]; };
layout(std430, binding = 1) readonly buffer BufG { A_STORE g[]; };
layout(std430, binding = 2) writeonly buffer BufDl { float delta[]; };

layout(push_constant) uniform Push {
  uint rows; // B * Nq * H
  uint H, Nq, D;
  uint off_o, off_g, off_dl;
} p;

void main()
{
  for (uint row = DL_GLOBAL_ID; row < p.rows; row += DL_GLOBAL_STRIDE) {
    const uint h = row % p.H;
    const uint t = row / p.H; // b * Nq + i
    const uint base = row * p.D;
    float s = 0.0;
    for (uint d = 0; d < p.D; d++)
      s = fma(A_LOAD(o[p.off_o + base + d]), A_LOAD(g[p.off_g + base + d]), s);
    const uint b = t / p.Nq, i = t % p.Nq;
    delta[p.off_dl + (b * p.H + h) * p.Nq + i] = s;
  }
}
