/* dl-op-adamw8bit.h: AdamW with 8-bit block-wise quantised moments, as the
 * bitsandbytes 8-bit optimizers keep them (bitsandbytes/optim/adamw.py
 * AdamW8bit, csrc/kernels.cu kOptimizerStatic8bit2StateBlockwise):
 *
 *   - each moment is stored as one byte per element, an index into a map of 256
 *     f32 values in [-1, 1] (functional.py create_dynamic_map: signed for the
 *     first moment, unsigned for the second), and one f32 absmax per block of
 *     DL_ADAMW8BIT_BLOCK elements: moment = map[code] * absmax[block];
 *   - a step dequantises, updates the moments in f32, takes the block's new
 *     absmax = max |moment|, updates the parameter, then stores each moment as
 *     the code nearest to moment / new absmax.
 *
 * The per-step scalars come from the same hyper buffer as dl_op_adamw
 * (dl_adamw_hyper_upload) and the optional clip coefficient from
 * dl_op_grad_norm.  Bias corrections as the kernel applies them: step size
 * lr * sqrt(1 - beta2^t) / (1 - beta1^t) and eps * sqrt(1 - beta2^t) added to
 * sqrt(v) (the kernel takes the powers in float with __powf; the hyper buffer
 * has them from double).  Device bytes per trained element: 2 (codes) +
 * 8 / 2048 (absmax) instead of fp32 AdamW's 8; see dl_adamw8bit_state_bytes().
 *
 * AdamW8bit's defaults (bitsandbytes/optim/adamw.py) are
 * DL_ADAMW_PARAMS_DEFAULT's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight
 * decay 1e-2.  Its min_8bit_size = 4096 (optim/optimizer.py
 * Optimizer2State.init_state) keeps tensors of fewer elements in 32-bit state
 * (dl_op_adamw): that choice is the caller's. */
#pragma once

#include "ops/dl-op-adamw.h"
#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* Elements per absmax block.  bitsandbytes used 2048 (csrc/kernels.cu,
 * MAKE_OptimizerStatic8bit2StateBlockwise(ADAM, float, 2048, 8)) until commit
 * aa57bd89 ("Change 8bit optimizer blocksize 2048->256", PR #1365, 2024-09);
 * current releases use 256.  Must match BLOCK in shaders/optim/adamw8bit.comp. */
#define DL_ADAMW8BIT_BLOCK 2048
#define DL_ADAMW8BIT_MAP_LEN 256

/* bitsandbytes functional.py create_dynamic_map(signed, max_exponent_bits=7,
 * total_bits=8): per decade 10^-6 .. 10^0, the midpoints of a float32
 * torch.linspace(0.1, 1, 2^i + 1) (signed: also negated; unsigned: 2^(i+1) + 1
 * points), plus 0 and 1, sorted ascending.  Signed: 127 negatives, 0 at index
 * 127, 127 positives up to 1.  Unsigned: 0 at index 0, 254 positives, 1. */
void dl_adamw8bit_dynamic_map (float out[DL_ADAMW8BIT_MAP_LEN], gboolean is_signed);

/* The codebook the op reads: f32 [2, 256], row 0 the signed map (first moment),
 * row 1 the unsigned map (second moment).  Create it once per device. */
DlTensor *dl_adamw8bit_codebook_new (DlDevice *device, GError **error);

/* Absmax blocks for `numel` elements (ceil(numel / 2048)). */
int64_t dl_adamw8bit_n_blocks (int64_t numel);
/* Device bytes of the state of `numel` elements: both code arrays (numel bytes
 * each, rounded up to whole 32-bit words) and both absmax arrays. */
guint64 dl_adamw8bit_state_bytes (int64_t numel);
/* The same as `device` allocates them (dl_adamw8bit_state_new: four tensors,
 * each rounded to the allocation alignment). */
guint64 dl_adamw8bit_state_device_bytes (DlDevice *device, int64_t numel);

/* The optimizer state of one trained tensor.  Codes are packed four to a
 * 32-bit word, little-endian: byte k of the buffer is element k's code. */
typedef struct
{
  int64_t numel;
  DlTensor *m_codes;  /* i32 [(numel + 3) / 4] */
  DlTensor *v_codes;  /* i32 [(numel + 3) / 4] */
  DlTensor *m_absmax; /* f32 [n_blocks] */
  DlTensor *v_absmax; /* f32 [n_blocks] */
} DlAdamW8bitState;

/* Allocate (contents undefined: zero it before the first step).  `name` names
 * the tensors ("adam8_m.<name>", ...) in error messages. */
DlAdamW8bitState *dl_adamw8bit_state_new (DlDevice *device, const char *name, int64_t numel, GError **error);
void dl_adamw8bit_state_free (DlAdamW8bitState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlAdamW8bitState, dl_adamw8bit_state_free)

/* Record the zero state: every code 0 and every absmax 0, so both moments
 * dequantise to 0 (bitsandbytes optimizer.py Optimizer2State.init_state:
 * torch.zeros uint8 codes and float32 absmax). */
gboolean dl_adamw8bit_state_zero (DlRecorder *rec, DlAdamW8bitState *state, GError **error);

/* Host copies: codes numel bytes each, absmax n_blocks floats each (any
 * pointer may be NULL to skip that array).  Synchronous, like
 * dl_tensor_download.  Upload rejects a negative or non-finite absmax. */
gboolean dl_adamw8bit_state_download (DlAdamW8bitState *state, guint8 *m_codes, guint8 *v_codes, float *m_absmax,
                                      float *v_absmax, GError **error);
gboolean dl_adamw8bit_state_upload (DlAdamW8bitState *state, const guint8 *m_codes, const guint8 *v_codes,
                                    const float *m_absmax, const float *v_absmax, GError **error);

/* One 8-bit AdamW step:
 *   param: f32, updated in place; grad: f32 or f16 with the same element count;
 *   state: of that element count; codebook: from dl_adamw8bit_codebook_new;
 *   hyper: dl_adamw_hyper_upload's buffer; clip: NULL or dl_op_grad_norm's
 *   output; model_copy: NULL or an f16/bf16 tensor receiving the new weights.
 * As bitsandbytes does it (kOptimizerStatic8bit2StateBlockwise, "adam" with
 * weight decay = AdamW8bit): the weight decay multiplies the parameter after
 * the Adam update, p = (p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)) * (1 - lr wd),
 * and an element whose gradient is NaN or infinite keeps its parameter and has
 * both moments reset to 0.  Any size: one workgroup per block, split into
 * several dispatches at block boundaries when a binding would exceed the
 * recorder's limit.  Deterministic (no atomics). */
gboolean dl_op_adamw8bit (DlRecorder *rec, DlTensor *param, DlTensor *grad, DlAdamW8bitState *state, DlTensor *codebook,
                          DlTensor *hyper, DlTensor *clip, DlTensor *model_copy, GError **error);

G_END_DECLS
