#include "dl-config.h"

#include "dl-start-page.h"

#include <string.h>

#include "dl-project.h"

struct _DlStartPage {
  AdwBin parent_instance;
  AdwPreferencesGroup *recent_group;
  GtkListBox *recent_list;
  GtkLabel *device_label;
  GSettings *settings;
  guint n_recent;
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

/* ~/Pictures/dogs rather than /home/me/Pictures/dogs */
static char *
tilde_path (const char *path)
{
  const char *home = g_get_home_dir ();
  gsize n = strlen (home);
  if (n > 1 && g_str_has_prefix (path, home) && path[n] == '/')
    return g_strconcat ("~", path + n, NULL);
  return g_strdup (path);
}

static void
rebuild (DlStartPage *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->recent_list))))
    gtk_list_box_remove (self->recent_list, child);
  self->n_recent = 0;
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
      g_autofree char *shown_dir = tilde_path (dir);
      gboolean exists = g_file_test (*p, G_FILE_TEST_IS_REGULAR);
      g_autofree char *subtitle = exists ? g_strdup (shown_dir) : g_strdup_printf ("Not found in %s", shown_dir);
      g_autofree char *title_markup = g_markup_escape_text (title, -1);
      g_autofree char *subtitle_markup = g_markup_escape_text (subtitle, -1);

      GtkWidget *row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title_markup);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle_markup);
      gtk_widget_set_tooltip_text (row, *p);
      if (exists)
        {
          gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), TRUE);
          gtk_actionable_set_action_name (GTK_ACTIONABLE (row), "win.open-recent");
          gtk_actionable_set_action_target (GTK_ACTIONABLE (row), "s", *p);
          adw_action_row_add_prefix (ADW_ACTION_ROW (row), gtk_image_new_from_icon_name ("folder-documents-symbolic"));
        }
      else
        {
          GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");
          gtk_widget_add_css_class (icon, "warning");
          adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
        }
      GtkWidget *forget = gtk_button_new_from_icon_name ("window-close-symbolic");
      gtk_widget_set_valign (forget, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (forget, "Remove From List");
      gtk_widget_add_css_class (forget, "flat");
      gtk_widget_add_css_class (forget, "circular");
      gtk_actionable_set_action_name (GTK_ACTIONABLE (forget), "win.forget-recent");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (forget), "s", *p);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), forget);
      gtk_list_box_append (self->recent_list, row);
      self->n_recent++;
    }
  gtk_widget_set_visible (GTK_WIDGET (self->recent_group), self->n_recent > 0);
}

void
dl_start_page_set_settings (DlStartPage *self, GSettings *settings)
{
  g_return_if_fail (DL_IS_START_PAGE (self));
  if (self->settings)
    g_signal_handlers_disconnect_by_func (self->settings, rebuild, self);
  g_set_object (&self->settings, settings);
  if (settings)
    g_signal_connect_swapped (settings, "changed::recent-projects", G_CALLBACK (rebuild), self);
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

static void
dl_start_page_dispose (GObject *object)
{
  DlStartPage *self = DL_START_PAGE (object);
  if (self->settings)
    g_signal_handlers_disconnect_by_func (self->settings, rebuild, self);
  g_clear_object (&self->settings);
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
  rebuild (self);
}
