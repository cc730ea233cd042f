#version 450
// Fused AdamW step (torch.optim.AdamW, decoupled weight decay), one pass over
// the fp32 master weights and moments:
//   g = grad * grad_scale (* clip coefficient)
//   p = p * (1 - lr wd)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// and optionally a copy of p in the model's storage type.  Every per-step scalar
// comes from the hyper buffer (and the clip coefficient from the gradient-norm
// pass), so recorded work stays valid from step to step.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer BufP { float param[]; };
layout(std430, binding = 1) readonly buffer BufG { A_STORE grad[]; };
layout(std430, binding = 2) buffer BufM { float m[]; };
layout(std430, binding = 3) buffer BufV { float v[]; };
layout(std430, binding = 4) readonly buffer BufH { float hyper[]; };
layout(std430, binding = 5) readonly buffer BufC { float clip[]; };
#ifdef COPY
layout(std430, binding = 6) writeonly buffer BufD { D_STORE copy_[]; };
#endif

// hyper[] layout, see dl-op-adamw.h
#define H_DECAY 0
#define H_BETA1 1
#define H_OMB1 2
#define H_BETA2 3
#define H_OMB2 4
#define H_STEP_SIZE 5
#define H_BC2_SQRT 6
#define H_EPS 7
#define H_GRAD_SCALE 8

layout(push_constant) uniform Push {
  uint n;
  uint off_p, off_g, off_m, off_v, off_h, off_c, off_d;
  uint has_clip;
} p;

void main()
{
  const float decay = hyper[p.off_h + H_DECAY];
  const float beta1 = hyper[p.off_h + H_BETA1], omb1 = hyper[p.off_h + H_OMB1];
  const float beta2 = hyper[p.off_h + H_BETA2], omb2 = hyper[p.off_h + H_OMB2];
  const float step_size = hyper[p.off_h + H_STEP_SIZE];
  const float bc2_sqrt = hyper[p.off_h + H_BC2_SQRT];
  const float eps = hyper[p.off_h + H_EPS];
  float gscale = hyper[p.off_h + H_GRAD_SCALE];
  if (p.has_clip != 0u) {
    // a gradient whose norm is not finite leaves the tensor as it is (the
    // fused backward pass, which cannot skip the whole step: dl-optimizer.h)
    if ((floatBitsToUint(clip[p.off_c]) & 0x7f800000u) == 0x7f800000u)
      return;
    gscale *= clip[p.off_c + 1u];
  }
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    const float g = A_LOAD(grad[p.off_g + i]) * gscale;
    float w = param[p.off_p + i] * decay;
    const float mi = m[p.off_m + i] * beta1 + omb1 * g;
    const float vi = v[p.off_v + i] * beta2 + omb2 * (g * g);
    const float denom = sqrt(vi) / bc2_sqrt + eps;
    w -= step_size * (mi / denom);
    m[p.off_m + i] = mi;
    v[p.off_v + i] = vi;
    param[p.off_p + i] = w;
#ifdef COPY
    copy_[p.off_d + i] = D_CONV(w);
#endif
  }
}
