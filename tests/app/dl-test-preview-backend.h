/* dl-test-preview-backend.h: a TEST DOUBLE of DlPreviewBackend, for the window
 * tests only (never linked into the application).
 *
 * It draws, instead of sampling a model, a picture that depends only on what
 * changes a real preview: the prompt, the seed, the size and the LoRA list with
 * strengths (the base model path and sampler settings do not change it).  It steps
 * like a sampler (progress after each step, cancellation between steps) and can be
 * told to be slow or to fail, so that the panel's progress, Cancel and error paths
 * can be tested without the engine. */
#pragma once

#include "dl-preview-backend.h"

G_BEGIN_DECLS

#define DL_TYPE_TEST_PREVIEW_BACKEND (dl_test_preview_backend_get_type ())
G_DECLARE_FINAL_TYPE (DlTestPreviewBackend, dl_test_preview_backend, DL, TEST_PREVIEW_BACKEND, GObject)

DlTestPreviewBackend *dl_test_preview_backend_new (void);
/* Sleep this long at each step (default 0). */
void dl_test_preview_backend_set_step_delay (DlTestPreviewBackend *self, guint microseconds);
/* The call with this number (1 for the first; 0: none) stops at its first step
 * until it is cancelled: a test knows exactly which image is being made. */
void dl_test_preview_backend_hold_call (DlTestPreviewBackend *self, guint call);
/* Once cancelled, take this long more before returning (a step that cannot be
 * interrupted, as a GPU dispatch). */
void dl_test_preview_backend_set_cancel_latency (DlTestPreviewBackend *self, guint microseconds);
/* Fail every request with a LoRA whose path contains `needle` (NULL: never). */
void dl_test_preview_backend_set_fail_on_lora (DlTestPreviewBackend *self, const char *needle);
/* Calls so far, and the most that ever ran at once (the panel promises one). */
guint dl_test_preview_backend_get_n_calls (DlTestPreviewBackend *self);
guint dl_test_preview_backend_get_max_concurrent (DlTestPreviewBackend *self);
/* Calls that returned because they were cancelled. */
guint dl_test_preview_backend_get_n_cancelled (DlTestPreviewBackend *self);

G_END_DECLS
