#version 450
// Counter-based random tensors (see compute/dl-philox.h for the streams):
//   OP_NORMAL:  d[i] = mean + std * normal(seed, offset, first + i)
//   OP_UNIFORM: d[i] = lo + (hi - lo) * uniform(seed, offset, first + i)
//   OP_DROPOUT: d[i] = word(seed, offset, first + i) >= threshold ? a[i] * scale : 0
// Every element is a pure function of its index, so the values do not depend on
// the device, the workgroup size or how the host splits the tensor into dispatches.
#include "dl_dtype.glsl"
#include "dl_index.glsl"
#include "dl_philox.glsl"

layout(local_size_x = 256) in;

#ifdef OP_DROPOUT
layout(std430, binding = 0) readonly buffer BufA { A_STORE a[]; };
layout(std430, binding = 1) writeonly buffer BufD { D_STORE d[]; };
#else
layout(std430, binding = 0) writeonly buffer BufD { D_STORE d[]; };
#endif

layout(push_constant) uniform Push {
  uint n;
  uint off_a;
  uint off_d;
  uint seed_lo, seed_hi;
  uint offset_lo, offset_hi;
  uint first_lo, first_hi; // index of element 0 of this dispatch
  uint a1111;              // OP_NORMAL: A1111 stream instead of the native one
  uint threshold;          // OP_DROPOUT: keep when the word is >= this
  float p0;                // mean | lo | scale
  float p1;                // std | hi
} p;

// element index first + i as (lo, hi)
uvec2 element(uint i)
{
  uint carry;
  uint lo = uaddCarry(p.first_lo, i, carry);
  return uvec2(lo, p.first_hi + carry);
}

// the four words of the native stream's block holding element e
uvec4 native_words(uvec2 e)
{
  uvec2 block = uvec2((e.x >> 2) | (e.y << 30), e.y >> 2);
  return dl_philox4x32_10(uvec4(block, p.offset_lo, p.offset_hi), uvec2(p.seed_lo, p.seed_hi));
}

void main()
{
  for (uint i = DL_GLOBAL_ID; i < p.n; i += DL_GLOBAL_STRIDE) {
    uvec2 e = element(i);
#if defined(OP_NORMAL)
    float z;
    if (p.a1111 != 0u) {
      uvec4 w = dl_philox4x32_10(uvec4(p.offset_lo, 0u, e.x, 0u), uvec2(p.seed_lo, p.seed_hi));
      z = dl_philox_box_muller(w.x, w.y, false);
    } else {
      uvec4 w = native_words(e);
      uint lane = e.x & 3u;
      bool second = lane >= 2u;
      z = dl_philox_box_muller(second ? w.z : w.x, second ? w.w : w.y, (lane & 1u) != 0u);
    }
    precise float sz = p.p1 * z;
    precise float v = p.p0 + sz;
    d[p.off_d + i] = D_CONV(v);
#elif defined(OP_UNIFORM)
    uvec4 w = native_words(e);
    uint word = w[e.x & 3u];
    precise float u = float(word >> 8) * uintBitsToFloat(0x33800000u);
    precise float span = p.p1 - p.p0;
    precise float t = u * span;
    precise float v = p.p0 + t;
    d[p.off_d + i] = D_CONV(v);
#elif defined(OP_DROPOUT)
    uvec4 w = native_words(e);
    uint word = w[e.x & 3u];
    float v = word >= p.threshold ? A_LOAD(a[p.off_a + i]) * p.p0 : 0.0;
    d[p.off_d + i] = D_CONV(v);
#endif
  }
}
