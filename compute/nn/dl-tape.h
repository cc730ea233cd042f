/* dl-tape.h: the record of a forward pass that its backward replays.
 *
 * Every nn op (dl-nn.h) computes its output and, when the tape is enabled and
 * one of its inputs needs a gradient, pushes an entry: its outputs, what its
 * backward needs (held by reference) and the backward function.  Backward walks
 * the entries in reverse; an entry whose outputs got no gradient is skipped,
 * and what it saved is released as soon as it has run, so activation memory
 * (carved from the arena) goes back while the backward proceeds.
 *
 * Two kinds of tensors need gradients: watched leaves (the UNet input, the text
 * context, ...: their gradient stays readable after backward) and trainable
 * parameters, whose gradients ops add straight into a persistent buffer the
 * caller registered (so frozen parameters cost no gradient memory at all).
 *
 * Gradient checkpointing (dl_tape_checkpoint) runs a block without saving
 * anything and runs it again, recorded, when the backward reaches it. */
#pragma once

#include "tensor/dl-arena.h"
#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef struct _DlTape DlTape;

/* dout: one gradient per output of the entry (NULL where none flowed). */
typedef gboolean (*DlTapeBackwardFunc) (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error);

DlTape *dl_tape_new (DlRecorder *rec, DlArena *arena);
void dl_tape_free (DlTape *tape);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTape, dl_tape_free)

DlRecorder *dl_tape_get_recorder (DlTape *tape);
DlArena *dl_tape_get_arena (DlTape *tape);
DlDevice *dl_tape_get_device (DlTape *tape);

/* A disabled tape records nothing (inference). Enabled by default. */
void dl_tape_set_enabled (DlTape *tape, gboolean enabled);
gboolean dl_tape_get_enabled (DlTape *tape);

/* The dtype of the activations the models make (f32, or f16 for half-precision
 * weights and activations; arithmetic is fp32 either way).  Default f32. */
void dl_tape_set_activation_dtype (DlTape *tape, DlDType dtype);
DlDType dl_tape_get_activation_dtype (DlTape *tape);

/* A scratch tensor from the tape's arena. */
DlTensor *dl_tape_tensor (DlTape *tape, const char *name, DlDType dtype, int ndim, const int64_t *shape,
                          GError **error);
DlTensor *dl_tape_tensor_like (DlTape *tape, const char *name, const DlTensor *like, GError **error);

/* `leaf` needs a gradient, readable with dl_tape_get_grad after backward. */
void dl_tape_watch (DlTape *tape, DlTensor *leaf);
/* `param` is trainable: its gradient is added into `grad` (same shape, f32). */
void dl_tape_set_param_grad (DlTape *tape, DlTensor *param, DlTensor *grad);
/* The gradient buffer of a trainable parameter; NULL when frozen (or fused and
 * not written yet). */
DlTensor *dl_tape_param_grad (DlTape *tape, DlTensor *param);

/* Whether a backward of this tape (or its checkpoint sub-tapes) wrote the gradient of `param`. */
gboolean dl_tape_param_reached (DlTape *tape, DlTensor *param);

/* For a backward that adds into the gradient of `t`: where it goes — its
 * persistent buffer (a trainable parameter, claimed), a fresh zeroed tensor
 * (anything else that needs one), or nowhere (*out NULL).  grad_finish hands a
 * fresh one to the tape and drops the reference. */
gboolean dl_tape_grad_begin (DlTape *tape, DlTensor *t, DlTensor **out, GError **error);
gboolean dl_tape_grad_finish (DlTape *tape, DlTensor *t, DlTensor *g, GError **error);

/* Whether backward must reach `t` (watched, trainable, or computed from such). */
gboolean dl_tape_needs_grad (DlTape *tape, DlTensor *t);
/* Whether an op with these inputs must record (the tape is enabled and one of
 * them needs a gradient); NULL entries are ignored. */
gboolean dl_tape_should_record (DlTape *tape, DlTensor *const *inputs, guint n_inputs);

/* Record an entry: `outputs` become tensors that need gradients.  The tape takes
 * `data` (freed with `destroy` after the entry's backward or with the tape). */
void dl_tape_push (DlTape *tape, DlTensor *const *outputs, guint n_outputs, DlTapeBackwardFunc backward, gpointer data,
                   GDestroyNotify destroy);

/* From a backward function: add `grad` into the gradient of `t` (ignored when t
 * needs none).  Takes no ownership. */
gboolean dl_tape_add_grad (DlTape *tape, DlTensor *t, DlTensor *grad, GError **error);

/* Run the backward from `output` with gradient `grad_output`. */
gboolean dl_tape_backward (DlTape *tape, DlTensor *output, DlTensor *grad_output, GError **error);
/* The same with several outputs (grads may hold NULLs). */
gboolean dl_tape_backward_multi (DlTape *tape, DlTensor *const *outputs, DlTensor *const *grads, guint n,
                                 GError **error);

/* The gradient that reached a watched leaf (a new reference), or NULL. */
DlTensor *dl_tape_get_grad (DlTape *tape, DlTensor *leaf);

/* ---- the fused optimizer step (kohya sd-scripts' --fused_backward_pass) ----
 *
 * A fused parameter has no gradient buffer between steps: its gradient is made
 * (zeroed f32, from the arena) when a backward first writes it, and handed to
 * the root tape's done function as soon as every entry that uses it has run;
 * the function applies the optimizer step, and the tape drops the gradient.
 * The full fine-tune's gradients (4 bytes a parameter) never exist at once.
 *
 * "Every entry that uses it" comes from the forward: each op asks
 * dl_tape_should_record with its inputs before it pushes, and the tape notes
 * the index of a fused parameter's first use (inside a checkpointed block, the
 * block's entry; in its rerun, the use within the block, so a block's
 * parameters are handed over one by one rather than all at its end).  A
 * gradient written after its parameter was handed over fails the backward. */

/* The function sees `param` and its complete gradient; `tape` is the root. */
typedef gboolean (*DlTapeParamDoneFunc) (DlTape *tape, DlTensor *param, DlTensor *grad, gpointer user_data,
                                         GError **error);
/* `param` is trainable, fused. */
void dl_tape_set_param_fused (DlTape *tape, DlTensor *param);
/* Set on the root tape before the forward (what makes the tape note uses). */
void dl_tape_set_param_done_func (DlTape *tape, DlTapeParamDoneFunc func, gpointer user_data);

/* ---- gradient checkpointing ---- */

/* Computes outputs[0..n_out) from inputs (and parameters it knows); must be
 * deterministic, since it runs twice. */
typedef gboolean (*DlTapeBlockFunc) (DlTape *tape, gpointer data, DlTensor *const *inputs, DlTensor **outputs,
                                     GError **error);

/* Runs `block` on `inputs` without recording; when the tape is enabled, records
 * one entry whose backward reruns the block recorded and backpropagates through
 * it.  The tape takes `data` (released with `destroy` once no longer needed). */
gboolean dl_tape_checkpoint (DlTape *tape, DlTapeBlockFunc block, gpointer data, GDestroyNotify destroy,
                             DlTensor *const *inputs, guint n_inputs, DlTensor **outputs, guint n_outputs,
                             GError **error);

G_END_DECLS
