/* dl-run-info.h: what a run folder says of its run (run.json, which the
 * trainer writes at every checkpoint): its settings, how far it got, its
 * checkpoints with their validation losses, and whether it finished.  For
 * the window, which lists checkpoints and offers to continue an interrupted
 * run, without loading a model. */
#pragma once

#include <json-glib/json-glib.h>

#include "train/dl-loss-log.h"
#include "train/dl-train-settings.h"
#include "train/dl-trainer.h"

G_BEGIN_DECLS

typedef struct
{
  gint64 step;
  char *file;      /* the method's export at that step */
  char *state;     /* the trainer state (what --resume reads) */
  double val_loss; /* NaN when the step was not validated */
  gboolean best;
} DlRunCheckpoint;

typedef struct
{
  char *dir;
  DlTrainSettings *settings;
  gint64 step;            /* steps done at the last checkpoint */
  gboolean finished;      /* the final export was written */
  GPtrArray *checkpoints; /* DlRunCheckpoint, oldest first */
  GArray *validations;    /* DlTrainValidation, in step order */
  GArray *losses;         /* DlLossEntry of every step up to the last checkpoint (losses.csv) */
  gint64 best_step;       /* -1: none */
  double best_val_loss;   /* NaN: none */
} DlRunInfo;

/* The validation losses of a run.json object (finite ones, in file order:
 * GArray of DlTrainValidation). */
GArray *dl_run_json_validations (JsonObject *run);

/* Read `dir`/run.json.  Errors name the file and what is wrong. */
DlRunInfo *dl_run_info_read (const char *dir, GError **error);
void dl_run_info_free (DlRunInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlRunInfo, dl_run_info_free)

/* A run stopped before its last step (closed, crashed, cancelled) with a
 * checkpoint to go on from. */
gboolean dl_run_info_can_continue (const DlRunInfo *info);

G_END_DECLS
