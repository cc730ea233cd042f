/* dl-op-random.h: random tensors and dropout from the counter-based Philox
 * generator (compute/dl-philox.h describes the streams).  Values depend only on
 * (seed, offset, element index): the same on every device and equal to what
 * dl_philox_normal() etc. give on the CPU.  Each draw of a generator should use
 * its own offset (the caller counts them, as A1111 and torch do). */
#pragma once

#include "dl-philox.h"
#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* dst[i] = mean + std * N(0, 1) for element i (dst f32 or f16).  With
 * DL_RANDOM_A1111, std 1 and mean 0 this is A1111's "GPU" noise for that seed
 * and draw number; that stream allows at most 2^32 elements. */
gboolean dl_op_random_normal (DlRecorder *rec, DlTensor *dst, DlRandomMode mode, guint64 seed, guint64 offset,
                              float mean, float std, GError **error);

/* dst[i] = lo + (hi - lo) * U[0, 1) (24 random bits; f32 or f16). */
gboolean dl_op_random_uniform (DlRecorder *rec, DlTensor *dst, guint64 seed, guint64 offset, float lo, float hi,
                               GError **error);

/* Inverted dropout: dst = src * keep / (1 - p), keep[i] = (word(i) >= p * 2^32).
 * The backward pass is the same call on the incoming gradient with the same
 * seed and offset (the mask is recomputed, never stored).  0 <= p <= 1;
 * dst and src share a dtype (f32 or f16) and element count; dst may be src. */
gboolean dl_op_dropout (DlRecorder *rec, DlTensor *dst, DlTensor *src, float p, guint64 seed, guint64 offset,
                        GError **error);

/* The keep threshold and scale dl_op_dropout uses for p (for CPU references). */
void dl_dropout_params (float p, uint32_t *threshold, float *scale);

G_END_DECLS
