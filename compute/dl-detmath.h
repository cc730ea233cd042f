/* dl-detmath.h: float functions that give the same bits on every CPU and GPU.
 *
 * Vulkan only promises correctly rounded +, - and * (and int <-> float
 * conversions); sin, log, exp, sqrt and even division may differ between
 * drivers by several ulp, and GPU sin/cos lose accuracy quickly for large
 * arguments.  These functions use nothing else: fixed sequences of correctly
 * rounded operations (no fused multiply-add), so shaders/common/dl_detmath.glsl,
 * which mirrors this file statement by statement with `precise`, produces
 * bit-identical results.  Accuracy is about 1-2 ulp over the ranges noted.
 * This file must be compiled without floating-point contraction (ISO C mode,
 * which the project uses, has it off in GCC; each operation is also its own
 * statement so that clang's default "contract within an expression" cannot
 * fuse anything). */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* (float) x rounded to nearest even. */
float dl_det_u32_to_f32 (uint32_t x);
/* 1 / d for normal positive d (Newton iterations). */
float dl_det_recip (float d);
/* Natural logarithm of a positive normal x (0 -> -inf, negative -> NaN). */
float dl_det_log (float x);
/* e^x; results below 2^-126 flush to 0 (devices may flush denormals). */
float dl_det_exp (float x);
/* Square root of x >= 0. */
float dl_det_sqrt (float x);
/* sin and cos; accurate for |x| <= 6400 (Cody-Waite reduction by pi/2). */
float dl_det_sin (float x);
float dl_det_cos (float x);
/* a / b, nearly always correctly rounded (one exact-residual correction). */
float dl_det_div (float a, float b);

G_END_DECLS
