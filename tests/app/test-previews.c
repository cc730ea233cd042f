/* The preview panel in a real window under Xvfb, driven by the TEST DOUBLE backend
 * (dl-test-preview-backend.h: a deterministic picture of prompt, seed, size and
 * LoRA list, made step by step): a column per model, results as they finish, the
 * progress, Cancel (also while the next run starts at once), failures per cell,
 * enlarging a result and saving it as a PNG with AUTOMATIC1111's parameters. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-file-writer.h"
#include "dl-image-viewer.h"
#include "dl-preview-job.h"
#include "dl-settings.h"
#include "dl-test-preview-backend.h"
#include "dl-thumbnail.h"
#include "dl-window.h"
#include "image/dl-png.h"

static DlApplication *app;

typedef struct
{
  char *dir;
  DlWindow *win;
  DlPreviewPage *page;
  DlProject *project;
  DlTestPreviewBackend *backend;
  GSettings *settings;
  char *model, *lora_a, *lora_bad;
  guint n_finished;
  gboolean cancelled;
} Fixture;

static void
on_finished (DlPreviewPage *page, gboolean cancelled, Fixture *f)
{
  f->n_finished++;
  f->cancelled = cancelled;
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->dir = app_test_make_dir ("previews");
  g_autoptr (GError) error = NULL;
  f->settings = dl_settings_new (&error);
  g_assert_no_error (error);
  /* small and quick: the test double's time is in its steps */
  g_settings_set_int (f->settings, "preview-steps", 3);
  g_settings_set_int (f->settings, "preview-width", 64);
  g_settings_set_int (f->settings, "preview-height", 80);
  g_settings_set_int64 (f->settings, "preview-seed", 42);
  g_settings_set_string (f->settings, "preview-sampler", "euler_a");
  g_settings_set_double (f->settings, "preview-cfg", 7.0);
  g_settings_set_boolean (f->settings, "preview-random-seed", FALSE);

  f->backend = dl_test_preview_backend_new ();
  dl_preview_backend_set_default (DL_PREVIEW_BACKEND (f->backend));

  f->win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (f->win));
  f->page = dl_window_get_preview_page (f->win);
  g_signal_connect (f->page, "finished", G_CALLBACK (on_finished), f);
  g_autofree char *path = g_build_filename (f->dir, "Previews.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (f->win, file, "sks", "dog"));
  f->project = dl_window_get_project (f->win);
  g_action_group_activate_action (G_ACTION_GROUP (f->win), "show-page", g_variant_new_string ("previews"));

  f->model = g_build_filename (f->dir, "base-model.safetensors", NULL);
  f->lora_a = g_build_filename (f->dir, "lora-a.safetensors", NULL);
  f->lora_bad = g_build_filename (f->dir, "bad-lora.safetensors", NULL);
  app_test_write_file (f->model, "");
  app_test_write_file (f->lora_a, "");
  app_test_write_file (f->lora_bad, "");
}

static void
teardown (Fixture *f, gconstpointer data)
{
  gpointer weak = f->win;
  g_object_add_weak_pointer (G_OBJECT (f->win), &weak);
  gtk_window_destroy (GTK_WINDOW (f->win));
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
  /* a worker still in a step finishes it, then drops the backend */
  dl_preview_backend_set_default (NULL);
  gpointer weak_backend = f->backend;
  g_object_add_weak_pointer (G_OBJECT (f->backend), &weak_backend);
  g_object_unref (f->backend);
  APP_TEST_WAIT_UNTIL (weak_backend == NULL, 30);
  dl_file_writer_wait ();
  app_test_run_for (20);
  g_object_unref (f->settings);
  app_test_rmtree (f->dir);
  g_free (f->dir);
  g_free (f->model);
  g_free (f->lora_a);
  g_free (f->lora_bad);
}

static void
set_up_run (Fixture *f, const char *second_lora)
{
  dl_project_set_base_model (f->project, f->model);
  const guint templates[] = { 0, 2 };
  dl_project_set_preview_templates (f->project, templates, G_N_ELEMENTS (templates));
  const char *prompts[] = { "a watercolor of sks", NULL };
  dl_project_set_preview_prompts (f->project, prompts);
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  g_ptr_array_add (loras, dl_project_lora_new (f->lora_a, 0.5));
  g_ptr_array_add (loras, dl_project_lora_new (second_lora, 1.0));
  dl_project_set_loras (f->project, loras);
}

static void
generate_and_wait (Fixture *f)
{
  guint before = f->n_finished;
  /* the Generate button's (and Ctrl+Return's) action */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->page), "preview.generate", NULL));
  g_assert_true (dl_preview_page_get_running (f->page));
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "results");
  APP_TEST_WAIT_UNTIL (f->n_finished > before, 60);
  g_assert_false (dl_preview_page_get_running (f->page));
}

/* What the panel should have asked for at (prompt, column). */
static DlPreviewRequest *
expected_request (Fixture *f, const char *prompt, guint column)
{
  DlPreviewRequest *r = dl_preview_request_new ();
  g_free (r->prompt);
  r->prompt = g_strdup (prompt);
  r->model_path = g_strdup (f->model);
  r->seed = 42;
  r->steps = 3;
  r->width = 64;
  r->height = 80;
  GPtrArray *loras = dl_project_get_loras (f->project);
  if (column > 0)
    {
      DlProjectLora *l = loras->pdata[column - 1];
      dl_preview_request_add_lora (r, l->path, l->strength);
    }
  return r;
}

static GdkTexture *
expected_texture (Fixture *f, const char *prompt, guint column)
{
  g_autoptr (DlPreviewRequest) r = expected_request (f, prompt, column);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlPreviewImage) image =
    dl_preview_backend_generate (DL_PREVIEW_BACKEND (f->backend), r, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return dl_preview_image_to_texture (image);
}

/* ---- states ---- */

static void
test_states (Fixture *f, gconstpointer data)
{
  /* no generator registered: the panel says previews need the sampler */
  dl_preview_backend_set_default (NULL);
  dl_preview_page_refresh (f->page);
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "unavailable");
  set_up_run (f, f->lora_bad);
  dl_preview_page_refresh (f->page);
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "unavailable");
  g_assert_false (dl_preview_page_generate (f->page));

  dl_preview_backend_set_default (DL_PREVIEW_BACKEND (f->backend));
  dl_preview_page_refresh (f->page);
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "ready");
  dl_project_set_base_model (f->project, NULL);
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "no-model");
  g_assert_false (dl_preview_page_generate (f->page));
  dl_project_set_base_model (f->project, f->model);
  dl_project_set_preview_templates (f->project, NULL, 0);
  dl_project_set_preview_prompts (f->project, NULL);
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "no-prompts");
  g_assert_false (dl_preview_page_generate (f->page));
  g_assert_cmpuint (dl_test_preview_backend_get_n_calls (f->backend), ==, 0);
}

/* ---- a run ---- */

static void
test_run (Fixture *f, gconstpointer data)
{
  set_up_run (f, f->lora_bad);
  g_autoptr (GPtrArray) prompts = dl_preview_page_get_prompts (f->page);
  g_assert_cmpuint (prompts->len, ==, 3);
  g_assert_cmpstr (prompts->pdata[0], ==, "a photo of a sks");
  g_assert_cmpstr (prompts->pdata[1], ==, "a cropped photo of the sks");
  g_assert_cmpstr (prompts->pdata[2], ==, "a watercolor of sks");
  g_assert_cmpstr (dl_preview_page_get_state (f->page), ==, "ready");

  generate_and_wait (f);
  g_assert_false (f->cancelled);
  g_assert_cmpuint (dl_test_preview_backend_get_n_calls (f->backend), ==, 9);
  g_assert_cmpuint (dl_test_preview_backend_get_max_concurrent (f->backend), ==, 1);
  for (guint r = 0; r < 3; r++)
    for (guint c = 0; c < 3; c++)
      {
        DlPreviewCell *cell = dl_preview_page_get_cell (f->page, r, c);
        g_assert_nonnull (cell);
        g_assert_cmpint (dl_preview_cell_get_state (cell), ==, DL_PREVIEW_CELL_DONE);
        GdkTexture *t = dl_preview_page_get_result (f->page, r, c);
        g_assert_cmpint (gdk_texture_get_width (t), ==, 64);
        g_assert_cmpint (gdk_texture_get_height (t), ==, 80);
        g_assert_true (app_test_texture_has_content (t));
        /* exactly what the backend makes of that prompt, seed, size and LoRA list */
        g_autoptr (GdkTexture) expected = expected_texture (f, prompts->pdata[r], c);
        g_assert_cmpfloat (app_test_texture_difference (t, expected), ==, 0.0);
      }
  /* columns differ by their LoRA (and its strength), rows by their prompt */
  g_assert_cmpfloat (app_test_texture_difference (dl_preview_page_get_result (f->page, 0, 0),
                                                  dl_preview_page_get_result (f->page, 0, 1)),
                     >, 1.0);
  g_assert_cmpfloat (app_test_texture_difference (dl_preview_page_get_result (f->page, 0, 1),
                                                  dl_preview_page_get_result (f->page, 0, 2)),
                     >, 1.0);
  g_assert_cmpfloat (app_test_texture_difference (dl_preview_page_get_result (f->page, 0, 0),
                                                  dl_preview_page_get_result (f->page, 1, 0)),
                     >, 1.0);

  /* the same seed again: the same pictures */
  g_autoptr (GdkTexture) first = g_object_ref (dl_preview_page_get_result (f->page, 2, 1));
  generate_and_wait (f);
  g_assert_cmpfloat (app_test_texture_difference (first, dl_preview_page_get_result (f->page, 2, 1)), ==, 0.0);
  /* another seed: other pictures, for every column alike */
  g_settings_set_int64 (f->settings, "preview-seed", 7);
  generate_and_wait (f);
  g_assert_cmpfloat (app_test_texture_difference (first, dl_preview_page_get_result (f->page, 2, 1)), >, 1.0);
}

/* ---- enlarge and save ---- */

static GtkWindow *
find_viewer (void)
{
  GListModel *toplevels = gtk_window_get_toplevels (); /* GTK's own list */
  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr (GObject) w = g_list_model_get_item (toplevels, i);
      if (DL_IS_IMAGE_VIEWER (w))
        return GTK_WINDOW (w);
    }
  return NULL;
}

static void
test_enlarge_and_save (Fixture *f, gconstpointer data)
{
  set_up_run (f, f->lora_bad);
  generate_and_wait (f);
  g_assert_null (find_viewer ());

  /* a click on a result enlarges it */
  DlPreviewCell *cell = dl_preview_page_get_cell (f->page, 2, 1);
  g_assert_true (gtk_widget_get_sensitive (GTK_WIDGET (cell)));
  g_signal_emit_by_name (cell, "clicked");
  GtkWindow *viewer = find_viewer ();
  g_assert_nonnull (viewer);
  g_assert_true (gtk_window_get_transient_for (viewer) == GTK_WINDOW (f->win));
  const DlPreviewRequest *request = dl_image_viewer_get_request (DL_IMAGE_VIEWER (viewer));
  g_assert_cmpstr (request->prompt, ==, "a watercolor of sks");
  g_assert_cmpuint (request->seed, ==, 42);
  g_assert_cmpuint (request->loras->len, ==, 1);
  g_assert_true (dl_image_viewer_get_texture (DL_IMAGE_VIEWER (viewer)) == dl_preview_page_get_result (f->page, 2, 1));

  /* saved as PNG, with the parameters where AUTOMATIC1111 keeps them */
  g_autofree char *png = g_build_filename (f->dir, "saved.png", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (
    dl_image_viewer_save_png (dl_image_viewer_get_texture (DL_IMAGE_VIEWER (viewer)), request, png, &error));
  g_assert_no_error (error);
  int w = 0, h = 0;
  g_autoptr (GHashTable) text = NULL;
  g_autofree guint8 *pixels = dl_png_read_rgba (png, &w, &h, &text, &error);
  g_assert_no_error (error);
  g_assert_cmpint (w, ==, 64);
  g_assert_cmpint (h, ==, 80);
  g_autofree guchar *shown = app_test_texture_rgba (dl_preview_page_get_result (f->page, 2, 1));
  g_assert_cmpmem (pixels, (gsize)w * h * 4, shown, (gsize)w * h * 4);
  g_autofree char *expected = g_strdup_printf ("a watercolor of sks <lora:lora-a:0.5>\n"
                                               "Steps: 3, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x80, "
                                               "Model: base-model, Version: Dreamloom " DL_VERSION);
  g_assert_cmpstr (g_hash_table_lookup (text, "parameters"), ==, expected);
  g_assert_true (g_str_has_prefix (g_hash_table_lookup (text, "Software"), "Dreamloom "));

  gtk_window_destroy (viewer);
  g_assert_null (find_viewer ());
}

static void
test_parameters_text (Fixture *f, gconstpointer data)
{
  g_autoptr (DlPreviewRequest) r = dl_preview_request_new ();
  g_free (r->prompt);
  r->prompt = g_strdup ("a photo of sks dog");
  g_free (r->negative_prompt);
  r->negative_prompt = g_strdup ("blurry, lowres");
  r->model_path = g_strdup ("/m/v1-5-pruned-emaonly.safetensors");
  r->seed = 4294967295u;
  r->steps = 25;
  g_free (r->sampler);
  r->sampler = g_strdup ("dpmpp_2m_karras");
  r->cfg_scale = 7.5;
  r->width = 512;
  r->height = 768;
  dl_preview_request_add_lora (r, "/l/dog.safetensors", 0.8);
  dl_preview_request_add_lora (r, "/l/style.v2.safetensors", -1.25);
  g_autofree char *text = dl_preview_request_to_parameters (r);
  g_assert_cmpstr (text, ==,
                   "a photo of sks dog <lora:dog:0.8> <lora:style.v2:-1.25>\n"
                   "Negative prompt: blurry, lowres\n"
                   "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 4294967295, Size: 512x768, "
                   "Model: v1-5-pruned-emaonly, Version: Dreamloom " DL_VERSION);
}

/* ---- cancel ---- */

static void
test_cancel (Fixture *f, gconstpointer data)
{
  set_up_run (f, f->lora_bad);
  /* the second image stays in the making until cancelled */
  dl_test_preview_backend_hold_call (f->backend, 2);
  guint before = f->n_finished;
  g_assert_true (dl_preview_page_generate (f->page));
  g_assert_false (dl_preview_page_generate (f->page)); /* one run at a time */
  APP_TEST_WAIT_UNTIL (dl_test_preview_backend_get_n_calls (f->backend) == 2 &&
                         dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, 0, 1)) == DL_PREVIEW_CELL_BUSY,
                       30);
  g_assert_cmpint (dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, 0, 0)), ==, DL_PREVIEW_CELL_DONE);
  g_assert_true (dl_preview_page_get_running (f->page));
  /* Escape, or the Cancel button: the same action */
  gtk_widget_activate_action (GTK_WIDGET (f->page), "preview.cancel", NULL);
  APP_TEST_WAIT_UNTIL (f->n_finished > before, 30);
  g_assert_true (f->cancelled);
  g_assert_false (dl_preview_page_get_running (f->page));
  g_assert_cmpuint (dl_test_preview_backend_get_n_cancelled (f->backend), ==, 1);
  g_assert_cmpuint (dl_test_preview_backend_get_n_calls (f->backend), ==, 2);
  g_assert_cmpint (dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, 0, 0)), ==, DL_PREVIEW_CELL_DONE);
  for (guint i = 1; i < 9; i++)
    {
      DlPreviewCell *cell = dl_preview_page_get_cell (f->page, i / 3, i % 3);
      g_assert_cmpint (dl_preview_cell_get_state (cell), ==, DL_PREVIEW_CELL_NOT_MADE);
      g_assert_cmpstr (dl_preview_cell_get_message (cell), ==, "Cancelled");
    }

  /* a new run while the dropped one's worker is still inside a step it cannot
   * leave at once: the backend is never asked for two images at once */
  dl_test_preview_backend_hold_call (f->backend, 3);
  dl_test_preview_backend_set_cancel_latency (f->backend, 300000);
  g_assert_true (dl_preview_page_generate (f->page));
  APP_TEST_WAIT_UNTIL (dl_test_preview_backend_get_n_calls (f->backend) == 3, 30);
  dl_preview_page_set_project (f->page, NULL); /* drops (and cancels) the run */
  dl_preview_page_set_project (f->page, f->project);
  before = f->n_finished;
  g_assert_true (dl_preview_page_generate (f->page));
  APP_TEST_WAIT_UNTIL (f->n_finished > before, 60);
  g_assert_false (f->cancelled);
  for (guint i = 0; i < 9; i++)
    g_assert_cmpint (dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, i / 3, i % 3)), ==,
                     DL_PREVIEW_CELL_DONE);
  g_assert_cmpuint (dl_test_preview_backend_get_max_concurrent (f->backend), ==, 1);
  g_assert_cmpuint (dl_test_preview_backend_get_n_cancelled (f->backend), ==, 2);
}

/* ---- failures ---- */

static void
test_failure (Fixture *f, gconstpointer data)
{
  set_up_run (f, f->lora_bad);
  dl_test_preview_backend_set_fail_on_lora (f->backend, "bad-lora");
  generate_and_wait (f);
  g_assert_false (f->cancelled);
  for (guint r = 0; r < 3; r++)
    {
      g_assert_cmpint (dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, r, 0)), ==, DL_PREVIEW_CELL_DONE);
      g_assert_cmpint (dl_preview_cell_get_state (dl_preview_page_get_cell (f->page, r, 1)), ==, DL_PREVIEW_CELL_DONE);
      DlPreviewCell *failed = dl_preview_page_get_cell (f->page, r, 2);
      /* a failed cell keeps its reason after the run ends */
      g_assert_cmpint (dl_preview_cell_get_state (failed), ==, DL_PREVIEW_CELL_FAILED);
      g_assert_cmpstr (dl_preview_cell_get_message (failed), ==,
                       "“bad-lora.safetensors” is not a LoRA file (test double)");
      g_assert_cmpstr (gtk_widget_get_tooltip_text (GTK_WIDGET (failed)), ==,
                       "“bad-lora.safetensors” is not a LoRA file (test double)");
      g_assert_null (dl_preview_page_get_result (f->page, r, 2));
    }
  /* clicking a failed one enlarges nothing */
  g_signal_emit_by_name (dl_preview_page_get_cell (f->page, 0, 2), "clicked");
  g_assert_null (find_viewer ());
}

/* ---- the LoRA columns' files ---- */

static gboolean
lora_checks_done (gpointer data)
{
  Fixture *f = data;
  for (guint i = 0; dl_preview_page_get_lora_check (f->page, i); i++)
    if (g_str_equal (dl_preview_page_get_lora_check (f->page, i), "checking"))
      return FALSE;
  return TRUE;
}

static void
test_lora_check (Fixture *f, gconstpointer data)
{
  g_autofree char *gone = g_build_filename (f->dir, "gone.safetensors", NULL);
  g_autofree char *folder = g_build_filename (f->dir, "a-folder.safetensors", NULL);
  g_assert_cmpint (g_mkdir (folder, 0755), ==, 0);
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  g_ptr_array_add (loras, dl_project_lora_new (f->lora_a, 0.5));
  g_ptr_array_add (loras, dl_project_lora_new (gone, 1.0));
  g_ptr_array_add (loras, dl_project_lora_new (folder, 1.0));
  dl_project_set_loras (f->project, loras);
  /* the files are looked at off the main thread: no answer yet when the rows appear */
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, i), ==, "checking");
  g_assert_null (dl_preview_page_get_lora_check (f->page, 3));
  g_assert_true (app_test_wait (lora_checks_done, f, 10));
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 0), ==, "found");
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 1), ==, "missing");
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 2), ==, "missing");

  /* the rows are made again on every change, and looked at again: the file that
   * appeared meanwhile is found; checks of rows that went are dropped unanswered */
  app_test_write_file (gone, "");
  const char *prompts[] = { "a watercolor of sks", NULL };
  dl_project_set_preview_prompts (f->project, prompts);
  const char *more[] = { "a watercolor of sks", "an oil painting of sks", NULL };
  dl_project_set_preview_prompts (f->project, more);
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 1), ==, "checking");
  g_assert_true (app_test_wait (lora_checks_done, f, 10));
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 0), ==, "found");
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 1), ==, "found");
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 2), ==, "missing");

  /* a page that goes while it asks: nothing answers into it */
  g_unlink (gone);
  dl_project_set_preview_prompts (f->project, prompts);
  g_assert_cmpstr (dl_preview_page_get_lora_check (f->page, 1), ==, "checking");
  g_rmdir (folder);
}

/* ---- the training images beside the previews ---- */

static void
collect_pictures (GtkWidget *widget, GPtrArray *found)
{
  if (GTK_IS_PICTURE (widget) && gtk_picture_get_paintable (GTK_PICTURE (widget)) && gtk_widget_get_mapped (widget))
    g_ptr_array_add (found, widget);
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    collect_pictures (c, found);
}

typedef struct
{
  GtkWidget *strip;
  guint n;
} PictureCount;

static gboolean
strip_shows (gpointer data)
{
  PictureCount *c = data;
  g_autoptr (GPtrArray) pictures = g_ptr_array_new ();
  collect_pictures (c->strip, pictures);
  return pictures->len == c->n;
}

static gboolean
tooltip_says (GtkWidget *widget, gconstpointer text)
{
  const char *tip = gtk_widget_get_tooltip_text (widget);
  return tip && strstr (tip, text);
}

static GtkWidget *
find_tooltip (GtkWidget *widget, const char *text)
{
  return app_test_find_widget (widget, GTK_TYPE_WIDGET, tooltip_says, text);
}

static void
test_dataset_strip (Fixture *f, gconstpointer data)
{
  GtkWidget *strip = GTK_WIDGET (dl_preview_page_get_dataset_strip (f->page));
  /* no images: nothing to show */
  g_assert_false (gtk_widget_get_visible (strip));

  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("dog-%u.png", i);
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      app_test_write_png (path, 96 + 32 * i, 128, i + 1);
      g_ptr_array_add (files, g_file_new_for_path (path));
    }
  g_autofree char *gone = g_build_filename (f->dir, "gone.png", NULL);
  g_ptr_array_add (files, g_file_new_for_path (gone));
  g_assert_cmpuint (dl_project_add_files (f->project, files, NULL), ==, 4);
  APP_TEST_WAIT_UNTIL (dl_project_get_n_loading (f->project) == 0, 30);
  g_assert_true (gtk_widget_get_visible (strip));
  g_assert_true (gtk_widget_get_mapped (strip));
  g_assert_cmpstr (dl_dataset_strip_get_count_text (DL_DATASET_STRIP (strip)), ==, "4 images");

  /* each decoded picture as its thumbnail; the missing one as an icon */
  PictureCount count = { strip, 3 };
  g_assert_true (app_test_wait (strip_shows, &count, 10));
  g_autoptr (GPtrArray) pictures = g_ptr_array_new ();
  collect_pictures (strip, pictures);
  GListModel *images = dl_project_get_images (f->project);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (images, i);
      GdkTexture *thumb = dl_thumbnail_get_texture (dl_thumbnail_for_image (image));
      g_assert_nonnull (thumb);
      gboolean shown = FALSE;
      for (guint j = 0; j < pictures->len; j++)
        shown |= gtk_picture_get_paintable (pictures->pdata[j]) == GDK_PAINTABLE (thumb);
      g_assert_true (shown);
    }
  g_assert_nonnull (find_tooltip (strip, "gone.png"));
  /* what is wrong with one is in its tooltip (all three are under 512 px) */
  GtkWidget *small = find_tooltip (strip, "dog-1.png");
  g_assert_nonnull (small);
  g_assert_nonnull (strstr (gtk_widget_get_tooltip_text (small), "Too small for 512 px training"));

  /* captions follow as they are edited; removals too */
  g_autoptr (DlDatasetImage) first = g_list_model_get_item (images, 0);
  dl_dataset_image_set_caption (first, "a photo of sks dog on a sofa");
  GtkWidget *item = find_tooltip (strip, "a photo of sks dog on a sofa");
  g_assert_nonnull (item);
  g_assert_nonnull (strstr (gtk_widget_get_tooltip_text (item), "dog-0.png"));
  const guint last[] = { 3 };
  dl_project_remove (f->project, last, 1);
  g_assert_cmpstr (dl_dataset_strip_get_count_text (DL_DATASET_STRIP (strip)), ==, "3 images");

  /* its button leads to the Dataset page */
  GtkWidget *edit = app_test_find_widget (strip, GTK_TYPE_BUTTON, NULL, NULL);
  g_assert_nonnull (edit);
  g_assert_cmpstr (gtk_button_get_label (GTK_BUTTON (edit)), ==, "_Edit Dataset");
  g_signal_emit_by_name (edit, "clicked");
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (f->page), ADW_TYPE_VIEW_STACK);
  g_assert_cmpstr (adw_view_stack_get_visible_child_name (ADW_VIEW_STACK (stack)), ==, "dataset");

  /* another project, without images: hidden again */
  dl_window_set_project (f->win, NULL);
  g_assert_false (gtk_widget_get_visible (strip));
}

/* ---- the job on its own ---- */

typedef struct
{
  GString *events;
  double last_fraction;
  gboolean monotonic;
  gboolean finished, cancelled;
} JobLog;

static void
job_started (DlPreviewJob *job, guint row, guint column, JobLog *log)
{
  g_string_append_printf (log->events, "s%u%u ", row, column);
}

static void
job_item (DlPreviewJob *job, guint row, guint column, GdkTexture *texture, GError *error, JobLog *log)
{
  g_string_append_printf (log->events, "%c%u%u ", texture ? 'd' : 'e', row, column);
}

static void
job_progress (DlPreviewJob *job, double fraction, JobLog *log)
{
  log->monotonic &= fraction >= log->last_fraction;
  log->last_fraction = fraction;
}

static void
job_finished (DlPreviewJob *job, gboolean cancelled, JobLog *log)
{
  log->finished = TRUE;
  log->cancelled = cancelled;
}

static void
test_job (Fixture *f, gconstpointer data)
{
  g_autoptr (DlPreviewJob) job = dl_preview_job_new (DL_PREVIEW_BACKEND (f->backend));
  g_autoptr (DlPreviewRequest) r = expected_request (f, "a", 0);
  dl_preview_job_add (job, 0, 0, r);
  dl_preview_job_add (job, 0, 1, r);
  dl_preview_job_add (job, 1, 0, r);
  g_assert_cmpuint (dl_preview_job_get_n_items (job), ==, 3);
  JobLog log = { g_string_new (NULL), 0, TRUE, FALSE, FALSE };
  g_signal_connect (job, "item-started", G_CALLBACK (job_started), &log);
  g_signal_connect (job, "item-finished", G_CALLBACK (job_item), &log);
  g_signal_connect (job, "progress", G_CALLBACK (job_progress), &log);
  g_signal_connect (job, "finished", G_CALLBACK (job_finished), &log);
  dl_preview_job_start (job);
  g_assert_true (dl_preview_job_get_running (job));
  APP_TEST_WAIT_UNTIL (log.finished, 30);
  g_assert_false (dl_preview_job_get_running (job));
  g_assert_false (log.cancelled);
  g_assert_cmpstr (log.events->str, ==, "s00 d00 s01 d01 s10 d10 ");
  g_assert_true (log.monotonic);
  g_assert_cmpfloat (log.last_fraction, ==, 1.0);
  g_string_free (log.events, TRUE);

  /* the last reference dropped while it runs: it stops, and nothing reports */
  dl_test_preview_backend_hold_call (f->backend, 4);
  DlPreviewJob *dropped = dl_preview_job_new (DL_PREVIEW_BACKEND (f->backend));
  dl_preview_job_add (dropped, 0, 0, r);
  dl_preview_job_add (dropped, 0, 1, r);
  dl_preview_job_start (dropped);
  APP_TEST_WAIT_UNTIL (dl_test_preview_backend_get_n_calls (f->backend) == 4, 10);
  g_object_unref (dropped);
  APP_TEST_WAIT_UNTIL (dl_test_preview_backend_get_n_cancelled (f->backend) == 1, 10);
  app_test_run_for (50);
  g_assert_cmpuint (dl_test_preview_backend_get_n_calls (f->backend), ==, 4);
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);

  g_test_add ("/app/previews/states", Fixture, NULL, setup, test_states, teardown);
  g_test_add ("/app/previews/run", Fixture, NULL, setup, test_run, teardown);
  g_test_add ("/app/previews/enlarge-and-save", Fixture, NULL, setup, test_enlarge_and_save, teardown);
  g_test_add ("/app/previews/parameters-text", Fixture, NULL, setup, test_parameters_text, teardown);
  g_test_add ("/app/previews/cancel", Fixture, NULL, setup, test_cancel, teardown);
  g_test_add ("/app/previews/failure", Fixture, NULL, setup, test_failure, teardown);
  g_test_add ("/app/previews/job", Fixture, NULL, setup, test_job, teardown);
  g_test_add ("/app/previews/lora-check", Fixture, NULL, setup, test_lora_check, teardown);
  g_test_add ("/app/previews/dataset-strip", Fixture, NULL, setup, test_dataset_strip, teardown);
  int ret = g_test_run ();
  g_object_unref (app);
  return ret;
}
