/* dl-image-file.c: see dl-image-file.h. */
#include "dl-config.h"

#include "train/dl-image-file.h"

#include <string.h>

void
dl_image_file_free (DlImageFile *image)
{
  if (!image)
    return;
  g_clear_object (&image->pixbuf);
  g_free (image->content_hash);
  g_free (image->format);
  g_free (image);
}

typedef struct
{
  gboolean too_large;
  int width, height;
} SizeCheck;

static void
size_prepared (GdkPixbufLoader *loader, int width, int height, gpointer data)
{
  SizeCheck *check = data;
  check->width = width;
  check->height = height;
  if (width <= 0 || height <= 0 || (guint64)width * (guint64)height > DL_IMAGE_MAX_PIXELS)
    {
      /* decode a single pixel instead of allocating gigabytes */
      check->too_large = TRUE;
      gdk_pixbuf_loader_set_size (loader, 1, 1);
    }
}

static gboolean
is_supported_format (const char *name)
{
  return g_strcmp0 (name, "png") == 0 || g_strcmp0 (name, "jpeg") == 0 || g_strcmp0 (name, "webp") == 0;
}

/* gdk-pixbuf's WebP loader decodes whatever part of a cut-short file it has and
 * reports no error.  The RIFF header says how long the file should be. */
static gboolean
webp_is_whole (const guint8 *u, gsize len, GError **error)
{
  if (len < 12 || memcmp (u, "RIFF", 4) != 0)
    return TRUE; /* not RIFF at all: the decoder has judged it */
  guint64 expected = 8 + ((guint64)u[4] | (guint64)u[5] << 8 | (guint64)u[6] << 16 | (guint64)u[7] << 24);
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
jpeg_is_whole (const guint8 *u, gsize len, GError **error)
{
  gsize i = 2; /* after SOI: the decoder has checked it */
  while (i + 1 < len)
    {
      if (u[i] != 0xFF)
        return TRUE; /* not a layout this walk knows: leave it to the decoder */
      guint8 marker = u[i + 1];
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
      gsize seg = (gsize)u[i] << 8 | u[i + 1];
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

gboolean
dl_image_file_is_whole (const char *format, const guint8 *contents, gsize len, GError **error)
{
  g_return_val_if_fail (contents != NULL || len == 0, FALSE);
  if (g_strcmp0 (format, "webp") == 0)
    return webp_is_whole (contents, len, error);
  if (g_strcmp0 (format, "jpeg") == 0)
    return jpeg_is_whole (contents, len, error);
  return TRUE;
}

/* The file's bytes, after the checks that need no decoding. */
static char *
load_contents (const char *path, gsize *len, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) local = NULL;
  g_autoptr (GFileInfo) finfo =
    g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE,
                       cancellable, &local);
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
  if ((guint64)size > DL_IMAGE_MAX_FILE_BYTES)
    {
      g_autofree char *s = g_format_size ((guint64)size);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The file is too large for a dataset image (%s)", s);
      return NULL;
    }
  char *contents = NULL;
  if (!g_file_load_contents (file, cancellable, &contents, len, NULL, &local))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Could not read the file: ");
      return NULL;
    }
  if (*len == 0)
    { /* emptied since the query */
      g_free (contents);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The file is empty");
      return NULL;
    }
  return contents;
}

DlImageFile *
dl_image_file_read (const char *path, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  gsize len = 0;
  g_autofree char *contents = load_contents (path, &len, cancellable, error);
  if (!contents)
    return NULL;

  g_autoptr (GError) local = NULL;
  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  SizeCheck check = { 0 };
  g_signal_connect (loader, "size-prepared", G_CALLBACK (size_prepared), &check);
  gboolean ok = gdk_pixbuf_loader_write (loader, (const guchar *)contents, len, &local);
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
  if (!dl_image_file_is_whole (format_name, (const guint8 *)contents, len, error))
    return NULL;
  if (check.too_large)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The image is too large (%d × %d pixels)", check.width,
                   check.height);
      return NULL;
    }
  GdkPixbuf *decoded = gdk_pixbuf_loader_get_pixbuf (loader);
  if (!decoded || gdk_pixbuf_get_width (decoded) <= 0 || gdk_pixbuf_get_height (decoded) <= 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The image is damaged: no picture in it");
      return NULL;
    }
  /* what the camera meant, as every viewer shows it */
  g_autoptr (GdkPixbuf) oriented = gdk_pixbuf_apply_embedded_orientation (decoded);
  if (!oriented)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Out of memory turning the image upright");
      return NULL;
    }
  if (gdk_pixbuf_get_bits_per_sample (oriented) != 8 || gdk_pixbuf_get_colorspace (oriented) != GDK_COLORSPACE_RGB ||
      gdk_pixbuf_get_n_channels (oriented) != (gdk_pixbuf_get_has_alpha (oriented) ? 4 : 3))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "The decoder gave an unexpected pixel layout");
      return NULL;
    }

  DlImageFile *image = g_new0 (DlImageFile, 1);
  image->pixbuf = g_steal_pointer (&oriented);
  image->content_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)contents, len);
  image->format = g_steal_pointer (&format_name);
  return image;
}
