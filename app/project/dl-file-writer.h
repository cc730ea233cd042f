/* dl-file-writer.h: atomic file writes (temporary file + rename) on one worker
 * thread, in the order they were asked for.
 *
 * Project autosaves and caption sidecars go through here so that the window never
 * waits for a disk, a later write of a file always lands after an earlier one, and
 * a crash mid-write leaves the previous version intact. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Write `bytes` to `path`, replacing it atomically.  The callback runs in the
 * calling thread's main context. */
void dl_file_writer_write_async (const char *path, GBytes *bytes, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
gboolean dl_file_writer_write_finish (GAsyncResult *result, GError **error);

/* Block until every write queued so far is on disk (callbacks may still be
 * pending in their main contexts).  For quitting and tests. */
void dl_file_writer_wait (void);

G_END_DECLS
