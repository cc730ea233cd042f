/* dl-image-loader.h: decode dataset images on worker threads.
 *
 * A few threads at most (decoding a folder of 24-megapixel photos all at once would
 * take gigabytes), each job reading the file once for its content hash and its size
 * after EXIF orientation (and checking that it is a whole, usable picture). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  int width, height;  /* after EXIF orientation */
  char *content_hash; /* SHA-256 of the file, hex */
  char *format;       /* "png", "jpeg", "webp" */
  gboolean has_sidecar;
  char *sidecar_caption; /* when asked for and present */
  char *sidecar_error;   /* the sidecar exists but could not be read */
} DlImageInfo;

void dl_image_info_free (DlImageInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlImageInfo, dl_image_info_free)

/* Blocking decode.  A missing file fails with G_IO_ERROR_NOT_FOUND; anything that
 * is not a PNG, JPEG or WebP image fails with a message saying why. */
DlImageInfo *dl_image_decode (const char *path, gboolean read_sidecar, GCancellable *cancellable, GError **error);

/* The same on the loader's threads; the callback runs in the caller's main context. */
void dl_image_decode_async (const char *path, gboolean read_sidecar, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
DlImageInfo *dl_image_decode_finish (GAsyncResult *result, GError **error);

G_END_DECLS
