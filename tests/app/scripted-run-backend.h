/* scripted-run-backend.h: where the scripted run (test-scripted-run.c) gets the
 * generator its previews are made with.
 *
 * It is the engine's sampler (dl-engine-backend.h) on the golden tiny model and
 * a LoRA for it, so the run also refreshes data/screenshots/main.png (which the
 * test double of the other app tests must never write). */
#pragma once

#include "dl-preview-backend.h"

G_BEGIN_DECLS

/* A new reference. */
DlPreviewBackend *scripted_run_backend (void);
gboolean scripted_run_backend_is_engine (void);

G_END_DECLS
