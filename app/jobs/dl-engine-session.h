/* dl-engine-session.h: the app's one engine session — the Vulkan device and
 * the base model, loaded once into device memory and shared by everything the
 * window asks of the engine: preview images (it is the application's
 * DlPreviewBackend), class images and training runs.
 *
 * While a run trains, preview requests are served between its steps with the
 * weights as they are then (the run's own model, with what it trains
 * attached; the request's LoRAs are not applied), never by a second copy of
 * the model.  When a run changes the model itself (DreamBooth) or frees a part
 * of it that previews need, the model is loaded again for the next request. */
#pragma once

#include "dl-preview-backend.h"
#include "dl-train-job.h"
#include "train/dl-train-plan.h"

G_BEGIN_DECLS

#define DL_TYPE_ENGINE_SESSION (dl_engine_session_get_type ())
G_DECLARE_FINAL_TYPE (DlEngineSession, dl_engine_session, DL, ENGINE_SESSION, GObject)

DlEngineSession *dl_engine_session_new (void);

/* Start training on a worker thread: `settings` as the project fills them,
 * `paths`/`captions` the images (captions may be NULL), `resume_dir` to
 * continue an interrupted run (NULL: a new one), `device` the Vulkan device
 * selector (NULL: the default).  One run at a time: NULL with an error while
 * another runs.  Events come on the calling thread's main context.  The
 * default GApplication is held until the run ends, so that closing the last
 * window lets a run finish (or stop at its next step) before the app quits. */
DlTrainJob *dl_engine_session_train (DlEngineSession *self, const DlTrainSettings *settings, const char *const *paths,
                                     const char *const *captions, const char *resume_dir, const char *device,
                                     GError **error);
/* The run in progress, or NULL. */
DlTrainJob *dl_engine_session_get_training (DlEngineSession *self);

/* The memory plan of a run of `settings` on the device (opened if it is not
 * yet; `device` its selector), on a worker thread.  Errors: the device or the
 * model's configuration cannot be read. */
void dl_engine_session_plan_async (DlEngineSession *self, const DlTrainSettings *settings, const char *device,
                                   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
DlTrainPlan *dl_engine_session_plan_finish (DlEngineSession *self, GAsyncResult *result, GError **error);

/* How many times a model was loaded (tests: one copy, shared). */
guint dl_engine_session_get_n_model_loads (DlEngineSession *self);

G_END_DECLS
