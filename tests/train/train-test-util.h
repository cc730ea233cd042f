/* train-test-util.h: what the whole-run trainer tests share: settings from
 * option strings, a run with its events logged, scratch copies of the golden
 * model and images, and comparisons of written files. */
#pragma once

#include "dl-test-util.h"

#include "train/dl-trainer.h"

G_BEGIN_DECLS

/* The events of a run. */
typedef struct
{
  GArray *steps;     /* gint64: the step event's step (steps done, from 1) */
  GArray *loss;      /* double */
  GArray *lr;        /* double */
  GArray *grad_norm; /* double: the norm before clipping */
  GArray *val_steps;
  GArray *val;         /* double */
  GArray *checkpoints; /* gint64 */
  GPtrArray *warnings; /* char* */
  gint64 cancel_after; /* cancel `cancel` at the step event of this step (0: never) */
  GCancellable *cancel;
} TrainLog;

TrainLog *train_log_new (void);
void train_log_free (TrainLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TrainLog, train_log_free)
/* The logged loss of step `step`; fails the test when there is none. */
double train_log_loss_at (TrainLog *log, gint64 step);

/* Settings of `method` on `model` / `images` writing `out`, with the tests'
 * small defaults (32 px, batch 1, no previews, validation only at the end),
 * then `options`: "name=value" or "name" (a flag), NULL-terminated. */
DlTrainSettings *train_test_settings (DlTrainMethod method, const char *model, const char *images, const char *out,
                                      const char *const *options);

/* The trainer's events into `log`. */
void train_test_attach (DlTrainer *t, TrainLog *log);
/* dl_trainer_run with the events into `log`; returns what it returned. */
gboolean train_test_run (DlTrainer *t, TrainLog *log, GError **error);

/* `dst` = a copy of the golden tiny model, writable (tests that edit it); NULL
 * (and the test skipped) without golden data. */
char *train_test_copy_model (const char *tmp);
/* `dst` = a folder of the first `n` golden instance images with their captions. */
char *train_test_copy_images (const char *tmp, guint n);
/* A fresh temporary directory from a g_dir_make_tmp template. */
char *train_test_make_tmp (const char *templ);
/* train_test_copy_images when `have_inputs` (the golden files the test needs
 * were found) and the images were; else the test is skipped saying `why`, `tmp`
 * is removed and NULL returned. */
char *train_test_images_or_skip (const char *tmp, guint n, gboolean have_inputs, const char *why);

/* Both safetensors files hold the same tensors (names, dtypes, shapes) with the
 * same bytes; the metadata is not compared. */
void train_test_assert_same_tensors (const char *a, const char *b);
/* Every F32/F16 tensor of a safetensors file is finite. */
gboolean train_test_all_finite (const char *path);

G_END_DECLS
