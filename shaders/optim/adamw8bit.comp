#version 450
// AdamW with 8-bit block-wise quantised moments, as bitsandbytes' AdamW8bit
// step does it (csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise, ADAM):
// one workgroup per block of BLOCK elements,
//   m = map1[c1] * absmax1;  v = map2[c2] * absmax2           (dequantise)
//   g = grad * grad_scale (* clip coefficient)
//   v = v beta2 + ((1 - beta2) g) g;  m = m beta1 + (1 - beta1) g
//   absmax1 = max |m|, absmax2 = max |v| over the block       (block reduction)
//   p = p - lr/bc1 sqrt(bc2) * m / (sqrt(v) + sqrt(bc2) eps);  p = p (1 - lr wd)
//   c1, c2 = the codes nearest m / absmax1, v / absmax2
// An element with a NaN/infinite gradient keeps its parameter and gets zero
// moments (as the bitsandbytes kernel does).
//
// Where this differs from the bitsandbytes kernel, on purpose:
//  - the nearest code is found by comparing the moment with
//    midpoint * absmax rather than moment / absmax with the midpoint: a Vulkan
//    division may be off by 2.5 ulp, a product is correctly rounded, so every
//    device (and the CPU reference, ref_adamw8bit_step) picks the same codes;
//    ties between two codes go to the lower one;
//  - a block whose new absmax is 0 stores the code of 0 (bitsandbytes divides
//    0 by 0 there; the moments dequantise to 0 either way);
//  - elements past the end of the tensor do not take part in the absmax.
// `precise` keeps the compiler from fusing multiply-adds, which would change
// the moments' rounding and hence the codes.
#include "dl_dtype.glsl"

#define BLOCK 2048u  // DL_ADAMW8BIT_BLOCK
#define WG 256u
#define WORDS 2u     // 32-bit code words per thread: BLOCK / 4 / WG

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer BufP { float param[]; };
layout(std430, binding = 1) readonly buffer BufG { A_STORE grad[]; };
layout(std430, binding = 2) buffer BufCM { uint mcode[]; };
layout(std430, binding = 3) buffer BufCV { uint vcode[]; };
layout(std430, binding = 4) buffer BufAM { float mabs[]; };
layout(std430, binding = 5) buffer BufAV { float vabs[]; };
layout(std430, binding = 6) readonly buffer BufQ { float qmap[]; };
layout(std430, binding = 7) readonly buffer BufH { float hyper[]; };
layout(std430, binding = 8) readonly buffer BufC { float clip[]; };
#ifdef COPY
layout(std430, binding = 9) writeonly buffer BufD { D_STORE copy_[]; };
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
  uint n;         // elements in this dispatch
  uint n_blocks;  // ceil(n / BLOCK)
  uint off_p, off_g, off_cm, off_cv, off_am, off_av, off_q, off_h, off_c, off_d;
  uint has_clip;
} p;

shared float map1[256], map2[256];
shared float mid1[256], mid2[256];  // mid[k] = (map[k] + map[k + 1]) / 2, k < 255
shared float red1[WG], red2[WG];

// Number of midpoints below x, i.e. the code nearest x / absmax (absmax > 0).
// pos + s - 1 <= 254 at every step: pos is at most 256 - 2 s.
uint nearest1(float x, float absmax)
{
  uint pos = 0u;
  for (uint s = 128u; s > 0u; s >>= 1) {
    precise float t = mid1[pos + s - 1u] * absmax;
    if (x > t)
      pos += s;
  }
  return pos;
}

uint nearest2(float x, float absmax)
{
  uint pos = 0u;
  for (uint s = 128u; s > 0u; s >>= 1) {
    precise float t = mid2[pos + s - 1u] * absmax;
    if (x > t)
      pos += s;
  }
  return pos;
}

bool finite_bits(float x)
{
  return (floatBitsToUint(x) & 0x7f800000u) != 0x7f800000u;
}

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  map1[tid] = qmap[p.off_q + tid];
  map2[tid] = qmap[p.off_q + 256u + tid];
  barrier();
  if (tid < 255u) {
    precise float a = (map1[tid] + map1[tid + 1u]) * 0.5;
    precise float b = (map2[tid] + map2[tid + 1u]) * 0.5;
    mid1[tid] = a;
    mid2[tid] = b;
  } else {
    mid1[tid] = 0.0;
    mid2[tid] = 0.0;
  }

  const float decay = hyper[p.off_h + H_DECAY];
  const float beta1 = hyper[p.off_h + H_BETA1], omb1 = hyper[p.off_h + H_OMB1];
  const float beta2 = hyper[p.off_h + H_BETA2], omb2 = hyper[p.off_h + H_OMB2];
  const float bc2_sqrt = hyper[p.off_h + H_BC2_SQRT];
  precise float step = hyper[p.off_h + H_STEP_SIZE] * bc2_sqrt;
  precise float eps = hyper[p.off_h + H_EPS] * bc2_sqrt;
  precise float gscale = hyper[p.off_h + H_GRAD_SCALE];
  if (p.has_clip != 0u) {
    // a gradient whose norm is not finite leaves the tensor as it is (see
    // adamw.comp); the same value for the whole workgroup
    if (!finite_bits(clip[p.off_c]))
      return;
    gscale = gscale * clip[p.off_c + 1u];
  }

  for (uint blk = gl_WorkGroupID.x; blk < p.n_blocks; blk += gl_NumWorkGroups.x) {
    barrier();  // the shared tables are written; red[] from the last block is read
    const float am_old = mabs[p.off_am + blk], av_old = vabs[p.off_av + blk];
    precise float s1[4 * WORDS], s2[4 * WORDS];
    bool ok[4 * WORDS];
    float amax1 = 0.0, amax2 = 0.0;
    for (uint w = 0u; w < WORDS; w++) {
      const uint word = blk * (BLOCK / 4u) + w * WG + tid;  // in this dispatch
      const uint cm = word * 4u < p.n ? mcode[p.off_cm + word] : 0u;
      const uint cv = word * 4u < p.n ? vcode[p.off_cv + word] : 0u;
      for (uint k = 0u; k < 4u; k++) {
        const uint j = w * 4u + k, i = word * 4u + k;
        s1[j] = 0.0;
        s2[j] = 0.0;
        ok[j] = false;
        if (i >= p.n)
          continue;
        const float graw = A_LOAD(grad[p.off_g + i]);
        if (!finite_bits(graw))
          continue;
        ok[j] = true;
        precise float g = graw * gscale;
        precise float v = map2[(cv >> (8u * k)) & 255u] * av_old;
        v = v * beta2 + (omb2 * g) * g;
        precise float m = map1[(cm >> (8u * k)) & 255u] * am_old;
        m = m * beta1 + omb1 * g;
        s1[j] = m;
        s2[j] = v;
        amax1 = max(amax1, abs(m));
        amax2 = max(amax2, abs(v));
      }
    }
    red1[tid] = amax1;
    red2[tid] = amax2;
    barrier();
    for (uint k = WG / 2u; k > 0u; k >>= 1) {
      if (tid < k) {
        red1[tid] = max(red1[tid], red1[tid + k]);
        red2[tid] = max(red2[tid], red2[tid + k]);
      }
      barrier();
    }
    const float am_new = red1[0], av_new = red2[0];
    if (tid == 0u) {
      mabs[p.off_am + blk] = am_new;
      vabs[p.off_av + blk] = av_new;
    }
    for (uint w = 0u; w < WORDS; w++) {
      const uint word = blk * (BLOCK / 4u) + w * WG + tid;
      if (word * 4u >= p.n)
        continue;
      uint cm = 0u, cv = 0u;
      for (uint k = 0u; k < 4u; k++) {
        const uint j = w * 4u + k, i = word * 4u + k;
        if (i >= p.n)
          continue;
        const float m = s1[j], v = s2[j];
        if (ok[j]) {
          precise float wt = param[p.off_p + i];
          precise float upd = m / (sqrt(v) + eps);
          wt = wt - step * upd;
          wt = wt * decay;
          param[p.off_p + i] = wt;
#ifdef COPY
          copy_[p.off_d + i] = D_CONV(wt);
#endif
        }
#ifdef COPY
        else {
          copy_[p.off_d + i] = D_CONV(param[p.off_p + i]);
        }
#endif
        // a zero block quantises +0 against absmax 1: the code of 0
        const float x1 = am_new > 0.0 ? m : 0.0, x2 = av_new > 0.0 ? v : 0.0;
        uint c1 = nearest1(x1, am_new > 0.0 ? am_new : 1.0);
        // bitsandbytes keeps the first moment's sign: a code of the other
        // sign moves one step towards the value (unsigned char arithmetic)
        if ((floatBitsToUint(map1[c1]) >> 31) != (floatBitsToUint(x1) >> 31))
          c1 = (x1 > 0.0 ? c1 + 1u : c1 - 1u) & 255u;
        const uint c2 = nearest2(x2, av_new > 0.0 ? av_new : 1.0);
        cm |= c1 << (8u * k);
        cv |= c2 << (8u * k);
      }
      mcode[p.off_cm + word] = cm;
      vcode[p.off_cv + word] = cv;
    }
  }
}
