// Storage types for the buffer slots A, B, C and D.
//
// A shader declares its buffers with A_STORE/B_STORE/C_STORE/D_STORE and converts
// with X_LOAD(v) (storage -> float) and X_CONV(f) (float -> storage).  meson picks the
// types per variant with -DA_DT=<code>; arithmetic always happens in fp32.
// Codes: 0 = f32, 1 = f16, 2 = bf16 (kept in uint16_t), 3 = i32.
#ifndef DL_DTYPE_GLSL
#define DL_DTYPE_GLSL

// Only 16-bit *storage* is required of the device: 16-bit values exist in buffers
// and are converted on load/store, never held in variables.
#extension GL_EXT_shader_16bit_storage : require

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2
#define DT_I32 3

float dl_bf16_bits_to_f32(uint h) { return uintBitsToFloat(h << 16); }

// Round to nearest even; NaN stays a quiet NaN.
uint dl_f32_to_bf16_bits(float f)
{
  uint u = floatBitsToUint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (u >> 16) | 0x40u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}


#if defined(A_DT)
#if A_DT == DT_F32
#define A_STORE float
#define A_LOAD(v) float(v)
#define A_CONV(f) float(f)
#elif A_DT == DT_F16
#define A_STORE float16_t
#define A_LOAD(v) float(v)
#define A_CONV(f) float16_t(f)
#elif A_DT == DT_BF16
#define A_STORE uint16_t
#define A_LOAD(v) dl_bf16_bits_to_f32(uint(v))
#define A_CONV(f) uint16_t(dl_f32_to_bf16_bits(f))
#elif A_DT == DT_I32
#define A_STORE int
#define A_LOAD(v) float(v)
#define A_CONV(f) int(f)
#endif
#endif

#if defined(B_DT)
#if B_DT == DT_F32
#define B_STORE float
#define B_LOAD(v) float(v)
#define B_CONV(f) float(f)
#elif B_DT == DT_F16
#define B_STORE float16_t
#define B_LOAD(v) float(v)
#define B_CONV(f) float16_t(f)
#elif B_DT == DT_BF16
#define B_STORE uint16_t
#define B_LOAD(v) dl_bf16_bits_to_f32(uint(v))
#define B_CONV(f) uint16_t(dl_f32_to_bf16_bits(f))
#elif B_DT == DT_I32
#define B_STORE int
#define B_LOAD(v) float(v)
#define B_CONV(f) int(f)
#endif
#endif

#if defined(C_DT)
#if C_DT == DT_F32
#define C_STORE float
#define C_LOAD(v) float(v)
#define C_CONV(f) float(f)
#elif C_DT == DT_F16
#define C_STORE float16_t
#define C_LOAD(v) float(v)
#define C_CONV(f) float16_t(f)
#elif C_DT == DT_BF16
#define C_STORE uint16_t
#define C_LOAD(v) dl_bf16_bits_to_f32(uint(v))
#define C_CONV(f) uint16_t(dl_f32_to_bf16_bits(f))
#elif C_DT == DT_I32
#define C_STORE int
#define C_LOAD(v) float(v)
#define C_CONV(f) int(f)
#endif
#endif

#if defined(D_DT)
#if D_DT == DT_F32
#define D_STORE float
#define D_LOAD(v) float(v)
#define D_CONV(f) float(f)
#elif D_DT == DT_F16
#define D_STORE float16_t
#define D_LOAD(v) float(v)
#define D_CONV(f) float16_t(f)
#elif D_DT == DT_BF16
#define D_STORE uint16_t
#define D_LOAD(v) dl_bf16_bits_to_f32(uint(v))
#define D_CONV(f) uint16_t(dl_f32_to_bf16_bits(f))
#elif D_DT == DT_I32
#define D_STORE int
#define D_LOAD(v) float(v)
#define D_CONV(f) int(f)
#endif
#endif

#endif
