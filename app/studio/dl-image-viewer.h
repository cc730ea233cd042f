/* dl-image-viewer.h: a preview image at full size, with its generation parameters,
 * saved as PNG with those parameters in its "parameters" text chunk (as
 * AUTOMATIC1111 does, so other tools read them back). */
#pragma once

#include <adwaita.h>

#include "dl-preview-backend.h"

G_BEGIN_DECLS

#define DL_TYPE_IMAGE_VIEWER (dl_image_viewer_get_type ())
G_DECLARE_FINAL_TYPE (DlImageViewer, dl_image_viewer, DL, IMAGE_VIEWER, AdwWindow)

DlImageViewer *dl_image_viewer_new (GtkWindow *parent, GdkTexture *texture, const DlPreviewRequest *request,
                                    const char *column_title);

/* A PNG file as it is (a training preview): the parameters it carries are
 * shown, and Save copies the file byte for byte.  NULL with *error set when
 * the file cannot be read. */
DlImageViewer *dl_image_viewer_new_for_file (GtkWindow *parent, const char *path, const char *title,
                                             const char *subtitle, GError **error);

/* What it shows: the request (NULL for a file), the file (NULL for a request). */
const DlPreviewRequest *dl_image_viewer_get_request (DlImageViewer *self);
const char *dl_image_viewer_get_source_path (DlImageViewer *self);
GdkTexture *dl_image_viewer_get_texture (DlImageViewer *self);

/* Write the image with its parameters to `path` (PNG, atomic; blocking, main thread
 * for the texture's sake: the window itself saves on a worker thread). */
gboolean dl_image_viewer_save_png (GdkTexture *texture, const DlPreviewRequest *request, const char *path,
                                   GError **error);

G_END_DECLS
