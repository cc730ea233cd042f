/* The studio application: one window per activation, app-wide actions. */
#include "dl-config.h"

#include "dl-application.h"
#include "dl-window.h"

struct _DlApplication {
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (DlApplication, dl_application, ADW_TYPE_APPLICATION)

static void
dl_application_activate (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (!window)
    window = GTK_WINDOW (dl_window_new (DL_APPLICATION (app)));
  gtk_window_present (window);
}

static void
quit_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static void
about_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (user_data));
  const char *developers[] = { "The Dreamloom developers", NULL };
  adw_show_about_window (parent,
                         "application-name", "Dreamloom",
                         "application-icon", DL_APP_ID,
                         "version", DL_VERSION,
                         "developers", developers,
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "comments", "Fine-tune Stable Diffusion on your own GPU",
                         NULL);
}

static void
dl_application_startup (GApplication *app)
{
  G_APPLICATION_CLASS (dl_application_parent_class)->startup (app);
  static const GActionEntry entries[] = {
    { .name = "quit", .activate = quit_activated },
    { .name = "about", .activate = about_activated },
  };
  g_action_map_add_action_entries (G_ACTION_MAP (app), entries, G_N_ELEMENTS (entries), app);
  const char *quit_accels[] = { "<Control>q", NULL };
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit_accels);
}

static void
dl_application_class_init (DlApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);
  app_class->activate = dl_application_activate;
  app_class->startup = dl_application_startup;
}

static void
dl_application_init (DlApplication *self)
{
}

DlApplication *
dl_application_new (void)
{
  return g_object_new (DL_TYPE_APPLICATION,
                       "application-id", DL_APP_ID,
                       "flags", G_APPLICATION_DEFAULT_FLAGS,
                       "resource-base-path", "/io/github/dreamloom/Dreamloom",
                       NULL);
}
