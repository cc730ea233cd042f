/* dl-philox.h: counter-based random numbers (Philox-4x32-10) on the CPU,
 * bit-identical to the shaders (shaders/common/dl_philox.glsl) on any device.
 *
 * Every value is a pure function of (seed, offset, index): a "draw" is one call
 * that fills a tensor, `offset` numbers the draws of a generator (the caller
 * advances it), `index` is the element.  Two streams exist:
 *
 *  DL_RANDOM_PHILOX (native): counter (block, 0, offset_lo, offset_hi), key =
 *    seed (lo, hi), block = index / 4; the four output words give four values:
 *    Gaussians as the sine and cosine branches of Box-Muller on words (0, 1) and
 *    (2, 3); uniforms as (word >> 8) * 2^-24 in [0, 1).
 *
 *  DL_RANDOM_A1111: AUTOMATIC1111's default "GPU" generator (torch.randn on
 *    CUDA, as A1111 emulates it): counter (offset, 0, index, 0), key = seed (lo,
 *    hi), one Gaussian per counter from words 0 and 1:
 *    u = w0 * 2^-32 + 2^-33, v = w1 * (2 pi 2^-32) + pi 2^-32 (float32),
 *    value = sqrt(-2 ln u) * sin v.  index < 2^32.
 *
 * log, sin, cos and sqrt come from dl-detmath (about 1 ulp), not libm, so CPU
 * and GPU agree bit for bit; against A1111's own float32 libm computation the
 * values differ by a few ulp at most (see tests/ops/test-random.c). */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum
{
  DL_RANDOM_PHILOX,
  DL_RANDOM_A1111,
} DlRandomMode;

/* Ten rounds of Philox-4x32 on ctr in place. */
void dl_philox4x32_10 (uint32_t ctr[4], uint32_t key_lo, uint32_t key_hi);

/* Box-Muller on two words: sqrt(-2 ln u) * sin v (or cos v). */
float dl_philox_box_muller (uint32_t w_radius, uint32_t w_angle, gboolean cosine);

/* Element `index` of draw `offset` of the generator `seed`. */
float dl_philox_normal (DlRandomMode mode, guint64 seed, guint64 offset, guint64 index);
/* Uniform in [0, 1) with 24 random bits (native stream). */
float dl_philox_uniform (guint64 seed, guint64 offset, guint64 index);
/* The raw 32-bit word behind dl_philox_uniform (dropout compares it). */
uint32_t dl_philox_word (guint64 seed, guint64 offset, guint64 index);

/* out[i] = mean + std * normal(index = first + i) for i < n. */
void dl_philox_fill_normal (float *out, gsize n, DlRandomMode mode, guint64 seed, guint64 offset, guint64 first,
                            float mean, float std);

G_END_DECLS
