/* dl-image-tile.h: one cell of the dataset grid: thumbnail, caption, size, and
 * what is wrong with the image if anything. */
#pragma once

#include <gtk/gtk.h>

#include "dl-dataset-image.h"

G_BEGIN_DECLS

#define DL_TYPE_IMAGE_TILE (dl_image_tile_get_type ())
G_DECLARE_FINAL_TYPE (DlImageTile, dl_image_tile, DL, IMAGE_TILE, GtkWidget)

GtkWidget *dl_image_tile_new (void);
/* Show `image` (NULL to unbind; the grid recycles tiles). */
void dl_image_tile_set_image (DlImageTile *self, DlDatasetImage *image);
DlDatasetImage *dl_image_tile_get_image (DlImageTile *self);
GtkEditable *dl_image_tile_get_caption_editable (DlImageTile *self);
/* The line under the caption ("1024 × 768 · PNG", or why it cannot be used). */
const char *dl_image_tile_get_meta_text (DlImageTile *self);
/* The warning or error text, "" when none. */
const char *dl_image_tile_get_problem_text (DlImageTile *self);

/* Signals: "remove-requested" (), "move-requested" (int delta: -1 earlier, +1 later). */

G_END_DECLS
