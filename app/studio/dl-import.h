/* dl-import.h: turn what the user dropped, pasted or picked (files and folders)
 * into the list of image files to add. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  GPtrArray *images;  /* GFile, in a stable order: as given, folders sorted by name */
  guint n_not_images; /* files skipped because they are not PNG, JPEG or WebP */
  guint n_not_local;  /* files that have no local path (e.g. on a server) */
  GPtrArray *errors;  /* char*: folders that could not be read, with the reason */
} DlImportResult;

void dl_import_result_free (DlImportResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlImportResult, dl_import_result_free)

/* Whether a file name looks like an image we take (.png, .jpg, .jpeg, .webp, any case). */
gboolean dl_import_is_image_name (const char *name);

/* Expand `files` (GFile): files are taken if their name says PNG, JPEG or WebP,
 * folders are searched recursively (hidden entries skipped).  Blocking. */
DlImportResult *dl_import_collect (GPtrArray *files, GCancellable *cancellable);

/* The same on a worker thread. */
void dl_import_collect_async (GPtrArray *files, GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data);
DlImportResult *dl_import_collect_finish (GAsyncResult *result, GError **error);

G_END_DECLS
