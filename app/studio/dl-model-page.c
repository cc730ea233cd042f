#include "dl-config.h"

#include "dl-model-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <string.h>

#include "dl-file-dialog.h"
#include "dl-model-scan.h"
#include "dl-toast.h"
#include "io/dl-file-util.h"

struct _DlModelPage
{
  GtkWidget parent_instance;
  AdwActionRow *current_row;
  GtkImage *current_icon;
  AdwPreferencesGroup *found_group;
  GtkListBox *found_list;

  DlProject *project;
  GSignalGroup *project_signals; /* the project's, while it is the page's */
  GPtrArray *entries;            /* DlModelEntry */
  DlModelEntry *current;         /* what the project's base model is, once looked at */
  char *problem_path;            /* the project's base model could not be used ... */
  char *problem;                 /* ... for this reason */
  GCancellable *scan_cancellable;
  GCancellable *describe_cancellable;
  gboolean scanning;
  gboolean scanned_once;
  GtkCheckButton *radio_group;
};

G_DEFINE_FINAL_TYPE (DlModelPage, dl_model_page, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_SCAN_FINISHED,
  SIGNAL_CHOSEN,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static char *
describe (const DlModelEntry *e)
{
  g_autofree char *size = g_format_size (e->size);
  return g_strdup_printf ("%s%s%s · %s · %s", e->family ? e->family : "", e->family ? " · " : "",
                          dl_model_place_name (e->place), size,
                          e->diffusers ? _ ("diffusers folder") : _ ("single file"));
}

static void
set_row_text (AdwActionRow *row, const char *title, const char *subtitle)
{
  g_autofree char *t = g_markup_escape_text (title, -1);
  g_autofree char *s = g_markup_escape_text (subtitle, -1);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), t);
  adw_action_row_set_subtitle (row, s);
}

static void
sync_current (DlModelPage *self)
{
  const char *path = self->project ? dl_project_get_base_model (self->project) : NULL;
  gtk_widget_remove_css_class (GTK_WIDGET (self->current_icon), "warning");
  if (!path)
    {
      set_row_text (self->current_row, _ ("No Base Model Chosen"), _ ("Pick one below, or open a checkpoint file"));
      gtk_image_set_from_icon_name (self->current_icon, "drive-harddisk-symbolic");
    }
  else if (self->current && g_strcmp0 (self->current->path, path) == 0)
    {
      g_autofree char *where = dl_file_tilde_path (path);
      g_autofree char *what = describe (self->current);
      g_autofree char *subtitle = g_strdup_printf ("%s\n%s", what, where);
      set_row_text (self->current_row, self->current->name, subtitle);
      gtk_image_set_from_icon_name (self->current_icon, "emblem-ok-symbolic");
    }
  else
    {
      /* not looked at yet, or it cannot be used: the inspection says why */
      g_autofree char *name = g_path_get_basename (path);
      g_autofree char *where = dl_file_tilde_path (path);
      gboolean has_problem = self->problem && g_strcmp0 (self->problem_path, path) == 0;
      g_autofree char *subtitle = has_problem ? g_strdup_printf ("%s\n%s", self->problem, where) : g_strdup (where);
      set_row_text (self->current_row, name, subtitle);
      gtk_image_set_from_icon_name (self->current_icon,
                                    has_problem ? "dialog-warning-symbolic" : "drive-harddisk-symbolic");
      if (has_problem)
        gtk_widget_add_css_class (GTK_WIDGET (self->current_icon), "warning");
    }

  /* tick the matching row */
  for (GtkWidget *row = gtk_widget_get_first_child (GTK_WIDGET (self->found_list)); row;
       row = gtk_widget_get_next_sibling (row))
    {
      GtkCheckButton *check = g_object_get_data (G_OBJECT (row), "dl-check");
      const char *row_path = g_object_get_data (G_OBJECT (row), "dl-path");
      if (check)
        gtk_check_button_set_active (check, path && g_strcmp0 (row_path, path) == 0);
    }
}

/* ---- choosing ---- */

typedef struct
{
  GWeakRef page;
  GWeakRef project;
} ChooseData;

static void
describe_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  DlModelEntry *e = dl_model_entry_inspect (data, &error);
  if (e)
    g_task_return_pointer (task, e, (GDestroyNotify)dl_model_entry_free);
  else
    g_task_return_error (task, error);
}

static void
described (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ChooseData *d = user_data;
  g_autoptr (DlModelPage) self = g_weak_ref_get (&d->page);
  g_autoptr (DlProject) project = g_weak_ref_get (&d->project);
  g_weak_ref_clear (&d->page);
  g_weak_ref_clear (&d->project);
  g_free (d);
  g_autoptr (GError) error = NULL;
  DlModelEntry *e = g_task_propagate_pointer (G_TASK (result), &error);
  if (!self || !project || project != self->project || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      dl_model_entry_free (e);
      return;
    }
  const char *path = g_task_get_task_data (G_TASK (result));
  if (!e)
    {
      /* the project's own model is marked; a refused new choice leaves it as it was */
      if (g_strcmp0 (path, dl_project_get_base_model (project)) == 0)
        {
          g_free (self->problem_path);
          self->problem_path = g_strdup (path);
          g_free (self->problem);
          self->problem = g_strdup (error->message);
        }
      dl_toast_show (GTK_WIDGET (self), error->message, NULL);
      g_signal_emit (self, signals[SIGNAL_CHOSEN], 0, NULL, error);
      sync_current (self);
      return;
    }
  /* keep where it was found when the scan knows it */
  for (guint i = 0; self->entries && i < self->entries->len; i++)
    {
      DlModelEntry *known = self->entries->pdata[i];
      if (g_strcmp0 (known->path, e->path) == 0)
        {
          e->place = known->place;
          g_free (e->name);
          e->name = g_strdup (known->name);
        }
    }
  dl_model_entry_free (self->current);
  self->current = e;
  g_clear_pointer (&self->problem_path, g_free);
  g_clear_pointer (&self->problem, g_free);
  dl_project_set_base_model (project, e->path);
  sync_current (self);
  g_signal_emit (self, signals[SIGNAL_CHOSEN], 0, e->path, NULL);
}

static void
describe_current (DlModelPage *self, const char *path)
{
  g_cancellable_cancel (self->describe_cancellable);
  g_clear_object (&self->describe_cancellable);
  if (!path || !self->project)
    return;
  self->describe_cancellable = g_cancellable_new ();
  ChooseData *d = g_new0 (ChooseData, 1);
  g_weak_ref_init (&d->page, self);
  g_weak_ref_init (&d->project, self->project);
  g_autoptr (GTask) task = g_task_new (NULL, self->describe_cancellable, described, d);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, describe_thread);
}

void
dl_model_page_choose (DlModelPage *self, const char *path)
{
  g_return_if_fail (DL_IS_MODEL_PAGE (self));
  g_return_if_fail (path != NULL);
  describe_current (self, path);
}

static void
row_activated (GtkListBox *box, GtkListBoxRow *row, DlModelPage *self)
{
  const char *path = g_object_get_data (G_OBJECT (row), "dl-path");
  if (path && self->project)
    dl_model_page_choose (self, path);
}

static void
opened (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlModelPage *self = DL_MODEL_PAGE (owner);
  if (!files || files->len == 0)
    return;
  g_autofree char *path = g_file_get_path (files->pdata[0]);
  if (path)
    dl_model_page_choose (self, path);
}

static void
open_checkpoint (DlModelPage *self)
{
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("Stable Diffusion Checkpoints"));
  gtk_file_filter_add_suffix (filter, "safetensors");
  gtk_file_filter_add_suffix (filter, "ckpt");
  gtk_file_filter_add_pattern (filter, "model_index.json");
  g_list_store_append (filters, filter);
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_OPEN, _ ("Open a Base Model"), _ ("_Open"),
                      G_LIST_MODEL (filters), NULL, NULL, opened, NULL);
}

/* ---- scanning ---- */

static void
clear_list (DlModelPage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->found_list))))
    gtk_list_box_remove (self->found_list, child);
  self->radio_group = NULL;
}

static void
add_message_row (DlModelPage *self, const char *title, const char *subtitle, gboolean spinner)
{
  GtkWidget *row = adw_action_row_new ();
  set_row_text (ADW_ACTION_ROW (row), title, subtitle ? subtitle : "");
  if (spinner)
    {
      GtkWidget *sp = gtk_spinner_new ();
      gtk_spinner_start (GTK_SPINNER (sp));
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), sp);
    }
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  gtk_list_box_append (self->found_list, row);
}

static void
fill_list (DlModelPage *self)
{
  clear_list (self);
  if (self->scanning)
    {
      add_message_row (self, _ ("Looking for checkpoints…"), NULL, TRUE);
      return;
    }
  if (!self->entries || self->entries->len == 0)
    {
      g_autoptr (GPtrArray) roots = dl_model_scan_default_roots ();
      GString *dirs = g_string_new (NULL);
      for (guint i = 0; i < roots->len; i++)
        {
          g_autofree char *p = dl_file_tilde_path (((DlModelRoot *)roots->pdata[i])->dir);
          /* Translators: between the last two folders of a list: "~/a, ~/b and ~/c" */
          g_string_append_printf (dirs, "%s%s", i ? (i + 1 == roots->len ? _ (" and ") : ", ") : "", p);
        }
      /* Translators: %s is a list of folders */
      g_autofree char *where = g_strdup_printf (_ ("Looked in %s"), dirs->str);
      add_message_row (self, _ ("No Checkpoints Found"), where, FALSE);
      g_string_free (dirs, TRUE);
      return;
    }
  const char *chosen = self->project ? dl_project_get_base_model (self->project) : NULL;
  for (guint i = 0; i < self->entries->len; i++)
    {
      DlModelEntry *e = self->entries->pdata[i];
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *subtitle = describe (e);
      set_row_text (ADW_ACTION_ROW (row), e->name, subtitle);
      gtk_widget_set_tooltip_text (row, e->path);
      GtkWidget *check = gtk_check_button_new ();
      gtk_widget_set_valign (check, GTK_ALIGN_CENTER);
      gtk_widget_set_can_focus (check, FALSE);
      gtk_widget_set_can_target (check, FALSE);
      if (self->radio_group)
        gtk_check_button_set_group (GTK_CHECK_BUTTON (check), self->radio_group);
      else
        self->radio_group = GTK_CHECK_BUTTON (check);
      gtk_check_button_set_active (GTK_CHECK_BUTTON (check), chosen && g_strcmp0 (chosen, e->path) == 0);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), check);
      gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
      g_object_set_data_full (G_OBJECT (row), "dl-path", g_strdup (e->path), g_free);
      g_object_set_data (G_OBJECT (row), "dl-check", check);
      gtk_list_box_append (self->found_list, row);
    }
}

static void
scanned (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GWeakRef *ref = user_data;
  g_autoptr (DlModelPage) self = g_weak_ref_get (ref);
  g_weak_ref_clear (ref);
  g_free (ref);
  g_autoptr (GError) error = NULL;
  GPtrArray *entries = dl_model_scan_finish (result, &error);
  if (!self || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_pointer (&entries, g_ptr_array_unref);
      return;
    }
  self->scanning = FALSE;
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  self->entries = entries;
  fill_list (self);
  /* the chosen model may have been found: describe it with its place */
  if (self->project && dl_project_get_base_model (self->project) &&
      (!self->current || g_strcmp0 (self->current->path, dl_project_get_base_model (self->project)) != 0))
    describe_current (self, dl_project_get_base_model (self->project));
  g_signal_emit (self, signals[SIGNAL_SCAN_FINISHED], 0);
}

void
dl_model_page_rescan (DlModelPage *self)
{
  g_return_if_fail (DL_IS_MODEL_PAGE (self));
  g_cancellable_cancel (self->scan_cancellable);
  g_clear_object (&self->scan_cancellable);
  self->scan_cancellable = g_cancellable_new ();
  self->scanning = TRUE;
  self->scanned_once = TRUE;
  fill_list (self);
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  g_autoptr (GPtrArray) roots = dl_model_scan_default_roots ();
  dl_model_scan_async (roots, self->scan_cancellable, scanned, ref);
}

gboolean
dl_model_page_get_scanning (DlModelPage *self)
{
  g_return_val_if_fail (DL_IS_MODEL_PAGE (self), FALSE);
  return self->scanning;
}

const DlModelEntry *
dl_model_page_get_current (DlModelPage *self)
{
  g_return_val_if_fail (DL_IS_MODEL_PAGE (self), NULL);
  const char *path = self->project ? dl_project_get_base_model (self->project) : NULL;
  return self->current && g_strcmp0 (self->current->path, path) == 0 ? self->current : NULL;
}

GPtrArray *
dl_model_page_get_entries (DlModelPage *self)
{
  g_return_val_if_fail (DL_IS_MODEL_PAGE (self), NULL);
  return self->entries;
}

static void
base_model_changed (DlModelPage *self)
{
  const char *path = self->project ? dl_project_get_base_model (self->project) : NULL;
  if (path && (!self->current || g_strcmp0 (self->current->path, path) != 0))
    describe_current (self, path);
  sync_current (self);
}

void
dl_model_page_set_project (DlModelPage *self, DlProject *project)
{
  g_return_if_fail (DL_IS_MODEL_PAGE (self));
  if (self->project == project)
    return;
  g_set_object (&self->project, project);
  g_clear_pointer (&self->current, dl_model_entry_free);
  g_clear_pointer (&self->problem_path, g_free);
  g_clear_pointer (&self->problem, g_free);
  g_signal_group_set_target (self->project_signals, project);
  base_model_changed (self);
  fill_list (self);
}

static void
page_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  DlModelPage *self = DL_MODEL_PAGE (widget);
  if (g_str_equal (action_name, "model.rescan"))
    dl_model_page_rescan (self);
  else if (g_str_equal (action_name, "model.open"))
    open_checkpoint (self);
}

/* The disks are searched the first time someone looks at the page, not at start. */
static void
dl_model_page_map (GtkWidget *widget)
{
  DlModelPage *self = DL_MODEL_PAGE (widget);
  GTK_WIDGET_CLASS (dl_model_page_parent_class)->map (widget);
  if (!self->scanned_once)
    dl_model_page_rescan (self);
}

static void
dl_model_page_dispose (GObject *object)
{
  DlModelPage *self = DL_MODEL_PAGE (object);
  g_cancellable_cancel (self->scan_cancellable);
  g_cancellable_cancel (self->describe_cancellable);
  dl_model_page_set_project (self, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_MODEL_PAGE);
  /* the template's top box is ours to unparent (it is not a bound child) */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (dl_model_page_parent_class)->dispose (object);
}

static void
dl_model_page_finalize (GObject *object)
{
  DlModelPage *self = DL_MODEL_PAGE (object);
  g_clear_object (&self->project_signals);
  g_clear_object (&self->scan_cancellable);
  g_clear_object (&self->describe_cancellable);
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  g_clear_pointer (&self->current, dl_model_entry_free);
  g_free (self->problem_path);
  g_free (self->problem);
  G_OBJECT_CLASS (dl_model_page_parent_class)->finalize (object);
}

static void
dl_model_page_class_init (DlModelPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_model_page_dispose;
  object_class->finalize = dl_model_page_finalize;
  widget_class->map = dl_model_page_map;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-model-page.ui");
  gtk_widget_class_bind_template_child (widget_class, DlModelPage, current_row);
  gtk_widget_class_bind_template_child (widget_class, DlModelPage, current_icon);
  gtk_widget_class_bind_template_child (widget_class, DlModelPage, found_group);
  gtk_widget_class_bind_template_child (widget_class, DlModelPage, found_list);

  gtk_widget_class_install_action (widget_class, "model.rescan", NULL, page_action);
  gtk_widget_class_install_action (widget_class, "model.open", NULL, page_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F5, 0, "model.rescan", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_o, GDK_CONTROL_MASK | GDK_SHIFT_MASK, "model.open", NULL);

  /* A scan of the usual places finished. */
  signals[SIGNAL_SCAN_FINISHED] =
    g_signal_new ("scan-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* A choice was taken (path) or refused (NULL, error). */
  signals[SIGNAL_CHOSEN] = g_signal_new ("chosen", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_ERROR);
}

static void
dl_model_page_init (DlModelPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  g_signal_connect (self->found_list, "row-activated", G_CALLBACK (row_activated), self);
  self->project_signals = g_signal_group_new (DL_TYPE_PROJECT);
  g_signal_group_connect_swapped (self->project_signals, "notify::base-model", G_CALLBACK (base_model_changed), self);
  sync_current (self);
}
