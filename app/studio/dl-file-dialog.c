#include "dl-config.h"

#include "dl-file-dialog.h"

#include <glib/gi18n.h>

typedef struct
{
  GWeakRef owner;
  DlFileDialogDone done;
  gpointer user_data;
} Request;

static void
finish (Request *req, GPtrArray *files)
{
  g_autoptr (GtkWidget) owner = g_weak_ref_get (&req->owner);
  if (owner)
    req->done (owner, files, req->user_data);
  g_weak_ref_clear (&req->owner);
  g_free (req);
}

static GtkWindow *
parent_window (GtkWidget *owner)
{
  GtkRoot *root = gtk_widget_get_root (owner);
  return GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL;
}

GtkFileFilter *
dl_file_filter_images (void)
{
  GtkFileFilter *filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("PNG, JPEG and WebP Images"));
  gtk_file_filter_add_mime_type (filter, "image/png");
  gtk_file_filter_add_mime_type (filter, "image/jpeg");
  gtk_file_filter_add_mime_type (filter, "image/webp");
  gtk_file_filter_add_suffix (filter, "png");
  gtk_file_filter_add_suffix (filter, "jpg");
  gtk_file_filter_add_suffix (filter, "jpeg");
  gtk_file_filter_add_suffix (filter, "webp");
  return filter;
}

static GPtrArray *
files_from_model (GListModel *model)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (g_object_unref);
  guint n = model ? g_list_model_get_n_items (model) : 0;
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (files, g_list_model_get_item (model, i));
  return files;
}

#if GTK_CHECK_VERSION(4, 10, 0)

static void
dialog_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Request *req = data;
  GtkFileDialog *dialog = GTK_FILE_DIALOG (source);
  DlFileDialogKind kind = GPOINTER_TO_INT (g_object_get_data (source, "dl-kind"));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) files = NULL;
  if (kind == DL_FILE_DIALOG_OPEN_MULTIPLE)
    {
      g_autoptr (GListModel) model = gtk_file_dialog_open_multiple_finish (dialog, result, &error);
      if (model)
        files = files_from_model (model);
    }
  else
    {
      g_autoptr (GFile) file = NULL;
      if (kind == DL_FILE_DIALOG_OPEN)
        file = gtk_file_dialog_open_finish (dialog, result, &error);
      else if (kind == DL_FILE_DIALOG_FOLDER)
        file = gtk_file_dialog_select_folder_finish (dialog, result, &error);
      else
        file = gtk_file_dialog_save_finish (dialog, result, &error);
      if (file)
        {
          files = g_ptr_array_new_with_free_func (g_object_unref);
          g_ptr_array_add (files, g_steal_pointer (&file));
        }
    }
  if (error && !g_error_matches (error, GTK_DIALOG_ERROR, GTK_DIALOG_ERROR_DISMISSED) &&
      !g_error_matches (error, GTK_DIALOG_ERROR, GTK_DIALOG_ERROR_CANCELLED))
    g_warning ("File dialog failed: %s", error->message);
  finish (req, files);
}

void
dl_file_dialog_run (GtkWidget *owner, DlFileDialogKind kind, const char *title, const char *accept_label,
                    GListModel *filters, GFile *initial_folder, const char *initial_name, DlFileDialogDone done,
                    gpointer user_data)
{
  g_return_if_fail (GTK_IS_WIDGET (owner));
  g_return_if_fail (done != NULL);
  Request *req = g_new0 (Request, 1);
  g_weak_ref_init (&req->owner, owner);
  req->done = done;
  req->user_data = user_data;

  g_autoptr (GtkFileDialog) dialog = gtk_file_dialog_new ();
  gtk_file_dialog_set_title (dialog, title);
  gtk_file_dialog_set_modal (dialog, TRUE);
  if (accept_label)
    gtk_file_dialog_set_accept_label (dialog, accept_label);
  if (filters && g_list_model_get_n_items (filters) > 0)
    {
      gtk_file_dialog_set_filters (dialog, filters);
      g_autoptr (GtkFileFilter) first = g_list_model_get_item (filters, 0);
      gtk_file_dialog_set_default_filter (dialog, first);
    }
  if (initial_folder)
    gtk_file_dialog_set_initial_folder (dialog, initial_folder);
  if (initial_name)
    gtk_file_dialog_set_initial_name (dialog, initial_name);
  g_object_set_data (G_OBJECT (dialog), "dl-kind", GINT_TO_POINTER (kind));

  GtkWindow *parent = parent_window (owner);
  switch (kind)
    {
    case DL_FILE_DIALOG_OPEN:
      gtk_file_dialog_open (dialog, parent, NULL, dialog_done, req);
      break;
    case DL_FILE_DIALOG_OPEN_MULTIPLE:
      gtk_file_dialog_open_multiple (dialog, parent, NULL, dialog_done, req);
      break;
    case DL_FILE_DIALOG_FOLDER:
      gtk_file_dialog_select_folder (dialog, parent, NULL, dialog_done, req);
      break;
    case DL_FILE_DIALOG_SAVE:
      gtk_file_dialog_save (dialog, parent, NULL, dialog_done, req);
      break;
    }
}

#else /* GTK 4.8 */

static void
native_response (GtkNativeDialog *native, int response, gpointer data)
{
  Request *req = data;
  g_autoptr (GPtrArray) files = NULL;
  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GListModel) model = gtk_file_chooser_get_files (GTK_FILE_CHOOSER (native));
      files = files_from_model (model);
    }
  finish (req, files);
  g_object_unref (native);
}

void
dl_file_dialog_run (GtkWidget *owner, DlFileDialogKind kind, const char *title, const char *accept_label,
                    GListModel *filters, GFile *initial_folder, const char *initial_name, DlFileDialogDone done,
                    gpointer user_data)
{
  g_return_if_fail (GTK_IS_WIDGET (owner));
  g_return_if_fail (done != NULL);
  Request *req = g_new0 (Request, 1);
  g_weak_ref_init (&req->owner, owner);
  req->done = done;
  req->user_data = user_data;

  GtkFileChooserAction action = kind == DL_FILE_DIALOG_FOLDER ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER
                                : kind == DL_FILE_DIALOG_SAVE ? GTK_FILE_CHOOSER_ACTION_SAVE
                                                              : GTK_FILE_CHOOSER_ACTION_OPEN;
  GtkFileChooserNative *native =
    gtk_file_chooser_native_new (title, parent_window (owner), action, accept_label, _ ("_Cancel"));
  GtkFileChooser *chooser = GTK_FILE_CHOOSER (native);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  gtk_file_chooser_set_select_multiple (chooser, kind == DL_FILE_DIALOG_OPEN_MULTIPLE);
  guint n_filters = filters ? g_list_model_get_n_items (filters) : 0;
  for (guint i = 0; i < n_filters; i++)
    {
      g_autoptr (GtkFileFilter) filter = g_list_model_get_item (filters, i);
      gtk_file_chooser_add_filter (chooser, filter);
    }
  if (initial_folder)
    gtk_file_chooser_set_current_folder (chooser, initial_folder, NULL);
  if (initial_name && kind == DL_FILE_DIALOG_SAVE)
    gtk_file_chooser_set_current_name (chooser, initial_name);
  g_signal_connect (native, "response", G_CALLBACK (native_response), req);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (native));
}

#endif
