/* dl-dataset-image.h: one picture of a project's dataset.
 *
 * The file, its caption and, once a worker thread has decoded it, its size and
 * content hash.  The project works out the warnings (too small, duplicate)
 * because they depend on the other images and on the training resolution.  No
 * pixels: the window makes its own thumbnails (dl-thumbnail.h). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  DL_IMAGE_STATE_LOADING,    /* queued or being decoded */
  DL_IMAGE_STATE_READY,      /* decoded; size and hash are set */
  DL_IMAGE_STATE_UNREADABLE, /* the file is there but is not a usable image: see error */
  DL_IMAGE_STATE_MISSING,    /* no file at that path (moved or deleted) */
} DlImageState;

#define DL_TYPE_DATASET_IMAGE (dl_dataset_image_get_type ())
G_DECLARE_FINAL_TYPE (DlDatasetImage, dl_dataset_image, DL, DATASET_IMAGE, GObject)

DlDatasetImage *dl_dataset_image_new (GFile *file, const char *caption);

GFile *dl_dataset_image_get_file (DlDatasetImage *self);
/* The file's path (local files only; see dl_project for the rule). */
const char *dl_dataset_image_get_path (DlDatasetImage *self);
/* The file name as a person reads it. */
const char *dl_dataset_image_get_display_name (DlDatasetImage *self);

const char *dl_dataset_image_get_caption (DlDatasetImage *self);
void dl_dataset_image_set_caption (DlDatasetImage *self, const char *caption);

DlImageState dl_dataset_image_get_state (DlDatasetImage *self);
/* Why the image is unreadable or missing; NULL otherwise. */
const char *dl_dataset_image_get_error (DlDatasetImage *self);
int dl_dataset_image_get_width (DlDatasetImage *self);
int dl_dataset_image_get_height (DlDatasetImage *self);
/* SHA-256 of the file's bytes, hex; NULL until decoded. */
const char *dl_dataset_image_get_content_hash (DlDatasetImage *self);

gboolean dl_dataset_image_get_too_small (DlDatasetImage *self);
/* The display name of the earlier image with the same content; NULL if unique. */
const char *dl_dataset_image_get_duplicate_of (DlDatasetImage *self);
/* Every warning in one line ("Too small for 512 px training (shorter side 300 px)");
 * NULL when there is nothing to say. */
const char *dl_dataset_image_get_warning (DlDatasetImage *self);

/* ---- for DlProject and the loader ---- */

void dl_dataset_image_set_loading (DlDatasetImage *self);
/* Takes the results of a decode: size (after EXIF orientation) and hash. */
void dl_dataset_image_set_ready (DlDatasetImage *self, int width, int height, const char *content_hash);
void dl_dataset_image_set_failed (DlDatasetImage *self, DlImageState state, const char *error);
/* `resolution` is the training resolution (the shorter side must reach it). */
void dl_dataset_image_set_warnings (DlDatasetImage *self, int resolution, const char *duplicate_of);

G_END_DECLS
