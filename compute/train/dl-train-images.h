/* dl-train-images.h: the training images of a run: which files, their captions,
 * the bucket (training size) and crop of each, and their pixels as the VAE
 * encoder takes them.
 *
 * Decoding is gdk-pixbuf's (PNG, JPEG, WebP where the loader is installed), EXIF
 * orientation applied, alpha dropped (as kohya sd-scripts' PIL convert("RGB")).
 * Each image is resized so that it covers its bucket (the relatively shorter
 * side scaled to the bucket's; dl-image-resize.h, kohya's filters), then cropped
 * to the bucket (centered, or at a random offset).  Without buckets every
 * image's bucket is resolution x resolution.  With buckets each image takes the
 * bucket nearest its aspect ratio among dl_train_buckets_for_resolution
 * (dl-train-buckets.h: kohya sd-scripts library/model_util.py
 * make_bucket_resolutions, library/train_util.py BucketManager.select_bucket).
 *
 * Images are listed in byte order of their file names (ties by full path; the
 * order replay files index).  A file that cannot be decoded, has no pixels, or is
 * smaller than half the resolution on its shorter side is skipped with a warning
 * naming it; a caption file that is not UTF-8 is an error naming it (the user's
 * words must not be guessed).  No usable image at all is an error. */
#pragma once

#include <gio/gio.h>

#include "train/dl-caption-augment.h"
#include "train/dl-train-buckets.h"

G_BEGIN_DECLS

typedef struct
{
  int resolution;                /* the square training size (multiple of 8; of 64 with buckets) */
  gboolean buckets;              /* aspect-ratio buckets as kohya */
  gboolean random_crop;          /* crop at a random offset (per image, fixed for the run, from the seed
                          * and the file's content hash) instead of the centre */
  guint64 seed;                  /* for random crops */
  const char *caption_extension; /* ".txt" when NULL */
} DlTrainImagesOptions;

typedef struct
{
  char *path;
  char *name;         /* file name (basename) */
  char *content_hash; /* SHA-256 of the file, hex */
  int width, height;  /* after EXIF orientation */
  int bucket_width, bucket_height;
  int crop_x, crop_y; /* top-left of the crop in the resized image */
  int resized_width, resized_height;
  char *caption;          /* from the caption file (dl-caption-file.h: stripped, lines folded into
                          * spaces; "" for an empty file), or NULL when there is none */
  char *filename_caption; /* the file stem with a leading run of digits and dashes and the spaces
                           * after it removed (A1111's filename rule, regex ^[-\d]+\s*) */
} DlTrainImage;

typedef struct _DlTrainImages DlTrainImages;

/* Every image file directly in `folder` (PNG, JPEG, WebP by extension, case-
 * insensitive; hidden files and other files ignored, as kohya's glob), full
 * paths in the order dl_train_images_new uses, or NULL with an error when the
 * folder cannot be read. */
GPtrArray *dl_train_images_list_folder (const char *folder, GError **error);

/* Decode and hash `paths` (any order: they are sorted; a path given twice counts
 * once), assign buckets and crops and read captions.  `warnings` (may be NULL)
 * receives a newly allocated char* per skipped file ("“x.png”: not a PNG, JPEG
 * or WebP image; skipped"); give it g_free as its free function.  Errors
 * (DL_ERROR): bad options, an unreadable or non-UTF-8 caption file, no usable
 * image ("No usable training image in “dir”: N files skipped"), cancellation. */
DlTrainImages *dl_train_images_new (const char *const *paths, guint n_paths, const DlTrainImagesOptions *options,
                                    GPtrArray *warnings, GCancellable *cancellable, GError **error);
void dl_train_images_free (DlTrainImages *images);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTrainImages, dl_train_images_free)

guint dl_train_images_get_n (DlTrainImages *images);
const DlTrainImage *dl_train_images_get (DlTrainImages *images, guint i);

/* The distinct buckets in use, sorted by (width, height). */
guint dl_train_images_get_n_buckets (DlTrainImages *images);
void dl_train_images_get_bucket (DlTrainImages *images, guint b, int *width, int *height);
/* The bucket index of image i. */
guint dl_train_images_get_bucket_of (DlTrainImages *images, guint i);

/* Pixels of image i at its bucket size, [3, H, W] f32 in [-1, 1] (x / 127.5f - 1
 * in float), mirrored left-right when `flip` (after the crop).  Decodes the file
 * again (it is not kept); a file whose content changed since
 * dl_train_images_new is an error naming it. */
float *dl_train_images_load_pixels (DlTrainImages *images, guint i, gboolean flip, GError **error);

G_END_DECLS
