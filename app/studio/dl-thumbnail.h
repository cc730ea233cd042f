/* dl-thumbnail.h: the picture of a dataset image as the window shows it.
 *
 * The project decodes its images for their size and content hash only (it has no
 * GTK); the window makes the thumbnails, on a few worker threads, once an image is
 * decoded, and again when its content changes.  One DlThumbnail per image, kept
 * with the image, so that the dataset grid and the Previews strip share it; only
 * images that a widget shows get one. */
#pragma once

#include <gtk/gtk.h>

#include "dl-dataset-image.h"

G_BEGIN_DECLS

/* The longest side of a thumbnail, in pixels (enough for the grid on a 2x screen). */
#define DL_THUMBNAIL_SIZE 320

#define DL_TYPE_THUMBNAIL (dl_thumbnail_get_type ())
G_DECLARE_FINAL_TYPE (DlThumbnail, dl_thumbnail, DL, THUMBNAIL, GObject)

/* The image's thumbnail (made on first use, owned by the image; call on the main
 * thread). */
DlThumbnail *dl_thumbnail_for_image (DlDatasetImage *image);
/* The picture, fitting DL_THUMBNAIL_SIZE, EXIF orientation applied; NULL while
 * it is being made and for images that are not decoded ("texture" notifies). */
GdkTexture *dl_thumbnail_get_texture (DlThumbnail *self);

/* Blocking: the thumbnail of the picture in `path`. */
GdkTexture *dl_thumbnail_decode (const char *path, GCancellable *cancellable, GError **error);

G_END_DECLS
