/* The scripted run: what a person does first, start to finish, in a real window
 * under Xvfb.  It opens a project whose base model is the golden tiny SD 1.x model
 * and whose dataset is pictures made here, checks that the model page recognises
 * the model through the model-files code, generates a two-column preview (base,
 * and base + the golden kohya LoRA), checks that the pictures are not blank and
 * that the LoRA column differs, enlarges one and saves it with its parameters, and
 * saves screenshots of the window as test artifacts: the last of them, the
 * previews with the training images above them, is also data/screenshots/main.png.
 *
 * The generator comes from scripted_run_backend() (scripted-run-backend.h): today
 * the TEST DOUBLE, later the engine's sampler, without changing this file. */
#include "dl-config.h"

#include <string.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-file-writer.h"
#include "dl-image-viewer.h"
#include "dl-settings.h"
#include "dl-test-util.h"
#include "dl-window.h"
#include "image/dl-png.h"
#include "io/dl-model-config.h"
#include "scripted-run-backend.h"

static char *golden_model, *golden_lora;

static void
note_loaded (DlWindow *win, DlProject *project, gpointer data)
{
  *(gboolean *)data = TRUE;
}

typedef struct
{
  gboolean done;
  char *path;
  char *error;
} Chosen;

static void
note_chosen (DlModelPage *page, const char *path, GError *error, Chosen *c)
{
  c->done = TRUE;
  g_free (c->path);
  c->path = g_strdup (path);
  g_free (c->error);
  c->error = error ? g_strdup (error->message) : NULL;
}

static void
note_finished (DlPreviewPage *page, gboolean cancelled, int *state)
{
  *state = cancelled ? 2 : 1;
}

static char *
artifact_path (const char *name)
{
  const char *dir = g_getenv ("DL_TEST_ARTIFACT_DIR");
  return g_build_filename (dir && *dir ? dir : g_get_tmp_dir (), name, NULL);
}

static void
screenshot (DlWindow *win, const char *name)
{
  /* let transitions and spinners settle, and the new page lay out */
  app_test_run_for (400);
  g_autofree char *path = artifact_path (name);
  app_test_save_screenshot (GTK_WIDGET (win), path);
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) shot = gdk_texture_new_from_filename (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_texture_get_width (shot), ==, gtk_widget_get_width (GTK_WIDGET (win)));
  g_assert_true (app_test_texture_has_content (shot));
  g_test_message ("screenshot: %s", path);
}

/* Pictures on screen under `widget`. */
static guint
n_pictures (GtkWidget *widget)
{
  guint n =
    GTK_IS_PICTURE (widget) && gtk_picture_get_paintable (GTK_PICTURE (widget)) && gtk_widget_get_mapped (widget);
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    n += n_pictures (c);
  return n;
}

/* `widget` lies wholly inside the window: a screenshot shows all of it. */
static void
assert_in_sight (GtkWidget *widget, DlWindow *win)
{
  graphene_rect_t r;
  g_assert_true (gtk_widget_compute_bounds (widget, GTK_WIDGET (win), &r));
  g_test_message ("%s at %.0f,%.0f %.0f×%.0f", G_OBJECT_TYPE_NAME (widget), r.origin.x, r.origin.y, r.size.width,
                  r.size.height);
  g_assert_cmpfloat (r.size.height, >, 0);
  g_assert_cmpfloat (r.origin.x, >=, 0);
  g_assert_cmpfloat (r.origin.y, >=, 0);
  g_assert_cmpfloat (r.origin.x + r.size.width, <=, gtk_widget_get_width (GTK_WIDGET (win)));
  g_assert_cmpfloat (r.origin.y + r.size.height, <=, gtk_widget_get_height (GTK_WIDGET (win)));
}

static void
test_scripted_run (void)
{
  g_autofree char *dir = app_test_make_dir ("scripted-run");
  g_autoptr (GError) error = NULL;
  g_autoptr (GSettings) settings = dl_settings_new (&error);
  g_assert_no_error (error);
  /* the tiny model works on small latents (64 px, the smallest the preferences take); few steps keep
   * the run short (the sanitizer build, $DREAMLOOM_TEST_QUICK, draws one step and leaves the
   * screenshot to the plain build) */
  const gboolean quick = g_getenv ("DREAMLOOM_TEST_QUICK") != NULL;
  const int size = 64, steps = quick ? 1 : 3;
  g_settings_set_int (settings, "preview-steps", steps);
  g_settings_set_int (settings, "preview-width", size);
  g_settings_set_int (settings, "preview-height", size);
  g_settings_set_int64 (settings, "preview-seed", 1234);
  g_settings_set_boolean (settings, "preview-random-seed", FALSE);

  /* the dataset: four pictures with captions, one of them too small */
  GString *images = g_string_new (NULL);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("dog-%u.png", i + 1);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      app_test_write_png (path, i == 3 ? 256 : 512, 512, i + 11);
      g_autofree char *entry = g_strdup_printf ("%s{\"path\": \"%s\", \"caption\": \"a photo of sks dog, view %u\"}",
                                                i ? ", " : "", path, i + 1);
      g_string_append (images, entry);
    }
  g_autofree char *project_path = g_build_filename (dir, "Scripted Run.dreamloom", NULL);
  g_autofree char *json =
    g_strdup_printf ("{\"format\": \"dreamloom-project\", \"version\": 1,\n"
                     " \"concept\": {\"token\": \"sks\", \"class\": \"dog\"},\n"
                     " \"base_model\": {\"path\": \"%s\"},\n"
                     " \"dataset\": {\"resolution\": 512, \"images\": [%s]},\n"
                     " \"previews\": {\"prompts\": [\"a photo of sks dog on a beach\"], \"templates\": [0],\n"
                     "              \"loras\": [{\"path\": \"%s\", \"strength\": 0.8}]}}\n",
                     golden_model, images->str, golden_lora);
  g_string_free (images, TRUE);
  app_test_write_file (project_path, json);

  DlApplication *app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  /* after the application's start-up, which may register a backend of its own */
  g_autoptr (DlPreviewBackend) backend = scripted_run_backend ();
  dl_preview_backend_set_default (backend);
  DlWindow *win = dl_window_new (app);
  gtk_window_set_default_size (GTK_WINDOW (win), 1200, 760);
  gtk_window_present (GTK_WINDOW (win));

  /* open it, as from the recent list or a file manager */
  gboolean loaded = FALSE;
  g_signal_connect (win, "project-loaded", G_CALLBACK (note_loaded), &loaded);
  Chosen chosen = { 0 };
  g_signal_connect (dl_window_get_model_page (win), "chosen", G_CALLBACK (note_chosen), &chosen);
  g_autoptr (GFile) file = g_file_new_for_path (project_path);
  dl_window_open_file (win, file);
  APP_TEST_WAIT_UNTIL (loaded, 20);
  DlProject *project = dl_window_get_project (win);
  g_assert_nonnull (project);
  APP_TEST_WAIT_UNTIL (dl_project_get_n_loading (project) == 0, 30);
  g_assert_cmpuint (g_list_model_get_n_items (dl_project_get_images (project)), ==, 4);
  g_assert_cmpuint (dl_project_get_n_warnings (project), ==, 1);
  screenshot (win, "scripted-run-dataset.png");

  /* the model-files code recognises the base model */
  APP_TEST_WAIT_UNTIL (chosen.done, 30);
  if (chosen.error)
    g_error ("the golden tiny model was refused: %s", chosen.error);
  g_assert_cmpstr (chosen.path, ==, golden_model);
  const DlModelEntry *entry = dl_model_page_get_current (dl_window_get_model_page (win));
  g_assert_nonnull (entry);
  g_assert_cmpstr (entry->family, ==, dl_model_family_name (DL_FAMILY_SD1));
  g_assert_true (entry->diffusers);
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("model"));
  screenshot (win, "scripted-run-model.png");

  /* two columns, two prompts */
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("previews"));
  DlPreviewPage *page = dl_window_get_preview_page (win);
  g_assert_cmpstr (dl_preview_page_get_state (page), ==, "ready");
  int finished = 0;
  g_signal_connect (page, "finished", G_CALLBACK (note_finished), &finished);
  g_assert_true (dl_preview_page_generate (page));
  APP_TEST_WAIT_UNTIL (finished != 0, 300);
  g_assert_cmpint (finished, ==, 1);
  for (guint r = 0; r < 2; r++)
    {
      for (guint c = 0; c < 2; c++)
        {
          DlPreviewCell *cell = dl_preview_page_get_cell (page, r, c);
          if (dl_preview_cell_get_state (cell) != DL_PREVIEW_CELL_DONE)
            g_error ("preview (%u, %u) was not made: %s", r, c, dl_preview_cell_get_message (cell));
          GdkTexture *t = dl_preview_page_get_result (page, r, c);
          g_assert_cmpint (gdk_texture_get_width (t), ==, size);
          g_assert_true (app_test_texture_has_content (t));
        }
      double diff =
        app_test_texture_difference (dl_preview_page_get_result (page, r, 0), dl_preview_page_get_result (page, r, 1));
      g_test_message ("row %u: base vs LoRA differ by %.2f / 255 on average", r, diff);
      g_assert_cmpfloat (diff, >, 0.5);
    }
  /* the training images above the previews, all of it in sight: the picture the
   * metainfo and the README show */
  DlDatasetStrip *strip = dl_preview_page_get_dataset_strip (page);
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (strip)));
  g_assert_cmpstr (dl_dataset_strip_get_count_text (strip), ==, "4 images");
  APP_TEST_WAIT_UNTIL (n_pictures (GTK_WIDGET (strip)) == 4, 10);
  assert_in_sight (GTK_WIDGET (strip), win);
  assert_in_sight (GTK_WIDGET (dl_preview_page_get_cell (page, 1, 1)), win);
  screenshot (win, "scripted-run-previews.png");
  if (scripted_run_backend_is_engine () && !quick)
    {
      /* the picture the metainfo and the README show, from the real sampler only */
      const char *main_png = g_getenv ("DL_TEST_MAIN_SCREENSHOT");
      if (main_png && *main_png)
        app_test_save_screenshot (GTK_WIDGET (win), main_png);
    }

  /* enlarged and saved, with its parameters */
  g_signal_emit_by_name (dl_preview_page_get_cell (page, 0, 1), "clicked");
  GListModel *toplevels = gtk_window_get_toplevels (); /* GTK's own list */
  GtkWindow *viewer = NULL;
  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GObject) w = g_list_model_get_item (toplevels, i);
      if (DL_IS_IMAGE_VIEWER (w))
        viewer = GTK_WINDOW (w);
    }
  g_assert_nonnull (viewer);
  g_autofree char *png = artifact_path ("scripted-run-preview-lora.png");
  const DlPreviewRequest *request = dl_image_viewer_get_request (DL_IMAGE_VIEWER (viewer));
  g_assert_true (
    dl_image_viewer_save_png (dl_image_viewer_get_texture (DL_IMAGE_VIEWER (viewer)), request, png, &error));
  g_assert_no_error (error);
  int w, h;
  g_autoptr (GHashTable) text = NULL;
  g_autofree guint8 *pixels = dl_png_read_rgba (png, &w, &h, &text, &error);
  g_assert_no_error (error);
  const char *parameters = g_hash_table_lookup (text, "parameters");
  g_test_message ("parameters: %s", parameters);
  g_assert_true (g_str_has_prefix (parameters, "a photo of a sks <lora:lora_kohya:0.8>\n"));
  g_autofree char *want = g_strdup_printf ("Steps: %d, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: %dx%d, "
                                           "Model: tiny-sd15-diffusers",
                                           steps, size, size);
  g_assert_nonnull (strstr (parameters, want));
  gtk_window_destroy (viewer);

  gpointer weak = win;
  g_object_add_weak_pointer (G_OBJECT (win), &weak);
  gtk_window_destroy (GTK_WINDOW (win));
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
  dl_preview_backend_set_default (NULL);
  dl_file_writer_wait ();
  app_test_run_for (20);
  g_object_unref (app);
  g_free (chosen.path);
  g_free (chosen.error);
  app_test_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *lora = dl_test_golden_path ("lora_kohya.safetensors");
  if (!model || !lora)
    return dl_test_skip_all ("the golden tiny model is not there (../shared/golden or $DREAMLOOM_GOLDEN_DIR)");
  /* as a file chooser would give them: no "..", which the model page resolves */
  golden_model = g_canonicalize_filename (model, NULL);
  golden_lora = g_canonicalize_filename (lora, NULL);
  app_test_init (&argc, &argv);
  g_test_add_func ("/app/scripted-run", test_scripted_run);
  int ret = g_test_run ();
  g_free (golden_model);
  g_free (golden_lora);
  return ret;
}
