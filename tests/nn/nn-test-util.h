/* nn-test-util.h: reading the golden tensors (../shared/golden) for the model
 * tests, and the scale-aware comparison max|ours - golden| <= atol + rtol *
 * max|golden| per tensor. */
#pragma once

#include "dl-test-util.h"
#include "io/dl-safetensors.h"
#include "nn/dl-params.h"
#include "nn/dl-tape.h"

G_BEGIN_DECLS

/* The golden folder (set by the test's main from dl_test_golden_path). */
extern char *nn_golden_dir;

DlSafetensors *nn_golden_open (const char *name);
float *nn_golden_f32 (DlSafetensors *st, const char *name, int64_t *numel);
/* The tensor on the test device as `dtype` (I32 for ids and timesteps). */
DlTensor *nn_golden_upload (DlSafetensors *st, const char *name, DlDType dtype);

/* max|got - want| <= atol + rtol * max|want|; prints the worst element on
 * failure (and always with --verbose). */
gboolean nn_check_scaled (const char *what, const float *got, const float *want, int64_t n, double atol, double rtol);
/* nn_check_scaled of a device tensor against the golden tensor of that name. */
gboolean nn_compare_tensor (DlTensor *t, DlSafetensors *st, const char *golden_name, double atol, double rtol);
/* A golden id tensor (stored as I64) as gint32 (g_free); *n (may be NULL) its length. */
gint32 *nn_golden_ids (DlSafetensors *st, const char *name, int64_t *n);
/* A tape recording on the test device, with its own 64 MiB activation arena. */
DlTape *nn_new_tape (void);
/* Zeroed f32 gradient buffers for every parameter of `params` whose name starts
 * with `prefix`, registered on the tape as trainable: name -> DlTensor*. */
GHashTable *nn_make_param_grads (DlParams *params, DlTape *tape, const char *prefix);

/* Every golden tensor named `golden_prefix` + rest (but those containing one
 * of the NULL-terminated `skip` substrings; skip may be NULL) against
 * grads[param_prefix + rest], within atol/rtol of its largest element.
 * Tensors that are zero in the reference (unused layers) must be within 1e-5
 * of it, and key-projection biases, whose gradients are mathematically zero
 * and hold rounding noise only, within `k_bias_atol`.  Returns how many were
 * compared; *ok is and-ed with the result. */
guint nn_compare_param_grads (GHashTable *grads, DlSafetensors *st, const char *golden_prefix, const char *param_prefix,
                              const char *const *skip, double atol, double rtol, double k_bias_atol, gboolean *ok);
/* A token embedding's gradient: the rows the golden `<golden>.row_ids` names
 * against `<golden>.rows`, and every other row exactly zero. */
void nn_check_token_rows (DlSafetensors *st, DlTensor *grad, const char *golden, gboolean *ok);

G_END_DECLS
