/* scripted-run-backend.h: where the scripted run (test-scripted-run.c) gets the
 * generator its previews are made with.
 *
 * Today the engine has no Stable Diffusion sampler, so this hands out the TEST
 * DOUBLE (dl-test-preview-backend.h).  When the engine's DlPreviewBackend exists,
 * point scripted_run_backend() at it and make scripted_run_backend_is_engine()
 * return TRUE: the run already opens the golden tiny model and a LoRA for it, and
 * it then also refreshes data/screenshots/main.png (which a test double must never
 * write). */
#pragma once

#include "dl-preview-backend.h"

G_BEGIN_DECLS

/* A new reference. */
DlPreviewBackend *scripted_run_backend (void);
gboolean scripted_run_backend_is_engine (void);

G_END_DECLS
