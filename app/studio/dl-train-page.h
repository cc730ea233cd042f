/* dl-train-page.h: the Train page — pick a method and its settings, see what
 * the run needs of the GPU's memory, Train / Pause / Stop, watch the loss
 * curve and the base / latest / best previews change while it trains, list
 * and export checkpoints, continue a run that was interrupted.  A client of
 * the app's engine session: the same model the previews use. */
#pragma once

#include <adwaita.h>

#include "dl-checkpoint-list.h"
#include "dl-engine-session.h"
#include "dl-loss-curve.h"
#include "dl-project.h"
#include "dl-train-form.h"
#include "dl-train-previews.h"

G_BEGIN_DECLS

#define DL_TYPE_TRAIN_PAGE (dl_train_page_get_type ())
G_DECLARE_FINAL_TYPE (DlTrainPage, dl_train_page, DL, TRAIN_PAGE, GtkWidget)

void dl_train_page_set_project (DlTrainPage *self, DlProject *project);
/* The engine session runs use (default: the application's). */
void dl_train_page_set_session (DlTrainPage *self, DlEngineSession *session);
/* The run in progress or the last one this page started (NULL: none). */
DlTrainJob *dl_train_page_get_job (DlTrainPage *self);
gboolean dl_train_page_is_training (DlTrainPage *self);

/* Start a new run with the project's settings (what Train does); FALSE with
 * the reason shown on the page (and in `error`) when it cannot start. */
gboolean dl_train_page_start (DlTrainPage *self, GError **error);
/* Continue the project's interrupted run (what Continue does). */
gboolean dl_train_page_continue (DlTrainPage *self, GError **error);
/* Whether the project has an interrupted run to continue. */
gboolean dl_train_page_can_continue (DlTrainPage *self);
/* The desktop notification for the end of `job`'s run (finished, stopped or failed). */
void dl_train_notify_end (DlTrainJob *job);

/* Export the run's newest file (the final one, else the latest checkpoint)
 * to `path` (what Export… does after its dialog). */
gboolean dl_train_page_export_to (DlTrainPage *self, const char *path, GError **error);
/* The same with a LoRA's tensors in `dtype` (DL_ST_F16 or DL_ST_F32): Export LoRA in Half/Full Precision. */
gboolean dl_train_page_export_as (DlTrainPage *self, const char *path, DlStDType dtype, GError **error);
/* A DreamBooth run's newest model as a diffusers folder at `dir` (Export as a diffusers Folder…). */
gboolean dl_train_page_export_diffusers_to (DlTrainPage *self, const char *dir, GError **error);
/* Write the run as a kohya sd-scripts job into the new folder `dir`. */
gboolean dl_train_page_export_kohya_to (DlTrainPage *self, const char *dir, GError **error);

/* Parts, for tests. */
DlTrainForm *dl_train_page_get_form (DlTrainPage *self);
DlLossCurve *dl_train_page_get_curve (DlTrainPage *self);
DlTrainPreviews *dl_train_page_get_previews (DlTrainPage *self);
DlCheckpointList *dl_train_page_get_checkpoints (DlTrainPage *self);
const char *dl_train_page_get_status (DlTrainPage *self);
const char *dl_train_page_get_plan_text (DlTrainPage *self);
/* The warnings shown so far (texts). */
GPtrArray *dl_train_page_get_warnings (DlTrainPage *self);

G_END_DECLS
