/* The studio application: one window per activation, app-wide actions and their
 * keyboard shortcuts; opening .dreamloom files given on the command line. */
#include "dl-config.h"

#include "dl-application.h"

#include <glib/gi18n.h>

#include "dl-engine-session.h"

#include "dl-preferences-window.h"
#include "dl-settings.h"
#include "dl-window.h"

struct _DlApplication
{
  AdwApplication parent_instance;
  DlEngineSession *session;
};

G_DEFINE_FINAL_TYPE (DlApplication, dl_application, ADW_TYPE_APPLICATION)

static DlWindow *
ensure_window (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (!window)
    window = GTK_WINDOW (dl_window_new (DL_APPLICATION (app)));
  return DL_WINDOW (window);
}

static void
dl_application_activate (GApplication *app)
{
  gtk_window_present (GTK_WINDOW (ensure_window (app)));
}

/* The window that has `file` open: two windows saving one project would undo each
 * other's changes. */
static DlWindow *
window_with_project (GApplication *app, GFile *file)
{
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (app)); l; l = l->next)
    {
      if (!DL_IS_WINDOW (l->data))
        continue;
      DlProject *project = dl_window_get_project (l->data);
      if (project && g_file_equal (dl_project_get_file (project), file))
        return l->data;
    }
  return NULL;
}

static void
dl_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  /* one project per window */
  for (int i = 0; i < n_files; i++)
    {
      DlWindow *window = window_with_project (app, files[i]);
      if (!window)
        {
          GtkWindow *active = gtk_application_get_active_window (GTK_APPLICATION (app));
          /* the active window takes the first project if it has none */
          if (i == 0 && DL_IS_WINDOW (active) && !dl_window_get_project (DL_WINDOW (active)))
            window = DL_WINDOW (active);
          else
            window = dl_window_new (DL_APPLICATION (app));
          dl_window_open_file (window, files[i]);
        }
      gtk_window_present (GTK_WINDOW (window));
    }
}

static void
quit_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  /* closing each window saves its project (held: closing one may destroy another,
   * a dialog it was the parent of) */
  GList *windows = g_list_copy_deep (gtk_application_get_windows (GTK_APPLICATION (user_data)),
                                     (GCopyFunc)(void (*) (void))g_object_ref, NULL);
  for (GList *l = windows; l; l = l->next)
    gtk_window_close (l->data);
  g_list_free_full (windows, g_object_unref);
  /* a window whose project could not be saved stays open and asks what to do */
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (user_data)); l; l = l->next)
    if (DL_IS_WINDOW (l->data))
      return;
  g_application_quit (G_APPLICATION (user_data));
}

static void
about_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (user_data));
  const char *developers[] = { "The Dreamloom developers", NULL };
  adw_show_about_window (parent, "application-name", _ ("Dreamloom"), "application-icon", DL_APP_ID, "version",
                         DL_VERSION, "developer-name", _ ("The Dreamloom developers"), "developers", developers,
                         "website", "https://github.com/dreamloom/dreamloom", "issue-url",
                         "https://github.com/dreamloom/dreamloom/issues", "license-type", GTK_LICENSE_GPL_3_0,
                         "comments", _ ("Fine-tune Stable Diffusion on your own GPU"),
                         /* Translators: your names, one a line, to be credited in the About window */
                         "translator-credits", _ ("translator-credits"), NULL);
}

static void
preferences_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (user_data));
  g_autoptr (GError) error = NULL;
  g_autoptr (GSettings) settings = dl_settings_new (&error);
  if (!settings)
    {
      g_warning ("%s", error->message);
      return;
    }
  DlPreferencesWindow *prefs = dl_preferences_window_new (parent, settings);
  gtk_window_present (GTK_WINDOW (prefs));
}

static void
dl_application_startup (GApplication *app)
{
  G_APPLICATION_CLASS (dl_application_parent_class)->startup (app);
  /* one engine session for previews and training; the device opens on the
   * first image or run only */
  DlApplication *self = DL_APPLICATION (app);
  self->session = dl_engine_session_new ();
  if (!dl_preview_backend_get_default ())
    dl_preview_backend_set_default (DL_PREVIEW_BACKEND (self->session));
  static const GActionEntry entries[] = {
    { .name = "quit", .activate = quit_activated },
    { .name = "about", .activate = about_activated },
    { .name = "preferences", .activate = preferences_activated },
  };
  g_action_map_add_action_entries (G_ACTION_MAP (app), entries, G_N_ELEMENTS (entries), app);

  static const struct
  {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.show-help-overlay", { "<Control>question", NULL } },
    { "win.new-project", { "<Control>n", NULL } },
    { "win.open-project", { "<Control>o", NULL } },
    { "win.save-project-as", { "<Control><Shift>s", NULL } },
    { "win.close-project", { "<Control>w", NULL } },
    { "win.add-images", { "<Control>i", NULL } },
    { "win.add-folder", { "<Control><Shift>i", NULL } },
    { "win.show-page('dataset')", { "<Alt>1", NULL } },
    { "win.show-page('model')", { "<Alt>2", NULL } },
    { "win.show-page('previews')", { "<Alt>3", NULL } },
    { "win.show-page('train')", { "<Alt>4", NULL } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
}

static void
dl_application_finalize (GObject *object)
{
  DlApplication *self = DL_APPLICATION (object);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (dl_application_parent_class)->finalize (object);
}

DlEngineSession *
dl_application_get_engine_session (DlApplication *self)
{
  g_return_val_if_fail (DL_IS_APPLICATION (self), NULL);
  if (!self->session)
    self->session = dl_engine_session_new ();
  return self->session;
}

static void
dl_application_class_init (DlApplicationClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dl_application_finalize;
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);
  app_class->activate = dl_application_activate;
  app_class->startup = dl_application_startup;
  app_class->open = dl_application_open;
}

static void
dl_application_init (DlApplication *self)
{
}

DlApplication *
dl_application_new (void)
{
  return g_object_new (DL_TYPE_APPLICATION, "application-id", DL_APP_ID, "flags", G_APPLICATION_HANDLES_OPEN,
                       "resource-base-path", "/io/github/dreamloom/Dreamloom", NULL);
}
