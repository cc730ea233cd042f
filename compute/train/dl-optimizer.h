/* dl-optimizer.h: AdamW over a run's trained tensors, as an object: the fp32
 * tensors, their gradient buffers and moments, parameter groups with their own
 * learning rate and weight decay, and a per-tensor step count.
 *
 * torch.optim.AdamW semantics (torch/optim/adamw.py, single-tensor path):
 * decoupled weight decay p *= 1 - lr*wd, bias-corrected moments with the
 * tensor's own step count, eps outside the square root.  A tensor whose gradient
 * the loss did not reach in a step is skipped entirely (torch skips parameters
 * whose .grad is None: no decay, no moment update, no step count). */
#pragma once

#include "io/dl-safetensors.h"
#include "nn/dl-tape.h"

G_BEGIN_DECLS

typedef struct _DlOptimizer DlOptimizer;

DlOptimizer *dl_optimizer_new (DlDevice *device, double beta1, double beta2, double eps);
void dl_optimizer_free (DlOptimizer *opt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlOptimizer, dl_optimizer_free)

/* A parameter group (0, 1, ... in order of creation). */
guint dl_optimizer_add_group (DlOptimizer *opt, const char *name, double weight_decay);
guint dl_optimizer_get_n_groups (DlOptimizer *opt);
const char *dl_optimizer_get_group_name (DlOptimizer *opt, guint group);

/* 8-bit moments (bitsandbytes' AdamW8bit: block-wise dynamic quantisation) for
 * tensors of 4096 elements or more added from now on; smaller ones keep fp32
 * moments, as bitsandbytes' min_8bit_size does (optim/optimizer.py). */
void dl_optimizer_set_8bit (DlOptimizer *opt, gboolean eightbit);
gboolean dl_optimizer_get_8bit (DlOptimizer *opt);

/* Train `param` (f32) in `group` under `name` (unique; the name its state is
 * saved by).  Allocates its gradient and moments (zeroed through `rec`). */
gboolean dl_optimizer_add (DlOptimizer *opt, DlRecorder *rec, const char *name, DlTensor *param, guint group,
                           GError **error);
/* The same for a model tensor the forward reads in another dtype (f16
 * weights): `master` (f32) is what AdamW updates, `model` receives each new
 * value (rounded) and is what the tape gives gradients to. */
gboolean dl_optimizer_add_with_copy (DlOptimizer *opt, DlRecorder *rec, const char *name, DlTensor *master,
                                     DlTensor *model, guint group, GError **error);
/* Device bytes of one trained tensor of `numel` elements, as `device`
 * allocates them: its AdamW moments (8-bit with `eightbit` from the size
 * bitsandbytes' min_8bit_size gives, f32 below), its f32 value when it has one
 * of its own (`value`: not when the model's f32 tensor is trained in place)
 * and its share of the gradient buffers (`gradient`: not with the fused
 * backward pass). */
guint64 dl_optimizer_tensor_bytes (DlDevice *device, int64_t numel, gboolean eightbit, gboolean value,
                                   gboolean gradient);
guint dl_optimizer_get_n (DlOptimizer *opt);
const char *dl_optimizer_get_name (DlOptimizer *opt, guint i);
DlTensor *dl_optimizer_get_param (DlOptimizer *opt, guint i);
DlTensor *dl_optimizer_get_grad (DlOptimizer *opt, guint i);
guint dl_optimizer_get_group (DlOptimizer *opt, guint i);
/* Trained elements, and device bytes of params + grads + moments. */
gint64 dl_optimizer_get_numel (DlOptimizer *opt);

/* Device bytes of the gradient buffers (0 until the first zero_grad or attach,
 * and with the fused backward pass). */
guint64 dl_optimizer_get_gradient_bytes (DlOptimizer *opt);

/* Register every gradient buffer with the tape (their contents are undefined
 * until the first zero_grad). */
void dl_optimizer_attach (DlOptimizer *opt, DlTape *tape);
/* Record zeroing every gradient and forget which ones were reached. */
gboolean dl_optimizer_zero_grad (DlOptimizer *opt, DlRecorder *rec, GError **error);
/* After a backward: note which gradients the tape wrote (cumulative until the
 * next zero_grad). */
void dl_optimizer_collect_reached (DlOptimizer *opt, DlTape *tape);
gboolean dl_optimizer_reached (DlOptimizer *opt, guint i);

/* Record the total L2 norm over the reached gradients and the clip coefficient
 * into `out` (f32 [2], dl_op_grad_norm).  Returns FALSE with no error and
 * records nothing when no gradient was reached (*none = TRUE). */
gboolean dl_optimizer_grad_norm (DlOptimizer *opt, DlRecorder *rec, DlTensor *out, double max_norm, gboolean *none,
                                 GError **error);

/* Record one AdamW step of every reached tensor with learning rate lr[group];
 * `clip` (may be NULL) is the output of dl_optimizer_grad_norm.  Uploads the
 * per-step constants first (call it between submissions). */
gboolean dl_optimizer_step (DlOptimizer *opt, DlRecorder *rec, const double *group_lr, DlTensor *clip, GError **error);

/* ---- the fused backward pass (kohya sd-scripts sdxl_train.py --fused_backward_pass) ----
 *
 * Each tensor's step is applied during the backward, as soon as its gradient is
 * complete (dl-tape.h), and the gradient is dropped: no gradient buffers at all
 * (4 bytes a trained parameter; for SDXL's UNet 9.6 GiB).  What differs from
 * dl_optimizer_step:
 *  - clipping is per tensor: kohya's hook clips each tensor's gradient on its
 *    own (clip_grad_norm_ of one tensor) before step_param;
 *  - a tensor whose gradient is not finite is left as it is, while the step's
 *    other tensors are applied (the step cannot be skipped as a whole: the
 *    first tensors are updated before the last gradients exist);
 *  - no gradient accumulation (kohya: gradient_accumulation_steps must be 1).
 * The gradient buffers of dl_optimizer_attach are never made. */

/* Before the step's forward (between submissions): upload the step constants
 * for lr[group] and make `tape` apply the step of each trained tensor the loss
 * reaches, clipped to `max_norm` (0: no clipping). */
gboolean dl_optimizer_fused_begin (DlOptimizer *opt, DlTape *tape, const double *group_lr, double max_norm,
                                   GError **error);
/* After the backward, once its work has run (dl_recorder_finish): how many
 * tensors were updated and how many left as they were (a gradient that was not
 * finite), the first of those (NULL if none), and the gradient norm over every
 * tensor reached (the root of the sum of the per-tensor squares: torch's total
 * norm before clipping). */
gboolean dl_optimizer_fused_end (DlOptimizer *opt, guint *n_stepped, guint *n_left, const char **first_left,
                                 double *grad_norm, GError **error);

/* The first trained tensor holding a NaN or infinity in its value (`grads`
 * FALSE) or gradient (TRUE), or NULL (downloads; for the rare failure path). */
const char *dl_optimizer_find_non_finite (DlOptimizer *opt, gboolean grads, GError **error);

/* State: `param.<name>`, `adam_m.<name>`, `adam_v.<name>` (f32) and
 * `adam_steps` (I64 [n]) into / out of a state file.  Load checks that names
 * and shapes agree. */
gboolean dl_optimizer_save (DlOptimizer *opt, DlSafetensorsWriter *w, GError **error);
gboolean dl_optimizer_load (DlOptimizer *opt, DlSafetensors *st, GError **error);

G_END_DECLS
