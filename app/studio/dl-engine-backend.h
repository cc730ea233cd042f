/* dl-engine-backend.h: the preview generator backed by the engine (the
 * Stable Diffusion sampler of compute/), registered by the application. */
#pragma once

#include "dl-preview-backend.h"

G_BEGIN_DECLS

#define DL_TYPE_ENGINE_BACKEND (dl_engine_backend_get_type ())
G_DECLARE_FINAL_TYPE (DlEngineBackend, dl_engine_backend, DL, ENGINE_BACKEND, GObject)

DlEngineBackend *dl_engine_backend_new (void);

G_END_DECLS
