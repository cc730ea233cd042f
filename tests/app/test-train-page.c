/* The Train page, scripted in a real window under Xvfb with the engine on the
 * golden tiny model: a LoRA trained for 30 steps from the window — the curve
 * holds every step and the validation points, the latest previews change
 * while the base column stays, Pause holds the step count, the files export
 * and the exported LoRA changes a preview; a second run stopped midway keeps
 * its checkpoint, and the project reopened in a new window offers Continue,
 * which finishes it; a Textual Inversion run of a few steps through the same
 * page; bad input (no images, settings the trainer refuses, a model that
 * cannot be read, settings the memory plan says cannot fit and the one click
 * that makes them fit, a read-only export folder) said on the page; an SDXL
 * base model, for which hypernetworks cannot be picked.  Mid-run,
 * the page is screenshot to data/screenshots/training.png (when
 * DL_TEST_TRAINING_SCREENSHOT says where).  Under $DREAMLOOM_TEST_QUICK (CI's
 * sanitizer build) the LoRA run is left to the plain build. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <unistd.h>
#include <string.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-file-writer.h"
#include "dl-loss-series.h"
#include "dl-settings.h"
#include "dl-test-util.h"
#include "dl-window.h"
#include "image/dl-png.h"
#include "io/dl-safetensors.h"
#include "nn/dl-embedding-file.h"
#include "nn/dl-lora-file.h"
#include "train/dl-run-info.h"

/* the golden tiny model's latents are half the image: 32 px is 16x16 latents, a step of ~2 s on lavapipe */
#define RESOLUTION 32

static char *golden_model;
/* one application for both cases, as in the app: a second one would not be the primary instance */
static DlApplication *app;

static void
note_loaded (DlWindow *win, DlProject *project, gpointer data)
{
  *(gboolean *)data = TRUE;
}

static DlWindow *
open_window (const char *project_path)
{
  DlWindow *win = dl_window_new (app);
  gtk_window_set_default_size (GTK_WINDOW (win), 1200, 900);
  gtk_window_present (GTK_WINDOW (win));
  gboolean loaded = FALSE;
  gulong id = g_signal_connect (win, "project-loaded", G_CALLBACK (note_loaded), &loaded);
  g_autoptr (GFile) file = g_file_new_for_path (project_path);
  dl_window_open_file (win, file);
  APP_TEST_WAIT_UNTIL (loaded, 20);
  g_signal_handler_disconnect (win, id);
  DlProject *project = dl_window_get_project (win);
  APP_TEST_WAIT_UNTIL (dl_project_get_n_loading (project) == 0, 30);
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-page", g_variant_new_string ("train"));
  return win;
}

static void
close_window (DlWindow *win)
{
  gpointer weak = win;
  g_object_add_weak_pointer (G_OBJECT (win), &weak);
  gtk_window_destroy (GTK_WINDOW (win));
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
}

static char *
write_project (const char *dir, const char *name, guint n_images, const char *training)
{
  GString *images = g_string_new (NULL);
  for (guint i = 0; i < n_images; i++)
    {
      g_autofree char *img = g_strdup_printf ("%s-%u.png", name, i + 1);
      g_autofree char *path = g_build_filename (dir, img, NULL);
      app_test_write_png (path, 64, 64, i + 3);
      g_string_append_printf (images, "%s{\"path\": \"%s\", \"caption\": \"a photo of sks dog\"}", i ? ", " : "", path);
    }
  g_autofree char *file = g_strdup_printf ("%s.dreamloom", name);
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autofree char *json = g_strdup_printf ("{\"format\": \"dreamloom-project\", \"version\": 1,\n"
                                           " \"concept\": {\"token\": \"sks\", \"class\": \"dog\"},\n"
                                           " \"base_model\": {\"path\": \"%s\"},\n"
                                           " \"dataset\": {\"resolution\": %d, \"images\": [%s]},\n"
                                           " \"previews\": {\"prompts\": [], \"templates\": [0]},\n"
                                           " \"training\": %s}\n",
                                           golden_model, RESOLUTION, images->str, training);
  g_string_free (images, TRUE);
  app_test_write_file (path, json);
  return g_steal_pointer (&path);
}

static gint64
job_step (DlTrainPage *page)
{
  DlTrainJob *job = dl_train_page_get_job (page);
  return job ? dl_train_job_get_step (job) : -1;
}

static DlPreviewImage *
preview (const char *lora, GError **error)
{
  g_autoptr (DlPreviewRequest) r = dl_preview_request_new ();
  r->model_path = g_strdup (golden_model);
  g_free (r->prompt);
  r->prompt = g_strdup ("a photo of sks dog");
  r->seed = 3;
  r->steps = 2;
  r->width = r->height = RESOLUTION;
  if (lora)
    dl_preview_request_add_lora (r, lora, 1.0);
  return dl_preview_backend_generate (dl_preview_backend_get_default (), r, NULL, NULL, NULL, error);
}

static void stop_and_continue (DlWindow *win, const char *project_path, const char *dir);

static void
test_lora_run (void)
{
  g_autofree char *dir = app_test_make_dir ("train-page");
  g_autoptr (GError) error = NULL;
  /* 30 steps; previews, validation and a checkpoint every 15 (one sampler step a preview) */
  const gint64 steps = 30, every = 15;
  g_autofree char *training = g_strdup_printf (
    "{\"version\": 2, \"method\": \"lora\", \"steps\": %" G_GINT64_FORMAT ", \"rank\": 4, \"alpha\": 2, "
    "\"lr\": 0.001, \"validate-every\": %" G_GINT64_FORMAT ", \"sample-every\": %" G_GINT64_FORMAT
    ", \"sample-steps\": 1, \"save-every\": %" G_GINT64_FORMAT "}",
    steps, every, every, every);
  g_autofree char *project_path = write_project (dir, "Dog", 2, training);
  DlWindow *win = open_window (project_path);
  DlTrainPage *page = dl_window_get_train_page (win);
  DlTrainForm *form = dl_train_page_get_form (page);
  g_assert_cmpint (dl_train_form_get_settings (form)->method, ==, DL_TRAIN_LORA);
  g_assert_cmpint (dl_train_form_get_settings (form)->steps, ==, steps);
  g_assert_nonnull (dl_train_form_get_row (form, "rank"));
  g_assert_nonnull (dl_train_form_get_row (form, "min-snr-gamma")); /* under Advanced */
  g_assert_null (dl_train_form_get_row (form, "vectors"));          /* Textual Inversion's */
  /* the memory plan, from the model's configuration and the device */
  APP_TEST_WAIT_UNTIL (g_str_has_prefix (dl_train_page_get_plan_text (page), "Needs "), 60);
  g_test_message ("plan: %s", dl_train_page_get_plan_text (page));
  /* of the memory $DREAMLOOM_MEMORY_LIMIT allows */
  g_assert_nonnull (strstr (dl_train_page_get_plan_text (page), " GB allowed"));

  /* a value the trainer refuses is marked and stops Train */
  GtkWidget *rank = dl_train_form_get_row (form, "rank");
  gtk_editable_set_text (GTK_EDITABLE (rank), "zero");
  g_assert_true (gtk_widget_has_css_class (rank, "error"));
  g_assert_false (dl_train_form_is_valid (form));
  g_assert_false (dl_train_page_start (page, &error));
  g_test_message ("with a bad rank: %s", error->message);
  g_clear_error (&error);
  gtk_editable_set_text (GTK_EDITABLE (rank), "4");
  g_assert_true (dl_train_form_is_valid (form));
  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      /* the sanitizer build: the run itself is the plain build's (a Textual Inversion run follows) */
      close_window (win);
      app_test_rmtree (dir);
      return;
    }

  g_autoptr (DlPreviewImage) base = preview (NULL, &error);
  g_assert_no_error (error);

  g_assert_true (dl_train_page_start (page, &error));
  g_assert_no_error (error);
  g_assert_true (dl_train_page_is_training (page));
  DlTrainPreviews *previews = dl_train_page_get_previews (page);
  /* base and latest at the first preview step */
  APP_TEST_WAIT_UNTIL (dl_train_previews_get_step (previews, DL_TRAIN_PREVIEWS_LATEST) >= every, 300);
  g_autofree char *base_file = g_strdup (dl_train_previews_get_file (previews, DL_TRAIN_PREVIEWS_BASE, 0));
  g_autofree char *latest_first = g_strdup (dl_train_previews_get_file (previews, DL_TRAIN_PREVIEWS_LATEST, 0));
  g_assert_nonnull (base_file);
  g_assert_cmpint (dl_train_previews_get_step (previews, DL_TRAIN_PREVIEWS_BASE), ==, 0);
  /* the Previews page's prompts (template 0 with the concept token), sampler, seed and guidance */
  {
    g_autoptr (GHashTable) text = NULL;
    int w, h;
    g_autofree guint8 *px = dl_png_read_rgba (base_file, &w, &h, &text, &error);
    g_assert_no_error (error);
    const char *params = g_hash_table_lookup (text, "parameters");
    g_test_message ("base preview: %s", params);
    g_assert_true (g_str_has_prefix (params, "a photo of a sks\n"));
    g_assert_nonnull (strstr (params, "Sampler: Euler a,"));
    g_assert_nonnull (strstr (params, "Seed: 42,"));
    g_assert_nonnull (strstr (params, "CFG scale: 7"));
  }

  /* Pause holds the step count */
  gtk_widget_activate_action (GTK_WIDGET (page), "train.pause", NULL);
  DlTrainJob *job = dl_train_page_get_job (page);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_PAUSED);
  app_test_run_for (1500); /* the step in flight ends */
  gint64 held = job_step (page);
  app_test_run_for (2000);
  g_assert_cmpint (job_step (page), ==, held);
  g_test_message ("paused at step %" G_GINT64_FORMAT, held);
  const char *shot = g_getenv ("DL_TEST_TRAINING_SCREENSHOT");
  if (shot && *shot)
    {
      app_test_run_for (400);
      app_test_save_screenshot (GTK_WIDGET (win), shot);
    }
  gtk_widget_activate_action (GTK_WIDGET (page), "train.pause", NULL);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_RUNNING);

  APP_TEST_WAIT_UNTIL (dl_train_job_is_done (job), 600);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_FINISHED);
  g_assert_cmpstr (dl_train_page_get_status (page), ==, "Training finished");
  DlLossSeries *series = dl_loss_curve_get_series (dl_train_page_get_curve (page));
  g_assert_cmpuint (dl_loss_series_get_n_steps (series), ==, steps);
  g_assert_cmpuint (dl_loss_series_get_n_validations (series), ==, 3); /* 0, 15, 30 */
  /* the latest column moved on, the base stayed */
  g_assert_cmpint (dl_train_previews_get_step (previews, DL_TRAIN_PREVIEWS_LATEST), ==, steps);
  g_assert_cmpstr (dl_train_previews_get_file (previews, DL_TRAIN_PREVIEWS_BASE, 0), ==, base_file);
  g_assert_cmpstr (dl_train_previews_get_file (previews, DL_TRAIN_PREVIEWS_LATEST, 0), !=, latest_first);
  g_assert_cmpint (dl_train_previews_get_step (previews, DL_TRAIN_PREVIEWS_BEST), >, 0);
  /* a click enlarges a preview: its file, with the parameters it carries */
  {
    DlImageViewer *viewer = dl_train_previews_enlarge (previews, DL_TRAIN_PREVIEWS_LATEST, 0);
    g_assert_nonnull (viewer);
    g_assert_cmpstr (dl_image_viewer_get_source_path (viewer), ==,
                     dl_train_previews_get_file (previews, DL_TRAIN_PREVIEWS_LATEST, 0));
    g_assert_null (dl_image_viewer_get_request (viewer));
    gtk_window_destroy (GTK_WINDOW (viewer));
    /* the studio window is the one looked at again (no desktop notification at the end) */
    gtk_window_present (GTK_WINDOW (win));
    APP_TEST_WAIT_UNTIL (gtk_window_is_active (GTK_WINDOW (win)), 10);
  }
  /* the slider looks back */
  dl_train_previews_show_step (previews, 1);
  g_assert_cmpint (dl_train_previews_get_step (previews, DL_TRAIN_PREVIEWS_LATEST), ==, every);
  dl_train_previews_show_step (previews, -1);
  g_assert_cmpuint (dl_checkpoint_list_get_n_items (dl_train_page_get_checkpoints (page)), >=, 2);

  /* export: read back, and it changes a preview */
  g_autofree char *exported = g_build_filename (dir, "exported.safetensors", NULL);
  g_assert_true (dl_train_page_export_to (page, exported, &error));
  g_assert_no_error (error);
  g_autoptr (DlLoraFile) lf = dl_lora_file_open (exported, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_lora_file_get_n_modules (lf), >, 0);
  g_autoptr (DlPreviewImage) with = preview (exported, &error);
  g_assert_no_error (error);
  g_assert_false (g_bytes_equal (base->rgba, with->rgba));
  /* in full precision: the same modules, f32 */
  g_autofree char *exported32 = g_build_filename (dir, "exported-f32.safetensors", NULL);
  g_assert_true (dl_train_page_export_as (page, exported32, DL_ST_F32, &error));
  g_assert_no_error (error);
  g_autoptr (DlLoraFile) lf32 = dl_lora_file_open (exported32, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_lora_file_get_n_modules (lf32), ==, dl_lora_file_get_n_modules (lf));
  {
    g_autoptr (DlSafetensors) st = dl_safetensors_open (exported32, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dl_safetensors_get_tensor (st, 0)->dtype, ==, DL_ST_F32);
    g_assert_nonnull (dl_safetensors_get_metadata (st, "ss_network_dim"));
  }
  /* into a read-only folder: an error, nothing written */
  g_autofree char *ro = g_build_filename (dir, "read-only", NULL);
  g_mkdir (ro, 0555);
  g_autofree char *ro_file = g_build_filename (ro, "x.safetensors", NULL);
  if (access (ro, W_OK) != 0)
    { /* root writes anywhere */
      g_assert_false (dl_train_page_export_to (page, ro_file, &error));
      g_test_message ("export into a read-only folder: %s", error->message);
      g_clear_error (&error);
      g_assert_false (g_file_test (ro_file, G_FILE_TEST_EXISTS));
    }
  /* the kohya job */
  g_autofree char *kohya = g_build_filename (dir, "kohya-job", NULL);
  g_assert_true (dl_train_page_export_kohya_to (page, kohya, &error));
  g_assert_no_error (error);
  g_autofree char *sh = g_build_filename (kohya, "train.sh", NULL);
  g_assert_true (g_file_test (sh, G_FILE_TEST_IS_EXECUTABLE));

  stop_and_continue (win, project_path, dir);

  dl_file_writer_wait ();
  app_test_run_for (20);
  app_test_rmtree (dir);
}

/* a second run, stopped midway, continued in a new window */
static void
stop_and_continue (DlWindow *win, const char *project_path, const char *dir)
{
  g_autoptr (GError) error = NULL;
  DlTrainPage *page = dl_window_get_train_page (win);
  DlTrainJob *job;
  /* a second run, stopped midway: its checkpoint stays */
  DlProject *project = dl_window_get_project (win);
  g_autoptr (DlTrainSettings) s = dl_train_settings_copy (dl_project_get_train_settings (project));
  s->steps = 6;
  s->save_every = 2;
  s->sample_every = 0;
  s->validate_every = 0;
  dl_project_set_train_settings (project, s);
  g_assert_true (dl_train_page_start (page, &error));
  g_assert_no_error (error);
  APP_TEST_WAIT_UNTIL (job_step (page) >= 3, 300);
  gtk_widget_activate_action (GTK_WIDGET (page), "train.stop", NULL);
  job = dl_train_page_get_job (page);
  APP_TEST_WAIT_UNTIL (dl_train_job_is_done (job), 120);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_STOPPED);
  g_assert_true (dl_train_page_can_continue (page));
  g_autofree char *run2 = g_strdup (dl_train_job_get_run_dir (job));
  g_assert_true (g_str_has_suffix (run2, "Dog-lora-2.run"));
  g_autofree char *state2 = g_build_filename (run2, "state-00000002.safetensors", NULL);
  g_assert_true (g_file_test (state2, G_FILE_TEST_IS_REGULAR));
  g_assert_true (dl_project_flush (project, &error));
  close_window (win);

  /* reopened: the loss curve up to the checkpoint Continue goes on from
   * (losses.csv), then Continue, to the end */
  win = open_window (project_path);
  page = dl_window_get_train_page (win);
  g_assert_true (dl_train_page_can_continue (page));
  {
    g_autoptr (DlRunInfo) info = dl_run_info_read (run2, &error);
    g_assert_no_error (error);
    DlLossSeries *reopened = dl_loss_curve_get_series (dl_train_page_get_curve (page));
    g_assert_cmpint (info->step, >=, 2);
    g_assert_cmpuint (dl_loss_series_get_n_steps (reopened), ==, (guint)info->step);
    g_assert_cmpint (dl_loss_series_get_steps (reopened)[info->step - 1].step, ==, info->step);
  }
  g_assert_true (dl_train_page_continue (page, &error));
  g_assert_no_error (error);
  job = dl_train_page_get_job (page);
  APP_TEST_WAIT_UNTIL (dl_train_job_is_done (job), 300);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_FINISHED);
  g_assert_false (dl_train_page_can_continue (page));
  g_autofree char *out2 = g_build_filename (dir, "Dog-lora-2.safetensors", NULL);
  g_assert_true (g_file_test (out2, G_FILE_TEST_IS_REGULAR));
  close_window (win);
}

static void
test_textual_inversion_and_bad_input (void)
{
  g_autofree char *dir = app_test_make_dir ("train-page-ti");
  g_autoptr (GError) error = NULL;
  g_autofree char *project_path =
    write_project (dir, "Cat", 1,
                   "{\"version\": 2, \"method\": \"textual-inversion\", \"steps\": 3, \"init-text\": \"cat\", "
                   "\"validate-every\": 0, \"sample-every\": 0, \"save-every\": 0}");
  g_autofree char *empty_path = write_project (dir, "Empty", 0, "{\"version\": 2, \"method\": \"lora\"}");
  /* a base model that cannot be read */
  g_autofree char *broken_path = write_project (dir, "Broken", 1,
                                                "{\"version\": 2, \"method\": \"lora\", \"steps\": 2, "
                                                "\"validate-every\": 0, \"sample-every\": 0, \"save-every\": 0}");
  {
    g_autofree char *broken_model = g_build_filename (dir, "broken.safetensors", NULL);
    app_test_write_file (broken_model, "this is not a checkpoint");
    g_autofree char *json = NULL;
    g_assert_true (g_file_get_contents (broken_path, &json, NULL, NULL));
    GString *edited = g_string_new (json);
    g_string_replace (edited, golden_model, broken_model, 1);
    app_test_write_file (broken_path, edited->str);
    g_string_free (edited, TRUE);
  }

  /* no images: said on the page, nothing starts */
  DlWindow *win = open_window (empty_path);
  DlTrainPage *page = dl_window_get_train_page (win);
  g_assert_false (dl_train_page_start (page, &error));
  g_assert_nonnull (error);
  g_test_message ("no images: %s", error->message);
  g_assert_cmpstr (dl_train_page_get_status (page), ==, "Training cannot start");
  g_assert_null (dl_train_page_get_job (page));
  g_clear_error (&error);
  close_window (win);

  /* a model that fails to load: the run fails saying which file, the page stays usable */
  win = open_window (broken_path);
  page = dl_window_get_train_page (win);
  g_assert_true (dl_train_page_start (page, &error));
  g_assert_no_error (error);
  DlTrainJob *broken = dl_train_page_get_job (page);
  APP_TEST_WAIT_UNTIL (dl_train_job_is_done (broken), 120);
  g_assert_cmpint (dl_train_job_get_state (broken), ==, DL_TRAIN_JOB_FAILED);
  g_test_message ("broken model: %s", dl_train_job_get_error (broken)->message);
  g_assert_nonnull (strstr (dl_train_job_get_error (broken)->message, "broken.safetensors"));
  g_assert_cmpstr (dl_train_page_get_status (page), ==, "Training stopped with an error");
  g_assert_false (dl_train_page_is_training (page));
  close_window (win);

  win = open_window (project_path);
  page = dl_window_get_train_page (win);
  DlTrainForm *form = dl_train_page_get_form (page);
  g_assert_cmpint (dl_train_form_get_settings (form)->method, ==, DL_TRAIN_TEXTUAL_INVERSION);
  g_assert_nonnull (dl_train_form_get_row (form, "vectors"));
  g_assert_null (dl_train_form_get_row (form, "rank"));
  DlTrainJob *job = NULL;
  /* the run and its export: in the plain build (CI's sanitizer build, $DREAMLOOM_TEST_QUICK, checks the rest) */
  if (!g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_assert_true (dl_train_page_start (page, &error));
      g_assert_no_error (error);
      job = dl_train_page_get_job (page);
      APP_TEST_WAIT_UNTIL (dl_train_job_is_done (job), 300);
      if (dl_train_job_get_error (job))
        g_test_message ("%s", dl_train_job_get_error (job)->message);
      g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_FINISHED);
      /* as A1111's .pt: the embedding is named by the file */
      g_autofree char *pt = g_build_filename (dir, "my-cat.pt", NULL);
      g_assert_true (dl_train_page_export_to (page, pt, &error));
      g_assert_no_error (error);
      g_autoptr (DlEmbedding) e = dl_embedding_read (pt, 0, &error);
      g_assert_no_error (error);
      g_assert_cmpint (e->n_vectors, ==, 1);
      g_assert_cmpstr (e->stored_name, ==, "my-cat");
    }
  /* settings the plan says cannot fit: said, Train refused; one click makes them fit */
  gtk_editable_set_text (GTK_EDITABLE (dl_train_form_get_row (form, "batch")), "1024");
  APP_TEST_WAIT_UNTIL (g_str_has_suffix (dl_train_page_get_plan_text (page), ": too much"), 60);
  g_test_message ("batch 1024: %s", dl_train_page_get_plan_text (page));
  g_assert_false (dl_train_page_start (page, &error));
  g_test_message ("start: %s", error->message);
  g_assert_nonnull (strstr (error->message, "does not fit"));
  g_clear_error (&error);
  g_assert_true (dl_train_page_get_job (page) == job); /* no new run */
  gtk_widget_activate_action (GTK_WIDGET (page), "train.make-fit", NULL);
  APP_TEST_WAIT_UNTIL (g_str_has_prefix (dl_train_page_get_plan_text (page), "Needs ") &&
                         !g_str_has_suffix (dl_train_page_get_plan_text (page), ": too much"),
                       60);
  g_test_message ("made to fit: %s", dl_train_page_get_plan_text (page));
  g_assert_true (dl_train_form_get_settings (form)->fp16 || dl_train_form_get_settings (form)->checkpointing);
  g_assert_cmpint (dl_train_form_get_settings (form)->batch, ==, 1024);
  /* the method picker: another method's own settings */
  GtkWidget *lora_row = app_test_find_widget (GTK_WIDGET (form), ADW_TYPE_ACTION_ROW, NULL, NULL);
  g_assert_nonnull (lora_row);
  close_window (win);

  dl_file_writer_wait ();
  app_test_run_for (20);
  app_test_rmtree (dir);
}

static gboolean
named (GtkWidget *w, gconstpointer name)
{
  return g_strcmp0 (gtk_widget_get_name (w), name) == 0;
}

/* An SDXL base model: the hypernetwork row says SD 1.x only and cannot be
 * picked, a project that asks for one is refused before anything starts, with
 * the reason; LoRA can be picked from there. */
static void
test_sdxl_hypernetwork (void)
{
  g_autofree char *xl = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  if (!xl)
    {
      g_test_skip ("the golden tiny SDXL model is not there");
      return;
    }
  g_autofree char *dir = app_test_make_dir ("train-page-sdxl");
  g_autoptr (GError) error = NULL;
  g_autofree char *path = write_project (dir, "Xl", 1,
                                         "{\"version\": 2, \"method\": \"hypernetwork\", \"steps\": 2, "
                                         "\"validate-every\": 0, \"sample-every\": 0, \"save-every\": 0}");
  {
    g_autofree char *json = NULL;
    g_assert_true (g_file_get_contents (path, &json, NULL, NULL));
    GString *edited = g_string_new (json);
    g_autofree char *xl_path = g_canonicalize_filename (xl, NULL);
    g_string_replace (edited, golden_model, xl_path, 1);
    app_test_write_file (path, edited->str);
    g_string_free (edited, TRUE);
  }
  DlWindow *win = open_window (path);
  DlTrainPage *page = dl_window_get_train_page (win);
  DlTrainForm *form = dl_train_page_get_form (page);
  g_assert_cmpint (dl_train_form_get_settings (form)->method, ==, DL_TRAIN_HYPERNETWORK);
  /* the memory plan reads the model and tells the form its family */
  APP_TEST_WAIT_UNTIL (!dl_train_form_is_valid (form), 60);
  g_test_message ("%s", dl_train_form_get_problem (form));
  g_assert_false (dl_train_page_start (page, &error));
  g_assert_nonnull (strstr (error->message, "Stable Diffusion 1.x"));
  g_assert_null (dl_train_page_get_job (page));
  g_clear_error (&error);
  GtkWidget *hn = app_test_find_widget (GTK_WIDGET (form), ADW_TYPE_ACTION_ROW, named, "hypernetwork");
  GtkWidget *lora = app_test_find_widget (GTK_WIDGET (form), ADW_TYPE_ACTION_ROW, named, "lora");
  g_assert_nonnull (hn);
  g_assert_nonnull (lora);
  g_assert_true (gtk_widget_get_sensitive (hn)); /* the method now: another is picked from here */
  g_assert_nonnull (strstr (adw_action_row_get_subtitle (ADW_ACTION_ROW (hn)), "SDXL"));
  adw_action_row_activate (ADW_ACTION_ROW (lora));
  g_assert_cmpint (dl_train_form_get_settings (form)->method, ==, DL_TRAIN_LORA);
  g_assert_true (dl_train_form_is_valid (form));
  g_assert_false (gtk_widget_get_sensitive (hn));
  close_window (win);
  app_test_run_for (20);
  app_test_rmtree (dir);
}

int
main (int argc, char **argv)
{
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!model)
    return dl_test_skip_all ("the golden tiny model is not there (../shared/golden or $DREAMLOOM_GOLDEN_DIR)");
  golden_model = g_canonicalize_filename (model, NULL);
  /* the plan's verdicts as on a 2 GiB card, whatever the host has free (a
   * CPU device's budget is the host's memory) */
  g_setenv ("DREAMLOOM_MEMORY_LIMIT", "2G", TRUE);
  app_test_init (&argc, &argv);
  g_test_add_func ("/app/train-page/lora", test_lora_run);
  g_test_add_func ("/app/train-page/textual-inversion", test_textual_inversion_and_bad_input);
  g_test_add_func ("/app/train-page/sdxl-hypernetwork", test_sdxl_hypernetwork);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  dl_preview_backend_set_default (DL_PREVIEW_BACKEND (dl_application_get_engine_session (app)));
  int ret = g_test_run ();
  dl_preview_backend_set_default (NULL);
  app_test_run_for (20);
  g_object_unref (app);
  g_free (golden_model);
  return ret;
}
