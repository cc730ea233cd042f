/* dl-train-images.c: see dl-train-images.h. */
#include "dl-config.h"

#include "train/dl-train-images.h"

#include <string.h>

#include "dl-error.h"
#include "dl-philox.h"
#include "train/dl-caption-file.h"
#include "train/dl-image-file.h"
#include "train/dl-image-resize.h"

struct _DlTrainImages
{
  GPtrArray *images; /* DlTrainImage*, in name order */
  GArray *buckets;   /* DlTrainBucket in use, sorted */
  GArray *bucket_of; /* guint per image */
};

static void
train_image_free (gpointer p)
{
  DlTrainImage *image = p;
  g_free (image->path);
  g_free (image->name);
  g_free (image->content_hash);
  g_free (image->caption);
  g_free (image->filename_caption);
  g_free (image);
}

void
dl_train_images_free (DlTrainImages *images)
{
  if (!images)
    return;
  g_ptr_array_unref (images->images);
  g_array_unref (images->buckets);
  g_array_unref (images->bucket_of);
  g_free (images);
}

/* ---- the folder ---- */

static gboolean
has_image_extension (const char *name)
{
  const char *dot = strrchr (name, '.');
  if (!dot)
    return FALSE;
  return g_ascii_strcasecmp (dot, ".png") == 0 || g_ascii_strcasecmp (dot, ".jpg") == 0 ||
         g_ascii_strcasecmp (dot, ".jpeg") == 0 || g_ascii_strcasecmp (dot, ".webp") == 0;
}

/* File names in byte order, ties (the same name in different folders) by path. */
static int
compare_paths (gconstpointer a, gconstpointer b)
{
  const char *pa = *(const char *const *)a, *pb = *(const char *const *)b;
  g_autofree char *na = g_path_get_basename (pa);
  g_autofree char *nb = g_path_get_basename (pb);
  int c = strcmp (na, nb);
  return c != 0 ? c : strcmp (pa, pb);
}

GPtrArray *
dl_train_images_list_folder (const char *folder, GError **error)
{
  g_return_val_if_fail (folder != NULL, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) dir = g_dir_open (folder, 0, &local);
  if (!dir)
    {
      g_autofree char *display = g_filename_display_name (folder);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not read the image folder “%s”: %s", display, local->message);
      return NULL;
    }
  GPtrArray *paths = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      if (name[0] == '.' || !has_image_extension (name))
        continue;
      char *path = g_build_filename (folder, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (paths, path);
      else
        g_free (path);
    }
  g_ptr_array_sort (paths, compare_paths);
  return paths;
}

/* ---- reading the dataset ---- */

static gboolean
check_options (const DlTrainImagesOptions *options, GError **error)
{
  int r = options->resolution;
  if (r <= 0 || r % 8 != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Training resolution %d: it must be a positive multiple of 8", r);
      return FALSE;
    }
  if (options->buckets && r % 64 != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Training resolution %d: with aspect-ratio buckets it must be a multiple of 64", r);
      return FALSE;
    }
  const char *ext = options->caption_extension;
  if (ext && (ext[0] == '\0' || strchr (ext, G_DIR_SEPARATOR)))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Caption extension “%s”: not a file name ending", ext);
      return FALSE;
    }
  return TRUE;
}

/* "Not a PNG image" -> "not a PNG image", leaving "PNG images ..." alone. */
static char *
lower_first (const char *message)
{
  char *s = g_strdup (message);
  if (g_ascii_isupper (s[0]) && g_ascii_islower (s[1]))
    s[0] = g_ascii_tolower (s[0]);
  return s;
}

static void
warn (GPtrArray *warnings, const char *name, const char *what)
{
  g_autofree char *display = g_filename_display_name (name);
  char *line = g_strdup_printf ("“%s”: %s; skipped", display, what);
  if (warnings)
    g_ptr_array_add (warnings, line);
  else
    g_free (line);
}

/* A random crop offset in [0, range], fixed by the seed and the file's content. */
static int
random_offset (guint64 seed, const char *content_hash, guint64 axis, int range)
{
  if (range <= 0)
    return 0;
  char head[17];
  memcpy (head, content_hash, 16);
  head[16] = '\0';
  guint64 key = g_ascii_strtoull (head, NULL, 16);
  return (int)(((guint64)dl_philox_word (seed, key, axis) * (guint64)(range + 1)) >> 32);
}

/* Where the paths are, for the message when none of them is usable. */
static char *
describe_location (GPtrArray *paths)
{
  g_autofree char *dir = g_path_get_dirname (g_ptr_array_index (paths, 0));
  for (guint i = 1; i < paths->len; i++)
    {
      g_autofree char *other = g_path_get_dirname (g_ptr_array_index (paths, i));
      if (strcmp (dir, other) != 0)
        return g_strdup ("the given files");
    }
  g_autofree char *display = g_filename_display_name (dir);
  return g_strdup_printf ("“%s”", display);
}

/* The image at `path`, or NULL with a warning (skipped) or an error (fatal). */
static DlTrainImage *
read_image (const char *path, const DlTrainImagesOptions *options, const GArray *candidates, GPtrArray *warnings,
            GCancellable *cancellable, gboolean *skipped, GError **error)
{
  *skipped = FALSE;
  g_autofree char *name = g_path_get_basename (path);
  g_autoptr (GError) local = NULL;
  g_autoptr (DlImageFile) file = dl_image_file_read (path, cancellable, &local);
  if (!file)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_set_error_literal (error, DL_ERROR, DL_ERROR_CANCELLED, local->message);
          return NULL;
        }
      g_autofree char *what = lower_first (local->message);
      warn (warnings, name, what);
      *skipped = TRUE;
      return NULL;
    }
  int width = gdk_pixbuf_get_width (file->pixbuf), height = gdk_pixbuf_get_height (file->pixbuf);
  if (MIN (width, height) * 2 < options->resolution)
    {
      g_autofree char *what = g_strdup_printf ("%d × %d pixels, smaller than half the training resolution (%d) on its "
                                               "shorter side",
                                               width, height, options->resolution);
      warn (warnings, name, what);
      *skipped = TRUE;
      return NULL;
    }
  g_autofree char *caption = dl_caption_file_read (path, options->caption_extension, DL_CAPTION_UTF8_STRICT, &local);
  if (local)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_FILE, local->message);
      return NULL;
    }

  DlTrainImage *image = g_new0 (DlTrainImage, 1);
  image->path = g_strdup (path);
  image->name = g_steal_pointer (&name);
  image->content_hash = g_steal_pointer (&file->content_hash);
  image->width = width;
  image->height = height;
  image->caption = g_steal_pointer (&caption);
  image->filename_caption = dl_caption_from_file_name (path);
  guint b = dl_train_buckets_select ((const DlTrainBucket *)(gconstpointer)candidates->data, candidates->len, width,
                                     height, &image->resized_width, &image->resized_height);
  const DlTrainBucket *bucket = &g_array_index (candidates, DlTrainBucket, b);
  image->bucket_width = bucket->width;
  image->bucket_height = bucket->height;
  /* kohya trim_and_resize_if_required: trim // 2, or random.randint(0, trim) */
  int trim_x = image->resized_width - bucket->width, trim_y = image->resized_height - bucket->height;
  if (options->random_crop)
    {
      image->crop_x = random_offset (options->seed, image->content_hash, 0, trim_x);
      image->crop_y = random_offset (options->seed, image->content_hash, 1, trim_y);
    }
  else
    {
      image->crop_x = trim_x / 2;
      image->crop_y = trim_y / 2;
    }
  return image;
}

static int
compare_buckets (gconstpointer a, gconstpointer b)
{
  const DlTrainBucket *x = a, *y = b;
  if (x->width != y->width)
    return x->width < y->width ? -1 : 1;
  return (x->height > y->height) - (x->height < y->height);
}

/* The buckets the images use, and each image's index among them. */
static void
collect_buckets (DlTrainImages *self)
{
  for (guint i = 0; i < self->images->len; i++)
    {
      const DlTrainImage *image = g_ptr_array_index (self->images, i);
      gboolean seen = FALSE;
      for (guint b = 0; b < self->buckets->len && !seen; b++)
        {
          const DlTrainBucket *bucket = &g_array_index (self->buckets, DlTrainBucket, b);
          seen = bucket->width == image->bucket_width && bucket->height == image->bucket_height;
        }
      if (!seen)
        {
          DlTrainBucket bucket = { image->bucket_width, image->bucket_height };
          g_array_append_val (self->buckets, bucket);
        }
    }
  g_array_sort (self->buckets, compare_buckets);
  for (guint i = 0; i < self->images->len; i++)
    {
      const DlTrainImage *image = g_ptr_array_index (self->images, i);
      guint b = 0;
      while (g_array_index (self->buckets, DlTrainBucket, b).width != image->bucket_width ||
             g_array_index (self->buckets, DlTrainBucket, b).height != image->bucket_height)
        b++;
      g_array_append_val (self->bucket_of, b);
    }
}

DlTrainImages *
dl_train_images_new (const char *const *paths, guint n_paths, const DlTrainImagesOptions *options, GPtrArray *warnings,
                     GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (paths != NULL || n_paths == 0, NULL);
  g_return_val_if_fail (options != NULL, NULL);
  if (!check_options (options, error))
    return NULL;
  if (n_paths == 0)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "No training image given");
      return NULL;
    }

  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  for (guint i = 0; i < n_paths; i++)
    {
      g_return_val_if_fail (paths[i] != NULL, NULL);
      g_ptr_array_add (sorted, (gpointer)paths[i]);
    }
  g_ptr_array_sort (sorted, compare_paths);

  g_autoptr (GArray) candidates = NULL;
  if (options->buckets)
    {
      candidates = dl_train_buckets_for_resolution (options->resolution);
    }
  else
    {
      candidates = g_array_new (FALSE, FALSE, sizeof (DlTrainBucket));
      DlTrainBucket square = { options->resolution, options->resolution };
      g_array_append_val (candidates, square);
    }

  g_autoptr (DlTrainImages) self = g_new0 (DlTrainImages, 1);
  self->images = g_ptr_array_new_with_free_func (train_image_free);
  self->buckets = g_array_new (FALSE, FALSE, sizeof (DlTrainBucket));
  self->bucket_of = g_array_new (FALSE, FALSE, sizeof (guint));
  guint n_skipped = 0;
  for (guint i = 0; i < sorted->len; i++)
    {
      const char *path = g_ptr_array_index (sorted, i);
      if (i > 0 && strcmp (path, g_ptr_array_index (sorted, i - 1)) == 0)
        continue; /* the same file twice */
      g_autoptr (GError) local = NULL;
      if (g_cancellable_set_error_if_cancelled (cancellable, &local))
        {
          g_set_error_literal (error, DL_ERROR, DL_ERROR_CANCELLED, local->message);
          return NULL;
        }
      gboolean skipped;
      DlTrainImage *image = read_image (path, options, candidates, warnings, cancellable, &skipped, error);
      if (image)
        g_ptr_array_add (self->images, image);
      else if (skipped)
        n_skipped++;
      else
        return NULL;
    }
  if (self->images->len == 0)
    {
      g_autofree char *where = describe_location (sorted);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "No usable training image in %s: %u file%s skipped", where,
                   n_skipped, n_skipped == 1 ? "" : "s");
      return NULL;
    }
  collect_buckets (self);
  return g_steal_pointer (&self);
}

guint
dl_train_images_get_n (DlTrainImages *images)
{
  g_return_val_if_fail (images != NULL, 0);
  return images->images->len;
}

const DlTrainImage *
dl_train_images_get (DlTrainImages *images, guint i)
{
  g_return_val_if_fail (images != NULL && i < images->images->len, NULL);
  return g_ptr_array_index (images->images, i);
}

guint
dl_train_images_get_n_buckets (DlTrainImages *images)
{
  g_return_val_if_fail (images != NULL, 0);
  return images->buckets->len;
}

void
dl_train_images_get_bucket (DlTrainImages *images, guint b, int *width, int *height)
{
  g_return_if_fail (images != NULL && b < images->buckets->len);
  const DlTrainBucket *bucket = &g_array_index (images->buckets, DlTrainBucket, b);
  if (width)
    *width = bucket->width;
  if (height)
    *height = bucket->height;
}

guint
dl_train_images_get_bucket_of (DlTrainImages *images, guint i)
{
  g_return_val_if_fail (images != NULL && i < images->bucket_of->len, 0);
  return g_array_index (images->bucket_of, guint, i);
}

/* ---- pixels ---- */

/* The pixbuf's colours packed as RGB, alpha dropped (PIL convert("RGB") drops
 * it too: kohya trains on the colours under transparent pixels as they are). */
static uint8_t *
packed_rgb (GdkPixbuf *pixbuf)
{
  int w = gdk_pixbuf_get_width (pixbuf), h = gdk_pixbuf_get_height (pixbuf);
  int channels = gdk_pixbuf_get_n_channels (pixbuf), stride = gdk_pixbuf_get_rowstride (pixbuf);
  const guint8 *src = gdk_pixbuf_read_pixels (pixbuf);
  uint8_t *rgb = g_new (uint8_t, (gsize)w * h * 3);
  for (int y = 0; y < h; y++)
    {
      const guint8 *s = src + (gsize)y * stride;
      uint8_t *d = rgb + (gsize)y * w * 3;
      for (int x = 0; x < w; x++)
        memcpy (d + x * 3, s + x * channels, 3);
    }
  return rgb;
}

float *
dl_train_images_load_pixels (DlTrainImages *images, guint i, gboolean flip, GError **error)
{
  g_return_val_if_fail (images != NULL && i < images->images->len, NULL);
  const DlTrainImage *image = g_ptr_array_index (images->images, i);
  g_autofree char *display = g_filename_display_name (image->path);
  g_autoptr (GError) local = NULL;
  g_autoptr (DlImageFile) file = dl_image_file_read (image->path, NULL, &local);
  if (!file)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Training image “%s”: %s", display, local->message);
      return NULL;
    }
  if (strcmp (file->content_hash, image->content_hash) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "Training image “%s” changed while training was being prepared; start again", display);
      return NULL;
    }
  g_autofree uint8_t *rgb = packed_rgb (file->pixbuf);
  g_clear_pointer (&file, dl_image_file_free);
  g_autofree uint8_t *resized =
    dl_image_resize_rgb8 (rgb, image->width, image->height, image->resized_width, image->resized_height);

  int bw = image->bucket_width, bh = image->bucket_height, rw = image->resized_width;
  gsize plane = (gsize)bw * bh;
  float *chw = g_new (float, plane * 3);
  for (int y = 0; y < bh; y++)
    {
      const uint8_t *row = resized + ((gsize)(y + image->crop_y) * rw + image->crop_x) * 3;
      for (int x = 0; x < bw; x++)
        {
          const uint8_t *px = row + (gsize)(flip ? bw - 1 - x : x) * 3;
          for (int c = 0; c < 3; c++)
            chw[c * plane + (gsize)y * bw + x] = (float)px[c] / 127.5f - 1.0f;
        }
    }
  return chw;
}
