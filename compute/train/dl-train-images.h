/* dl-train-images.h: the training images of a run: which files, their captions,
 * the bucket (training size) and crop of each, and their pixels as the VAE
 * encoder takes them.
 *
 * Decoding is gdk-pixbuf's (PNG, JPEG, WebP where the loader is installed), EXIF
 * orientation applied.  Each image is resized so that it covers its bucket (the
 * shorter side scaled to the bucket's, a high-quality filter), then cropped to
 * the bucket (centered, or at a random offset).  Without buckets every image's
 * bucket is resolution x resolution.  With buckets the sides are multiples of 64
 * between 256 and 1024 with area <= resolution^2, and each image takes the bucket
 * nearest its aspect ratio (kohya sd-scripts library/model_util.py
 * make_bucket_resolutions, library/train_util.py BucketManager.select_bucket).
 *
 * Images are listed in byte order of their file names (the order replay files
 * index).  A file that cannot be decoded, has no pixels, or is smaller than half
 * the resolution on its shorter side is skipped with a warning naming it; a
 * caption file that is not UTF-8 is an error naming it (the user's words must
 * not be guessed).  No usable image at all is an error. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  int resolution;        /* the square training size (multiple of 8; 64 for buckets) */
  gboolean buckets;      /* aspect-ratio buckets as kohya */
  gboolean random_crop;  /* crop at a random offset (per image, from the seed) instead of the centre */
  guint64 seed;          /* for random crops */
  const char *caption_extension; /* ".txt" when NULL */
} DlTrainImagesOptions;

typedef struct {
  char *path;
  char *name;            /* file name (basename) */
  char *content_hash;    /* SHA-256 of the file, hex */
  int width, height;     /* after EXIF orientation */
  int bucket_width, bucket_height;
  int crop_x, crop_y;    /* top-left of the crop in the resized image */
  int resized_width, resized_height;
  char *caption;         /* from the caption file (stripped; lines folded into spaces), or NULL when none */
  char *filename_caption; /* the file stem with a leading run of digits and dashes and the spaces
                           * after it removed (A1111's filename rule, regex ^[-\d]+\s*) */
} DlTrainImage;

typedef struct _DlTrainImages DlTrainImages;

/* Every image file directly in `folder` (PNG, JPEG, WebP by extension, case-
 * insensitive; other files ignored), or NULL with an error when the folder cannot
 * be read. */
GPtrArray *dl_train_images_list_folder (const char *folder, GError **error);

/* Decode the headers and hashes of `paths` (any order: they are sorted), assign
 * buckets and crops and read captions.  `warnings` (may be NULL) receives a
 * char* per skipped file ("“x.png”: not an image (…); skipped"). */
DlTrainImages *dl_train_images_new (const char *const *paths, guint n_paths, const DlTrainImagesOptions *options,
                                    GPtrArray *warnings, GCancellable *cancellable, GError **error);
void dl_train_images_free (DlTrainImages *images);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTrainImages, dl_train_images_free)

guint dl_train_images_get_n (DlTrainImages *images);
const DlTrainImage *dl_train_images_get (DlTrainImages *images, guint i);

/* The distinct buckets in use, as (width, height) pairs, sorted. */
guint dl_train_images_get_n_buckets (DlTrainImages *images);
void dl_train_images_get_bucket (DlTrainImages *images, guint b, int *width, int *height);
/* The bucket index of image i. */
guint dl_train_images_get_bucket_of (DlTrainImages *images, guint i);

/* Pixels of image i at its bucket size, [3, H, W] f32 in [-1, 1] (x / 127.5 - 1),
 * mirrored left-right when `flip`.  Decodes the file again (it is not kept). */
float *dl_train_images_load_pixels (DlTrainImages *images, guint i, gboolean flip, GError **error);

/* Every bucket resolution for `resolution` (pairs width, height; sorted), as kohya
 * makes them (min 256, max 1024, multiples of 64). */
GArray *dl_train_buckets_for_resolution (int resolution);

/* ---- captions at training time ---- */

/* The caption as one step uses it: with `shuffle`, the comma-separated tags
 * after the first `keep` are shuffled (kohya --shuffle_caption/--keep_tokens);
 * then with probability `dropout` the whole caption becomes "" (kohya
 * --caption_dropout_rate).  Random choices come from the 32-bit words u[0], u[1],
 * ... (the caller draws them; n_u must be at least dl_caption_augment_n_random). */
char *dl_caption_augment (const char *caption, gboolean shuffle, guint keep, double dropout, const guint32 *u,
                          gsize n_u);
gsize dl_caption_augment_n_random (const char *caption);

G_END_DECLS
