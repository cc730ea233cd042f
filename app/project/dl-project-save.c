/* Saving the project: change tracking, autosave, saving on request and the caption
 * sidecar files. */
#include "dl-config.h"

#include "dl-project-private.h"

#include <string.h>

#include "dl-caption.h"
#include "dl-error.h"
#include "dl-file-writer.h"

#define SIDECAR_DELAY_MS 400

/* ---- change tracking and autosave ---- */

typedef struct
{
  DlProject *project; /* strong: a write in flight keeps the project */
  guint64 serial;
} WriteData;

static void
write_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  WriteData *wd = user_data;
  g_autoptr (DlProject) self = wd->project;
  guint64 serial = wd->serial;
  g_autoptr (GError) error = NULL;
  g_free (wd);

  if (!dl_file_writer_write_finish (result, &error))
    {
      g_warning ("Could not save the project: %s", error->message);
      dl_project_emit_save_failed (self, error);
      return;
    }
  gboolean was_dirty = dl_project_get_dirty (self);
  self->saved_serial = MAX (self->saved_serial, serial);
  if (was_dirty != dl_project_get_dirty (self))
    dl_project_notify (self, PROP_DIRTY);
}

static void
save_async (DlProject *self)
{
  g_autofree char *path = g_file_get_path (self->file);
  if (!path)
    {
      g_autoptr (GError) error = g_error_new (DL_ERROR, DL_ERROR_IO, "Projects can only be saved on this computer");
      dl_project_emit_save_failed (self, error);
      return;
    }
  char *json = dl_project_to_json (self);
  g_autoptr (GBytes) bytes = g_bytes_new_take (json, strlen (json));
  WriteData *wd = g_new0 (WriteData, 1);
  wd->project = g_object_ref (self);
  wd->serial = self->change_serial;
  dl_file_writer_write_async (path, bytes, NULL, write_done, wd);
}

static gboolean
autosave_cb (gpointer data)
{
  DlProject *self = data;
  self->autosave_id = 0;
  if (dl_project_get_dirty (self))
    save_async (self);
  return G_SOURCE_REMOVE;
}

void
dl_project_mark_changed (DlProject *self)
{
  if (self->quiet)
    return;
  gboolean was_dirty = dl_project_get_dirty (self);
  self->change_serial++;
  /* the first change starts the clock: typing does not postpone the save forever */
  if (!self->autosave_id)
    self->autosave_id = g_timeout_add (DL_PROJECT_AUTOSAVE_MS, autosave_cb, self);
  if (!was_dirty)
    dl_project_notify (self, PROP_DIRTY);
}

gboolean
dl_project_get_dirty (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  return self->change_serial != self->saved_serial;
}

/* ---- caption sidecars ---- */

typedef struct
{
  GWeakRef project; /* a write may finish after the project is gone */
  DlDatasetImage *image;
} SidecarData;

static void
sidecar_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SidecarData *sd = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (DlProject) project = g_weak_ref_get (&sd->project);
  if (!dl_file_writer_write_finish (result, &error))
    {
      g_autofree char *msg = g_strdup_printf ("Could not write the caption file of “%s”: %s",
                                              dl_dataset_image_get_display_name (sd->image), error->message);
      g_warning ("%s", msg);
      if (project)
        dl_project_emit_sidecar_failed (project, sd->image, msg);
    }
  g_weak_ref_clear (&sd->project);
  g_object_unref (sd->image);
  g_free (sd);
}

static void
write_sidecar (DlProject *self, DlDatasetImage *image)
{
  const char *path = dl_dataset_image_get_path (image);
  if (!path)
    return;
  g_autofree char *sidecar = dl_caption_sidecar_path (path);
  const char *caption = dl_dataset_image_get_caption (image);
  /* one line, newline-terminated, as sd-scripts and AUTOMATIC1111 write them */
  char *text = *caption ? g_strconcat (caption, "\n", NULL) : g_strdup ("");
  g_autoptr (GBytes) bytes = g_bytes_new_take (text, strlen (text));
  SidecarData *sd = g_new0 (SidecarData, 1);
  g_weak_ref_init (&sd->project, self);
  sd->image = g_object_ref (image);
  dl_file_writer_write_async (sidecar, bytes, NULL, sidecar_written, sd);
}

static void
write_pending_sidecars (DlProject *self)
{
  g_clear_handle_id (&self->sidecar_id, g_source_remove);
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init (&iter, self->pending_sidecars);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    write_sidecar (self, key);
  g_hash_table_remove_all (self->pending_sidecars);
}

/* For saving and closing: no callbacks, no references left behind. */
static void
write_pending_sidecars_now (DlProject *self)
{
  g_clear_handle_id (&self->sidecar_id, g_source_remove);
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init (&iter, self->pending_sidecars);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      DlDatasetImage *image = key;
      const char *path = dl_dataset_image_get_path (image);
      if (!path)
        continue;
      g_autofree char *sidecar = dl_caption_sidecar_path (path);
      const char *caption = dl_dataset_image_get_caption (image);
      g_autofree char *text = *caption ? g_strconcat (caption, "\n", NULL) : g_strdup ("");
      g_autoptr (GError) error = NULL;
      if (!g_file_set_contents_full (sidecar, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0666, &error))
        {
          g_autofree char *msg = g_strdup_printf ("Could not write the caption file of “%s”: %s",
                                                  dl_dataset_image_get_display_name (image), error->message);
          g_warning ("%s", msg);
          dl_project_emit_sidecar_failed (self, image, msg);
        }
    }
  g_hash_table_remove_all (self->pending_sidecars);
}

static gboolean
sidecar_cb (gpointer data)
{
  DlProject *self = data;
  self->sidecar_id = 0;
  write_pending_sidecars (self);
  return G_SOURCE_REMOVE;
}

void
dl_project_caption_changed (DlDatasetImage *image, GParamSpec *pspec, DlProject *self)
{
  dl_project_mark_changed (self);
  if (self->applying_sidecar || self->quiet)
    return;
  g_hash_table_add (self->pending_sidecars, g_object_ref (image));
  if (!self->sidecar_id)
    self->sidecar_id = g_timeout_add (SIDECAR_DELAY_MS, sidecar_cb, self);
}

/* ---- saving now, and moving the project ---- */

gboolean
dl_project_save (DlProject *self, GError **error)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  g_clear_handle_id (&self->autosave_id, g_source_remove);
  /* after the queued writes, so that this version is the last one on disk */
  dl_file_writer_wait ();
  write_pending_sidecars_now (self);
  g_autofree char *path = g_file_get_path (self->file);
  if (!path)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Projects can only be saved on this computer");
      return FALSE;
    }
  g_autofree char *json = dl_project_to_json (self);
  guint64 serial = self->change_serial;
  if (!g_file_set_contents_full (path, json, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0666, error))
    return FALSE;
  gboolean was_dirty = dl_project_get_dirty (self);
  self->saved_serial = MAX (self->saved_serial, serial);
  if (was_dirty != dl_project_get_dirty (self))
    dl_project_notify (self, PROP_DIRTY);
  return TRUE;
}

gboolean
dl_project_save_as (DlProject *self, GFile *file, GError **error)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);
  g_autoptr (GFile) old = g_object_ref (self->file);
  g_set_object (&self->file, file);
  if (!dl_project_save (self, error))
    {
      g_set_object (&self->file, old);
      return FALSE;
    }
  if (!g_file_equal (old, file))
    dl_project_notify (self, PROP_FILE);
  return TRUE;
}

void
dl_project_discard_changes (DlProject *self)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_clear_handle_id (&self->autosave_id, g_source_remove);
  gboolean was_dirty = dl_project_get_dirty (self);
  self->saved_serial = self->change_serial;
  if (was_dirty)
    dl_project_notify (self, PROP_DIRTY);
}

gboolean
dl_project_flush (DlProject *self, GError **error)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  if (dl_project_get_dirty (self))
    return dl_project_save (self, error);
  dl_file_writer_wait ();
  write_pending_sidecars_now (self);
  return TRUE;
}

void
dl_project_set_file (DlProject *self, GFile *file)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (G_IS_FILE (file));
  if (!g_set_object (&self->file, file))
    return;
  dl_project_notify (self, PROP_FILE);
  self->change_serial++;
  save_async (self);
}
