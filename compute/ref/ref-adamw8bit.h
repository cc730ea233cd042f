/* ref-adamw8bit.h: CPU reference of the 8-bit AdamW step (dl-op-adamw8bit.h),
 * in float with the shader's order of operations, so that codes and absmax
 * agree with the device bit for bit; the parameters agree to a few ulp (a
 * device's sqrt and division may differ from IEEE by up to 2.5 ulp). */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* The per-step scalars, as the hyper buffer holds them (DL_ADAMW_H_*); here
 * grad_scale already includes the clip coefficient (grad_scale * clip in float). */
typedef struct
{
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps, grad_scale;
} RefAdamW8bitHyper;

/* The code of `map` (256 ascending values) nearest x / absmax, found as the
 * number of midpoints (map[k] + map[k+1]) / 2 with midpoint * absmax < x (ties
 * go down); absmax 0 quantises 0 (against absmax 1).  With keep_sign, a code
 * whose sign differs from x's moves one step towards x (bitsandbytes
 * csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise, first moment). */
uint8_t ref_quantize_code (const float map[256], float x, float absmax, gboolean keep_sign);

/* Block-wise: absmax[b] = max |x| over block b (of `block` elements, the last
 * one short), codes[i] = ref_quantize_code (map, x[i], absmax[b], keep_sign). */
void ref_quantize_blockwise (uint8_t *codes, float *absmax, const float *x, int64_t n, int64_t block,
                             const float map[256], gboolean keep_sign);
/* out[i] = map[codes[i]] * absmax[i / block] */
void ref_dequantize_blockwise (float *out, const uint8_t *codes, const float *absmax, int64_t n, int64_t block,
                               const float map[256]);

/* One step over n elements (see dl_op_adamw8bit and adamw8bit.comp):
 *   m = map1[c1] absmax1, v = map2[c2] absmax2, g = grad * grad_scale,
 *   v = v b2 + ((1 - b2) g) g, m = m b1 + (1 - b1) g (both 0 where grad is not finite),
 *   p = (p - step_size bc2_sqrt * m / (sqrt(v) + eps bc2_sqrt)) * decay (not where grad is not finite),
 *   then codes and absmax re-quantised block-wise (map1 keeping signs). */
void ref_adamw8bit_step (float *param, uint8_t *m_codes, uint8_t *v_codes, float *m_absmax, float *v_absmax,
                         const float *grad, int64_t n, int64_t block, const float map1[256], const float map2[256],
                         const RefAdamW8bitHyper *h);

G_END_DECLS
