/* dl-atomic-file.h: write a file so that readers see either the old file or the
 * complete new one, never a part: a temporary file in the same directory,
 * written, flushed to disk, then renamed over the target. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DlAtomicFile DlAtomicFile;

/* Creates "<path>.XXXXXX" next to `path`. */
DlAtomicFile *dl_atomic_file_begin (const char *path, GError **error);
/* Append bytes (retries short writes and EINTR). */
gboolean dl_atomic_file_write (DlAtomicFile *f, const void *data, gsize len, GError **error);
/* fsync, close and rename over the target; frees f in every case. */
gboolean dl_atomic_file_commit (DlAtomicFile *f, GError **error);
/* Remove the temporary file (a NULL f is fine). */
void dl_atomic_file_abort (DlAtomicFile *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlAtomicFile, dl_atomic_file_abort)

G_END_DECLS
