/* dl-image-file.h: one dataset image file, read as the window and the trainer
 * both need it: the bytes hashed, the format checked (PNG, JPEG, WebP), the
 * picture decoded by gdk-pixbuf with its EXIF orientation applied.
 *
 * Limits guard against mistakes (a 2-gigapixel scan dropped into a dataset), and
 * JPEG and WebP files that end early are refused: their decoders return a
 * half-grey picture without an error. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* A dataset image larger than this is almost certainly a mistake. */
#define DL_IMAGE_MAX_FILE_BYTES (256u * 1024 * 1024)
#define DL_IMAGE_MAX_PIXELS (16384u * 16384u)

typedef struct
{
  GdkPixbuf *pixbuf;  /* 8-bit RGB or RGBA, EXIF orientation applied */
  char *content_hash; /* SHA-256 of the file, hex */
  char *format;       /* "png", "jpeg", "webp" */
} DlImageFile;

void dl_image_file_free (DlImageFile *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlImageFile, dl_image_file_free)

/* Blocking.  Errors are G_IO_ERROR, with a message a person can read (not
 * naming the file: the caller does): a missing file fails with
 * G_IO_ERROR_NOT_FOUND, anything that is not a whole PNG, JPEG or WebP image
 * within the limits with G_IO_ERROR_INVALID_DATA or G_IO_ERROR_NOT_SUPPORTED. */
DlImageFile *dl_image_file_read (const char *path, GCancellable *cancellable, GError **error);

/* FALSE with an error when a JPEG or WebP file (`format` "jpeg" or "webp") ends
 * before its picture does; TRUE for other formats or layouts it cannot judge. */
gboolean dl_image_file_is_whole (const char *format, const guint8 *contents, gsize len, GError **error);

G_END_DECLS
