/* dl-train-job.h: one training run in the app's engine session, seen from
 * the main thread: its state, pause/continue/stop, and the trainer's events
 * (dl-trainer.h) delivered in order on the thread that started it.
 *
 * Signals (main thread):
 *   "event"    (gpointer: const DlTrainEvent *, valid during the emission)
 *   "finished" () — after the last event; the state says how it ended
 * and notify::state, notify::step. */
#pragma once

#include <gio/gio.h>

#include "train/dl-trainer.h"

G_BEGIN_DECLS

typedef enum
{
  DL_TRAIN_JOB_PREPARING, /* loading, caching latents, class images */
  DL_TRAIN_JOB_RUNNING,
  DL_TRAIN_JOB_PAUSED,
  DL_TRAIN_JOB_FINISHED, /* the final export is written */
  DL_TRAIN_JOB_STOPPED,  /* stopped by the user; the last checkpoint is kept */
  DL_TRAIN_JOB_FAILED,   /* dl_train_job_get_error says why */
} DlTrainJobState;

#define DL_TYPE_TRAIN_JOB (dl_train_job_get_type ())
G_DECLARE_FINAL_TYPE (DlTrainJob, dl_train_job, DL, TRAIN_JOB, GObject)

const DlTrainSettings *dl_train_job_get_settings (DlTrainJob *self);
DlTrainJobState dl_train_job_get_state (DlTrainJob *self);
gboolean dl_train_job_is_done (DlTrainJob *self);
gint64 dl_train_job_get_step (DlTrainJob *self);
gint64 dl_train_job_get_total_steps (DlTrainJob *self);
/* The run folder (checkpoints, previews, run.json). */
const char *dl_train_job_get_run_dir (DlTrainJob *self);
/* Set once the state is DL_TRAIN_JOB_FAILED. */
const GError *dl_train_job_get_error (DlTrainJob *self);

/* Between steps; thread-safe; no effect once done. */
void dl_train_job_pause (DlTrainJob *self);
void dl_train_job_unpause (DlTrainJob *self);
/* Stop after the current step (or phase); the last checkpoint stays. */
void dl_train_job_stop (DlTrainJob *self);

G_END_DECLS
