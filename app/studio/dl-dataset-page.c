#include "dl-config.h"

#include "dl-dataset-page.h"

#include <adwaita.h>
#include <errno.h>
#include <glib/gi18n.h>
#include <string.h>

#include "dl-file-dialog.h"
#include "dl-image-tile.h"
#include "dl-import.h"
#include "dl-toast.h"

struct _DlDatasetPage
{
  GtkWidget parent_instance;

  GtkLabel *title_label;
  GtkLabel *location_label;
  AdwEntryRow *token_row;
  AdwEntryRow *class_row;
  AdwEntryRow *template_row;
  AdwActionRow *template_preview_row;
  GtkSpinButton *resolution_spin;
  GtkLabel *count_label;
  GtkSpinner *busy_spinner;
  AdwActionRow *warnings_row;
  GtkLabel *warnings_label;
  AdwActionRow *unreadable_row;
  GtkLabel *unreadable_label;
  GtkRevealer *missing_revealer;
  GtkLabel *missing_label;
  GtkStack *content_stack;
  GtkGridView *grid;

  DlProject *project;
  GSignalGroup *project_signals; /* the project's, while it is the page's */
  GSignalGroup *images_signals;  /* its images' */
  GBindingGroup *project_bindings;
  GSettings *settings;
  GtkMultiSelection *selection;
  GCancellable *cancellable;
  guint n_importing;
  char *last_toast;
  AdwToast *toast; /* weak: while the overlay has it */
  gboolean syncing;
};

G_DEFINE_FINAL_TYPE (DlDatasetPage, dl_dataset_page, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_IMPORT_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- toasts ---- */

/* The last toast's text is kept for tests, which have no eyes. */
static void
show_toast (DlDatasetPage *self, const char *title, const char *undo_action)
{
  g_free (self->last_toast);
  self->last_toast = g_strdup (title);
  g_set_weak_pointer (&self->toast, dl_toast_show (GTK_WIDGET (self), title, undo_action));
}

AdwToast *
dl_dataset_page_get_toast (DlDatasetPage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_PAGE (self), NULL);
  return self->toast;
}

const char *
dl_dataset_page_get_last_toast (DlDatasetPage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_PAGE (self), NULL);
  return self->last_toast;
}

/* ---- following the project ---- */

static void
sync_counts (DlDatasetPage *self)
{
  guint n = self->project ? g_list_model_get_n_items (dl_project_get_images (self->project)) : 0;
  guint warnings = self->project ? dl_project_get_n_warnings (self->project) : 0;
  guint unreadable = self->project ? dl_project_get_n_unreadable (self->project) : 0;
  guint missing = self->project ? dl_project_get_n_missing (self->project) : 0;
  g_autofree char *count = g_strdup_printf ("%u", n);
  g_autofree char *w = g_strdup_printf ("%u", warnings);
  g_autofree char *u = g_strdup_printf ("%u", unreadable);
  gtk_label_set_text (self->count_label, count);
  /* folders being searched or pictures being decoded: the count is still growing */
  gboolean busy = self->n_importing > 0 || (self->project && dl_project_get_n_loading (self->project) > 0);
  gtk_widget_set_visible (GTK_WIDGET (self->busy_spinner), busy);
  gtk_spinner_set_spinning (self->busy_spinner, busy);
  gtk_label_set_text (self->warnings_label, w);
  gtk_label_set_text (self->unreadable_label, u);
  gtk_widget_set_visible (GTK_WIDGET (self->warnings_row), warnings > 0);
  gtk_widget_set_visible (GTK_WIDGET (self->unreadable_row), unreadable > 0);
  gtk_stack_set_visible_child_name (self->content_stack, n > 0 ? "grid" : "empty");

  if (missing > 0)
    {
      g_autofree char *text = g_strdup_printf (
        g_dngettext (GETTEXT_PACKAGE, "%u image is missing: it was moved or deleted since it was added.",
                     "%u images are missing: they were moved or deleted since they were added.", missing),
        missing);
      gtk_label_set_text (self->missing_label, text);
    }
  gtk_revealer_set_reveal_child (self->missing_revealer, missing > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "dataset.show-missing", missing > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "dataset.locate-missing", missing > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "dataset.remove-missing", missing > 0);
}

static void
sync_template_preview (DlDatasetPage *self)
{
  g_autofree char *caption = self->project ? dl_project_expand_caption_template (self->project) : g_strdup ("");
  g_autofree char *markup = g_markup_escape_text (*caption ? caption : _ ("(nothing)"), -1);
  adw_action_row_set_subtitle (self->template_preview_row, markup);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "dataset.fill-captions", *caption != '\0');
}

static void
sync_undo (DlDatasetPage *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "dataset.undo-remove",
                                 self->project && dl_project_can_undo_remove (self->project));
}

/* Entry rows show what the user typed; the project keeps the trimmed text.  So the
 * project only writes back when the trimmed texts differ (another window, load). */
static void
sync_entry (DlDatasetPage *self, AdwEntryRow *row, const char *value)
{
  g_autofree char *shown = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (row))));
  if (g_strcmp0 (shown, value ? value : "") == 0)
    return;
  self->syncing = TRUE;
  gtk_editable_set_text (GTK_EDITABLE (row), value ? value : "");
  self->syncing = FALSE;
}

static void
sync_entries (DlDatasetPage *self)
{
  if (!self->project)
    return;
  sync_entry (self, self->token_row, dl_project_get_token (self->project));
  sync_entry (self, self->class_row, dl_project_get_class_word (self->project));
  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (self->template_row)),
                 dl_project_get_caption_template (self->project)) != 0)
    {
      self->syncing = TRUE;
      gtk_editable_set_text (GTK_EDITABLE (self->template_row), dl_project_get_caption_template (self->project));
      self->syncing = FALSE;
    }
  sync_template_preview (self);
}

static void
row_changed (GtkEditable *row, DlDatasetPage *self)
{
  if (self->syncing || !self->project)
    return;
  const char *text = gtk_editable_get_text (row);
  if (row == GTK_EDITABLE (self->token_row))
    dl_project_set_token (self->project, text);
  else if (row == GTK_EDITABLE (self->class_row))
    dl_project_set_class_word (self->project, text);
  else if (row == GTK_EDITABLE (self->template_row))
    dl_project_set_caption_template (self->project, text);
  sync_template_preview (self);
}

static void
sync_title (DlDatasetPage *self)
{
  g_autofree char *title = self->project ? dl_project_dup_title (self->project) : g_strdup ("");
  gtk_label_set_text (self->title_label, title);
  g_autofree char *path = self->project ? g_file_get_path (dl_project_get_file (self->project)) : NULL;
  const char *home = g_get_home_dir ();
  g_autofree char *shown = path && strlen (home) > 1 && g_str_has_prefix (path, home)
                             ? g_strconcat ("~", path + strlen (home), NULL)
                             : g_strdup (path ? path : "");
  gtk_label_set_text (self->location_label, shown);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->location_label), path);
}

static void
items_changed (DlDatasetPage *self)
{
  sync_counts (self);
}

void
dl_dataset_page_set_project (DlDatasetPage *self, DlProject *project)
{
  g_return_if_fail (DL_IS_DATASET_PAGE (self));
  g_return_if_fail (project == NULL || DL_IS_PROJECT (project));
  if (self->project == project)
    return;
  /* imports of the previous project are dropped */
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->n_importing = 0;

  g_set_object (&self->project, project);
  GListModel *images = project ? dl_project_get_images (project) : NULL;
  gtk_multi_selection_set_model (self->selection, images);
  /* the groups connect to the new project (and bind it) and let go of the old one */
  g_signal_group_set_target (self->project_signals, project);
  g_signal_group_set_target (self->images_signals, images);
  g_binding_group_set_source (self->project_bindings, project);
  if (project)
    sync_entries (self);
  sync_counts (self);
  sync_undo (self);
  sync_title (self);
}

DlProject *
dl_dataset_page_get_project (DlDatasetPage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_PAGE (self), NULL);
  return self->project;
}

void
dl_dataset_page_set_settings (DlDatasetPage *self, GSettings *settings)
{
  g_return_if_fail (DL_IS_DATASET_PAGE (self));
  g_set_object (&self->settings, settings);
}

/* ---- adding images ---- */

typedef struct
{
  GWeakRef page;
  GWeakRef project;
} ImportData;

static void
import_data_free (ImportData *d)
{
  g_weak_ref_clear (&d->page);
  g_weak_ref_clear (&d->project);
  g_free (d);
}

static void
import_collected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ImportData *d = user_data;
  g_autoptr (DlDatasetPage) self = g_weak_ref_get (&d->page);
  g_autoptr (DlProject) project = g_weak_ref_get (&d->project);
  import_data_free (d);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlImportResult) r = dl_import_collect_finish (result, &error);
  if (!self || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (self->n_importing > 0)
    self->n_importing--;
  sync_counts (self);
  if (!r || !project || project != self->project)
    {
      g_signal_emit (self, signals[SIGNAL_IMPORT_FINISHED], 0, 0u);
      return;
    }
  guint already = 0;
  guint added = dl_project_add_files (project, r->images, &already);

  /* the parts that apply, joined by " · " */
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  if (added)
    g_ptr_array_add (
      parts, g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Added %u image", "Added %u images", added), added));
  if (already)
    g_ptr_array_add (parts, g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u already in the dataset",
                                                          "%u already in the dataset", already),
                                             already));
  if (r->n_not_images)
    g_ptr_array_add (parts,
                     g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u file skipped: not a PNG, JPEG or WebP image",
                                                   "%u files skipped: not PNG, JPEG or WebP images", r->n_not_images),
                                      r->n_not_images));
  if (r->n_not_local)
    g_ptr_array_add (parts, g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u not on this computer",
                                                          "%u not on this computer", r->n_not_local),
                                             r->n_not_local));
  if (r->errors->len)
    g_ptr_array_add (parts, g_strdup (r->errors->pdata[0]));
  g_ptr_array_add (parts, NULL);
  g_autofree char *msg = parts->len > 1 ? g_strjoinv (" · ", (char **)parts->pdata) : g_strdup (_ ("No images found"));
  show_toast (self, msg, NULL);

  /* show what was just added */
  if (added)
    {
      guint n = g_list_model_get_n_items (dl_project_get_images (project));
      gtk_widget_activate_action (GTK_WIDGET (self->grid), "list.scroll-to-item", "u", n - 1);
    }
  g_signal_emit (self, signals[SIGNAL_IMPORT_FINISHED], 0, added);
}

GPtrArray *
dl_files_from_file_list (GdkFileList *list)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (g_object_unref);
  GSList *l = list ? gdk_file_list_get_files (list) : NULL;
  for (GSList *it = l; it; it = it->next)
    g_ptr_array_add (files, g_object_ref (it->data));
  g_slist_free (l);
  return files;
}

void
dl_dataset_page_add_files (DlDatasetPage *self, GPtrArray *files)
{
  g_return_if_fail (DL_IS_DATASET_PAGE (self));
  g_return_if_fail (files != NULL);
  if (!self->project || files->len == 0)
    return;
  ImportData *d = g_new0 (ImportData, 1);
  g_weak_ref_init (&d->page, self);
  g_weak_ref_init (&d->project, self->project);
  self->n_importing++;
  sync_counts (self);
  dl_import_collect_async (files, self->cancellable, import_collected, d);
}

guint
dl_dataset_page_get_n_importing (DlDatasetPage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_PAGE (self), 0);
  return self->n_importing;
}

static void
remember_folder (DlDatasetPage *self, GFile *file, gboolean is_folder)
{
  if (!self->settings || !file)
    return;
  g_autoptr (GFile) dir = is_folder ? g_object_ref (file) : g_file_get_parent (file);
  g_autofree char *path = dir ? g_file_get_path (dir) : NULL;
  if (path)
    g_settings_set_string (self->settings, "last-image-folder", path);
}

static GFile *
last_folder (DlDatasetPage *self)
{
  if (!self->settings)
    return NULL;
  g_autofree char *path = g_settings_get_string (self->settings, "last-image-folder");
  return *path && g_file_test (path, G_FILE_TEST_IS_DIR) ? g_file_new_for_path (path) : NULL;
}

static void
images_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlDatasetPage *self = DL_DATASET_PAGE (owner);
  if (!files || files->len == 0)
    return;
  remember_folder (self, files->pdata[0], GPOINTER_TO_INT (user_data));
  dl_dataset_page_add_files (self, files);
}

static void
pick_images (DlDatasetPage *self, gboolean folder)
{
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  if (!folder)
    {
      g_autoptr (GtkFileFilter) images = dl_file_filter_images ();
      g_list_store_append (filters, images);
    }
  g_autoptr (GFile) initial = last_folder (self);
  dl_file_dialog_run (GTK_WIDGET (self), folder ? DL_FILE_DIALOG_FOLDER : DL_FILE_DIALOG_OPEN_MULTIPLE,
                      folder ? _ ("Add a Folder of Images") : _ ("Add Images"), _ ("_Add"), G_LIST_MODEL (filters),
                      initial, NULL, images_picked, GINT_TO_POINTER (folder));
}

/* -- paste -- */

static void
pasted_files (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (DlDatasetPage) self = user_data;
  g_autoptr (GError) error = NULL;
  const GValue *value = gdk_clipboard_read_value_finish (GDK_CLIPBOARD (source), result, &error);
  if (!value || !G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    {
      show_toast (self, _ ("Nothing to paste"), NULL);
      return;
    }
  g_autoptr (GPtrArray) files = dl_files_from_file_list (g_value_get_boxed (value));
  dl_dataset_page_add_files (self, files);
}

typedef struct
{
  GdkTexture *texture;
  char *dir;
} PngJob;

static void
png_job_free (PngJob *job)
{
  g_clear_object (&job->texture);
  g_free (job->dir);
  g_free (job);
}

static void
save_png_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  PngJob *job = data;
  GError *error = NULL;
  if (g_mkdir_with_parents (job->dir, 0755) != 0)
    {
      int err = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (err), _ ("Could not make the folder “%s”: %s"),
                               job->dir, g_strerror (err));
      return;
    }
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  g_autofree char *path = NULL;
  for (int i = 0; i < 1000; i++)
    {
      g_autofree char *name =
        i ? g_strdup_printf ("pasted-%s-%d.png", stamp, i) : g_strdup_printf ("pasted-%s.png", stamp);
      g_free (path);
      path = g_build_filename (job->dir, name, NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        break;
    }
  g_autoptr (GBytes) png = gdk_texture_save_to_png_bytes (job->texture);
  if (!g_file_set_contents_full (path, g_bytes_get_data (png, NULL), (gssize)g_bytes_get_size (png),
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_file_new_for_path (path), g_object_unref);
}

static void
png_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GWeakRef *ref = user_data;
  g_autoptr (DlDatasetPage) self = g_weak_ref_get (ref);
  g_weak_ref_clear (ref);
  g_free (ref);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) file = g_task_propagate_pointer (G_TASK (result), &error);
  if (!self)
    return;
  if (!file)
    {
      g_autofree char *msg = g_strdup_printf (_ ("Could not save the pasted image: %s"), error->message);
      show_toast (self, msg, NULL);
      return;
    }
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (files, g_steal_pointer (&file));
  dl_dataset_page_add_files (self, files);
}

static void
pasted_texture (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (DlDatasetPage) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) texture = gdk_clipboard_read_texture_finish (GDK_CLIPBOARD (source), result, &error);
  if (!texture || !self->project)
    {
      show_toast (self, _ ("Nothing to paste"), NULL);
      return;
    }
  /* a pasted picture needs a file: it goes into a folder next to the project */
  g_autoptr (GFile) parent = g_file_get_parent (dl_project_get_file (self->project));
  g_autofree char *parent_path = parent ? g_file_get_path (parent) : NULL;
  g_autofree char *title = dl_project_dup_title (self->project);
  /* Translators: the folder for pasted pictures, next to the project; %s is the project's name */
  g_autofree char *dir_name = g_strdup_printf (_ ("%s pasted images"), title);
  PngJob *job = g_new0 (PngJob, 1);
  job->texture = g_steal_pointer (&texture);
  job->dir = g_build_filename (parent_path ? parent_path : g_get_home_dir (), dir_name, NULL);
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, png_saved, ref);
  g_task_set_task_data (task, job, (GDestroyNotify)png_job_free);
  g_task_run_in_thread (task, save_png_thread);
}

static void
pasted_text (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (DlDatasetPage) self = user_data;
  g_autofree char *text = gdk_clipboard_read_text_finish (GDK_CLIPBOARD (source), result, NULL);
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  /* paths or file:// URIs, one a line */
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_strstrip (*l);
      if (g_str_has_prefix (*l, "file://"))
        g_ptr_array_add (files, g_file_new_for_uri (*l));
      else if (g_path_is_absolute (*l) && g_file_test (*l, G_FILE_TEST_EXISTS))
        g_ptr_array_add (files, g_file_new_for_path (*l));
    }
  if (files->len == 0)
    {
      show_toast (self, _ ("The clipboard holds no images or image files"), NULL);
      return;
    }
  dl_dataset_page_add_files (self, files);
}

static void
paste (DlDatasetPage *self)
{
  if (!self->project)
    return;
  GdkClipboard *clipboard = gtk_widget_get_clipboard (GTK_WIDGET (self));
  GdkContentFormats *formats = gdk_clipboard_get_formats (clipboard);
  if (gdk_content_formats_contain_gtype (formats, GDK_TYPE_FILE_LIST))
    gdk_clipboard_read_value_async (clipboard, GDK_TYPE_FILE_LIST, G_PRIORITY_DEFAULT, NULL, pasted_files,
                                    g_object_ref (self));
  else if (gdk_content_formats_contain_gtype (formats, GDK_TYPE_TEXTURE))
    gdk_clipboard_read_texture_async (clipboard, NULL, pasted_texture, g_object_ref (self));
  else if (gdk_content_formats_contain_gtype (formats, G_TYPE_STRING))
    gdk_clipboard_read_text_async (clipboard, NULL, pasted_text, g_object_ref (self));
  else
    show_toast (self, _ ("The clipboard holds no images"), NULL);
}

/* ---- removing and moving ---- */

static GArray *
selected_positions (DlDatasetPage *self)
{
  GArray *positions = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  GtkBitsetIter iter;
  guint pos;
  for (gboolean ok = gtk_bitset_iter_init_first (&iter, set, &pos); ok; ok = gtk_bitset_iter_next (&iter, &pos))
    g_array_append_val (positions, pos);
  return positions;
}

static void
remove_positions (DlDatasetPage *self, const guint *positions, guint n)
{
  if (!self->project || n == 0)
    return;
  guint count = g_list_model_get_n_items (dl_project_get_images (self->project));
  const char *only = NULL;
  g_autoptr (DlDatasetImage) first =
    n == 1 && positions[0] < count ? g_list_model_get_item (dl_project_get_images (self->project), positions[0]) : NULL;
  if (first)
    only = dl_dataset_image_get_display_name (first);
  g_autofree char *title =
    only ? g_strdup_printf (_ ("Removed “%s”"), only)
         : g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Removed %u image", "Removed %u images", n), n);
  dl_project_remove (self->project, positions, n);
  show_toast (self, title, "dataset.undo-remove");
}

static void
tile_remove (DlImageTile *tile, DlDatasetPage *self)
{
  DlDatasetImage *image = dl_image_tile_get_image (tile);
  guint pos;
  if (!self->project || !image ||
      !g_list_store_find (G_LIST_STORE (dl_project_get_images (self->project)), image, &pos))
    return;
  remove_positions (self, &pos, 1);
}

static void
move_to (DlDatasetPage *self, guint from, int delta)
{
  guint n = g_list_model_get_n_items (dl_project_get_images (self->project));
  if ((delta < 0 && from == 0) || (delta > 0 && from + 1 >= n))
    return;
  guint to = (guint)((int)from + delta);
  dl_project_move (self->project, from, to);
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), to, TRUE);
  gtk_widget_activate_action (GTK_WIDGET (self->grid), "list.scroll-to-item", "u", to);
}

static void
tile_move (DlImageTile *tile, int delta, DlDatasetPage *self)
{
  DlDatasetImage *image = dl_image_tile_get_image (tile);
  guint pos;
  if (!self->project || !image ||
      !g_list_store_find (G_LIST_STORE (dl_project_get_images (self->project)), image, &pos))
    return;
  move_to (self, pos, delta);
}

/* ---- missing images ---- */

static void
missing_response (AdwMessageDialog *dialog, const char *response, DlDatasetPage *self)
{
  if (g_strcmp0 (response, "remove") == 0 && self->project)
    {
      guint n = dl_project_remove_missing (self->project);
      g_autofree char *title =
        g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Removed %u missing image", "Removed %u missing images", n), n);
      show_toast (self, title, "dataset.undo-remove");
    }
  else if (g_strcmp0 (response, "locate") == 0)
    gtk_widget_activate_action (GTK_WIDGET (self), "dataset.locate-missing", NULL);
}

static void
show_missing (DlDatasetPage *self)
{
  if (!self->project)
    return;
  g_autoptr (GPtrArray) missing = dl_project_get_missing (self->project);
  if (missing->len == 0)
    return;
  GtkWidget *list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  for (guint i = 0; i < missing->len; i++)
    {
      DlDatasetImage *image = missing->pdata[i];
      g_autofree char *title = g_markup_escape_text (dl_dataset_image_get_display_name (image), -1);
      g_autofree char *dir = g_path_get_dirname (dl_dataset_image_get_path (image));
      g_autofree char *subtitle = g_markup_escape_text (dir, -1);
      GtkWidget *row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      gtk_list_box_append (GTK_LIST_BOX (list), row);
    }
  GtkWidget *scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroller), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (scroller), TRUE);
  gtk_scrolled_window_set_max_content_height (GTK_SCROLLED_WINDOW (scroller), 320);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), list);

  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  g_autofree char *body = g_strdup_printf (
    g_dngettext (
      GETTEXT_PACKAGE,
      "This image is not where it was when it was added. Find it in a folder, or remove it from the project.",
      "These %u images are not where they were when they were added. Find them in a folder, or remove them from the "
      "project.",
      missing->len),
    missing->len);
  GtkWidget *dialog =
    adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, _ ("Missing Images"), body);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (dialog), TRUE);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), scroller);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog), "close", _ ("_Close"), "remove",
                                    _ ("_Remove From Project"), "locate", _ ("_Locate…"), NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "remove", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "locate", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "locate");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "close");
  g_signal_connect_object (dialog, "response", G_CALLBACK (missing_response), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
locate_collected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ImportData *d = user_data;
  g_autoptr (DlDatasetPage) self = g_weak_ref_get (&d->page);
  g_autoptr (DlProject) project = g_weak_ref_get (&d->project);
  import_data_free (d);
  g_autoptr (DlImportResult) r = dl_import_collect_finish (result, NULL);
  if (!self || !project || project != self->project || !r)
    return;
  guint before = dl_project_get_n_missing (project);
  guint found = dl_project_relocate_missing (project, r->images);
  g_autofree char *title = found ? g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Found %u of %u missing image",
                                                                 "Found %u of %u missing images", before),
                                                    found, before)
                                 : g_strdup (_ ("None of the missing images are in that folder"));
  show_toast (self, title, NULL);
}

static void
locate_folder_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlDatasetPage *self = DL_DATASET_PAGE (owner);
  if (!files || files->len == 0 || !self->project)
    return;
  ImportData *d = g_new0 (ImportData, 1);
  g_weak_ref_init (&d->page, self);
  g_weak_ref_init (&d->project, self->project);
  dl_import_collect_async (files, self->cancellable, locate_collected, d);
}

/* ---- actions ---- */

static void
page_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  DlDatasetPage *self = DL_DATASET_PAGE (widget);
  if (g_str_equal (action_name, "dataset.add-images"))
    pick_images (self, FALSE);
  else if (g_str_equal (action_name, "dataset.add-folder"))
    pick_images (self, TRUE);
  else if (g_str_equal (action_name, "dataset.paste"))
    paste (self);
  else if (!self->project)
    return;
  else if (g_str_equal (action_name, "dataset.remove-selected"))
    {
      g_autoptr (GArray) positions = selected_positions (self);
      remove_positions (self, (guint *)positions->data, positions->len);
    }
  else if (g_str_equal (action_name, "dataset.undo-remove"))
    {
      guint n = dl_project_undo_remove (self->project);
      if (n)
        {
          g_autofree char *title =
            g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Restored %u image", "Restored %u images", n), n);
          show_toast (self, title, NULL);
        }
    }
  else if (g_str_equal (action_name, "dataset.move-earlier") || g_str_equal (action_name, "dataset.move-later"))
    {
      g_autoptr (GArray) positions = selected_positions (self);
      if (positions->len == 1)
        move_to (self, g_array_index (positions, guint, 0), g_str_equal (action_name, "dataset.move-earlier") ? -1 : 1);
    }
  else if (g_str_equal (action_name, "dataset.fill-captions"))
    {
      guint n = dl_project_fill_empty_captions (self->project);
      g_autofree char *title =
        n ? g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Filled %u caption", "Filled %u captions", n), n)
          : g_strdup (_ ("Every image has a caption already"));
      show_toast (self, title, NULL);
    }
  else if (g_str_equal (action_name, "dataset.show-missing"))
    show_missing (self);
  else if (g_str_equal (action_name, "dataset.locate-missing"))
    dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_FOLDER, _ ("Find Missing Images in a Folder"), _ ("_Search"),
                        NULL, NULL, NULL, locate_folder_picked, NULL);
  else if (g_str_equal (action_name, "dataset.remove-missing"))
    missing_response (NULL, "remove", self);
}

/* ---- grid ---- */

static void
setup_tile (GtkSignalListItemFactory *factory, GtkListItem *item, DlDatasetPage *self)
{
  GtkWidget *tile = dl_image_tile_new ();
  g_signal_connect_object (tile, "remove-requested", G_CALLBACK (tile_remove), self, 0);
  g_signal_connect_object (tile, "move-requested", G_CALLBACK (tile_move), self, 0);
  gtk_list_item_set_child (item, tile);
}

static void
bind_tile (GtkSignalListItemFactory *factory, GtkListItem *item, DlDatasetPage *self)
{
  dl_image_tile_set_image (DL_IMAGE_TILE (gtk_list_item_get_child (item)), gtk_list_item_get_item (item));
}

static void
unbind_tile (GtkSignalListItemFactory *factory, GtkListItem *item, DlDatasetPage *self)
{
  dl_image_tile_set_image (DL_IMAGE_TILE (gtk_list_item_get_child (item)), NULL);
}

/* ---- GObject ---- */

static void
dl_dataset_page_dispose (GObject *object)
{
  DlDatasetPage *self = DL_DATASET_PAGE (object);
  dl_dataset_page_set_project (self, NULL);
  g_cancellable_cancel (self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_DATASET_PAGE);
  /* the template's top box is ours to unparent (it is not a bound child) */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (dl_dataset_page_parent_class)->dispose (object);
}

static void
dl_dataset_page_finalize (GObject *object)
{
  DlDatasetPage *self = DL_DATASET_PAGE (object);
  g_clear_object (&self->project_signals);
  g_clear_object (&self->images_signals);
  g_clear_object (&self->project_bindings);
  g_clear_object (&self->settings);
  g_clear_object (&self->selection);
  g_clear_object (&self->cancellable);
  g_free (self->last_toast);
  g_clear_weak_pointer (&self->toast);
  G_OBJECT_CLASS (dl_dataset_page_parent_class)->finalize (object);
}

static void
dl_dataset_page_class_init (DlDatasetPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_dataset_page_dispose;
  object_class->finalize = dl_dataset_page_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-dataset-page.ui");
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, title_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, location_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, token_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, class_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, template_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, template_preview_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, resolution_spin);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, count_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, busy_spinner);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, warnings_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, warnings_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, unreadable_row);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, unreadable_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, missing_revealer);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, missing_label);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, content_stack);
  gtk_widget_class_bind_template_child (widget_class, DlDatasetPage, grid);

  const char *actions[] = { "dataset.add-images",      "dataset.add-folder",    "dataset.paste",
                            "dataset.remove-selected", "dataset.undo-remove",   "dataset.move-earlier",
                            "dataset.move-later",      "dataset.fill-captions", "dataset.show-missing",
                            "dataset.locate-missing",  "dataset.remove-missing" };
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    gtk_widget_class_install_action (widget_class, actions[i], NULL, page_action);

  /* bubble phase: a focused caption entry handles these keys itself first */
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "dataset.remove-selected", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Delete, 0, "dataset.remove-selected", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_z, GDK_CONTROL_MASK, "dataset.undo-remove", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_v, GDK_CONTROL_MASK, "dataset.paste", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Left, GDK_ALT_MASK, "dataset.move-earlier", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Right, GDK_ALT_MASK, "dataset.move-later", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_c, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "dataset.fill-captions", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_m, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "dataset.show-missing", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_l, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "dataset.locate-missing", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                       "dataset.remove-missing", NULL);

  /* Emitted when an import (drop, paste, dialog) has added its images (guint n_added). */
  signals[SIGNAL_IMPORT_FINISHED] = g_signal_new ("import-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  g_type_ensure (DL_TYPE_IMAGE_TILE);
}

static void
dl_dataset_page_init (DlDatasetPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();

  self->selection = gtk_multi_selection_new (NULL);
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_tile), self);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_tile), self);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_tile), self);
  gtk_grid_view_set_factory (self->grid, factory);
  g_object_unref (factory);
  gtk_grid_view_set_model (self->grid, GTK_SELECTION_MODEL (self->selection));

  g_signal_connect (self->token_row, "changed", G_CALLBACK (row_changed), self);
  g_signal_connect (self->class_row, "changed", G_CALLBACK (row_changed), self);
  g_signal_connect (self->template_row, "changed", G_CALLBACK (row_changed), self);

  /* following the project: connected to whichever project the page has */
  self->project_signals = g_signal_group_new (DL_TYPE_PROJECT);
  const char *counts[] = { "notify::n-loading", "notify::n-missing", "notify::n-unreadable", "notify::n-warnings" };
  for (guint i = 0; i < G_N_ELEMENTS (counts); i++)
    g_signal_group_connect_swapped (self->project_signals, counts[i], G_CALLBACK (sync_counts), self);
  const char *entries[] = { "notify::token", "notify::class-word", "notify::caption-template" };
  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    g_signal_group_connect_swapped (self->project_signals, entries[i], G_CALLBACK (sync_entries), self);
  g_signal_group_connect_swapped (self->project_signals, "notify::can-undo-remove", G_CALLBACK (sync_undo), self);
  g_signal_group_connect_swapped (self->project_signals, "notify::file", G_CALLBACK (sync_title), self);
  self->images_signals = g_signal_group_new (G_TYPE_LIST_MODEL);
  g_signal_group_connect_swapped (self->images_signals, "items-changed", G_CALLBACK (items_changed), self);
  self->project_bindings = g_binding_group_new ();
  g_binding_group_bind (self->project_bindings, "resolution", self->resolution_spin, "value",
                        G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);

  sync_counts (self);
  sync_undo (self);
  sync_template_preview (self);
}
