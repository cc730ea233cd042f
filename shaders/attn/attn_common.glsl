// Shared by the attention shaders: tile sizes, the push-constant block and the
// indexing of the token-major layout.
//
// q, o, dO, dq: [B, Nq, H*D]; k, v, dk, dv: [B, Nk, H*D] (head h owns columns
// h*D .. h*D+D-1 of every token); lse and delta: [B, H, Nq] f32.
// Tiles: a workgroup owns BR query rows (or BC keys in the dK/dV pass) of one
// (batch, head), T threads per row.  Shared rows are padded to D+1 floats so that
// threads reading different rows at the same column hit different banks.
#ifndef ATTN_COMMON_GLSL
#define ATTN_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : enable

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BR = 16; // query rows per tile
layout(constant_id = 2) const uint BC = 16; // keys per tile
layout(constant_id = 3) const uint D = 64;  // head dimension
layout(constant_id = 4) const uint T = 8;   // threads per row (divides BR and BC)

const uint DP = D + 1;
const uint DT = (D + T - 1) / T; // head-dimension columns per thread
const bool D_EVEN = (DT * T == D);

#define ATTN_CAUSAL 1u
#define ATTN_WRITE_LSE 2u

layout(push_constant) uniform Push {
  uint B, H, Nq, Nk;
  uint off_q, off_k, off_v, off_o; // off_o: O (forward) or dO (backward)
  uint off_l, off_dl;              // lse, delta
  uint off_g0, off_g1;             // dq | dk, dv
  float scale_log2;                // scale * log2(e): scores in base-2 units
  float scale;
  uint flags;
} p;

const float LOG2E = 1.4426950408889634;
const float LN2 = 0.6931471805599453;
const float NEG_INF = -1.0 / 0.0;

// element (token t, column d of head h, batch b) of a [B, N, H*D] tensor
uint attn_index(uint off, uint b, uint N, uint t, uint h, uint d)
{
  return off + (b * N + t) * (p.H * D) + h * D + d;
}

uint attn_row_stat(uint off, uint b, uint h, uint i)
{
  return off + (b * p.H + h) * p.Nq + i;
}

// Query i may see key j.
bool attn_visible(uint i, uint j)
{
  return j < p.Nk && ((p.flags & ATTN_CAUSAL) == 0u || j <= i);
}

#endif
