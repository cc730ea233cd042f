#version 450
// Sinusoidal timestep embedding, diffusers' get_timestep_embedding (LDM's
// timestep_embedding when flipped):
//   f_i = exp(-ln(max_period) * i / (half - freq_shift)), i < half = dim / 2
//   a_i = scale * t * f_i
//   out = [sin a | cos a], or [cos a | sin a] with flip_sin_to_cos; a zero pad
//   column when dim is odd.
// Every float step is the one PyTorch takes in float32, with dl_detmath's exp,
// division, sin and cos: GPU sin/cos of arguments up to ~1000 rad are otherwise
// far off on some devices, and the result is now the same on all of them.
#include "dl_dtype.glsl"
#include "dl_index.glsl"
#include "dl_detmath.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufT { A_STORE ts[]; };
layout(std430, binding = 1) writeonly buffer BufO { D_STORE o[]; };

layout(push_constant) uniform Push {
  uint B, dim, half_;
  uint off_t, off_o;
  float neg_log_period; // -ln(max_period), rounded to float
  float denom;          // half - freq_shift, rounded to float
  float scale;
  uint flip;
} p;

void main()
{
  const uint n = p.B * p.dim;
  for (uint e = DL_GLOBAL_ID; e < n; e += DL_GLOBAL_STRIDE) {
    const uint j = e % p.dim;
    const uint b = e / p.dim;
    if (j >= 2u * p.half_) {
      o[p.off_o + e] = D_CONV(0.0);
      continue;
    }
    const uint i = j % p.half_;
    const bool second = j >= p.half_;
    precise float ex = p.neg_log_period * float(i);
    precise float ed = dl_det_div(ex, p.denom);
    precise float f = dl_det_exp(ed);
    precise float t = A_LOAD(ts[p.off_t + b]);
    precise float a0 = t * f;
    precise float a = p.scale * a0;
    const bool use_cos = second != (p.flip != 0u);
    o[p.off_o + e] = D_CONV(use_cos ? dl_det_cos(a) : dl_det_sin(a));
  }
}
