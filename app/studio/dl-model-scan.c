#include "dl-config.h"

#include "dl-model-scan.h"

#include <glib/gi18n.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-checkpoint.h"

#define MAX_DEPTH 4

void
dl_model_entry_free (DlModelEntry *entry)
{
  if (!entry)
    return;
  g_free (entry->path);
  g_free (entry->name);
  g_free (entry->family);
  g_free (entry);
}

void
dl_model_root_free (DlModelRoot *root)
{
  if (!root)
    return;
  g_free (root->dir);
  g_free (root);
}

const char *
dl_model_place_name (DlModelPlace place)
{
  switch (place)
    {
    case DL_MODEL_PLACE_DREAMLOOM:
      return "Dreamloom";
    case DL_MODEL_PLACE_HF_CACHE:
      return _ ("Hugging Face cache");
    case DL_MODEL_PLACE_A1111:
      return _ ("Stable Diffusion web UI");
    case DL_MODEL_PLACE_COMFYUI:
      return "ComfyUI";
    case DL_MODEL_PLACE_OTHER:
      return _ ("Elsewhere");
    }
  return _ ("Other");
}

char *
dl_model_scan_own_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "dreamloom", "models", NULL);
}

static void
add_root (GPtrArray *roots, DlModelPlace place, char *dir)
{
  DlModelRoot *root = g_new0 (DlModelRoot, 1);
  root->place = place;
  root->dir = dir;
  g_ptr_array_add (roots, root);
}

GPtrArray *
dl_model_scan_default_roots (void)
{
  GPtrArray *roots = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_model_root_free);
  add_root (roots, DL_MODEL_PLACE_DREAMLOOM, dl_model_scan_own_dir ());

  /* the same order of precedence as huggingface_hub's constants.py */
  const char *hub = g_getenv ("HF_HUB_CACHE");
  const char *home = g_getenv ("HF_HOME");
  if (hub && *hub)
    add_root (roots, DL_MODEL_PLACE_HF_CACHE, g_strdup (hub));
  else if (home && *home)
    add_root (roots, DL_MODEL_PLACE_HF_CACHE, g_build_filename (home, "hub", NULL));
  else
    add_root (roots, DL_MODEL_PLACE_HF_CACHE, g_build_filename (g_get_user_cache_dir (), "huggingface", "hub", NULL));
  /* Inside Flatpak the cache folder above is the sandbox's own; the one Python
   * tools filled is the host's (HOST_XDG_CACHE_HOME, else ~/.cache) */
  if (!(hub && *hub) && !(home && *home) && g_file_test ("/.flatpak-info", G_FILE_TEST_EXISTS))
    {
      const char *host_cache = g_getenv ("HOST_XDG_CACHE_HOME");
      g_autofree char *cache =
        host_cache && *host_cache ? g_strdup (host_cache) : g_build_filename (g_get_home_dir (), ".cache", NULL);
      add_root (roots, DL_MODEL_PLACE_HF_CACHE, g_build_filename (cache, "huggingface", "hub", NULL));
    }

  add_root (roots, DL_MODEL_PLACE_A1111,
            g_build_filename (g_get_home_dir (), "stable-diffusion-webui", "models", "Stable-diffusion", NULL));
  add_root (roots, DL_MODEL_PLACE_COMFYUI,
            g_build_filename (g_get_home_dir (), "ComfyUI", "models", "checkpoints", NULL));
  return roots;
}

static gboolean
is_checkpoint_name (const char *name)
{
  return g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".ckpt");
}

static char *
strip_extension (const char *name)
{
  char *s = g_strdup (name);
  char *dot = strrchr (s, '.');
  if (dot && dot != s)
    *dot = '\0';
  return s;
}

/* Bytes of everything under `dir`, following links (the HF cache links into blobs/). */
static guint64
folder_size (GFile *dir, int depth, GCancellable *cancellable)
{
  if (depth > MAX_DEPTH)
    return 0;
  g_autoptr (GFileEnumerator) en = g_file_enumerate_children (
    dir, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE,
    G_FILE_QUERY_INFO_NONE, cancellable, NULL);
  if (!en)
    return 0;
  guint64 total = 0;
  GFileInfo *info;
  while ((info = g_file_enumerator_next_file (en, cancellable, NULL)))
    {
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        {
          g_autoptr (GFile) child = g_file_get_child (dir, g_file_info_get_name (info));
          total += folder_size (child, depth + 1, cancellable);
        }
      else if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR)
        total += (guint64)g_file_info_get_size (info);
      g_object_unref (info);
    }
  return total;
}

static gboolean
has_model_index (GFile *dir)
{
  g_autoptr (GFile) index = g_file_get_child (dir, "model_index.json");
  return g_file_query_file_type (index, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_REGULAR;
}

static void
add_entry (GPtrArray *out, DlModelPlace place, GFile *file, const char *name, gboolean diffusers, guint64 size)
{
  DlModelEntry *e = g_new0 (DlModelEntry, 1);
  e->path = g_file_get_path (file);
  e->name = g_strdup (name);
  e->place = place;
  e->diffusers = diffusers;
  e->size = size;
  if (e->path)
    g_ptr_array_add (out, e);
  else
    dl_model_entry_free (e);
}

/* A folder of checkpoint files (A1111, ComfyUI, ours): files and diffusers folders, recursively. */
static void
scan_files (GPtrArray *out, DlModelPlace place, GFile *dir, const char *prefix, int depth, GCancellable *cancellable)
{
  if (depth > MAX_DEPTH || g_cancellable_is_cancelled (cancellable))
    return;
  g_autoptr (GFileEnumerator) en = g_file_enumerate_children (
    dir, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE,
    G_FILE_QUERY_INFO_NONE, cancellable, NULL);
  if (!en)
    return;
  GFileInfo *info;
  while ((info = g_file_enumerator_next_file (en, cancellable, NULL)))
    {
      const char *name = g_file_info_get_name (info);
      g_autoptr (GFile) child = g_file_get_child (dir, name);
      g_autofree char *shown = prefix ? g_build_filename (prefix, name, NULL) : g_strdup (name);
      if (name[0] == '.')
        ;
      else if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        {
          if (has_model_index (child))
            add_entry (out, place, child, shown, TRUE, folder_size (child, 0, cancellable));
          else
            scan_files (out, place, child, shown, depth + 1, cancellable);
        }
      else if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR && is_checkpoint_name (name))
        {
          g_autofree char *bare = strip_extension (shown);
          add_entry (out, place, child, bare, FALSE, (guint64)g_file_info_get_size (info));
        }
      g_object_unref (info);
    }
}

static char *
read_ref (GFile *repo, const char *ref)
{
  g_autoptr (GFile) refs = g_file_get_child (repo, "refs");
  g_autoptr (GFile) file = g_file_get_child (refs, ref);
  g_autofree char *contents = NULL;
  gsize len;
  if (!g_file_load_contents (file, NULL, &contents, &len, NULL, NULL) || len > 256)
    return NULL;
  return g_strstrip (g_strndup (contents, len));
}

/* The hub cache: models--org--name/snapshots/<revision>/model_index.json */
static void
scan_hf_cache (GPtrArray *out, GFile *hub, GCancellable *cancellable)
{
  g_autoptr (GFileEnumerator) en =
    g_file_enumerate_children (hub, G_FILE_ATTRIBUTE_STANDARD_NAME, G_FILE_QUERY_INFO_NONE, cancellable, NULL);
  if (!en)
    return;
  GFileInfo *info;
  while ((info = g_file_enumerator_next_file (en, cancellable, NULL)))
    {
      const char *dir_name = g_file_info_get_name (info);
      if (!g_str_has_prefix (dir_name, "models--"))
        {
          g_object_unref (info);
          continue;
        }
      g_autoptr (GFile) repo = g_file_get_child (hub, dir_name);
      g_autoptr (GFile) snapshots = g_file_get_child (repo, "snapshots");
      /* "models--org--name" -> "org/name" */
      g_auto (GStrv) parts = g_strsplit (dir_name + strlen ("models--"), "--", -1);
      g_autofree char *repo_id = g_strjoinv ("/", parts);
      g_object_unref (info);

      g_autofree char *main_rev = read_ref (repo, "main");
      g_autoptr (GFile) main_snapshot =
        main_rev && *main_rev && !strchr (main_rev, '/') ? g_file_get_child (snapshots, main_rev) : NULL;
      if (main_snapshot && has_model_index (main_snapshot))
        {
          add_entry (out, DL_MODEL_PLACE_HF_CACHE, main_snapshot, repo_id, TRUE,
                     folder_size (main_snapshot, 0, cancellable));
          continue;
        }
      /* no usable "main": every snapshot that is a diffusers folder, by revision */
      g_autoptr (GFileEnumerator) sen = g_file_enumerate_children (snapshots, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                                   G_FILE_QUERY_INFO_NONE, cancellable, NULL);
      GFileInfo *sinfo;
      while (sen && (sinfo = g_file_enumerator_next_file (sen, cancellable, NULL)))
        {
          const char *rev = g_file_info_get_name (sinfo);
          g_autoptr (GFile) snap = g_file_get_child (snapshots, rev);
          if (has_model_index (snap))
            {
              g_autofree char *name = g_strdup_printf ("%s @ %.7s", repo_id, rev);
              add_entry (out, DL_MODEL_PLACE_HF_CACHE, snap, name, TRUE, folder_size (snap, 0, cancellable));
            }
          g_object_unref (sinfo);
        }
    }
}

static int
compare_entries (gconstpointer a, gconstpointer b)
{
  const DlModelEntry *x = *(DlModelEntry **)a, *y = *(DlModelEntry **)b;
  if (x->place != y->place)
    return (int)x->place - (int)y->place;
  g_autofree char *kx = g_utf8_collate_key_for_filename (x->name, -1);
  g_autofree char *ky = g_utf8_collate_key_for_filename (y->name, -1);
  return strcmp (kx, ky);
}

GPtrArray *
dl_model_scan (GPtrArray *roots, GCancellable *cancellable)
{
  g_return_val_if_fail (roots != NULL, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_model_entry_free);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < roots->len; i++)
    {
      DlModelRoot *root = roots->pdata[i];
      g_autoptr (GFile) dir = g_file_new_for_path (root->dir);
      guint before = out->len;
      if (root->place == DL_MODEL_PLACE_HF_CACHE)
        scan_hf_cache (out, dir, cancellable);
      else
        scan_files (out, root->place, dir, NULL, 0, cancellable);
      /* the same folder reached twice (a link, overlapping roots) is listed once */
      for (guint j = before; j < out->len;)
        {
          DlModelEntry *e = out->pdata[j];
          if (g_hash_table_contains (seen, e->path))
            g_ptr_array_remove_index (out, j);
          else
            {
              g_hash_table_add (seen, e->path);
              j++;
            }
        }
    }
  g_ptr_array_sort (out, compare_entries);
  return out;
}

static void
scan_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GPtrArray *entries = dl_model_scan (data, cancellable);
  if (g_cancellable_is_cancelled (cancellable))
    {
      g_ptr_array_unref (entries);
      g_task_return_error_if_cancelled (task);
      return;
    }
  g_task_return_pointer (task, entries, (GDestroyNotify)g_ptr_array_unref);
}

void
dl_model_scan_async (GPtrArray *roots, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (roots != NULL);
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_model_scan_async);
  g_task_set_task_data (task, g_ptr_array_ref (roots), (GDestroyNotify)g_ptr_array_unref);
  g_task_run_in_thread (task, scan_thread);
}

GPtrArray *
dl_model_scan_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

DlModelEntry *
dl_model_entry_for_path (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autofree char *base = g_file_get_basename (file);
  g_autoptr (GError) local = NULL;
  g_autoptr (GFileInfo) info = g_file_query_info (
    file, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, NULL, &local);
  if (!info)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, _ ("Could not open “%s”: %s"), base, local->message);
      return NULL;
    }
  if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR && g_strcmp0 (base, "model_index.json") == 0)
    {
      g_autofree char *parent = g_path_get_dirname (path);
      return dl_model_entry_for_path (parent, error);
    }
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_model_entry_free);
  if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
    {
      if (!has_model_index (file))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       _ ("The folder “%s” is not a diffusers model: it has no model_index.json"), base);
          return NULL;
        }
      add_entry (out, DL_MODEL_PLACE_OTHER, file, base, TRUE, folder_size (file, 0, NULL));
    }
  else if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR && is_checkpoint_name (base))
    {
      g_autofree char *bare = strip_extension (base);
      add_entry (out, DL_MODEL_PLACE_OTHER, file, bare, FALSE, (guint64)g_file_info_get_size (info));
    }
  else
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   _ ("“%s” is not a Stable Diffusion checkpoint: pick a .safetensors or .ckpt file or a diffusers "
                      "folder"),
                   base);
      return NULL;
    }
  if (out->len == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, _ ("“%s” is not on this computer"), base);
      return NULL;
    }
  return g_ptr_array_steal_index (out, 0);
}

DlModelEntry *
dl_model_entry_inspect (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (DlModelEntry) entry = dl_model_entry_for_path (path, error);
  if (!entry)
    return NULL;
  g_autoptr (DlCheckpoint) ckpt = dl_checkpoint_open (entry->path, NULL, error);
  if (!ckpt)
    return NULL;
  entry->family = g_strdup (dl_model_family_name (dl_checkpoint_get_family (ckpt)));
  return g_steal_pointer (&entry);
}
