/* dl-trainer.h: one training run — model, dataset, method, optimizer,
 * schedule and random draws — advanced step by step, saved and resumed, and
 * reported through one stream of events that the headless command and the
 * window both consume.
 *
 * A run lives in its run folder (dl_train_settings_run_dir): `run.json` (the
 * settings, the checkpoints, the best one), a state file per checkpoint
 * (everything needed to continue bit for bit), the method's export file per
 * checkpoint, and preview images.  dl_trainer_run() does the whole run: it
 * prepares (model, images, latent cache, method), then steps, validates,
 * previews and saves as the settings ask, and writes the final export to `out`.
 * Pause and cancel take effect between steps. */
#pragma once

#include <gio/gio.h>

#include "nn/dl-sd-model.h"
#include "train/dl-train-settings.h"

G_BEGIN_DECLS

typedef enum
{
  DL_TRAIN_EVENT_STATUS,     /* a phase: message, progress in [0, 1] (or < 0: unknown) */
  DL_TRAIN_EVENT_STEP,       /* a step done: step, loss, lr, grad_norm, images_per_s, eta_s, memory */
  DL_TRAIN_EVENT_VALIDATION, /* val_loss at step; best when it is the lowest so far */
  DL_TRAIN_EVENT_PREVIEW,    /* path of a PNG, prompt, index */
  DL_TRAIN_EVENT_CHECKPOINT, /* path of the export, step, val_loss (NaN if none yet) */
  DL_TRAIN_EVENT_WARNING,    /* message (skipped image, non-finite step, rollback) */
  DL_TRAIN_EVENT_ERROR,      /* message: the run stopped */
  DL_TRAIN_EVENT_FINISHED,   /* path of the final export */
} DlTrainEventKind;

typedef struct
{
  DlTrainEventKind kind;
  gint64 step; /* steps done */
  gint64 total_steps;
  double loss;
  double lr;        /* of the first parameter group (the UNet's) */
  double grad_norm; /* before clipping */
  double images_per_s;
  double eta_s;
  guint64 memory; /* device bytes in use */
  double val_loss;
  gboolean best;
  double progress;
  int index;
  const char *path;
  const char *prompt;
  const char *message;
} DlTrainEvent;

/* Called on the thread that runs the trainer. */
typedef void (*DlTrainEventFunc) (const DlTrainEvent *event, gpointer user_data);

const char *dl_train_event_kind_name (DlTrainEventKind kind);

typedef struct _DlTrainer DlTrainer;

typedef struct
{
  gint64 step;
  double loss;
} DlTrainValidation;

/* `model` (may be NULL: the trainer loads settings->model) is shared, never
 * freed by the trainer; it must be loaded as f16 when settings->fp16, f32
 * otherwise.  Settings are validated here. */
DlTrainer *dl_trainer_new (DlDevice *device, DlSdModel *model, const DlTrainSettings *settings, GError **error);
void dl_trainer_free (DlTrainer *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTrainer, dl_trainer_free)

/* Continue the run in `run_dir`: its saved settings, where `given` (may be NULL)
 * lists options given again, which must agree (`given_names`: those options).
 * The model must be the one the run started from. */
DlTrainer *dl_trainer_new_resume (DlDevice *device, DlSdModel *model, const char *run_dir, const DlTrainSettings *given,
                                  const char *const *given_names, GError **error);

void dl_trainer_set_event_func (DlTrainer *t, DlTrainEventFunc func, gpointer user_data, GDestroyNotify destroy);

/* Called by dl_trainer_run on its thread before each step (and before it
 * waits while paused), when the model holds the weights of the steps done:
 * the place for work that shares the model, such as the window's previews. */
typedef void (*DlTrainBetweenStepsFunc) (DlTrainer *t, gpointer user_data);
void dl_trainer_set_between_steps_func (DlTrainer *t, DlTrainBetweenStepsFunc func, gpointer user_data);

/* Sample one image with the weights as they are now (between steps), with the
 * run's tokenizer (which knows a trained word) and clip skip.  `rgb`: 8-bit,
 * width * height * 3.  `on_step` may be NULL. */
typedef struct
{
  const char *prompt;
  const char *negative_prompt; /* NULL: none */
  guint64 seed;
  int steps;
  const char *sampler; /* dl_sampler_kind_from_name */
  double cfg_scale;
  int width, height;
  DlSampleStepFunc on_step;
  gpointer on_step_data;
  GCancellable *cancellable;
} DlTrainerSampleRequest;
gboolean dl_trainer_sample (DlTrainer *t, const DlTrainerSampleRequest *r, guint8 **rgb, GError **error);
/* Train on these `n` image files (a project's list) instead of the files in
 * the folder settings->images names, which then only says where they came from
 * (messages, the exports' metadata).  `captions` (may be NULL; an entry NULL or
 * "" for none) win over the images' caption files.  Before dl_trainer_prepare;
 * when resuming, give the run's images again. */
void dl_trainer_set_images (DlTrainer *t, const char *const *paths, const char *const *captions, guint n);
const DlTrainSettings *dl_trainer_get_settings (DlTrainer *t);
/* The loaded model (after prepare). */
DlSdModel *dl_trainer_get_model (DlTrainer *t);

/* Load what the run needs (model, tokenizer, images, latents, the method's
 * tensors, a saved state when resuming).  dl_trainer_run calls it. */
gboolean dl_trainer_prepare (DlTrainer *t, GCancellable *cancellable, GError **error);
/* One optimizer step (grad-accum micro-batches); emits the step event. */
gboolean dl_trainer_step (DlTrainer *t, GError **error);
/* Steps done. */
gint64 dl_trainer_get_step (DlTrainer *t);
/* Validation loss now (no gradients). */
gboolean dl_trainer_validate (DlTrainer *t, double *loss, GError **error);
/* Checkpoint now: state + export into the run folder, rotation, run.json. */
gboolean dl_trainer_save_checkpoint (DlTrainer *t, GError **error);
/* Write the method's file (LoRA, embedding) with the current weights. */
gboolean dl_trainer_export (DlTrainer *t, const char *path, GError **error);
/* Previews with the current weights into the run folder. */
gboolean dl_trainer_preview (DlTrainer *t, GError **error);

/* The whole run to its last step, then the final export.  Returns FALSE with
 * G_IO_ERROR_CANCELLED when cancelled (the last checkpoint is kept). */
gboolean dl_trainer_run (DlTrainer *t, GCancellable *cancellable, GError **error);

/* Thread-safe: hold before the next step / go on. */
void dl_trainer_pause (DlTrainer *t);
void dl_trainer_unpause (DlTrainer *t);

G_END_DECLS
