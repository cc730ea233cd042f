/* dl-half.h: IEEE half and bfloat16 conversions on the CPU (round to nearest even),
 * matching what the shaders store. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "dl-dtype.h"

G_BEGIN_DECLS

uint16_t dl_f32_to_f16 (float f);
float dl_f16_to_f32 (uint16_t h);
uint16_t dl_f32_to_bf16 (float f);
float dl_bf16_to_f32 (uint16_t h);

/* Convert n elements between any two dtypes (integers convert by value; floats to
 * i32 truncate toward zero, as a C cast does). */
void dl_convert (void *dst, DlDType dst_dtype, const void *src, DlDType src_dtype, gsize n);

G_END_DECLS
