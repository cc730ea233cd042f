#include "dl-config.h"

#include "dl-import.h"

#include <glib/gi18n.h>
#include <string.h>

/* Deep enough for any sane dataset layout, shallow enough that a symlink loop ends. */
#define MAX_DEPTH 12
#define MAX_FILES 200000

void
dl_import_result_free (DlImportResult *result)
{
  if (!result)
    return;
  g_ptr_array_unref (result->images);
  g_ptr_array_unref (result->errors);
  g_free (result);
}

gboolean
dl_import_is_image_name (const char *name)
{
  g_return_val_if_fail (name != NULL, FALSE);
  const char *dot = strrchr (name, '.');
  if (!dot || dot == name)
    return FALSE;
  static const char *const exts[] = { ".png", ".jpg", ".jpeg", ".webp" };
  for (guint i = 0; i < G_N_ELEMENTS (exts); i++)
    if (g_ascii_strcasecmp (dot, exts[i]) == 0)
      return TRUE;
  return FALSE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  GFileInfo *ia = *(GFileInfo **)a, *ib = *(GFileInfo **)b;
  g_autofree char *ka = g_utf8_collate_key_for_filename (g_file_info_get_display_name (ia), -1);
  g_autofree char *kb = g_utf8_collate_key_for_filename (g_file_info_get_display_name (ib), -1);
  return strcmp (ka, kb);
}

static void collect_one (DlImportResult *r, GFile *file, GFileType type, int depth, GCancellable *cancellable);

static void
collect_folder (DlImportResult *r, GFile *dir, int depth, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir_name = g_file_get_parse_name (dir);
  if (depth > MAX_DEPTH)
    {
      g_ptr_array_add (r->errors, g_strdup_printf (_ ("“%s” is nested too deeply; it was not searched"), dir_name));
      return;
    }
  g_autoptr (GFileEnumerator) en = g_file_enumerate_children (
    dir,
    G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_DISPLAY_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE
                                   "," G_FILE_ATTRIBUTE_STANDARD_IS_HIDDEN,
    G_FILE_QUERY_INFO_NONE, cancellable, &error);
  if (!en)
    {
      g_ptr_array_add (r->errors, g_strdup_printf (_ ("Could not read the folder “%s”: %s"), dir_name, error->message));
      return;
    }
  g_autoptr (GPtrArray) infos = g_ptr_array_new_with_free_func (g_object_unref);
  GFileInfo *info;
  while ((info = g_file_enumerator_next_file (en, cancellable, &error)))
    {
      if (g_file_info_get_is_hidden (info))
        g_object_unref (info);
      else
        g_ptr_array_add (infos, info);
    }
  if (error)
    g_ptr_array_add (r->errors,
                     g_strdup_printf (_ ("Could not read all of the folder “%s”: %s"), dir_name, error->message));
  g_ptr_array_sort (infos, compare_names);
  for (guint i = 0; i < infos->len && r->images->len < MAX_FILES; i++)
    {
      GFileInfo *fi = infos->pdata[i];
      g_autoptr (GFile) child = g_file_get_child (dir, g_file_info_get_name (fi));
      GFileType type = g_file_info_get_file_type (fi);
      /* inside folders, other files (captions, notes) are simply not images */
      if (type == G_FILE_TYPE_REGULAR && !dl_import_is_image_name (g_file_info_get_name (fi)))
        continue;
      collect_one (r, child, type, depth + 1, cancellable);
    }
}

static void
collect_one (DlImportResult *r, GFile *file, GFileType type, int depth, GCancellable *cancellable)
{
  if (g_cancellable_is_cancelled (cancellable))
    return;
  if (type == G_FILE_TYPE_UNKNOWN)
    type = g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, cancellable);
  if (type == G_FILE_TYPE_DIRECTORY)
    {
      collect_folder (r, file, depth, cancellable);
      return;
    }
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *base = g_file_get_basename (file);
  if (!base || !dl_import_is_image_name (base))
    {
      r->n_not_images++;
      return;
    }
  if (!path)
    {
      r->n_not_local++;
      return;
    }
  /* a missing file is still added: the grid then says it is missing */
  g_ptr_array_add (r->images, g_file_new_for_path (path));
}

DlImportResult *
dl_import_collect (GPtrArray *files, GCancellable *cancellable)
{
  g_return_val_if_fail (files != NULL, NULL);
  DlImportResult *r = g_new0 (DlImportResult, 1);
  r->images = g_ptr_array_new_with_free_func (g_object_unref);
  r->errors = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < files->len; i++)
    collect_one (r, files->pdata[i], G_FILE_TYPE_UNKNOWN, 0, cancellable);
  return r;
}

static void
collect_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  DlImportResult *r = dl_import_collect (data, cancellable);
  if (g_cancellable_is_cancelled (cancellable))
    {
      dl_import_result_free (r);
      g_task_return_error_if_cancelled (task);
      return;
    }
  g_task_return_pointer (task, r, (GDestroyNotify)dl_import_result_free);
}

void
dl_import_collect_async (GPtrArray *files, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (files != NULL);
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_import_collect_async);
  /* the worker gets its own copy of the list: the caller may change theirs */
  GPtrArray *copy = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < files->len; i++)
    g_ptr_array_add (copy, g_object_ref (files->pdata[i]));
  g_task_set_task_data (task, copy, (GDestroyNotify)g_ptr_array_unref);
  g_task_run_in_thread (task, collect_thread);
}

DlImportResult *
dl_import_collect_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
