/* The project: its state, the rules that tie the images together (warnings,
 * counts), loading and saving.  Widgets only read it and call its setters. */
#include "dl-config.h"

#include "dl-project.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "dl-caption.h"
#include "dl-error.h"
#include "dl-file-writer.h"
#include "dl-image-loader.h"

#define MAX_PROJECT_FILE_BYTES (64 * 1024 * 1024)
#define SIDECAR_DELAY_MS 400

struct _DlProject {
  GObject parent_instance;

  GFile *file;
  char *token;
  char *class_word;
  char *caption_template;
  int resolution;
  char *base_model;

  GListStore *images;
  GHashTable *paths; /* path -> count, for "already in the project" */

  char **prompts;
  char *negative_prompt;
  GArray *templates; /* guint */
  GPtrArray *loras;  /* DlProjectLora */
  JsonObject *training;
  JsonObject *unknown; /* top-level keys this version does not know */

  /* the last removal, for undo */
  GPtrArray *removed;         /* DlDatasetImage */
  GArray *removed_positions;  /* guint, ascending */

  /* counts, recomputed in an idle after changes */
  guint n_loading, n_missing, n_unreadable, n_warnings;
  guint recount_id;
  GCancellable *cancellable;

  /* saving */
  guint64 change_serial, saved_serial;
  guint autosave_id;
  GHashTable *pending_sidecars; /* DlDatasetImage -> itself (ref) */
  guint sidecar_id;
  gboolean applying_sidecar; /* a caption read from its sidecar is not written back */
  gboolean quiet;            /* while loading: changes are not changes */
};

G_DEFINE_FINAL_TYPE (DlProject, dl_project, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_FILE,
  PROP_TOKEN,
  PROP_CLASS_WORD,
  PROP_CAPTION_TEMPLATE,
  PROP_RESOLUTION,
  PROP_BASE_MODEL,
  PROP_N_LOADING,
  PROP_N_MISSING,
  PROP_N_UNREADABLE,
  PROP_N_WARNINGS,
  PROP_DIRTY,
  PROP_CAN_UNDO_REMOVE,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

enum {
  SIGNAL_SAVE_FAILED,
  SIGNAL_SIDECAR_FAILED,
  SIGNAL_PREVIEWS_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void start_decode (DlProject *self, DlDatasetImage *image);
static void caption_changed (DlDatasetImage *image, GParamSpec *pspec, DlProject *self);

DlProjectLora *
dl_project_lora_new (const char *path, double strength)
{
  DlProjectLora *lora = g_new0 (DlProjectLora, 1);
  lora->path = g_strdup (path);
  lora->strength = strength;
  return lora;
}

void
dl_project_lora_free (DlProjectLora *lora)
{
  if (!lora)
    return;
  g_free (lora->path);
  g_free (lora);
}

/* ---- change tracking and autosave ---- */

typedef struct {
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
      g_signal_emit (self, signals[SIGNAL_SAVE_FAILED], 0, error);
      return;
    }
  gboolean was_dirty = dl_project_get_dirty (self);
  self->saved_serial = MAX (self->saved_serial, serial);
  if (was_dirty != dl_project_get_dirty (self))
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_DIRTY]);
}

static void
save_async (DlProject *self)
{
  g_autofree char *path = g_file_get_path (self->file);
  if (!path)
    {
      g_autoptr (GError) error = g_error_new (DL_ERROR, DL_ERROR_IO, "Projects can only be saved on this computer");
      g_signal_emit (self, signals[SIGNAL_SAVE_FAILED], 0, error);
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

static void
mark_changed (DlProject *self)
{
  if (self->quiet)
    return;
  gboolean was_dirty = dl_project_get_dirty (self);
  self->change_serial++;
  /* the first change starts the clock: typing does not postpone the save forever */
  if (!self->autosave_id)
    self->autosave_id = g_timeout_add (DL_PROJECT_AUTOSAVE_MS, autosave_cb, self);
  if (!was_dirty)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_DIRTY]);
}

gboolean
dl_project_get_dirty (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  return self->change_serial != self->saved_serial;
}

/* ---- caption sidecars ---- */

typedef struct {
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
        g_signal_emit (project, signals[SIGNAL_SIDECAR_FAILED], 0, sd->image, msg);
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
          g_signal_emit (self, signals[SIGNAL_SIDECAR_FAILED], 0, image, msg);
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

static void
caption_changed (DlDatasetImage *image, GParamSpec *pspec, DlProject *self)
{
  mark_changed (self);
  if (self->applying_sidecar || self->quiet)
    return;
  g_hash_table_add (self->pending_sidecars, g_object_ref (image));
  if (!self->sidecar_id)
    self->sidecar_id = g_timeout_add (SIDECAR_DELAY_MS, sidecar_cb, self);
}

/* ---- counts and warnings ---- */

static void
set_count (DlProject *self, guint *field, guint value, int prop)
{
  if (*field == value)
    return;
  *field = value;
  g_object_notify_by_pspec (G_OBJECT (self), props[prop]);
}

static void
recount (DlProject *self)
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
        case DL_IMAGE_STATE_LOADING: loading++; break;
        case DL_IMAGE_STATE_MISSING: missing++; break;
        case DL_IMAGE_STATE_UNREADABLE: unreadable++; break;
        case DL_IMAGE_STATE_READY:
          {
            const char *hash = dl_dataset_image_get_content_hash (image);
            DlDatasetImage *orig = hash ? g_hash_table_lookup (first, hash) : NULL;
            if (orig)
              duplicate_of = dl_dataset_image_get_display_name (orig);
            else if (hash)
              g_hash_table_insert (first, (gpointer) hash, image);
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
  recount (self);
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

typedef struct {
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
      DlImageState state = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ? DL_IMAGE_STATE_MISSING
                                                                                     : DL_IMAGE_STATE_UNREADABLE;
      dl_dataset_image_set_failed (image, state, error->message);
    }
  else
    {
      dl_dataset_image_set_ready (image, info->width, info->height, info->content_hash, info->thumbnail);
      /* a caption written elsewhere (sd-scripts, a text editor) fills an empty one */
      if (info->sidecar_caption && *info->sidecar_caption && !*dl_dataset_image_get_caption (image))
        {
          self->applying_sidecar = TRUE;
          dl_dataset_image_set_caption (image, info->sidecar_caption);
          self->applying_sidecar = FALSE;
        }
      if (info->sidecar_error)
        g_signal_emit (self, signals[SIGNAL_SIDECAR_FAILED], 0, image, info->sidecar_error);
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

static void
track_image (DlProject *self, DlDatasetImage *image)
{
  const char *path = dl_dataset_image_get_path (image);
  if (path)
    {
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->paths, path));
      g_hash_table_insert (self->paths, g_strdup (path), GUINT_TO_POINTER (count + 1));
    }
  g_signal_connect (image, "notify::caption", G_CALLBACK (caption_changed), self);
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
  g_signal_handlers_disconnect_by_func (image, caption_changed, self);
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
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CAN_UNDO_REMOVE]);
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
      track_image (self, image);
      g_ptr_array_add (added, image);
    }
  if (added->len)
    {
      g_list_store_splice (self->images, g_list_model_get_n_items (G_LIST_MODEL (self->images)), 0, added->pdata,
                           added->len);
      for (guint i = 0; i < added->len; i++)
        start_decode (self, added->pdata[i]);
      mark_changed (self);
      recount (self);
    }
  if (n_already)
    *n_already = already;
  return added->len;
}

static int
compare_uint (gconstpointer a, gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;
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
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CAN_UNDO_REMOVE]);
  mark_changed (self);
  recount (self);
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
      track_image (self, image);
      g_list_store_insert (self->images, pos, image);
    }
  clear_undo (self);
  mark_changed (self);
  recount (self);
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
  mark_changed (self);
  recount (self);
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
  recount (self);
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
      track_image (self, moved);
      g_list_store_splice (self->images, i, 1, (gpointer *) &moved, 1);
      start_decode (self, moved);
      g_object_unref (moved);
      found++;
    }
  if (found)
    {
      mark_changed (self);
      recount (self);
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
  dl_project_remove (self, (guint *) positions->data, positions->len);
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

/* ---- simple properties ---- */

GFile *
dl_project_get_file (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->file;
}

void
dl_project_set_file (DlProject *self, GFile *file)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (G_IS_FILE (file));
  if (!g_set_object (&self->file, file))
    return;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_FILE]);
  self->change_serial++;
  save_async (self);
}

char *
dl_project_dup_title (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  g_autofree char *base = g_file_get_basename (self->file);
  if (g_str_has_suffix (base, DL_PROJECT_EXTENSION) && strlen (base) > strlen (DL_PROJECT_EXTENSION))
    base[strlen (base) - strlen (DL_PROJECT_EXTENSION)] = '\0';
  return g_steal_pointer (&base);
}

static gboolean
set_string (DlProject *self, char **field, const char *value, int prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), props[prop]);
  mark_changed (self);
  return TRUE;
}

const char *
dl_project_get_token (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->token;
}

void
dl_project_set_token (DlProject *self, const char *token)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_autofree char *clean = g_strstrip (g_strdup (token ? token : ""));
  if (set_string (self, &self->token, clean, PROP_TOKEN))
    g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

const char *
dl_project_get_class_word (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->class_word;
}

void
dl_project_set_class_word (DlProject *self, const char *class_word)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_autofree char *clean = g_strstrip (g_strdup (class_word ? class_word : ""));
  set_string (self, &self->class_word, clean, PROP_CLASS_WORD);
}

const char *
dl_project_get_caption_template (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->caption_template;
}

void
dl_project_set_caption_template (DlProject *self, const char *template_text)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  set_string (self, &self->caption_template, template_text ? template_text : "", PROP_CAPTION_TEMPLATE);
}

int
dl_project_get_resolution (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), DL_PROJECT_DEFAULT_RESOLUTION);
  return self->resolution;
}

void
dl_project_set_resolution (DlProject *self, int resolution)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (resolution >= 64 && resolution <= 4096);
  if (self->resolution == resolution)
    return;
  self->resolution = resolution;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_RESOLUTION]);
  mark_changed (self);
  recount (self);
}

const char *
dl_project_get_base_model (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->base_model;
}

void
dl_project_set_base_model (DlProject *self, const char *path)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (set_string (self, &self->base_model, path && *path ? path : NULL, PROP_BASE_MODEL))
    g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

/* ---- previews ---- */

const char *const *
dl_project_get_preview_prompts (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return (const char *const *) self->prompts;
}

void
dl_project_set_preview_prompts (DlProject *self, const char *const *prompts)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  static const char *const none[] = { NULL };
  if (!prompts)
    prompts = none;
  if (g_strv_equal ((const char *const *) self->prompts, prompts))
    return;
  g_strfreev (self->prompts);
  self->prompts = g_strdupv ((char **) prompts);
  mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

const char *
dl_project_get_negative_prompt (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->negative_prompt;
}

void
dl_project_set_negative_prompt (DlProject *self, const char *negative_prompt)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (!negative_prompt)
    negative_prompt = "";
  if (g_strcmp0 (self->negative_prompt, negative_prompt) == 0)
    return;
  g_free (self->negative_prompt);
  self->negative_prompt = g_strdup (negative_prompt);
  mark_changed (self);
}

GArray *
dl_project_get_preview_templates (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->templates;
}

void
dl_project_set_preview_templates (DlProject *self, const guint *indices, guint n)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (self->templates->len == n && (n == 0 || memcmp (self->templates->data, indices, n * sizeof (guint)) == 0))
    return;
  g_array_set_size (self->templates, 0);
  g_array_append_vals (self->templates, indices, n);
  mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

GPtrArray *
dl_project_get_loras (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->loras;
}

void
dl_project_set_loras (DlProject *self, GPtrArray *loras)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_ptr_array_set_size (self->loras, 0);
  for (guint i = 0; loras && i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_ptr_array_add (self->loras, dl_project_lora_new (l->path, l->strength));
    }
  mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

/* ---- JSON ---- */

static const char *const known_keys[] = { "format", "version", "concept", "base_model",
                                          "dataset", "previews", "training" };

char *
dl_project_to_json (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, DL_PROJECT_FORMAT);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, DL_PROJECT_VERSION);

  json_builder_set_member_name (b, "concept");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, self->token);
  json_builder_set_member_name (b, "class");
  json_builder_add_string_value (b, self->class_word);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "base_model");
  if (self->base_model)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, self->base_model);
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);

  json_builder_set_member_name (b, "dataset");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "resolution");
  json_builder_add_int_value (b, self->resolution);
  json_builder_set_member_name (b, "caption_template");
  json_builder_add_string_value (b, self->caption_template);
  json_builder_set_member_name (b, "images");
  json_builder_begin_array (b);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, dl_dataset_image_get_path (image));
      json_builder_set_member_name (b, "caption");
      json_builder_add_string_value (b, dl_dataset_image_get_caption (image));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "previews");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "prompts");
  json_builder_begin_array (b);
  for (char **p = self->prompts; *p; p++)
    json_builder_add_string_value (b, *p);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "negative_prompt");
  json_builder_add_string_value (b, self->negative_prompt);
  json_builder_set_member_name (b, "templates");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->templates->len; i++)
    json_builder_add_int_value (b, g_array_index (self->templates, guint, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "loras");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->loras->len; i++)
    {
      DlProjectLora *l = self->loras->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, l->path);
      json_builder_set_member_name (b, "strength");
      json_builder_add_double_value (b, l->strength);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "training");
  json_builder_add_value (b, json_node_init_object (json_node_alloc (), self->training));

  if (self->unknown)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *node;
      json_object_iter_init (&iter, self->unknown);
      while (json_object_iter_next (&iter, &name, &node))
        {
          json_builder_set_member_name (b, name);
          json_builder_add_value (b, json_node_copy (node));
        }
    }
  json_builder_end_object (b);

  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  char *text = json_generator_to_data (gen, NULL);
  char *with_newline = g_strconcat (text, "\n", NULL);
  g_free (text);
  return with_newline;
}

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
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_DIRTY]);
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
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_FILE]);
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
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_DIRTY]);
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

/* -- reading -- */

typedef struct {
  const char *file_name;
  GError **error;
} Reader;

G_GNUC_PRINTF (2, 3) static gboolean
bad (Reader *r, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (r->error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a valid project: %s", r->file_name, msg);
  return FALSE;
}

/* An optional member: absent or null gives NULL; another type is an error. */
static gboolean
get_object (Reader *r, JsonObject *parent, const char *name, const char *where, JsonObject **out)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (parent, name);
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad (r, "%s%s should be an object", where, name);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
get_array (Reader *r, JsonObject *parent, const char *name, const char *where, JsonArray **out)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (parent, name);
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return bad (r, "%s%s should be a list", where, name);
  *out = json_node_get_array (node);
  return TRUE;
}

static gboolean
get_string (Reader *r, JsonObject *parent, const char *name, const char *where, const char **out)
{
  *out = NULL;
  JsonNode *node = parent ? json_object_get_member (parent, name) : NULL;
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return bad (r, "%s%s should be text", where, name);
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
get_number (Reader *r, JsonObject *parent, const char *name, const char *where, gboolean *present, double *out)
{
  *present = FALSE;
  JsonNode *node = parent ? json_object_get_member (parent, name) : NULL;
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  GType t = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (t == G_TYPE_INT64)
    *out = (double) json_node_get_int (node);
  else if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else
    return bad (r, "%s%s should be a number", where, name);
  *present = TRUE;
  return TRUE;
}

static char *
resolve_path (GFile *project_file, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  /* hand-written projects may use paths relative to the project file */
  g_autoptr (GFile) dir = g_file_get_parent (project_file);
  g_autoptr (GFile) resolved = dir ? g_file_resolve_relative_path (dir, path) : NULL;
  return resolved ? g_file_get_path (resolved) : g_strdup (path);
}

static gboolean
read_images (DlProject *self, Reader *r, JsonObject *dataset)
{
  JsonArray *images;
  if (!get_array (r, dataset, "images", "dataset.", &images))
    return FALSE;
  guint n = images ? json_array_get_length (images) : 0;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (images, i);
      g_autofree char *where = g_strdup_printf ("dataset.images[%u].", i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad (r, "dataset.images[%u] should be an object", i);
      JsonObject *o = json_node_get_object (node);
      const char *path, *caption;
      if (!get_string (r, o, "path", where, &path) || !get_string (r, o, "caption", where, &caption))
        return FALSE;
      if (!path || !*path)
        return bad (r, "dataset.images[%u] has no path", i);
      g_autofree char *abs = resolve_path (self->file, path);
      g_autoptr (GFile) file = g_file_new_for_path (abs);
      DlDatasetImage *image = dl_dataset_image_new (file, caption);
      track_image (self, image);
      g_ptr_array_add (items, image);
    }
  g_list_store_splice (self->images, 0, 0, items->pdata, items->len);
  return TRUE;
}

static gboolean
read_previews (DlProject *self, Reader *r, JsonObject *previews)
{
  if (!previews)
    return TRUE;
  JsonArray *prompts, *templates, *loras;
  const char *negative;
  if (!get_array (r, previews, "prompts", "previews.", &prompts) ||
      !get_array (r, previews, "templates", "previews.", &templates) ||
      !get_array (r, previews, "loras", "previews.", &loras) ||
      !get_string (r, previews, "negative_prompt", "previews.", &negative))
    return FALSE;

  g_autoptr (GStrvBuilder) sb = g_strv_builder_new ();
  for (guint i = 0; prompts && i < json_array_get_length (prompts); i++)
    {
      JsonNode *node = json_array_get_element (prompts, i);
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        return bad (r, "previews.prompts[%u] should be text", i);
      g_strv_builder_add (sb, json_node_get_string (node));
    }
  g_strfreev (self->prompts);
  self->prompts = g_strv_builder_end (sb);

  g_free (self->negative_prompt);
  self->negative_prompt = g_strdup (negative ? negative : "");

  for (guint i = 0; templates && i < json_array_get_length (templates); i++)
    {
      JsonNode *node = json_array_get_element (templates, i);
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
          json_node_get_int (node) < 0 || json_node_get_int (node) > G_MAXINT)
        return bad (r, "previews.templates[%u] should be a template number", i);
      guint idx = (guint) json_node_get_int (node);
      g_array_append_val (self->templates, idx);
    }

  for (guint i = 0; loras && i < json_array_get_length (loras); i++)
    {
      JsonNode *node = json_array_get_element (loras, i);
      g_autofree char *where = g_strdup_printf ("previews.loras[%u].", i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad (r, "previews.loras[%u] should be an object", i);
      const char *path;
      double strength = 1.0;
      gboolean has_strength;
      if (!get_string (r, json_node_get_object (node), "path", where, &path) ||
          !get_number (r, json_node_get_object (node), "strength", where, &has_strength, &strength))
        return FALSE;
      if (!path || !*path)
        return bad (r, "previews.loras[%u] has no path", i);
      if (!isfinite (strength))
        return bad (r, "previews.loras[%u].strength is not a number", i);
      g_autofree char *abs = resolve_path (self->file, path);
      g_ptr_array_add (self->loras, dl_project_lora_new (abs, has_strength ? strength : 1.0));
    }
  return TRUE;
}

static gboolean
read_root (DlProject *self, Reader *r, JsonNode *root_node)
{
  if (!root_node || !JSON_NODE_HOLDS_OBJECT (root_node))
    return bad (r, "the file does not hold a JSON object");
  JsonObject *root = json_node_get_object (root_node);
  const char *format;
  if (!get_string (r, root, "format", "", &format))
    return FALSE;
  if (g_strcmp0 (format, DL_PROJECT_FORMAT) != 0)
    {
      g_set_error (r->error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a Dreamloom project (it has no \"format\": \"%s\")",
                   r->file_name, DL_PROJECT_FORMAT);
      return FALSE;
    }
  double version = 0;
  gboolean has_version;
  if (!get_number (r, root, "version", "", &has_version, &version))
    return FALSE;
  if (!has_version || version < 1 || version != (double) (gint64) version)
    return bad (r, "its \"version\" should be a whole number from 1");
  if (version > DL_PROJECT_VERSION)
    {
      g_set_error (r->error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s” was saved by a newer version of Dreamloom (project format %.0f; this version reads up to %d)",
                   r->file_name, version, DL_PROJECT_VERSION);
      return FALSE;
    }

  JsonObject *concept, *base_model, *dataset, *previews, *training;
  if (!get_object (r, root, "concept", "", &concept) || !get_object (r, root, "base_model", "", &base_model) ||
      !get_object (r, root, "dataset", "", &dataset) || !get_object (r, root, "previews", "", &previews) ||
      !get_object (r, root, "training", "", &training))
    return FALSE;

  const char *token, *class_word, *model_path, *template_text;
  if (!get_string (r, concept, "token", "concept.", &token) ||
      !get_string (r, concept, "class", "concept.", &class_word) ||
      !get_string (r, base_model, "path", "base_model.", &model_path) ||
      !get_string (r, dataset, "caption_template", "dataset.", &template_text))
    return FALSE;
  double resolution = DL_PROJECT_DEFAULT_RESOLUTION;
  gboolean has_resolution;
  if (!get_number (r, dataset, "resolution", "dataset.", &has_resolution, &resolution))
    return FALSE;
  if (has_resolution && (resolution < 64 || resolution > 4096 || resolution != (double) (int) resolution))
    return bad (r, "dataset.resolution should be a whole number of pixels from 64 to 4096");

  g_free (self->token);
  self->token = g_strdup (token ? token : "");
  g_free (self->class_word);
  self->class_word = g_strdup (class_word ? class_word : "");
  g_free (self->caption_template);
  self->caption_template = g_strdup (template_text ? template_text : DL_CAPTION_DEFAULT_TEMPLATE);
  self->resolution = (int) resolution;
  g_free (self->base_model);
  self->base_model = model_path && *model_path ? resolve_path (self->file, model_path) : NULL;

  if (dataset && !read_images (self, r, dataset))
    return FALSE;
  if (!read_previews (self, r, previews))
    return FALSE;

  if (training)
    {
      json_object_unref (self->training);
      self->training = json_object_ref (training);
    }

  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&iter, root);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (g_strv_contains (known_keys, name))
        continue;
      if (!self->unknown)
        self->unknown = json_object_new ();
      json_object_set_member (self->unknown, name, json_node_copy (node));
    }
  return TRUE;
}

static DlProject *
parse_project (GFile *file, GCancellable *cancellable, GError **error)
{
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  g_autoptr (GFileInfo) info =
      g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, cancellable, &local);
  if (!info)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not open “%s”: %s", name, local->message);
      return NULL;
    }
  if (g_file_info_get_size (info) > MAX_PROJECT_FILE_BYTES)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is too large to be a project file", name);
      return NULL;
    }
  if (!g_file_load_contents (file, cancellable, &contents, &len, NULL, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not read “%s”: %s", name, local->message);
      return NULL;
    }
  if (!g_utf8_validate_len (contents, len, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a Dreamloom project (it is not text)", name);
      return NULL;
    }
  /* mutable: later versions add to the "training" object this one keeps */
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, contents, (gssize) len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a valid project: %s", name, local->message);
      return NULL;
    }

  DlProject *self = g_object_new (DL_TYPE_PROJECT, NULL);
  self->file = g_object_ref (file);
  self->quiet = TRUE;
  Reader r = { name, error };
  gboolean ok = read_root (self, &r, json_parser_get_root (parser));
  self->quiet = FALSE;
  if (!ok)
    {
      g_object_unref (self);
      return NULL;
    }
  return self;
}

DlProject *
dl_project_load (GFile *file, GError **error)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  DlProject *self = parse_project (file, NULL, error);
  if (self)
    dl_project_reload_images (self);
  return self;
}

static void
load_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  DlProject *project = parse_project (data, cancellable, &error);
  if (project)
    g_task_return_pointer (task, project, g_object_unref);
  else
    g_task_return_error (task, error);
}

void
dl_project_load_async (GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (G_IS_FILE (file));
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_project_load_async);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, load_thread);
}

DlProject *
dl_project_load_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  DlProject *self = g_task_propagate_pointer (G_TASK (result), error);
  if (self)
    dl_project_reload_images (self);
  return self;
}

DlProject *
dl_project_new (GFile *file)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  DlProject *self = g_object_new (DL_TYPE_PROJECT, NULL);
  self->file = g_object_ref (file);
  /* a new project is a change: it is saved */
  self->change_serial = 1;
  return self;
}

/* ---- GObject ---- */

static void
dl_project_dispose (GObject *object)
{
  DlProject *self = DL_PROJECT (object);
  g_cancellable_cancel (self->cancellable);
  /* never lose work: whatever is pending goes to disk */
  if (self->file && (dl_project_get_dirty (self) || g_hash_table_size (self->pending_sidecars)))
    {
      g_autoptr (GError) error = NULL;
      if (!dl_project_flush (self, &error))
        g_warning ("Could not save the project on closing: %s", error->message);
    }
  g_clear_handle_id (&self->autosave_id, g_source_remove);
  g_clear_handle_id (&self->sidecar_id, g_source_remove);
  g_clear_handle_id (&self->recount_id, g_source_remove);
  if (self->images)
    {
      guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
      for (guint i = 0; i < n; i++)
        {
          g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
          g_signal_handlers_disconnect_by_func (image, caption_changed, self);
        }
    }
  G_OBJECT_CLASS (dl_project_parent_class)->dispose (object);
}

static void
dl_project_finalize (GObject *object)
{
  DlProject *self = DL_PROJECT (object);
  g_clear_object (&self->file);
  g_free (self->token);
  g_free (self->class_word);
  g_free (self->caption_template);
  g_free (self->base_model);
  g_clear_object (&self->images);
  g_hash_table_unref (self->paths);
  g_strfreev (self->prompts);
  g_free (self->negative_prompt);
  g_array_unref (self->templates);
  g_ptr_array_unref (self->loras);
  json_object_unref (self->training);
  g_clear_pointer (&self->unknown, json_object_unref);
  g_ptr_array_unref (self->removed);
  g_array_unref (self->removed_positions);
  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->pending_sidecars);
  G_OBJECT_CLASS (dl_project_parent_class)->finalize (object);
}

static void
dl_project_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlProject *self = DL_PROJECT (object);
  switch (prop_id)
    {
    case PROP_FILE: g_value_set_object (value, self->file); break;
    case PROP_TOKEN: g_value_set_string (value, self->token); break;
    case PROP_CLASS_WORD: g_value_set_string (value, self->class_word); break;
    case PROP_CAPTION_TEMPLATE: g_value_set_string (value, self->caption_template); break;
    case PROP_RESOLUTION: g_value_set_int (value, self->resolution); break;
    case PROP_BASE_MODEL: g_value_set_string (value, self->base_model); break;
    case PROP_N_LOADING: g_value_set_uint (value, self->n_loading); break;
    case PROP_N_MISSING: g_value_set_uint (value, self->n_missing); break;
    case PROP_N_UNREADABLE: g_value_set_uint (value, self->n_unreadable); break;
    case PROP_N_WARNINGS: g_value_set_uint (value, self->n_warnings); break;
    case PROP_DIRTY: g_value_set_boolean (value, dl_project_get_dirty (self)); break;
    case PROP_CAN_UNDO_REMOVE: g_value_set_boolean (value, dl_project_can_undo_remove (self)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_project_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DlProject *self = DL_PROJECT (object);
  switch (prop_id)
    {
    case PROP_TOKEN: dl_project_set_token (self, g_value_get_string (value)); break;
    case PROP_CLASS_WORD: dl_project_set_class_word (self, g_value_get_string (value)); break;
    case PROP_CAPTION_TEMPLATE: dl_project_set_caption_template (self, g_value_get_string (value)); break;
    case PROP_RESOLUTION: dl_project_set_resolution (self, g_value_get_int (value)); break;
    case PROP_BASE_MODEL: dl_project_set_base_model (self, g_value_get_string (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_project_class_init (DlProjectClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = dl_project_dispose;
  object_class->finalize = dl_project_finalize;
  object_class->get_property = dl_project_get_property;
  object_class->set_property = dl_project_set_property;

  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  props[PROP_FILE] = g_param_spec_object ("file", NULL, NULL, G_TYPE_FILE, ro);
  props[PROP_TOKEN] = g_param_spec_string ("token", NULL, NULL, "", rw);
  props[PROP_CLASS_WORD] = g_param_spec_string ("class-word", NULL, NULL, "", rw);
  props[PROP_CAPTION_TEMPLATE] = g_param_spec_string ("caption-template", NULL, NULL, DL_CAPTION_DEFAULT_TEMPLATE, rw);
  props[PROP_RESOLUTION] = g_param_spec_int ("resolution", NULL, NULL, 64, 4096, DL_PROJECT_DEFAULT_RESOLUTION, rw);
  props[PROP_BASE_MODEL] = g_param_spec_string ("base-model", NULL, NULL, NULL, rw);
  props[PROP_N_LOADING] = g_param_spec_uint ("n-loading", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_MISSING] = g_param_spec_uint ("n-missing", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_UNREADABLE] = g_param_spec_uint ("n-unreadable", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_WARNINGS] = g_param_spec_uint ("n-warnings", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_DIRTY] = g_param_spec_boolean ("dirty", NULL, NULL, FALSE, ro);
  props[PROP_CAN_UNDO_REMOVE] = g_param_spec_boolean ("can-undo-remove", NULL, NULL, FALSE, ro);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /* An autosave failed (disk full, folder gone): the window says so. */
  signals[SIGNAL_SAVE_FAILED] = g_signal_new ("save-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                              NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
  /* A caption file could not be written or read (image, message). */
  signals[SIGNAL_SIDECAR_FAILED] = g_signal_new ("sidecar-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                 NULL, NULL, NULL, G_TYPE_NONE, 2, DL_TYPE_DATASET_IMAGE,
                                                 G_TYPE_STRING);
  /* The prompts, LoRA columns, token or base model changed. */
  signals[SIGNAL_PREVIEWS_CHANGED] = g_signal_new ("previews-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dl_project_init (DlProject *self)
{
  self->token = g_strdup ("sks");
  self->class_word = g_strdup ("");
  self->caption_template = g_strdup (DL_CAPTION_DEFAULT_TEMPLATE);
  self->resolution = DL_PROJECT_DEFAULT_RESOLUTION;
  self->images = g_list_store_new (DL_TYPE_DATASET_IMAGE);
  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->prompts = g_new0 (char *, 1);
  self->negative_prompt = g_strdup ("");
  self->templates = g_array_new (FALSE, FALSE, sizeof (guint));
  self->loras = g_ptr_array_new_with_free_func ((GDestroyNotify) dl_project_lora_free);
  self->training = json_object_new ();
  json_object_set_int_member (self->training, "version", 1);
  self->removed = g_ptr_array_new_with_free_func (g_object_unref);
  self->removed_positions = g_array_new (FALSE, FALSE, sizeof (guint));
  self->cancellable = g_cancellable_new ();
  self->pending_sidecars = g_hash_table_new_full (g_direct_hash, g_direct_equal, g_object_unref, NULL);
}
