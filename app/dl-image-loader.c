#include "dl-config.h"

#include "dl-image-loader.h"

#include "dl-caption.h"

#include <string.h>

void
dl_image_info_free (DlImageInfo *info)
{
  if (!info)
    return;
  g_free (info->content_hash);
  g_clear_object (&info->thumbnail);
  g_free (info->format);
  g_free (info->sidecar_caption);
  g_free (info->sidecar_error);
  g_free (info);
}

typedef struct {
  gboolean too_large;
  int width, height;
} SizeCheck;

static void
size_prepared (GdkPixbufLoader *loader, int width, int height, gpointer data)
{
  SizeCheck *check = data;
  check->width = width;
  check->height = height;
  if (width <= 0 || height <= 0 || (guint64) width * (guint64) height > DL_IMAGE_MAX_PIXELS)
    {
      /* decode a single pixel instead of allocating gigabytes */
      check->too_large = TRUE;
      gdk_pixbuf_loader_set_size (loader, 1, 1);
    }
}

static GdkTexture *
texture_from_pixbuf (GdkPixbuf *pixbuf)
{
  /* GdkMemoryTexture is immutable and may be made on any thread */
  g_autoptr (GBytes) bytes = gdk_pixbuf_read_pixel_bytes (pixbuf);
  gboolean alpha = gdk_pixbuf_get_has_alpha (pixbuf);
  return gdk_memory_texture_new (gdk_pixbuf_get_width (pixbuf), gdk_pixbuf_get_height (pixbuf),
                                 alpha ? GDK_MEMORY_R8G8B8A8 : GDK_MEMORY_R8G8B8, bytes,
                                 (gsize) gdk_pixbuf_get_rowstride (pixbuf));
}

static gboolean
is_supported_format (const char *name)
{
  return g_strcmp0 (name, "png") == 0 || g_strcmp0 (name, "jpeg") == 0 || g_strcmp0 (name, "webp") == 0;
}

/* gdk-pixbuf's WebP loader decodes whatever part of a cut-short file it has and
 * reports no error, which would put a half-grey picture into the dataset.  The
 * RIFF header says how long the file should be. */
static gboolean
webp_is_whole (const char *contents, gsize len, GError **error)
{
  if (len < 12 || memcmp (contents, "RIFF", 4) != 0)
    return TRUE; /* not RIFF at all: the decoder has judged it */
  const guchar *u = (const guchar *) contents;
  guint64 expected = 8 + ((guint64) u[4] | (guint64) u[5] << 8 | (guint64) u[6] << 16 | (guint64) u[7] << 24);
  if (len >= expected)
    return TRUE;
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "The image is damaged: the file ends early (%" G_GSIZE_FORMAT " of %" G_GUINT64_FORMAT " bytes)", len,
               expected);
  return FALSE;
}

/* libjpeg also decodes a cut-short JPEG without an error, greying out what is
 * missing.  A whole file reaches its end-of-image marker: walk the segments
 * (skipping each by its length, so an EXIF thumbnail's own marker does not
 * count) and the entropy-coded scans, where a 0xFF byte is always followed by
 * a stuffed zero or a restart marker.  Bytes after the end marker are allowed,
 * as some cameras append data there. */
static gboolean
jpeg_is_whole (const char *contents, gsize len, GError **error)
{
  const guchar *u = (const guchar *) contents;
  gsize i = 2; /* after SOI: the decoder has checked it */
  while (i + 1 < len)
    {
      if (u[i] != 0xFF)
        return TRUE; /* not a layout this walk knows: leave it to the decoder */
      guchar marker = u[i + 1];
      if (marker == 0xFF)
        {
          i++; /* fill byte */
          continue;
        }
      if (marker == 0xD9)
        return TRUE;
      i += 2;
      if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
        continue; /* markers without a length */
      if (i + 1 >= len)
        break;
      gsize seg = (gsize) u[i] << 8 | u[i + 1];
      if (seg < 2)
        return TRUE;
      i += seg;
      if (marker != 0xDA)
        continue;
      /* the scan's data runs to the next marker that is neither stuffing nor a restart */
      while (i + 1 < len && !(u[i] == 0xFF && u[i + 1] != 0x00 && !(u[i + 1] >= 0xD0 && u[i + 1] <= 0xD7)))
        i++;
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "The image is damaged: the file ends before the picture does (%" G_GSIZE_FORMAT " bytes)", len);
  return FALSE;
}

DlImageInfo *
dl_image_decode (const char *path, gboolean read_sidecar, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) local = NULL;

  g_autoptr (GFileInfo) finfo =
      g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE,
                         G_FILE_QUERY_INFO_NONE, cancellable, &local);
  if (!finfo)
    {
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "The file is not there any more");
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (g_file_info_get_file_type (finfo) != G_FILE_TYPE_REGULAR)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, "Not a regular file");
      return NULL;
    }
  goffset size = g_file_info_get_size (finfo);
  if (size == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The file is empty");
      return NULL;
    }
  if ((guint64) size > DL_IMAGE_MAX_FILE_BYTES)
    {
      g_autofree char *s = g_format_size ((guint64) size);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The file is too large for a dataset image (%s)", s);
      return NULL;
    }

  g_autofree char *contents = NULL;
  gsize len = 0;
  if (!g_file_load_contents (file, cancellable, &contents, &len, NULL, &local))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Could not read the file: ");
      return NULL;
    }

  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  SizeCheck check = { 0 };
  g_signal_connect (loader, "size-prepared", G_CALLBACK (size_prepared), &check);
  gboolean ok = gdk_pixbuf_loader_write (loader, (const guchar *) contents, len, &local);
  /* close even after a failed write, or the loader complains when finalized */
  g_autoptr (GError) close_error = NULL;
  gboolean closed = gdk_pixbuf_loader_close (loader, ok ? &close_error : NULL);
  if (!ok || !closed)
    {
      GError *e = local ? local : close_error;
      if (e && e->domain == GDK_PIXBUF_ERROR && e->code == GDK_PIXBUF_ERROR_UNKNOWN_TYPE)
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not a PNG, JPEG or WebP image");
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The image is damaged: %s",
                     e ? e->message : "the decoder gave up");
      return NULL;
    }
  GdkPixbufFormat *format = gdk_pixbuf_loader_get_format (loader);
  g_autofree char *format_name = format ? gdk_pixbuf_format_get_name (format) : NULL;
  if (!is_supported_format (format_name))
    {
      g_autofree char *upper = format_name ? g_ascii_strup (format_name, -1) : g_strdup ("this");
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s images are not supported; use PNG, JPEG or WebP",
                   upper);
      return NULL;
    }
  if ((g_str_equal (format_name, "webp") && !webp_is_whole (contents, len, &local)) ||
      (g_str_equal (format_name, "jpeg") && !jpeg_is_whole (contents, len, &local)))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (check.too_large)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The image is too large (%d × %d pixels)", check.width,
                   check.height);
      return NULL;
    }
  GdkPixbuf *decoded = gdk_pixbuf_loader_get_pixbuf (loader);
  if (!decoded)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The image is damaged: no picture in it");
      return NULL;
    }
  /* what the camera meant, as every viewer shows it */
  g_autoptr (GdkPixbuf) oriented = gdk_pixbuf_apply_embedded_orientation (decoded);

  DlImageInfo *info = g_new0 (DlImageInfo, 1);
  info->width = gdk_pixbuf_get_width (oriented);
  info->height = gdk_pixbuf_get_height (oriented);
  info->content_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
  info->format = g_steal_pointer (&format_name);

  double scale = MIN (1.0, (double) DL_THUMBNAIL_SIZE / MAX (info->width, info->height));
  int tw = MAX (1, (int) (info->width * scale + 0.5)), th = MAX (1, (int) (info->height * scale + 0.5));
  g_autoptr (GdkPixbuf) thumb = (tw == info->width && th == info->height)
                                    ? g_object_ref (oriented)
                                    : gdk_pixbuf_scale_simple (oriented, tw, th, GDK_INTERP_BILINEAR);
  if (!thumb)
    {
      dl_image_info_free (info);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Out of memory making the thumbnail");
      return NULL;
    }
  info->thumbnail = texture_from_pixbuf (thumb);

  if (read_sidecar)
    {
      g_autofree char *sidecar = dl_caption_sidecar_path (path);
      info->has_sidecar = g_file_test (sidecar, G_FILE_TEST_EXISTS);
      info->sidecar_caption = dl_caption_read_sidecar (path, &local);
      if (local)
        info->sidecar_error = g_strdup (local->message);
    }
  return info;
}

/* ---- the worker pool ---- */

typedef struct {
  char *path;
  gboolean read_sidecar;
} DecodeJob;

static void
decode_job_free (gpointer data)
{
  DecodeJob *job = data;
  g_free (job->path);
  g_free (job);
}

static void
run_decode (gpointer data, gpointer user_data)
{
  GTask *task = data;
  DecodeJob *job = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr (GError) error = NULL;

  if (!g_task_return_error_if_cancelled (task))
    {
      DlImageInfo *info = dl_image_decode (job->path, job->read_sidecar, cancellable, &error);
      if (info)
        g_task_return_pointer (task, info, (GDestroyNotify) dl_image_info_free);
      else
        g_task_return_error (task, g_steal_pointer (&error));
    }
  g_object_unref (task);
}

static GThreadPool *
decode_pool (void)
{
  static GThreadPool *pool;
  if (g_once_init_enter (&pool))
    {
      int n = CLAMP ((int) g_get_num_processors () - 1, 1, 4);
      g_once_init_leave (&pool, g_thread_pool_new (run_decode, NULL, n, FALSE, NULL));
    }
  return pool;
}

void
dl_image_decode_async (const char *path, gboolean read_sidecar, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (path != NULL);
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_image_decode_async);
  DecodeJob *job = g_new0 (DecodeJob, 1);
  job->path = g_strdup (path);
  job->read_sidecar = read_sidecar;
  g_task_set_task_data (task, job, decode_job_free);
  g_thread_pool_push (decode_pool (), task, NULL);
}

DlImageInfo *
dl_image_decode_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
