/* dl-dataset-strip.h: the training images in one scrolling row, for the previews
 * page: what the model is meant to learn, in sight of what it makes.  It hides
 * itself while there are no images. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* The side of a thumbnail in the strip, in pixels. */
#define DL_DATASET_STRIP_THUMB_SIZE 80

#define DL_TYPE_DATASET_STRIP (dl_dataset_strip_get_type ())
G_DECLARE_FINAL_TYPE (DlDatasetStrip, dl_dataset_strip, DL, DATASET_STRIP, GtkWidget)

GtkWidget *dl_dataset_strip_new (void);
/* The project's images (a GListModel of DlDatasetImage; NULL for none). */
void dl_dataset_strip_set_images (DlDatasetStrip *self, GListModel *images);
/* What the header says ("4 images"), for tests. */
const char *dl_dataset_strip_get_count_text (DlDatasetStrip *self);

G_END_DECLS
