#include "dl-config.h"

#include "dl-start-page.h"

#include <glib/gi18n.h>
#include <string.h>

#include "dl-project.h"
#include "io/dl-file-util.h"

struct _DlStartPage
{
  AdwBin parent_instance;
  AdwPreferencesGroup *recent_group;
  GtkListBox *recent_list;
  GtkLabel *device_label;
  GSettings *settings;
  GSignalGroup *settings_signals;
  GCancellable *cancellable; /* the existence checks of the rows shown */
  guint n_recent, n_checking, n_missing;
};

G_DEFINE_FINAL_TYPE (DlStartPage, dl_start_page, ADW_TYPE_BIN)

static char *
project_title (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  if (g_str_has_suffix (base, DL_PROJECT_EXTENSION) && strlen (base) > strlen (DL_PROJECT_EXTENSION))
    base[strlen (base) - strlen (DL_PROJECT_EXTENSION)] = '\0';
  return g_steal_pointer (&base);
}

static void
mark_missing (GtkWidget *row)
{
  const char *path = g_object_get_data (G_OBJECT (row), "dl-path");
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *shown_dir = dl_file_tilde_path (dir);
  g_autofree char *subtitle = g_strdup_printf (_ ("Not found in %s"), shown_dir);
  g_autofree char *subtitle_markup = g_markup_escape_text (subtitle, -1);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle_markup);
  GtkImage *icon = g_object_get_data (G_OBJECT (row), "dl-icon");
  gtk_image_set_from_icon_name (icon, "dialog-warning-symbolic");
  gtk_widget_add_css_class (GTK_WIDGET (icon), "warning");
  gtk_actionable_set_action_name (GTK_ACTIONABLE (row), NULL);
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
}

typedef struct
{
  DlStartPage *page; /* strong, like the row: both live until the check reports */
  GtkWidget *row;
} Check;

static void
checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Check *c = user_data;
  g_autoptr (DlStartPage) self = c->page;
  g_autoptr (GtkWidget) row = c->row;
  g_free (c);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileInfo) info = g_file_query_info_finish (G_FILE (source), result, &error);
  /* a rebuild since: this row is gone */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (self->n_checking > 0)
    self->n_checking--;
  if (!info || g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR)
    {
      self->n_missing++;
      mark_missing (row);
    }
}

/* The rows appear at once; whether each file is still there is asked on a worker
 * thread, as a project on a sleeping network disk would freeze the window. */
static void
rebuild (DlStartPage *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->recent_list))))
    gtk_list_box_remove (self->recent_list, child);
  self->n_recent = self->n_checking = self->n_missing = 0;
  if (!self->settings)
    {
      gtk_widget_set_visible (GTK_WIDGET (self->recent_group), FALSE);
      return;
    }
  g_auto (GStrv) recent = g_settings_get_strv (self->settings, "recent-projects");
  for (char **p = recent; *p; p++)
    {
      g_autofree char *title = project_title (*p);
      g_autofree char *dir = g_path_get_dirname (*p);
      g_autofree char *shown_dir = dl_file_tilde_path (dir);
      g_autofree char *title_markup = g_markup_escape_text (title, -1);
      g_autofree char *subtitle_markup = g_markup_escape_text (shown_dir, -1);

      GtkWidget *row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title_markup);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle_markup);
      gtk_widget_set_tooltip_text (row, *p);
      g_object_set_data_full (G_OBJECT (row), "dl-path", g_strdup (*p), g_free);
      gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
      gtk_actionable_set_action_name (GTK_ACTIONABLE (row), "win.open-recent");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (row), "s", *p);
      GtkWidget *icon = gtk_image_new_from_icon_name ("folder-documents-symbolic");
      g_object_set_data (G_OBJECT (row), "dl-icon", icon);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);

      GtkWidget *forget = gtk_button_new_from_icon_name ("window-close-symbolic");
      gtk_widget_set_valign (forget, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (forget, _ ("Remove From List"));
      gtk_accessible_update_property (GTK_ACCESSIBLE (forget), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Remove From List"),
                                      -1);
      gtk_widget_add_css_class (forget, "flat");
      gtk_widget_add_css_class (forget, "circular");
      gtk_actionable_set_action_name (GTK_ACTIONABLE (forget), "win.forget-recent");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (forget), "s", *p);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), forget);
      gtk_list_box_append (self->recent_list, row);
      self->n_recent++;

      Check *c = g_new0 (Check, 1);
      c->page = g_object_ref (self);
      c->row = g_object_ref (row);
      self->n_checking++;
      g_autoptr (GFile) file = g_file_new_for_path (*p);
      g_file_query_info_async (file, G_FILE_ATTRIBUTE_STANDARD_TYPE, G_FILE_QUERY_INFO_NONE, G_PRIORITY_DEFAULT,
                               self->cancellable, checked, c);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->recent_group), self->n_recent > 0);
}

void
dl_start_page_set_settings (DlStartPage *self, GSettings *settings)
{
  g_return_if_fail (DL_IS_START_PAGE (self));
  g_set_object (&self->settings, settings);
  g_signal_group_set_target (self->settings_signals, settings);
  rebuild (self);
}

void
dl_start_page_set_device_text (DlStartPage *self, const char *text)
{
  g_return_if_fail (DL_IS_START_PAGE (self));
  gtk_label_set_text (self->device_label, text);
}

const char *
dl_start_page_get_device_text (DlStartPage *self)
{
  g_return_val_if_fail (DL_IS_START_PAGE (self), NULL);
  return gtk_label_get_text (self->device_label);
}

guint
dl_start_page_get_n_recent (DlStartPage *self)
{
  g_return_val_if_fail (DL_IS_START_PAGE (self), 0);
  return self->n_recent;
}

gboolean
dl_start_page_get_checking (DlStartPage *self)
{
  g_return_val_if_fail (DL_IS_START_PAGE (self), FALSE);
  return self->n_checking > 0;
}

guint
dl_start_page_get_n_recent_missing (DlStartPage *self)
{
  g_return_val_if_fail (DL_IS_START_PAGE (self), 0);
  return self->n_missing;
}

static void
dl_start_page_dispose (GObject *object)
{
  DlStartPage *self = DL_START_PAGE (object);
  if (self->settings_signals)
    g_signal_group_set_target (self->settings_signals, NULL);
  g_clear_object (&self->settings_signals);
  g_clear_object (&self->settings);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_START_PAGE);
  G_OBJECT_CLASS (dl_start_page_parent_class)->dispose (object);
}

static void
dl_start_page_class_init (DlStartPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_start_page_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-start-page.ui");
  gtk_widget_class_bind_template_child (widget_class, DlStartPage, recent_group);
  gtk_widget_class_bind_template_child (widget_class, DlStartPage, recent_list);
  gtk_widget_class_bind_template_child (widget_class, DlStartPage, device_label);
}

static void
dl_start_page_init (DlStartPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->settings_signals = g_signal_group_new (G_TYPE_SETTINGS);
  g_signal_group_connect_swapped (self->settings_signals, "changed::recent-projects", G_CALLBACK (rebuild), self);
  rebuild (self);
}
