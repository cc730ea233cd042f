/* dl-preview-job.h: a batch of preview images (rows = prompts, columns = models),
 * made one after another by a DlPreviewBackend on a worker thread.
 *
 * Results come back to the main thread as they finish, as GdkTextures.  Dropping
 * the last reference to a running job cancels it; whatever the worker still
 * reports is then discarded. */
#pragma once

#include <gtk/gtk.h>

#include "dl-preview-backend.h"

G_BEGIN_DECLS

#define DL_TYPE_PREVIEW_JOB (dl_preview_job_get_type ())
G_DECLARE_FINAL_TYPE (DlPreviewJob, dl_preview_job, DL, PREVIEW_JOB, GObject)

DlPreviewJob *dl_preview_job_new (DlPreviewBackend *backend);
/* Queue an image for cell (row, column).  Before dl_preview_job_start() only. */
void dl_preview_job_add (DlPreviewJob *self, guint row, guint column, const DlPreviewRequest *request);
guint dl_preview_job_get_n_items (DlPreviewJob *self);
const DlPreviewRequest *dl_preview_job_get_request (DlPreviewJob *self, guint row, guint column);

/* Signals, all on the main thread:
 *   "item-started"  (row, column)
 *   "progress"      (fraction of the whole batch, 0..1)
 *   "item-finished" (row, column, GdkTexture or NULL, GError or NULL)
 *   "finished"      (cancelled) */
void dl_preview_job_start (DlPreviewJob *self);
void dl_preview_job_cancel (DlPreviewJob *self);
gboolean dl_preview_job_get_running (DlPreviewJob *self);

/* An engine image as a texture (any thread). */
GdkTexture *dl_preview_image_to_texture (const DlPreviewImage *image);

G_END_DECLS
