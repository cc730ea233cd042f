/* dl-train-previews.h: a run's preview images side by side — one row per
 * prompt, columns base (before the first step), latest (or the step chosen on
 * the slider, to look back) and best (the previews of the step with the
 * lowest validation loss).  Click an image to enlarge it. */
#pragma once

#include <gtk/gtk.h>

#include "dl-image-viewer.h"

G_BEGIN_DECLS

typedef enum
{
  DL_TRAIN_PREVIEWS_BASE,
  DL_TRAIN_PREVIEWS_LATEST,
  DL_TRAIN_PREVIEWS_BEST,
  DL_TRAIN_PREVIEWS_N_COLUMNS
} DlTrainPreviewsColumn;

#define DL_TYPE_TRAIN_PREVIEWS (dl_train_previews_get_type ())
G_DECLARE_FINAL_TYPE (DlTrainPreviews, dl_train_previews, DL, TRAIN_PREVIEWS, GtkWidget)

DlTrainPreviews *dl_train_previews_new (void);
void dl_train_previews_clear (DlTrainPreviews *self);
/* Preview `index` (its prompt) of `step`, a PNG file. */
void dl_train_previews_add (DlTrainPreviews *self, gint64 step, int index, const char *prompt, const char *path);
/* The validation loss of `step` (picks the best column). */
void dl_train_previews_add_validation (DlTrainPreviews *self, gint64 step, double loss);
/* Show the previews of the `i`-th step that has some (the slider), or, with
 * -1, always the latest. */
void dl_train_previews_show_step (DlTrainPreviews *self, int i);
guint dl_train_previews_get_n_steps (DlTrainPreviews *self);
/* The step a column shows (-1: none) and its file in `row` (NULL: none). */
gint64 dl_train_previews_get_step (DlTrainPreviews *self, DlTrainPreviewsColumn column);
const char *dl_train_previews_get_file (DlTrainPreviews *self, DlTrainPreviewsColumn column, int row);
/* What a click on the image in `column`, `row` does: the image viewer (shown;
 * NULL when the cell has no image). */
DlImageViewer *dl_train_previews_enlarge (DlTrainPreviews *self, DlTrainPreviewsColumn column, int row);

G_END_DECLS
