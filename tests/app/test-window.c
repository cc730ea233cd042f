/* The window as a whole under Xvfb: it reports the GPU without blocking, keeps the
 * recent projects list (missing ones marked, forgettable, reopenable), and every
 * keyboard shortcut it sets is an action that exists and is listed in the
 * shortcuts window. */
#include "dl-config.h"

#include <adwaita.h>
#include <glib/gstdio.h>
#include <string.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-file-writer.h"
#include "dl-preferences-window.h"
#include "dl-settings.h"
#include "dl-start-page.h"
#include "dl-window.h"

static DlApplication *app;

static void
destroy_and_wait (DlWindow *win)
{
  gpointer weak = win;
  g_object_add_weak_pointer (G_OBJECT (win), &weak);
  gtk_window_destroy (GTK_WINDOW (win));
  /* the GPU probe holds the window until it reports */
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
  dl_file_writer_wait ();
}

static void
test_window_reports_device (void)
{
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  /* the probe runs on a worker thread: the label first says it is looking */
  g_assert_cmpstr (dl_window_get_device_text (win), ==, "Looking for a GPU…");
  g_assert_cmpstr (dl_window_get_view (win), ==, "start");
  APP_TEST_WAIT_UNTIL (!g_str_has_prefix (dl_window_get_device_text (win), "Looking"), 30);
  const char *text = dl_window_get_device_text (win);
  g_test_message ("window says: %s", text);
  g_assert_true (g_str_has_prefix (text, "GPU: "));
  destroy_and_wait (win);
}

static DlStartPage *
find_start_page (GtkWidget *widget)
{
  if (DL_IS_START_PAGE (widget))
    return DL_START_PAGE (widget);
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    {
      DlStartPage *p = find_start_page (c);
      if (p)
        return p;
    }
  return NULL;
}

static void
note_loaded (DlWindow *win, DlProject *project, gpointer data)
{
  *(gboolean *) data = TRUE;
}

static void
test_recent_projects (void)
{
  g_autofree char *dir = app_test_make_dir ("recent");
  g_autofree char *a = g_build_filename (dir, "Alpha.dreamloom", NULL);
  g_autofree char *b = g_build_filename (dir, "Beta & Co.dreamloom", NULL);
  g_autofree char *gone = g_build_filename (dir, "Gone.dreamloom", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSettings) settings = dl_settings_new (&error);
  g_assert_no_error (error);
  const char *none[] = { NULL };
  g_settings_set_strv (settings, "recent-projects", none);

  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  DlStartPage *start = find_start_page (GTK_WIDGET (win));
  g_assert_nonnull (start);
  g_assert_cmpuint (dl_start_page_get_n_recent (start), ==, 0);

  /* making a project remembers it, newest first */
  g_autoptr (GFile) fa = g_file_new_for_path (a);
  g_autoptr (GFile) fb = g_file_new_for_path (b);
  g_assert_true (dl_window_create_project (win, fa, "sks", "dog"));
  g_assert_true (dl_window_create_project (win, fb, "ohwx", "cat"));
  g_auto (GStrv) recent = g_settings_get_strv (settings, "recent-projects");
  g_assert_cmpuint (g_strv_length (recent), ==, 2);
  g_assert_cmpstr (recent[0], ==, b);
  g_assert_cmpstr (recent[1], ==, a);

  /* closing goes back to the start page, which lists them */
  g_action_group_activate_action (G_ACTION_GROUP (win), "close-project", NULL);
  g_assert_null (dl_window_get_project (win));
  g_assert_cmpstr (dl_window_get_view (win), ==, "start");
  g_assert_cmpuint (dl_start_page_get_n_recent (start), ==, 2);

  /* one that was deleted since is listed as missing, looked for off the main thread */
  const char *three[] = { b, gone, a, NULL };
  g_settings_set_strv (settings, "recent-projects", three);
  g_assert_cmpuint (dl_start_page_get_n_recent (start), ==, 3);
  APP_TEST_WAIT_UNTIL (!dl_start_page_get_checking (start), 10);
  g_assert_cmpuint (dl_start_page_get_n_recent_missing (start), ==, 1);

  /* forgotten on request */
  g_action_group_activate_action (G_ACTION_GROUP (win), "forget-recent", g_variant_new_string (gone));
  g_assert_cmpuint (dl_start_page_get_n_recent (start), ==, 2);
  APP_TEST_WAIT_UNTIL (!dl_start_page_get_checking (start), 10);
  g_assert_cmpuint (dl_start_page_get_n_recent_missing (start), ==, 0);

  /* reopened from the list; opening moves it to the top */
  gboolean loaded = FALSE;
  g_signal_connect (win, "project-loaded", G_CALLBACK (note_loaded), &loaded);
  g_action_group_activate_action (G_ACTION_GROUP (win), "open-recent", g_variant_new_string (a));
  APP_TEST_WAIT_UNTIL (loaded, 10);
  g_assert_nonnull (dl_window_get_project (win));
  g_assert_cmpstr (dl_project_get_token (dl_window_get_project (win)), ==, "sks");
  g_assert_cmpstr (dl_window_get_view (win), ==, "project");
  g_auto (GStrv) after = g_settings_get_strv (settings, "recent-projects");
  g_assert_cmpstr (after[0], ==, a);
  g_assert_cmpstr (gtk_window_get_title (GTK_WINDOW (win)), ==, "Alpha — Dreamloom");

  g_settings_set_strv (settings, "recent-projects", none);
  destroy_and_wait (win);
  app_test_rmtree (dir);
}

/* ---- keyboard shortcuts ---- */

static void
collect_shortcuts (GtkWidget *widget, GHashTable *accels)
{
  if (GTK_IS_SHORTCUTS_SHORTCUT (widget))
    {
      g_autofree char *accel = NULL;
      g_object_get (widget, "accelerator", &accel, NULL);
      /* one accelerator per entry, in the form gtk_accelerator_name writes */
      guint key;
      GdkModifierType mods;
      g_assert_true (gtk_accelerator_parse (accel, &key, &mods));
      g_hash_table_add (accels, gtk_accelerator_name (key, mods));
    }
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    collect_shortcuts (c, accels);
}

static void
test_shortcuts (void)
{
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));

  /* the window has the shortcuts window from gtk/help-overlay.ui, and the action */
  GtkShortcutsWindow *overlay = gtk_application_window_get_help_overlay (GTK_APPLICATION_WINDOW (win));
  g_assert_nonnull (overlay);
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (win), "show-help-overlay"));
  g_autoptr (GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  collect_shortcuts (GTK_WIDGET (overlay), listed);
  g_assert_cmpuint (g_hash_table_size (listed), >=, 20);

  /* every accelerator the application sets: its action exists and enabled or
   * not, it is in the shortcuts window */
  g_auto (GStrv) actions = gtk_application_list_action_descriptions (GTK_APPLICATION (app));
  g_assert_cmpuint (g_strv_length (actions), >=, 12);
  for (char **a = actions; *a; a++)
    {
      g_autofree char *name = NULL;
      g_autoptr (GVariant) target = NULL;
      g_autoptr (GError) error = NULL;
      g_assert_true (g_action_parse_detailed_name (*a, &name, &target, &error));
      g_assert_no_error (error);
      GActionGroup *group = g_str_has_prefix (name, "app.") ? G_ACTION_GROUP (app) : G_ACTION_GROUP (win);
      g_assert_true (g_str_has_prefix (name, "app.") || g_str_has_prefix (name, "win."));
      if (!g_action_group_has_action (group, name + 4))
        g_error ("the shortcut for %s names an action that does not exist", *a);
      g_auto (GStrv) accels = gtk_application_get_accels_for_action (GTK_APPLICATION (app), *a);
      for (char **k = accels; *k; k++)
        {
          guint key;
          GdkModifierType mods;
          g_assert_true (gtk_accelerator_parse (*k, &key, &mods));
          g_autofree char *canonical = gtk_accelerator_name (key, mods);
          if (!g_hash_table_contains (listed, canonical))
            g_error ("%s (%s) is not in the shortcuts window", *k, *a);
        }
    }

  /* Alt+3 shows the previews page of an open project */
  g_autofree char *dir = app_test_make_dir ("shortcuts");
  g_autofree char *path = g_build_filename (dir, "Keys.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (win, file, "sks", "dog"));
  g_auto (GStrv) page_accels = gtk_application_get_accels_for_action (GTK_APPLICATION (app), "win.show-page('previews')");
  g_assert_cmpstr (page_accels[0], ==, "<Alt>3");
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("previews"));
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (dl_window_get_preview_page (win)), ADW_TYPE_VIEW_STACK);
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (ADW_VIEW_STACK (stack)), ==, "previews");
  /* project actions are off without a project */
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "close-project"));
  dl_window_set_project (win, NULL);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "close-project"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "add-images"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "open-project"));

  destroy_and_wait (win);
  app_test_rmtree (dir);
}

/* ---- preferences ---- */

static void
note_devices (DlPreferencesWindow *prefs, gpointer data)
{
  *(gboolean *) data = TRUE;
}

static AdwComboRow *
find_combo (GtkWidget *widget, const char *title)
{
  if (ADW_IS_COMBO_ROW (widget) && g_str_equal (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (widget)), title))
    return ADW_COMBO_ROW (widget);
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    {
      AdwComboRow *r = find_combo (c, title);
      if (r)
        return r;
    }
  return NULL;
}

static void
test_preferences (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSettings) settings = dl_settings_new (&error);
  g_assert_no_error (error);
  g_settings_reset (settings, "device");
  g_settings_reset (settings, "preview-sampler");
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  DlPreferencesWindow *prefs = dl_preferences_window_new (GTK_WINDOW (win), settings);
  gboolean loaded = FALSE;
  g_signal_connect (prefs, "devices-loaded", G_CALLBACK (note_devices), &loaded);
  gtk_window_present (GTK_WINDOW (prefs));
  /* the GPUs are listed after a probe on a worker thread */
  APP_TEST_WAIT_UNTIL (loaded, 30);
  GListModel *devices = dl_preferences_window_get_devices (prefs);
  g_assert_cmpuint (g_list_model_get_n_items (devices), >=, 2); /* "Automatic", then at least lavapipe */
  AdwComboRow *gpu = find_combo (GTK_WIDGET (prefs), "GPU");
  g_assert_nonnull (gpu);
  g_assert_cmpuint (adw_combo_row_get_selected (gpu), ==, 0);
  adw_combo_row_set_selected (gpu, 1);
  g_autofree char *device = g_settings_get_string (settings, "device");
  g_assert_cmpstr (device, ==, gtk_string_list_get_string (GTK_STRING_LIST (devices), 1));
  adw_combo_row_set_selected (gpu, 0);
  g_free (device);
  device = g_settings_get_string (settings, "device");
  g_assert_cmpstr (device, ==, "");

  /* the sampler row and the setting follow each other */
  AdwComboRow *sampler = find_combo (GTK_WIDGET (prefs), "Sampler");
  g_assert_nonnull (sampler);
  g_settings_set_string (settings, "preview-sampler", "ddim");
  g_assert_cmpuint (adw_combo_row_get_selected (sampler), ==, 2);
  adw_combo_row_set_selected (sampler, 3);
  g_autofree char *id = g_settings_get_string (settings, "preview-sampler");
  g_assert_cmpstr (id, ==, "dpmpp_2m_karras");
  g_settings_reset (settings, "preview-sampler");

  /* it goes with its window */
  gpointer weak_prefs = prefs;
  g_object_add_weak_pointer (G_OBJECT (prefs), &weak_prefs);
  destroy_and_wait (win);
  APP_TEST_WAIT_UNTIL (weak_prefs == NULL, 10);
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  g_test_add_func ("/app/window/reports-device", test_window_reports_device);
  g_test_add_func ("/app/window/recent-projects", test_recent_projects);
  g_test_add_func ("/app/window/shortcuts", test_shortcuts);
  g_test_add_func ("/app/window/preferences", test_preferences);
  int ret = g_test_run ();
  g_object_unref (app);
  return ret;
}
