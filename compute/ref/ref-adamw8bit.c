/* ref-adamw8bit.c: see ref-adamw8bit.h.  Plain float arithmetic: the build's
 * C17 mode (-ffp-contract=off) keeps multiply-adds unfused, as `precise` does
 * in the shader. */
#include "ref-adamw8bit.h"

#include <math.h>
#include <string.h>

uint8_t
ref_quantize_code (const float map[256], float x, float absmax, gboolean keep_sign)
{
  if (!(absmax > 0))
    {
      x = 0.0f;
      absmax = 1.0f;
    }
  int count = 0;
  for (int k = 0; k < 255; k++)
    {
      float mid = (map[k] + map[k + 1]) * 0.5f;
      if (x > mid * absmax)
        count++;
    }
  uint8_t c = (uint8_t)count;
  if (keep_sign && !signbit (map[c]) != !signbit (x))
    c = x > 0 ? (uint8_t)(c + 1) : (uint8_t)(c - 1);
  return c;
}

void
ref_quantize_blockwise (uint8_t *codes, float *absmax, const float *x, int64_t n, int64_t block, const float map[256],
                        gboolean keep_sign)
{
  for (int64_t b0 = 0; b0 < n; b0 += block)
    {
      int64_t end = MIN (b0 + block, n);
      float a = 0.0f;
      for (int64_t i = b0; i < end; i++)
        a = fmaxf (a, fabsf (x[i]));
      absmax[b0 / block] = a;
      for (int64_t i = b0; i < end; i++)
        codes[i] = ref_quantize_code (map, x[i], a, keep_sign);
    }
}

void
ref_dequantize_blockwise (float *out, const uint8_t *codes, const float *absmax, int64_t n, int64_t block,
                          const float map[256])
{
  for (int64_t i = 0; i < n; i++)
    out[i] = map[codes[i]] * absmax[i / block];
}

void
ref_adamw8bit_step (float *param, uint8_t *m_codes, uint8_t *v_codes, float *m_absmax, float *v_absmax,
                    const float *grad, int64_t n, int64_t block, const float map1[256], const float map2[256],
                    const RefAdamW8bitHyper *h)
{
  float *m = g_new (float, MAX (n, 1));
  float *v = g_new (float, MAX (n, 1));
  ref_dequantize_blockwise (m, m_codes, m_absmax, n, block, map1);
  ref_dequantize_blockwise (v, v_codes, v_absmax, n, block, map2);
  float step = h->step_size * h->bc2_sqrt, eps = h->eps * h->bc2_sqrt;
  for (int64_t i = 0; i < n; i++)
    {
      if (!isfinite (grad[i]))
        {
          m[i] = 0.0f;
          v[i] = 0.0f;
          continue;
        }
      float g = grad[i] * h->grad_scale;
      v[i] = v[i] * h->beta2 + (h->one_minus_beta2 * g) * g;
      m[i] = m[i] * h->beta1 + h->one_minus_beta1 * g;
      float upd = m[i] / (sqrtf (v[i]) + eps);
      float w = param[i] - step * upd;
      param[i] = w * h->decay;
    }
  ref_quantize_blockwise (m_codes, m_absmax, m, n, block, map1, TRUE);
  ref_quantize_blockwise (v_codes, v_absmax, v, n, block, map2, FALSE);
  g_free (m);
  g_free (v);
}
