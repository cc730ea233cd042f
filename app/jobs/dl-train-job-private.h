/* dl-train-job-private.h: what the engine session does with a training job
 * on its worker thread. */
#pragma once

#include "dl-train-job.h"

G_BEGIN_DECLS

/* `paths`/`captions` (captions may be NULL): the images to train on;
 * `resume_dir` non-NULL continues that run (its settings win). */
DlTrainJob *dl_train_job_new (const DlTrainSettings *settings, const char *const *paths, const char *const *captions,
                              const char *resume_dir);
const char *dl_train_job_get_resume_dir (DlTrainJob *self);
const char *const *dl_train_job_get_image_paths (DlTrainJob *self);
const char *const *dl_train_job_get_image_captions (DlTrainJob *self);
GCancellable *dl_train_job_get_cancellable (DlTrainJob *self);

/* Worker thread: the trainer now runs (NULL: no longer); a pause asked
 * before is applied to it. */
void dl_train_job_attach_trainer (DlTrainJob *self, DlTrainer *trainer);
/* Worker thread: forward one of the trainer's events (copied). */
void dl_train_job_push_event (DlTrainJob *self, const DlTrainEvent *event);
/* Worker thread: the run is over (`error` NULL: finished; cancelled: stopped). */
void dl_train_job_push_end (DlTrainJob *self, const GError *error);

G_END_DECLS
