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

static void
note_loaded (DlWindow *win, DlProject *project, gpointer data)
{
  *(gboolean *)data = TRUE;
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
  DlStartPage *start = DL_START_PAGE (app_test_find_widget (GTK_WIDGET (win), DL_TYPE_START_PAGE, NULL, NULL));
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

  /* the pages' own keys (the Train page's work whenever it is shown): each is listed
   * too, under its page's group */
  GtkWidget *pages[] = { GTK_WIDGET (dl_window_get_dataset_page (win)), GTK_WIDGET (dl_window_get_model_page (win)),
                         GTK_WIDGET (dl_window_get_preview_page (win)), GTK_WIDGET (dl_window_get_train_page (win)) };
  guint page_keys[G_N_ELEMENTS (pages)] = { 0 };
  for (guint i = 0; i < G_N_ELEMENTS (pages); i++)
    {
      g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (pages[i]);
      for (guint c = 0; c < g_list_model_get_n_items (controllers); c++)
        {
          g_autoptr (GtkEventController) controller = g_list_model_get_item (controllers, c);
          if (!GTK_IS_SHORTCUT_CONTROLLER (controller))
            continue;
          for (guint s = 0; s < g_list_model_get_n_items (G_LIST_MODEL (controller)); s++)
            {
              g_autoptr (GtkShortcut) shortcut = g_list_model_get_item (G_LIST_MODEL (controller), s);
              GtkShortcutTrigger *trigger = gtk_shortcut_get_trigger (shortcut);
              GtkShortcutAction *action = gtk_shortcut_get_action (shortcut);
              if (!GTK_IS_KEYVAL_TRIGGER (trigger) || !GTK_IS_NAMED_ACTION (action))
                continue;
              guint key = gtk_keyval_trigger_get_keyval (GTK_KEYVAL_TRIGGER (trigger));
              if (key == GDK_KEY_KP_Delete) /* listed as Delete */
                continue;
              g_autofree char *canonical =
                gtk_accelerator_name (key, gtk_keyval_trigger_get_modifiers (GTK_KEYVAL_TRIGGER (trigger)));
              const char *name = gtk_named_action_get_action_name (GTK_NAMED_ACTION (action));
              if (!g_hash_table_contains (listed, canonical))
                g_error ("%s (%s) is not in the shortcuts window", canonical, name);
              page_keys[i]++;
            }
        }
      g_test_message ("page %u: %u keys", i, page_keys[i]);
    }
  g_assert_cmpuint (page_keys[0], >=, 9);  /* dataset */
  g_assert_cmpuint (page_keys[1], >=, 2);  /* base model */
  g_assert_cmpuint (page_keys[2], >=, 4);  /* previews */
  g_assert_cmpuint (page_keys[3], >=, 11); /* train: one for each of its actions but show-file */

  /* Alt+3 shows the previews page of an open project */
  g_autofree char *dir = app_test_make_dir ("shortcuts");
  g_autofree char *path = g_build_filename (dir, "Keys.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (win, file, "sks", "dog"));
  g_auto (GStrv) page_accels =
    gtk_application_get_accels_for_action (GTK_APPLICATION (app), "win.show-page('previews')");
  g_assert_cmpstr (page_accels[0], ==, "<Alt>3");
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("previews"));
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (dl_window_get_preview_page (win)), ADW_TYPE_VIEW_STACK);
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (ADW_VIEW_STACK (stack)), ==, "previews");
  /* the Train page's keys are the window's to run (whatever has the focus), and
   * reach the page's actions: an enabled one runs, a disabled one lets the key go */
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("train"));
  GtkWidget *train = GTK_WIDGET (dl_window_get_train_page (win));
  g_autoptr (GListModel) train_controllers = gtk_widget_observe_controllers (train);
  guint n_train_keys = 0;
  for (guint c = 0; c < g_list_model_get_n_items (train_controllers); c++)
    {
      g_autoptr (GtkEventController) controller = g_list_model_get_item (train_controllers, c);
      if (!GTK_IS_SHORTCUT_CONTROLLER (controller) ||
          gtk_shortcut_controller_get_scope (GTK_SHORTCUT_CONTROLLER (controller)) != GTK_SHORTCUT_SCOPE_MANAGED)
        continue;
      for (guint s = 0; s < g_list_model_get_n_items (G_LIST_MODEL (controller)); s++)
        {
          g_autoptr (GtkShortcut) shortcut = g_list_model_get_item (G_LIST_MODEL (controller), s);
          GtkShortcutAction *action = gtk_shortcut_get_action (shortcut);
          const char *name = gtk_named_action_get_action_name (GTK_NAMED_ACTION (action));
          n_train_keys++;
          if (g_str_equal (name, "train.make-fit")) /* idle with a project: on (without a plan, it does nothing) */
            g_assert_true (gtk_shortcut_action_activate (action, GTK_SHORTCUT_ACTION_EXCLUSIVE, train, NULL));
          else if (g_str_equal (name, "train.stop")) /* nothing trains: off */
            g_assert_false (gtk_shortcut_action_activate (action, GTK_SHORTCUT_ACTION_EXCLUSIVE, train, NULL));
        }
    }
  g_assert_cmpuint (n_train_keys, ==, page_keys[3]);
  /* project actions are off without a project */
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "close-project"));
  dl_window_set_project (win, NULL);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "close-project"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "add-images"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "open-project"));

  destroy_and_wait (win);
  app_test_rmtree (dir);
}

/* ---- accessible labels ---- */

/* Buttons that show only an icon, under `widget`, without an accessible label:
 * counted, named in the log.  A menu button is checked, not the button inside it,
 * and the libraries' own (a spin button's −/+, an entry row's apply) are theirs. */
static guint
unlabelled_icon_buttons (GtkWidget *widget, guint *n_checked)
{
  guint n = 0;
  if (GTK_IS_SPIN_BUTTON (widget) ||
      (GTK_IS_BUTTON (widget) && gtk_widget_get_ancestor (widget, ADW_TYPE_ENTRY_ROW) &&
       g_strcmp0 (gtk_button_get_icon_name (GTK_BUTTON (widget)), "adw-entry-apply-symbolic") == 0))
    return 0;
  gboolean icon_only = FALSE;
  if (GTK_IS_MENU_BUTTON (widget))
    icon_only =
      gtk_menu_button_get_icon_name (GTK_MENU_BUTTON (widget)) && !gtk_menu_button_get_label (GTK_MENU_BUTTON (widget));
  else if (GTK_IS_BUTTON (widget) && !GTK_IS_MENU_BUTTON (gtk_widget_get_parent (widget)))
    icon_only = gtk_button_get_icon_name (GTK_BUTTON (widget)) && !gtk_button_get_label (GTK_BUTTON (widget));
  if (icon_only)
    {
      (*n_checked)++;
      if (!gtk_test_accessible_has_property (GTK_ACCESSIBLE (widget), GTK_ACCESSIBLE_PROPERTY_LABEL))
        {
          g_test_message ("%s %s (%s) has no accessible label", G_OBJECT_TYPE_NAME (widget),
                          gtk_widget_get_name (widget),
                          GTK_IS_BUTTON (widget) ? gtk_button_get_icon_name (GTK_BUTTON (widget))
                                                 : gtk_menu_button_get_icon_name (GTK_MENU_BUTTON (widget)));
          n++;
        }
    }
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    n += unlabelled_icon_buttons (c, n_checked);
  return n;
}

static void
test_accessible_labels (void)
{
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  g_autofree char *dir = app_test_make_dir ("a11y");
  g_autofree char *path = g_build_filename (dir, "Labels.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (win, file, "sks", "dog"));
  /* a prompt and a LoRA column: rows with remove buttons made in code */
  DlProject *project = dl_window_get_project (win);
  const char *prompts[] = { "a photo of sks dog", NULL };
  dl_project_set_preview_prompts (project, prompts);
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  g_autofree char *lora = g_build_filename (dir, "style.safetensors", NULL);
  g_ptr_array_add (loras, dl_project_lora_new (lora, 0.8));
  dl_project_set_loras (project, loras);

  const char *names[] = { "dataset", "model", "previews", "train" };
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (dl_window_get_preview_page (win)), ADW_TYPE_VIEW_STACK);
  guint checked = 0;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      adw_view_stack_set_visible_child_name (ADW_VIEW_STACK (stack), names[i]);
      app_test_run_for (50);
      g_assert_cmpuint (unlabelled_icon_buttons (GTK_WIDGET (win), &checked), ==, 0);
    }
  g_test_message ("%u icon-only buttons checked", checked);
  g_assert_cmpuint (checked, >=, 8);

  /* the image grids say what they hold */
  GtkWidget *grid =
    app_test_find_widget (GTK_WIDGET (dl_window_get_dataset_page (win)), GTK_TYPE_GRID_VIEW, NULL, NULL);
  g_assert_nonnull (grid);
  g_assert_true (gtk_test_accessible_has_property (GTK_ACCESSIBLE (grid), GTK_ACCESSIBLE_PROPERTY_LABEL));

  dl_window_set_project (win, NULL);
  destroy_and_wait (win);
  app_test_rmtree (dir);
}

/* ---- preferences ---- */

static void
note_devices (DlPreferencesWindow *prefs, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static gboolean
row_titled (GtkWidget *row, gconstpointer title)
{
  return g_str_equal (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (row)), title);
}

static AdwComboRow *
find_combo (GtkWidget *widget, const char *title)
{
  return ADW_COMBO_ROW (app_test_find_widget (widget, ADW_TYPE_COMBO_ROW, row_titled, title));
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

/* ---- a project that cannot be saved on closing ---- */

/* Saving in `dir` fails from now on.  The folder is made read-only; where that does
 * not bind (root ignores permissions), it goes away and a file takes its name, as
 * when a removable disk is pulled out. */
static void
break_folder (const char *dir)
{
  g_assert_cmpint (g_chmod (dir, 0555), ==, 0);
  g_autofree char *probe = g_build_filename (dir, "probe", NULL);
  if (!g_file_set_contents (probe, "", 0, NULL))
    return;
  g_unlink (probe);
  g_test_message ("%s stays writable for this user: it is replaced by a file instead", dir);
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  g_autofree char *away = g_strconcat (dir, ".away", NULL);
  g_assert_cmpint (g_rename (dir, away), ==, 0);
  app_test_write_file (dir, "not a folder");
}

static void
mend_folder (const char *dir)
{
  g_autofree char *away = g_strconcat (dir, ".away", NULL);
  if (g_file_test (away, G_FILE_TEST_IS_DIR))
    {
      g_assert_cmpint (g_unlink (dir), ==, 0);
      g_assert_cmpint (g_rename (away, dir), ==, 0);
    }
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
}

typedef struct
{
  char *dir, *folder, *path;
  DlWindow *win;
  DlProject *project;
  gpointer weak_win;
} Unsaved;

/* A project saved in its own folder, then changed, then the folder breaks. */
static void
unsaved_setup (Unsaved *u, const char *name)
{
  u->dir = app_test_make_dir (name);
  u->folder = g_build_filename (u->dir, "projects", NULL);
  g_assert_cmpint (g_mkdir (u->folder, 0755), ==, 0);
  u->path = g_build_filename (u->folder, "Work.dreamloom", NULL);
  u->win = dl_window_new (app);
  u->weak_win = u->win;
  g_object_add_weak_pointer (G_OBJECT (u->win), &u->weak_win);
  gtk_window_present (GTK_WINDOW (u->win));
  g_autoptr (GFile) file = g_file_new_for_path (u->path);
  g_assert_true (dl_window_create_project (u->win, file, "sks", "dog"));
  u->project = dl_window_get_project (u->win);
  g_assert_false (dl_project_get_dirty (u->project));
  /* no main loop runs from here to the closing, so the autosave does not come first */
  break_folder (u->folder);
  dl_project_set_token (u->project, "ohwx");
  g_assert_true (dl_project_get_dirty (u->project));
}

static void
unsaved_teardown (Unsaved *u)
{
  if (u->weak_win)
    {
      gtk_window_destroy (GTK_WINDOW (u->win));
      APP_TEST_WAIT_UNTIL (u->weak_win == NULL, 30);
    }
  dl_file_writer_wait ();
  app_test_run_for (20);
  app_test_rmtree (u->dir);
  g_free (u->dir);
  g_free (u->folder);
  g_free (u->path);
}

/* The dialog that asks, checked for what it offers. */
static AdwMessageDialog *
asking (DlWindow *win)
{
  AdwMessageDialog *dialog = dl_window_get_unsaved_dialog (win);
  g_assert_nonnull (dialog);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (dialog)));
  g_assert_true (gtk_window_get_transient_for (GTK_WINDOW (dialog)) == GTK_WINDOW (win));
  g_assert_cmpstr (adw_message_dialog_get_heading (dialog), ==, "Project Not Saved");
  g_assert_true (g_str_has_prefix (adw_message_dialog_get_body (dialog), "“Work” could not be saved: "));
  g_assert_cmpstr (adw_message_dialog_get_response_label (dialog, "cancel"), ==, "_Cancel");
  g_assert_cmpstr (adw_message_dialog_get_response_label (dialog, "discard"), ==, "_Discard");
  g_assert_cmpstr (adw_message_dialog_get_response_label (dialog, "save-as"), ==, "_Save As…");
  g_assert_cmpint (adw_message_dialog_get_response_appearance (dialog, "discard"), ==, ADW_RESPONSE_DESTRUCTIVE);
  g_assert_cmpstr (adw_message_dialog_get_default_response (dialog), ==, "save-as");
  g_assert_cmpstr (adw_message_dialog_get_close_response (dialog), ==, "cancel");
  g_test_message ("the dialog says: %s", adw_message_dialog_get_body (dialog));
  return dialog;
}

static gboolean
button_says (GtkWidget *button, gconstpointer label)
{
  return g_strcmp0 (gtk_button_get_label (GTK_BUTTON (button)), label) == 0;
}

static GtkWidget *
find_labelled_button (GtkWidget *widget, const char *label)
{
  return app_test_find_widget (widget, GTK_TYPE_BUTTON, button_says, label);
}

/* A click on the dialog's button for `response`, as a person answers. */
static void
answer (DlWindow *win, const char *response)
{
  AdwMessageDialog *dialog = asking (win);
  GtkWidget *button =
    find_labelled_button (GTK_WIDGET (dialog), adw_message_dialog_get_response_label (dialog, response));
  g_assert_nonnull (button);
  g_signal_emit_by_name (button, "clicked");
  APP_TEST_WAIT_UNTIL (dl_window_get_unsaved_dialog (win) == NULL, 10);
}

static gboolean
file_says (const char *path, const char *text)
{
  g_autofree char *contents = NULL;
  return g_file_get_contents (path, &contents, NULL, NULL) && strstr (contents, text);
}

static void
test_unsaved_cancel_then_save_as (void)
{
  Unsaved u = { 0 };
  unsaved_setup (&u, "unsaved-save-as");

  /* the window stays and asks instead of losing the change */
  gtk_window_close (GTK_WINDOW (u.win));
  app_test_run_for (50);
  g_assert_nonnull (u.weak_win);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (u.win)));
  g_assert_true (dl_window_get_project (u.win) == u.project);
  g_assert_true (dl_project_get_dirty (u.project));

  /* Cancel: nothing happens; closing again asks again */
  answer (u.win, "cancel");
  g_assert_nonnull (u.weak_win);
  g_assert_true (dl_project_get_dirty (u.project));
  gtk_window_close (GTK_WINDOW (u.win));
  asking (u.win);

  /* Save As… somewhere that fails too: asked again, the project stays where it was.
   * (The file chooser cannot be driven here: the file it gives is handed over
   * directly, as its callback does.) */
  answer (u.win, "cancel");
  g_autofree char *also_broken = g_build_filename (u.folder, "Elsewhere.dreamloom", NULL);
  g_autoptr (GFile) bad = g_file_new_for_path (also_broken);
  dl_window_save_unsaved_as (u.win, bad);
  asking (u.win);
  g_assert_nonnull (u.weak_win);
  g_autofree char *still = g_file_get_path (dl_project_get_file (u.project));
  g_assert_cmpstr (still, ==, u.path);
  answer (u.win, "cancel");

  /* Save As… a folder that works: saved there (".dreamloom" added), then closed */
  g_autofree char *rescued = g_build_filename (u.dir, "Rescued", NULL);
  g_autofree char *rescued_file = g_build_filename (u.dir, "Rescued.dreamloom", NULL);
  g_autoptr (GFile) good = g_file_new_for_path (rescued);
  dl_window_save_unsaved_as (u.win, good);
  APP_TEST_WAIT_UNTIL (u.weak_win == NULL, 30);
  g_assert_true (file_says (rescued_file, "\"ohwx\""));
  mend_folder (u.folder);
  g_assert_true (file_says (u.path, "\"sks\"")); /* the old file as it was */
  unsaved_teardown (&u);
}

static void
test_unsaved_discard (void)
{
  Unsaved u = { 0 };
  unsaved_setup (&u, "unsaved-discard");

  /* Close Project (Ctrl+W) asks the same way, and Cancel keeps it open */
  g_action_group_activate_action (G_ACTION_GROUP (u.win), "close-project", NULL);
  g_assert_true (dl_window_get_project (u.win) == u.project);
  answer (u.win, "cancel");
  g_assert_cmpstr (dl_window_get_view (u.win), ==, "project");

  /* Quit too: the window stays and asks */
  g_action_group_activate_action (G_ACTION_GROUP (app), "quit", NULL);
  app_test_run_for (50);
  g_assert_nonnull (u.weak_win);
  g_assert_true (dl_window_get_project (u.win) == u.project);

  /* Discard: the window goes, the project file keeps what was saved */
  answer (u.win, "discard");
  APP_TEST_WAIT_UNTIL (u.weak_win == NULL, 30);
  mend_folder (u.folder);
  g_assert_true (file_says (u.path, "\"sks\""));
  g_assert_false (file_says (u.path, "ohwx"));
  unsaved_teardown (&u);

  /* Quit ends the application when no window is left; a window that closes
   * leaves the application's list at once */
  DlWindow *plain = dl_window_new (app);
  gpointer weak = plain;
  g_object_add_weak_pointer (G_OBJECT (plain), &weak);
  gtk_window_present (GTK_WINDOW (plain));
  gtk_window_close (GTK_WINDOW (plain));
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (app)); l; l = l->next)
    g_assert_false (DL_IS_WINDOW (l->data));
  /* the GPU probe holds the window until it reports */
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
}

static void
test_unsaved_switch (void)
{
  Unsaved u = { 0 };
  unsaved_setup (&u, "unsaved-switch");
  g_autofree char *other_path = g_build_filename (u.dir, "Other.dreamloom", NULL);
  g_autoptr (GFile) other = g_file_new_for_path (other_path);

  /* New Project while this one cannot be saved: asked first, Cancel keeps it */
  g_assert_true (dl_window_create_project (u.win, other, "zwx", "cat"));
  g_assert_true (dl_window_get_project (u.win) == u.project);
  answer (u.win, "cancel");
  g_assert_true (dl_window_get_project (u.win) == u.project);
  g_assert_true (dl_project_get_dirty (u.project));

  /* Opening a project asks the same way; Save As… elsewhere, then it opens */
  dl_window_open_file (u.win, other);
  APP_TEST_WAIT_UNTIL (dl_window_get_unsaved_dialog (u.win) != NULL, 30);
  asking (u.win);
  g_assert_true (dl_window_get_project (u.win) == u.project);
  g_autofree char *rescued = g_build_filename (u.dir, "Rescued.dreamloom", NULL);
  g_autoptr (GFile) good = g_file_new_for_path (rescued);
  dl_window_save_unsaved_as (u.win, good);
  DlProject *now = dl_window_get_project (u.win);
  g_assert_nonnull (now);
  g_assert_true (now != u.project);
  g_assert_cmpstr (dl_project_get_token (now), ==, "zwx");
  g_assert_true (file_says (rescued, "\"ohwx\""));
  mend_folder (u.folder);
  g_assert_true (file_says (u.path, "\"sks\""));
  unsaved_teardown (&u);
}

int
main (int argc, char **argv)
{
  /* accessible properties are kept (for the accessible-labels test), not sent to an AT */
  g_setenv ("GTK_A11Y", "test", TRUE);
  app_test_init (&argc, &argv);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  g_test_add_func ("/app/window/reports-device", test_window_reports_device);
  g_test_add_func ("/app/window/recent-projects", test_recent_projects);
  g_test_add_func ("/app/window/shortcuts", test_shortcuts);
  g_test_add_func ("/app/window/accessible-labels", test_accessible_labels);
  g_test_add_func ("/app/window/preferences", test_preferences);
  g_test_add_func ("/app/window/unsaved-cancel-then-save-as", test_unsaved_cancel_then_save_as);
  g_test_add_func ("/app/window/unsaved-discard", test_unsaved_discard);
  g_test_add_func ("/app/window/unsaved-switch", test_unsaved_switch);
  int ret = g_test_run ();
  g_object_unref (app);
  return ret;
}
