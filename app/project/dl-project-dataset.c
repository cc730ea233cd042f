/* The project's dataset: which images it holds (adding, removing and undoing it,
 * moving, missing files), decoding them, and the rules that tie them together
 * (warnings, counts). */
#include "dl-config.h"

#include "dl-project-private.h"

#include "dl-caption.h"
#include "dl-image-loader.h"

/* ---- counts and warnings ---- */

static void
set_count (DlProject *self, guint *field, guint value, DlProjectProp prop)
{
  if (*field == value)
    return;
  *field = value;
  dl_project_notify (self, prop);
}

void
dl_project_recount (DlProject *self)
{
  g_clear_handle_id (&self->recount_id, g_source_remove);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  guint loading = 0, missing = 0, unreadable = 0, warnings = 0;
  /* the first image with a given content is the original, later ones are duplicates */
  g_autoptr (GHashTable) first = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      const char *duplicate_of = NULL;
      switch (dl_dataset_image_get_state (image))
        {
        case DL_IMAGE_STATE_LOADING:
          loading++;
          break;
        case DL_IMAGE_STATE_MISSING:
          missing++;
          break;
        case DL_IMAGE_STATE_UNREADABLE:
          unreadable++;
          break;
        case DL_IMAGE_STATE_READY:
          {
            const char *hash = dl_dataset_image_get_content_hash (image);
            DlDatasetImage *orig = hash ? g_hash_table_lookup (first, hash) : NULL;
            if (orig)
              duplicate_of = dl_dataset_image_get_display_name (orig);
            else if (hash)
              g_hash_table_insert (first, (gpointer)hash, image);
          }
          break;
        }
      dl_dataset_image_set_warnings (image, self->resolution, duplicate_of);
      if (dl_dataset_image_get_warning (image))
        warnings++;
    }
  set_count (self, &self->n_loading, loading, PROP_N_LOADING);
  set_count (self, &self->n_missing, missing, PROP_N_MISSING);
  set_count (self, &self->n_unreadable, unreadable, PROP_N_UNREADABLE);
  set_count (self, &self->n_warnings, warnings, PROP_N_WARNINGS);
}

static gboolean
recount_cb (gpointer data)
{
  DlProject *self = data;
  self->recount_id = 0;
  dl_project_recount (self);
  return G_SOURCE_REMOVE;
}

/* Many decodes finish in a burst: count once for all of them. */
static void
queue_recount (DlProject *self)
{
  if (!self->recount_id)
    self->recount_id = g_idle_add (recount_cb, self);
}

/* ---- decoding ---- */

typedef struct
{
  GWeakRef project; /* a closed project just drops the result */
  DlDatasetImage *image;
  guint serial;
} DecodeData;

static void
decode_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DecodeData *dd = user_data;
  g_autoptr (DlProject) self = g_weak_ref_get (&dd->project);
  g_autoptr (DlDatasetImage) image = dd->image;
  guint serial = dd->serial;
  g_weak_ref_clear (&dd->project);
  g_free (dd);

  g_autoptr (GError) error = NULL;
  g_autoptr (DlImageInfo) info = dl_image_decode_finish (result, &error);
  if (!self || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* a newer decode of the same image was started: this one is stale */
  if (GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (image), "dl-decode-serial")) != serial)
    return;

  if (!info)
    {
      DlImageState state =
        g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ? DL_IMAGE_STATE_MISSING : DL_IMAGE_STATE_UNREADABLE;
      dl_dataset_image_set_failed (image, state, error->message);
    }
  else
    {
      dl_dataset_image_set_ready (image, info->width, info->height, info->content_hash);
      /* a caption written elsewhere (sd-scripts, a text editor) fills an empty one */
      if (info->sidecar_caption && *info->sidecar_caption && !*dl_dataset_image_get_caption (image))
        {
          self->applying_sidecar = TRUE;
          dl_dataset_image_set_caption (image, info->sidecar_caption);
          self->applying_sidecar = FALSE;
        }
      if (info->sidecar_error)
        dl_project_emit_sidecar_failed (self, image, info->sidecar_error);
    }
  queue_recount (self);
}

static void
start_decode (DlProject *self, DlDatasetImage *image)
{
  static guint next_serial = 1;
  guint serial = next_serial++;
  g_object_set_data (G_OBJECT (image), "dl-decode-serial", GUINT_TO_POINTER (serial));
  dl_dataset_image_set_loading (image);
  const char *path = dl_dataset_image_get_path (image);
  if (!path)
    {
      dl_dataset_image_set_failed (image, DL_IMAGE_STATE_UNREADABLE, "The file is not on this computer");
      return;
    }
  DecodeData *dd = g_new0 (DecodeData, 1);
  g_weak_ref_init (&dd->project, self);
  dd->image = g_object_ref (image);
  dd->serial = serial;
  dl_image_decode_async (path, TRUE, self->cancellable, decode_done, dd);
}

/* ---- membership ---- */

void
dl_project_track_image (DlProject *self, DlDatasetImage *image)
{
  const char *path = dl_dataset_image_get_path (image);
  if (path)
    {
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->paths, path));
      g_hash_table_insert (self->paths, g_strdup (path), GUINT_TO_POINTER (count + 1));
    }
  g_signal_connect (image, "notify::caption", G_CALLBACK (dl_project_caption_changed), self);
}

static void
untrack_image (DlProject *self, DlDatasetImage *image)
{
  const char *path = dl_dataset_image_get_path (image);
  if (path)
    {
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->paths, path));
      if (count <= 1)
        g_hash_table_remove (self->paths, path);
      else
        g_hash_table_insert (self->paths, g_strdup (path), GUINT_TO_POINTER (count - 1));
    }
  g_signal_handlers_disconnect_by_func (image, dl_project_caption_changed, self);
  g_hash_table_remove (self->pending_sidecars, image);
}

gboolean
dl_project_contains (DlProject *self, GFile *file)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);
  g_autofree char *path = g_file_get_path (file);
  return path && g_hash_table_contains (self->paths, path);
}

static void
clear_undo (DlProject *self)
{
  gboolean could = dl_project_can_undo_remove (self);
  g_ptr_array_set_size (self->removed, 0);
  g_array_set_size (self->removed_positions, 0);
  if (could)
    dl_project_notify (self, PROP_CAN_UNDO_REMOVE);
}

guint
dl_project_add_files (DlProject *self, GPtrArray *files, guint *n_already)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  g_return_val_if_fail (files != NULL, 0);
  g_autoptr (GPtrArray) added = g_ptr_array_new_with_free_func (g_object_unref);
  guint already = 0;
  for (guint i = 0; i < files->len; i++)
    {
      GFile *file = files->pdata[i];
      if (dl_project_contains (self, file))
        {
          already++;
          continue;
        }
      DlDatasetImage *image = dl_dataset_image_new (file, "");
      dl_project_track_image (self, image);
      g_ptr_array_add (added, image);
    }
  if (added->len)
    {
      g_list_store_splice (self->images, g_list_model_get_n_items (G_LIST_MODEL (self->images)), 0, added->pdata,
                           added->len);
      for (guint i = 0; i < added->len; i++)
        start_decode (self, added->pdata[i]);
      dl_project_mark_changed (self);
      dl_project_recount (self);
    }
  if (n_already)
    *n_already = already;
  return added->len;
}

static int
compare_uint (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *)a, y = *(const guint *)b;
  return x < y ? -1 : x > y;
}

void
dl_project_remove (DlProject *self, const guint *positions, guint n_positions)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (positions != NULL || n_positions == 0);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  g_autoptr (GArray) sorted = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; i < n_positions; i++)
    if (positions[i] < n)
      g_array_append_val (sorted, positions[i]);
  g_array_sort (sorted, compare_uint);
  /* drop repeats */
  for (guint i = 1; i < sorted->len;)
    if (g_array_index (sorted, guint, i) == g_array_index (sorted, guint, i - 1))
      g_array_remove_index (sorted, i);
    else
      i++;
  if (sorted->len == 0)
    return;

  g_ptr_array_set_size (self->removed, 0);
  g_array_set_size (self->removed_positions, 0);
  for (guint i = 0; i < sorted->len; i++)
    {
      guint pos = g_array_index (sorted, guint, i);
      g_ptr_array_add (self->removed, g_list_model_get_item (G_LIST_MODEL (self->images), pos));
      g_array_append_val (self->removed_positions, pos);
    }
  /* from the back, so that the positions stay valid */
  for (guint i = sorted->len; i-- > 0;)
    {
      guint pos = g_array_index (sorted, guint, i);
      untrack_image (self, self->removed->pdata[i]);
      g_list_store_remove (self->images, pos);
    }
  dl_project_notify (self, PROP_CAN_UNDO_REMOVE);
  dl_project_mark_changed (self);
  dl_project_recount (self);
}

gboolean
dl_project_can_undo_remove (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  return self->removed->len > 0;
}

guint
dl_project_undo_remove (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  guint count = self->removed->len;
  if (count == 0)
    return 0;
  for (guint i = 0; i < count; i++)
    {
      DlDatasetImage *image = self->removed->pdata[i];
      guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
      guint pos = MIN (g_array_index (self->removed_positions, guint, i), n);
      dl_project_track_image (self, image);
      g_list_store_insert (self->images, pos, image);
    }
  clear_undo (self);
  dl_project_mark_changed (self);
  dl_project_recount (self);
  return count;
}

void
dl_project_move (DlProject *self, guint from, guint to)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  g_return_if_fail (from < n);
  to = MIN (to, n - 1);
  if (from == to)
    return;
  g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), from);
  g_list_store_remove (self->images, from);
  g_list_store_insert (self->images, to, image);
  dl_project_mark_changed (self);
  dl_project_recount (self);
}

char *
dl_project_expand_caption_template (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return dl_caption_expand_template (self->caption_template, self->token, self->class_word);
}

guint
dl_project_fill_empty_captions (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  g_autofree char *caption = dl_project_expand_caption_template (self);
  if (!*caption)
    return 0;
  guint filled = 0;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      if (*dl_dataset_image_get_caption (image))
        continue;
      dl_dataset_image_set_caption (image, caption);
      filled++;
    }
  return filled;
}

void
dl_project_reload_images (DlProject *self)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      start_decode (self, image);
    }
  dl_project_recount (self);
}

GPtrArray *
dl_project_get_missing (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  GPtrArray *missing = g_ptr_array_new_with_free_func (g_object_unref);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      DlDatasetImage *image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      if (dl_dataset_image_get_state (image) == DL_IMAGE_STATE_MISSING)
        g_ptr_array_add (missing, image);
      else
        g_object_unref (image);
    }
  return missing;
}

guint
dl_project_relocate_missing (DlProject *self, GPtrArray *candidates)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  g_return_val_if_fail (candidates != NULL, 0);
  /* by file name; the first candidate with a name wins */
  g_autoptr (GHashTable) by_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < candidates->len; i++)
    {
      char *name = g_file_get_basename (candidates->pdata[i]);
      if (name && !g_hash_table_contains (by_name, name))
        g_hash_table_insert (by_name, name, candidates->pdata[i]);
      else
        g_free (name);
    }
  guint found = 0;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      if (dl_dataset_image_get_state (image) != DL_IMAGE_STATE_MISSING)
        continue;
      GFile *candidate = g_hash_table_lookup (by_name, dl_dataset_image_get_display_name (image));
      if (!candidate || dl_project_contains (self, candidate))
        continue;
      DlDatasetImage *moved = dl_dataset_image_new (candidate, dl_dataset_image_get_caption (image));
      untrack_image (self, image);
      dl_project_track_image (self, moved);
      g_list_store_splice (self->images, i, 1, (gpointer *)&moved, 1);
      start_decode (self, moved);
      g_object_unref (moved);
      found++;
    }
  if (found)
    {
      dl_project_mark_changed (self);
      dl_project_recount (self);
    }
  return found;
}

guint
dl_project_remove_missing (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  g_autoptr (GArray) positions = g_array_new (FALSE, FALSE, sizeof (guint));
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      if (dl_dataset_image_get_state (image) == DL_IMAGE_STATE_MISSING)
        g_array_append_val (positions, i);
    }
  dl_project_remove (self, (guint *)positions->data, positions->len);
  return positions->len;
}

guint
dl_project_get_n_loading (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  return self->n_loading;
}

guint
dl_project_get_n_missing (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  return self->n_missing;
}

guint
dl_project_get_n_unreadable (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  return self->n_unreadable;
}

guint
dl_project_get_n_warnings (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), 0);
  return self->n_warnings;
}

GListModel *
dl_project_get_images (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return G_LIST_MODEL (self->images);
}
