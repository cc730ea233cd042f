/* The window owns the open project and the GSettings; the pages only show and edit
 * the project.  The GPU probe runs on a worker thread so a slow driver never
 * freezes the window. */
#include "dl-config.h"

#include "dl-window.h"

#include <glib/gi18n.h>

#include "dl-file-dialog.h"
#include "dl-settings.h"
#include "dl-start-page.h"
#include "dl-toast.h"
#include "vk/dl-device.h"

#include <string.h>

/* What was under way when the project could not be saved: it goes on once the
 * project is saved elsewhere or its changes are discarded. */
typedef enum
{
  THEN_CLOSE_WINDOW,
  THEN_CLOSE_PROJECT,
  THEN_SWITCH_PROJECT,
} UnsavedThen;

struct _DlWindow
{
  AdwApplicationWindow parent_instance;
  AdwToastOverlay *toast_overlay;
  GtkStack *main_stack;
  DlStartPage *start_page;
  AdwViewSwitcherTitle *switcher_title;
  AdwViewStack *view_stack;
  DlDatasetPage *dataset_page;
  DlModelPage *model_page;
  DlPreviewPage *preview_page;
  DlTrainPage *train_page;

  GSettings *settings;
  DlProject *project;
  GSignalGroup *project_signals; /* the project's, while it is the window's */
  GCancellable *cancellable;
  GtkDropTarget *drop_target;
  gint64 last_sidecar_toast;
  AdwMessageDialog *unsaved_dialog;  /* weak: while it asks */
  AdwMessageDialog *training_dialog; /* weak: while it asks */
  gboolean training_answered;        /* the run may go on without the window/project */
  UnsavedThen unsaved_then;          /* what the asking interrupted */
  DlProject *next_project;           /* opened or created while the current one waits to be saved */
};

G_DEFINE_FINAL_TYPE (DlWindow, dl_window, ADW_TYPE_APPLICATION_WINDOW)

enum
{
  SIGNAL_PROJECT_LOADED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
toast (DlWindow *self, const char *title)
{
  adw_toast_overlay_add_toast (self->toast_overlay, dl_toast_new (title));
}

static void
error_dialog (DlWindow *self, const char *heading, const char *body)
{
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (self), heading, body);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (dialog), TRUE);
  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _ ("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- the GPU probe ---- */

static void
probe_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = dl_device_list (&error);
  guint chosen;
  if (!infos || !dl_device_choose (infos, data, &chosen, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  const DlDeviceInfo *info = g_ptr_array_index (infos, chosen);
  g_autofree char *mem = g_format_size_full (info->device_local_bytes, G_FORMAT_SIZE_IEC_UNITS);
  /* Translators: the GPU's name, its kind (like "discrete GPU") and its memory */
  g_autofree char *line = g_strdup_printf (_ ("GPU: %s (%s, %s)"), info->name, dl_device_type_name (info->type), mem);
  if (info->type != VK_PHYSICAL_DEVICE_TYPE_CPU)
    {
      g_task_return_pointer (task, g_steal_pointer (&line), g_free);
      return;
    }
  char *text =
    g_strconcat (line, "\n", _ ("This is a software renderer: fine for trying things, far too slow to train."), NULL);
  g_task_return_pointer (task, text, g_free);
}

static void
probe_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_task_propagate_pointer (G_TASK (result), &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  DlWindow *self = DL_WINDOW (source);
  if (text)
    dl_start_page_set_device_text (self->start_page, text);
  else
    {
      g_autofree char *msg = g_strdup_printf (_ ("No usable GPU: %s"), error->message);
      dl_start_page_set_device_text (self->start_page, msg);
      g_warning ("%s", msg);
    }
}

static void
start_probe (DlWindow *self)
{
  dl_start_page_set_device_text (self->start_page, _ ("Looking for a GPU…"));
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, probe_done, NULL);
  char *selector = self->settings ? g_settings_get_string (self->settings, "device") : NULL;
  if (selector && !*selector)
    g_clear_pointer (&selector, g_free);
  g_task_set_task_data (task, selector, g_free);
  g_task_run_in_thread (task, probe_thread);
}

const char *
dl_window_get_device_text (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return dl_start_page_get_device_text (self->start_page);
}

/* ---- the project ---- */

static void
save_failed (DlProject *project, GError *error, DlWindow *self)
{
  g_autofree char *msg = g_strdup_printf (_ ("Could not save the project: %s"), error->message);
  AdwToast *t = dl_toast_new (msg);
  adw_toast_set_priority (t, ADW_TOAST_PRIORITY_HIGH);
  adw_toast_set_timeout (t, 0);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static void
sidecar_failed (DlProject *project, DlDatasetImage *image, const char *message, DlWindow *self)
{
  /* a read-only dataset folder fails for every caption: say it once in a while */
  gint64 now = g_get_monotonic_time ();
  if (now - self->last_sidecar_toast < 10 * G_USEC_PER_SEC)
    return;
  self->last_sidecar_toast = now;
  toast (self, message);
}

static void
sync_title (DlWindow *self)
{
  if (!self->project)
    {
      gtk_window_set_title (GTK_WINDOW (self), _ ("Dreamloom"));
      return;
    }
  g_autofree char *title = dl_project_dup_title (self->project);
  adw_view_switcher_title_set_title (self->switcher_title, title);
  /* Translators: the window's title: the project's name, then the application's */
  g_autofree char *window_title = g_strdup_printf (_ ("%s — Dreamloom"), title);
  gtk_window_set_title (GTK_WINDOW (self), window_title);
  g_autoptr (GFile) dir = g_file_get_parent (dl_project_get_file (self->project));
  g_autofree char *dir_path = dir ? g_file_get_path (dir) : NULL;
  const char *home = g_get_home_dir ();
  g_autofree char *shown = dir_path && g_str_has_prefix (dir_path, home) && strlen (home) > 1
                             ? g_strconcat ("~", dir_path + strlen (home), NULL)
                             : g_strdup (dir_path ? dir_path : "");
  adw_view_switcher_title_set_subtitle (self->switcher_title, shown);
}

static void
remember (DlWindow *self)
{
  if (!self->settings || !self->project)
    return;
  g_autofree char *path = g_file_get_path (dl_project_get_file (self->project));
  if (path)
    dl_settings_add_recent (self->settings, path);
}

static void
file_changed (DlWindow *self)
{
  sync_title (self);
  remember (self);
}

static void
sync_actions (DlWindow *self)
{
  gboolean open = self->project != NULL;
  const char *project_actions[] = { "save-project-as", "close-project", "add-images", "add-folder", "paste-images" };
  for (guint i = 0; i < G_N_ELEMENTS (project_actions); i++)
    {
      GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), project_actions[i]);
      g_simple_action_set_enabled (G_SIMPLE_ACTION (action), open);
    }
}

void
dl_window_set_project (DlWindow *self, DlProject *project)
{
  g_return_if_fail (DL_IS_WINDOW (self));
  g_return_if_fail (project == NULL || DL_IS_PROJECT (project));
  if (self->project == project)
    return;
  if (self->project)
    {
      g_autoptr (GError) error = NULL;
      if (!dl_project_flush (self->project, &error))
        g_warning ("Could not save the project: %s", error->message);
    }
  g_set_object (&self->project, project);
  g_signal_group_set_target (self->project_signals, project);
  if (!project)
    self->training_answered = FALSE;
  dl_dataset_page_set_project (self->dataset_page, project);
  dl_model_page_set_project (self->model_page, project);
  dl_preview_page_set_project (self->preview_page, project);
  dl_train_page_set_project (self->train_page, project);
  if (project)
    {
      adw_view_stack_set_visible_child_name (self->view_stack, "dataset");
      gtk_stack_set_visible_child_name (self->main_stack, "project");
      remember (self);
    }
  else
    gtk_stack_set_visible_child_name (self->main_stack, "start");
  sync_title (self);
  sync_actions (self);
}

DlProject *
dl_window_get_project (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->project;
}

static gboolean saved_or_ask (DlWindow *self, UnsavedThen then);

/* Another project replaces the open one only once the open one is on disk, or
 * its changes are given up: until then the window asks and `project` waits. */
static void
switch_project (DlWindow *self, DlProject *project)
{
  g_set_object (&self->next_project, project);
  if (!saved_or_ask (self, THEN_SWITCH_PROJECT))
    return;
  g_autoptr (DlProject) next = g_steal_pointer (&self->next_project);
  dl_window_set_project (self, next);
}

static void
project_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GWeakRef *ref = user_data;
  g_autoptr (DlWindow) self = g_weak_ref_get (ref);
  g_weak_ref_clear (ref);
  g_free (ref);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlProject) project = dl_project_load_finish (result, &error);
  if (!self)
    return;
  if (!project)
    {
      error_dialog (self, _ ("Could Not Open the Project"), error->message);
      g_signal_emit (self, signals[SIGNAL_PROJECT_LOADED], 0, NULL);
      return;
    }
  switch_project (self, project);
  g_signal_emit (self, signals[SIGNAL_PROJECT_LOADED], 0, project);
}

void
dl_window_open_file (DlWindow *self, GFile *file)
{
  g_return_if_fail (DL_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));
  /* Opening the open project again would read the file while edits of the last
   * moment are not on it yet, and then show (and save) that older version. */
  if (self->project && g_file_equal (file, dl_project_get_file (self->project)))
    {
      g_signal_emit (self, signals[SIGNAL_PROJECT_LOADED], 0, self->project);
      return;
    }
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  dl_project_load_async (file, self->cancellable, project_loaded, ref);
}

char *
dl_window_default_project_dir (void)
{
  const char *docs = g_get_user_special_dir (G_USER_DIRECTORY_DOCUMENTS);
  if (docs && g_strcmp0 (docs, g_get_home_dir ()) != 0)
    return g_build_filename (docs, "Dreamloom", NULL);
  return g_build_filename (g_get_home_dir (), "Dreamloom", NULL);
}

gboolean
dl_window_create_project (DlWindow *self, GFile *file, const char *token, const char *class_word)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (file), FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) dir = g_file_get_parent (file);
  if (dir && !g_file_make_directory_with_parents (dir, NULL, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    {
      error_dialog (self, _ ("Could Not Create the Project"), error->message);
      return FALSE;
    }
  g_clear_error (&error);
  g_autoptr (DlProject) project = dl_project_new (file);
  if (token && *token)
    dl_project_set_token (project, token);
  if (class_word)
    dl_project_set_class_word (project, class_word);
  if (!dl_project_save (project, &error))
    {
      error_dialog (self, _ ("Could Not Create the Project"), error->message);
      return FALSE;
    }
  switch_project (self, project);
  return TRUE;
}

/* A name that is not taken: "Name.dreamloom", "Name 2.dreamloom", ... */
static GFile *
unique_project_file (const char *dir, const char *name)
{
  g_autofree char *clean = g_strdelimit (g_strstrip (g_strdup (name)), "/\\", '-');
  if (!*clean)
    {
      g_free (clean);
      clean = g_strdup (_ ("Untitled Project"));
    }
  for (int i = 1;; i++)
    {
      g_autofree char *base = i == 1 ? g_strconcat (clean, DL_PROJECT_EXTENSION, NULL)
                                     : g_strdup_printf ("%s %d%s", clean, i, DL_PROJECT_EXTENSION);
      g_autofree char *path = g_build_filename (dir, base, NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS) || i > 9999)
        return g_file_new_for_path (path);
    }
}

typedef struct
{
  AdwEntryRow *name, *token, *class_word;
} NewProjectRows;

static void
new_project_response (AdwMessageDialog *dialog, const char *response, DlWindow *self)
{
  NewProjectRows *rows = g_object_get_data (G_OBJECT (dialog), "dl-rows");
  if (g_strcmp0 (response, "create") != 0 || !rows)
    return;
  g_autofree char *dir = dl_window_default_project_dir ();
  g_autoptr (GFile) file = unique_project_file (dir, gtk_editable_get_text (GTK_EDITABLE (rows->name)));
  dl_window_create_project (self, file, gtk_editable_get_text (GTK_EDITABLE (rows->token)),
                            gtk_editable_get_text (GTK_EDITABLE (rows->class_word)));
}

static void
show_new_project_dialog (DlWindow *self)
{
  g_autofree char *dir = dl_window_default_project_dir ();
  const char *home = g_get_home_dir ();
  g_autofree char *shown = g_str_has_prefix (dir, home) ? g_strconcat ("~", dir + strlen (home), NULL) : g_strdup (dir);
  g_autofree char *body = g_strdup_printf (
    /* Translators: %s is the folder the new project goes into */
    _ ("It is saved in %s as you work; Save As moves it elsewhere."), shown);
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (self), _ ("New Project"), body);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (dialog), TRUE);

  GtkWidget *list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  NewProjectRows *rows = g_new0 (NewProjectRows, 1);
  rows->name = ADW_ENTRY_ROW (adw_entry_row_new ());
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (rows->name), _ ("Name"));
  gtk_editable_set_text (GTK_EDITABLE (rows->name), _ ("My Concept"));
  rows->token = ADW_ENTRY_ROW (adw_entry_row_new ());
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (rows->token), _ ("Token (a rare word, like sks)"));
  gtk_editable_set_text (GTK_EDITABLE (rows->token), "sks");
  rows->class_word = ADW_ENTRY_ROW (adw_entry_row_new ());
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (rows->class_word), _ ("Class Word (what it is, like dog)"));
  gtk_list_box_append (GTK_LIST_BOX (list), GTK_WIDGET (rows->name));
  gtk_list_box_append (GTK_LIST_BOX (list), GTK_WIDGET (rows->token));
  gtk_list_box_append (GTK_LIST_BOX (list), GTK_WIDGET (rows->class_word));
  g_object_set_data_full (G_OBJECT (dialog), "dl-rows", rows, g_free);

  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), list);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog), "cancel", _ ("_Cancel"), "create", _ ("C_reate"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "create", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "create");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (new_project_response), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_widget_grab_focus (GTK_WIDGET (rows->name));
}

/* ---- dropping files on the window ---- */

/* A project file opens; anything else goes into the open project's dataset. */
static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, DlWindow *self)
{
  if (!G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    return FALSE;
  g_autoptr (GPtrArray) files = dl_files_from_file_list (g_value_get_boxed (value));
  if (files->len == 0)
    return FALSE;
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *name = g_file_get_basename (files->pdata[i]);
      if (name && g_str_has_suffix (name, DL_PROJECT_EXTENSION))
        {
          dl_window_open_file (self, files->pdata[i]);
          return TRUE;
        }
    }
  if (!self->project)
    {
      toast (self, _ ("Create or open a project first, then drop its images here"));
      return FALSE;
    }
  adw_view_stack_set_visible_child_name (self->view_stack, "dataset");
  dl_dataset_page_add_files (self->dataset_page, files);
  return TRUE;
}

GtkDropTarget *
dl_window_get_drop_target (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->drop_target;
}

/* ---- actions ---- */

static GListModel *
project_filters (void)
{
  GListStore *filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("Dreamloom Projects"));
  gtk_file_filter_add_suffix (filter, "dreamloom");
  g_list_store_append (filters, filter);
  return G_LIST_MODEL (filters);
}

static void
open_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  if (files && files->len)
    dl_window_open_file (DL_WINDOW (owner), files->pdata[0]);
}

/* The name picked in a save dialog, with ".dreamloom" if it lacks it. */
static GFile *
project_target (GFile *picked)
{
  g_autofree char *base = g_file_get_basename (picked);
  g_autoptr (GFile) parent = g_file_get_parent (picked);
  if (g_str_has_suffix (base, DL_PROJECT_EXTENSION) || !parent)
    return g_object_ref (picked);
  g_autofree char *named = g_strconcat (base, DL_PROJECT_EXTENSION, NULL);
  return g_file_get_child (parent, named);
}

static void
save_as_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlWindow *self = DL_WINDOW (owner);
  if (!files || files->len == 0 || !self->project)
    return;
  g_autoptr (GFile) target = project_target (files->pdata[0]);
  dl_project_set_file (self->project, target);
  g_autofree char *title = dl_project_dup_title (self->project);
  g_autofree char *msg = g_strdup_printf (_ ("Saved as “%s”"), title);
  toast (self, msg);
}

static void
run_save_as_dialog (DlWindow *self, DlFileDialogDone done)
{
  g_autoptr (GListModel) filters = project_filters ();
  g_autofree char *title = dl_project_dup_title (self->project);
  g_autofree char *name = g_strconcat (title, DL_PROJECT_EXTENSION, NULL);
  g_autoptr (GFile) dir = g_file_get_parent (dl_project_get_file (self->project));
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_SAVE, _ ("Save Project As"), _ ("_Save"), filters, dir, name,
                      done, NULL);
}

/* ---- a project that cannot be saved on closing ---- */

static void ask_unsaved (DlWindow *self, GError *error, UnsavedThen then);

/* The project is on disk (or given up): do what was interrupted. */
static void
go_on_closing (DlWindow *self)
{
  if (self->unsaved_then == THEN_CLOSE_WINDOW)
    gtk_window_close (GTK_WINDOW (self));
  else if (self->unsaved_then == THEN_SWITCH_PROJECT)
    {
      g_autoptr (DlProject) next = g_steal_pointer (&self->next_project);
      switch_project (self, next);
    }
  else if (saved_or_ask (self, THEN_CLOSE_PROJECT))
    dl_window_set_project (self, NULL);
}

static gboolean
go_on_closing_idle (gpointer data)
{
  go_on_closing (data);
  return G_SOURCE_REMOVE;
}

void
dl_window_save_unsaved_as (DlWindow *self, GFile *file)
{
  g_return_if_fail (DL_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));
  if (!self->project)
    return;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) target = project_target (file);
  if (!dl_project_save_as (self->project, target, &error))
    {
      ask_unsaved (self, error, self->unsaved_then);
      return;
    }
  go_on_closing (self);
}

static void
unsaved_save_as_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  if (files && files->len)
    dl_window_save_unsaved_as (DL_WINDOW (owner), files->pdata[0]);
}

static void
unsaved_response (AdwMessageDialog *dialog, const char *response, DlWindow *self)
{
  if (!self->project)
    return;
  if (g_str_equal (response, "cancel"))
    g_clear_object (&self->next_project);
  else if (g_str_equal (response, "discard"))
    {
      dl_project_discard_changes (self->project);
      /* once the dialog is done with its click: closing the window destroys it */
      g_idle_add_full (G_PRIORITY_DEFAULT, go_on_closing_idle, g_object_ref (self), g_object_unref);
    }
  else if (g_str_equal (response, "save-as"))
    run_save_as_dialog (self, unsaved_save_as_picked);
}

static void
ask_unsaved (DlWindow *self, GError *error, UnsavedThen then)
{
  self->unsaved_then = then;
  if (then != THEN_SWITCH_PROJECT)
    g_clear_object (&self->next_project);
  if (self->unsaved_dialog)
    gtk_window_destroy (GTK_WINDOW (self->unsaved_dialog));
  g_autofree char *title = dl_project_dup_title (self->project);
  g_autofree char *reason = g_strdup (error->message);
  if (g_str_has_suffix (reason, "."))
    reason[strlen (reason) - 1] = '\0';
  g_autofree char *body = g_strdup_printf (
    /* Translators: the project's name, then why it could not be saved */
    _ ("“%s” could not be saved: %s.\n\nSave it somewhere else to keep the changes, or discard the changes made "
       "since it was last saved."),
    title, reason);
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (self), _ ("Project Not Saved"), body);
  gtk_window_set_destroy_with_parent (GTK_WINDOW (dialog), TRUE);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog), "cancel", _ ("_Cancel"), "discard", _ ("_Discard"),
                                    "save-as", _ ("_Save As…"), NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "discard", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "save-as", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "save-as");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_signal_connect_object (dialog, "response", G_CALLBACK (unsaved_response), self, 0);
  g_set_weak_pointer (&self->unsaved_dialog, ADW_MESSAGE_DIALOG (dialog));
  gtk_window_present (GTK_WINDOW (dialog));
}

AdwMessageDialog *
dl_window_get_unsaved_dialog (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->unsaved_dialog;
}

/* The project is on disk, or the window asks what to do (FALSE). */
static gboolean
saved_or_ask (DlWindow *self, UnsavedThen then)
{
  g_autoptr (GError) error = NULL;
  if (!self->project || dl_project_flush (self->project, &error))
    return TRUE;
  ask_unsaved (self, error, then);
  return FALSE;
}

static void
action_new_project (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  show_new_project_dialog (user_data);
}

static void
action_open_project (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  g_autoptr (GListModel) filters = project_filters ();
  g_autofree char *dir = dl_window_default_project_dir ();
  g_autoptr (GFile) initial = g_file_test (dir, G_FILE_TEST_IS_DIR) ? g_file_new_for_path (dir) : NULL;
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_OPEN, _ ("Open Project"), _ ("_Open"), filters, initial, NULL,
                      open_picked, NULL);
}

static void
action_open_recent (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  g_autoptr (GFile) file = g_file_new_for_path (g_variant_get_string (param, NULL));
  dl_window_open_file (user_data, file);
}

static void
action_forget_recent (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  if (self->settings)
    dl_settings_remove_recent (self->settings, g_variant_get_string (param, NULL));
}

static void
action_save_project_as (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  if (self->project)
    run_save_as_dialog (self, save_as_picked);
}

/* ---- a run in progress when the window or the project closes ---- */

static void
notify_background_end (DlTrainJob *job, gpointer data)
{
  (void)data;
  dl_train_notify_end (job);
}

static void
training_response (AdwMessageDialog *dialog, const char *response, DlWindow *self)
{
  UnsavedThen then = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "then"));
  DlTrainJob *job = dl_train_page_get_job (self->train_page);
  if (g_str_equal (response, "cancel") || !job)
    return;
  if (g_str_equal (response, "stop"))
    dl_train_job_stop (job); /* ends after its step; the last checkpoint stays */
  else                       /* background: the engine session keeps the app running until the run ends */
    g_signal_connect (job, "finished", G_CALLBACK (notify_background_end), NULL);
  self->training_answered = TRUE;
  if (then == THEN_CLOSE_WINDOW)
    gtk_window_close (GTK_WINDOW (self));
  else if (saved_or_ask (self, THEN_CLOSE_PROJECT))
    dl_window_set_project (self, NULL);
}

/* TRUE: nothing trains (or the user has answered); else ask, and go on from the answer */
static gboolean
training_or_ask (DlWindow *self, UnsavedThen then)
{
  if (self->training_answered || !dl_train_page_is_training (self->train_page))
    return TRUE;
  if (self->training_dialog)
    return FALSE;
  AdwMessageDialog *d =
    ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (self), _ ("Training Is Running"), NULL));
  adw_message_dialog_set_body (d, _ ("Stop it now and keep its last checkpoint, or let it finish in the background "
                                     "(a notification says when it ends)?"));
  adw_message_dialog_add_responses (d, "cancel", _ ("_Cancel"), "stop", _ ("_Stop Training"), "background",
                                    _ ("_Keep Training"), NULL);
  adw_message_dialog_set_response_appearance (d, "stop", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_response_appearance (d, "background", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (d, "background");
  adw_message_dialog_set_close_response (d, "cancel");
  g_object_set_data (G_OBJECT (d), "then", GINT_TO_POINTER (then));
  g_signal_connect (d, "response", G_CALLBACK (training_response), self);
  g_set_weak_pointer (&self->training_dialog, d);
  gtk_window_present (GTK_WINDOW (d));
  return FALSE;
}

AdwMessageDialog *
dl_window_get_training_dialog (DlWindow *self)
{
  return self->training_dialog;
}

DlTrainPage *
dl_window_get_train_page (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->train_page;
}

static void
action_close_project (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  if (!training_or_ask (self, THEN_CLOSE_PROJECT))
    return;
  /* never lose work: closing waits until the project is on disk or given up */
  if (saved_or_ask (self, THEN_CLOSE_PROJECT))
    dl_window_set_project (self, NULL);
}

static void
action_forward (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  if (!self->project)
    return;
  const char *name = g_action_get_name (G_ACTION (action));
  adw_view_stack_set_visible_child_name (self->view_stack, "dataset");
  if (g_str_equal (name, "add-images"))
    gtk_widget_activate_action (GTK_WIDGET (self->dataset_page), "dataset.add-images", NULL);
  else if (g_str_equal (name, "add-folder"))
    gtk_widget_activate_action (GTK_WIDGET (self->dataset_page), "dataset.add-folder", NULL);
  else if (g_str_equal (name, "paste-images"))
    gtk_widget_activate_action (GTK_WIDGET (self->dataset_page), "dataset.paste", NULL);
}

static void
action_show_page (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  DlWindow *self = user_data;
  if (self->project)
    adw_view_stack_set_visible_child_name (self->view_stack, g_variant_get_string (param, NULL));
}

static const GActionEntry win_entries[] = {
  { .name = "new-project", .activate = action_new_project },
  { .name = "open-project", .activate = action_open_project },
  { .name = "open-recent", .activate = action_open_recent, .parameter_type = "s" },
  { .name = "forget-recent", .activate = action_forget_recent, .parameter_type = "s" },
  { .name = "save-project-as", .activate = action_save_project_as },
  { .name = "close-project", .activate = action_close_project },
  { .name = "add-images", .activate = action_forward },
  { .name = "add-folder", .activate = action_forward },
  { .name = "paste-images", .activate = action_forward },
  { .name = "show-page", .activate = action_show_page, .parameter_type = "s" },
};

DlDatasetPage *
dl_window_get_dataset_page (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->dataset_page;
}

DlModelPage *
dl_window_get_model_page (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->model_page;
}

DlPreviewPage *
dl_window_get_preview_page (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return self->preview_page;
}

const char *
dl_window_get_view (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return gtk_stack_get_visible_child_name (self->main_stack);
}

/* ---- GObject ---- */

static gboolean
dl_window_close_request (GtkWindow *window)
{
  DlWindow *self = DL_WINDOW (window);
  if (!training_or_ask (self, THEN_CLOSE_WINDOW))
    return TRUE;
  /* never lose work: the project is on disk before the window goes, or the
   * window stays and asks */
  if (!saved_or_ask (self, THEN_CLOSE_WINDOW))
    return TRUE;
  if (self->settings)
    {
      int w, h;
      gtk_window_get_default_size (window, &w, &h);
      g_settings_set_int (self->settings, "window-width", w);
      g_settings_set_int (self->settings, "window-height", h);
      g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));
    }
  return GTK_WINDOW_CLASS (dl_window_parent_class)->close_request (window);
}

static void
dl_window_dispose (GObject *object)
{
  DlWindow *self = DL_WINDOW (object);
  g_cancellable_cancel (self->cancellable);
  g_clear_weak_pointer (&self->unsaved_dialog);
  g_clear_weak_pointer (&self->training_dialog);
  g_clear_object (&self->next_project);
  dl_window_set_project (self, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_WINDOW);
  G_OBJECT_CLASS (dl_window_parent_class)->dispose (object);
}

static void
dl_window_finalize (GObject *object)
{
  DlWindow *self = DL_WINDOW (object);
  g_clear_object (&self->project_signals);
  g_clear_object (&self->settings);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (dl_window_parent_class)->finalize (object);
}

static void
dl_window_class_init (DlWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);
  object_class->dispose = dl_window_dispose;
  object_class->finalize = dl_window_finalize;
  window_class->close_request = dl_window_close_request;

  g_type_ensure (DL_TYPE_START_PAGE);
  g_type_ensure (DL_TYPE_DATASET_PAGE);
  g_type_ensure (DL_TYPE_MODEL_PAGE);
  g_type_ensure (DL_TYPE_PREVIEW_PAGE);
  g_type_ensure (DL_TYPE_TRAIN_PAGE);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DlWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, start_page);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, switcher_title);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, view_stack);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, dataset_page);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, model_page);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, preview_page);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, train_page);

  /* A project finished loading (DlProject, or NULL when it could not be opened). */
  signals[SIGNAL_PROJECT_LOADED] = g_signal_new ("project-loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                 NULL, NULL, NULL, G_TYPE_NONE, 1, DL_TYPE_PROJECT);
}

static void
dl_window_init (DlWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  if (g_str_has_suffix (DL_APP_ID, ".Devel"))
    gtk_widget_add_css_class (GTK_WIDGET (self), "devel");
  self->cancellable = g_cancellable_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self), win_entries, G_N_ELEMENTS (win_entries), self);
  self->project_signals = g_signal_group_new (DL_TYPE_PROJECT);
  g_signal_group_connect (self->project_signals, "save-failed", G_CALLBACK (save_failed), self);
  g_signal_group_connect (self->project_signals, "sidecar-failed", G_CALLBACK (sidecar_failed), self);
  g_signal_group_connect_swapped (self->project_signals, "notify::file", G_CALLBACK (file_changed), self);

  g_autoptr (GError) error = NULL;
  self->settings = dl_settings_new (&error);
  if (!self->settings)
    g_warning ("%s", error->message);
  int w = 1180, h = 760;
  if (self->settings)
    {
      w = g_settings_get_int (self->settings, "window-width");
      h = g_settings_get_int (self->settings, "window-height");
      if (g_settings_get_boolean (self->settings, "window-maximized"))
        gtk_window_maximize (GTK_WINDOW (self));
    }
  gtk_window_set_default_size (GTK_WINDOW (self), w, h);
  dl_start_page_set_settings (self->start_page, self->settings);
  dl_dataset_page_set_settings (self->dataset_page, self->settings);
  dl_preview_page_set_settings (self->preview_page, self->settings);

  self->drop_target = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (self->drop_target, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self->toast_overlay), GTK_EVENT_CONTROLLER (self->drop_target));

  sync_actions (self);
  start_probe (self);
}

DlWindow *
dl_window_new (DlApplication *app)
{
  return g_object_new (DL_TYPE_WINDOW, "application", app, NULL);
}
