/* The base model picker: the usual places are searched the way each tool lays its
 * models out (a made-up Hugging Face cache, web UI and ComfyUI folders), and a
 * choice goes through the model-files code, which names the family of the golden
 * tiny model and refuses, with its own message, a family Dreamloom cannot train. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-error.h"
#include "dl-file-writer.h"
#include "dl-model-scan.h"
#include "dl-test-util.h"
#include "dl-window.h"
#include "io/dl-model-config.h"

static DlApplication *app;

static void
touch (const char *dir, const char *name, gsize size)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_mkdir_with_parents (parent, 0755);
  g_autofree char *zeros = g_malloc0 (size + 1);
  g_assert_true (g_file_set_contents (path, zeros, (gssize)size, NULL));
}

static void
add_root (GPtrArray *roots, DlModelPlace place, const char *dir)
{
  DlModelRoot *root = g_new0 (DlModelRoot, 1);
  root->place = place;
  root->dir = g_strdup (dir);
  g_ptr_array_add (roots, root);
}

static const DlModelEntry *
entry_named (GPtrArray *entries, const char *name)
{
  for (guint i = 0; i < entries->len; i++)
    if (g_str_equal (((DlModelEntry *)entries->pdata[i])->name, name))
      return entries->pdata[i];
  g_error ("the scan did not find %s", name);
}

static void
test_scan (void)
{
  g_autofree char *dir = app_test_make_dir ("model-scan");
  g_autofree char *hub = g_build_filename (dir, "hub", NULL);
  g_autofree char *webui = g_build_filename (dir, "webui", NULL);
  g_autofree char *comfy = g_build_filename (dir, "comfy", NULL);

  /* Hugging Face: refs/main names the snapshot to use */
  touch (hub, "models--runwayml--stable-diffusion-v1-5/refs/main", 0);
  g_autofree char *refs = g_build_filename (hub, "models--runwayml--stable-diffusion-v1-5/refs/main", NULL);
  app_test_write_file (refs, "0123456789abcdef\n");
  touch (hub, "models--runwayml--stable-diffusion-v1-5/snapshots/0123456789abcdef/model_index.json", 10);
  touch (hub, "models--runwayml--stable-diffusion-v1-5/snapshots/0123456789abcdef/unet/model.safetensors", 1000);
  touch (hub, "models--runwayml--stable-diffusion-v1-5/snapshots/fedcba9876543210/model_index.json", 10);
  /* no usable ref: every snapshot that is a diffusers folder */
  touch (hub, "models--someone--other/snapshots/aaaaaaaaaaaa/model_index.json", 10);
  /* not a model repository */
  touch (hub, "datasets--someone--pictures/snapshots/bbbb/model_index.json", 10);
  /* web UI: files, in subfolders too; other files are not checkpoints */
  touch (webui, "v1-5-pruned-emaonly.safetensors", 2048);
  touch (webui, "old/anything-v3.ckpt", 4096);
  touch (webui, "notes.txt", 10);
  touch (webui, ".hidden.safetensors", 10);
  touch (webui, "folder-model/model_index.json", 10);
  /* ComfyUI */
  touch (comfy, "dreamshaper_8.safetensors", 100);

  g_autoptr (GPtrArray) roots = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_model_root_free);
  add_root (roots, DL_MODEL_PLACE_HF_CACHE, hub);
  add_root (roots, DL_MODEL_PLACE_A1111, webui);
  add_root (roots, DL_MODEL_PLACE_COMFYUI, comfy);
  add_root (roots, DL_MODEL_PLACE_COMFYUI, comfy); /* the same folder twice: listed once */
  g_autofree char *missing = g_build_filename (dir, "not-there", NULL);
  add_root (roots, DL_MODEL_PLACE_DREAMLOOM, missing);
  g_autoptr (GPtrArray) entries = dl_model_scan (roots, NULL);
  for (guint i = 0; i < entries->len; i++)
    g_test_message ("found %s (%s)", ((DlModelEntry *)entries->pdata[i])->name,
                    dl_model_place_name (((DlModelEntry *)entries->pdata[i])->place));
  g_assert_cmpuint (entries->len, ==, 6);

  const DlModelEntry *e = entry_named (entries, "runwayml/stable-diffusion-v1-5");
  g_assert_true (e->diffusers);
  g_assert_cmpint (e->place, ==, DL_MODEL_PLACE_HF_CACHE);
  g_assert_true (g_str_has_suffix (e->path, "snapshots/0123456789abcdef"));
  g_assert_cmpuint (e->size, ==, 1010);
  e = entry_named (entries, "someone/other @ aaaaaaa");
  g_assert_true (e->diffusers);
  e = entry_named (entries, "v1-5-pruned-emaonly");
  g_assert_false (e->diffusers);
  g_assert_cmpint (e->place, ==, DL_MODEL_PLACE_A1111);
  g_assert_cmpuint (e->size, ==, 2048);
  entry_named (entries, "old/anything-v3");
  entry_named (entries, "folder-model");
  e = entry_named (entries, "dreamshaper_8");
  g_assert_cmpint (e->place, ==, DL_MODEL_PLACE_COMFYUI);
  /* by place, then by name */
  g_assert_cmpint (((DlModelEntry *)entries->pdata[0])->place, ==, DL_MODEL_PLACE_HF_CACHE);
  g_assert_cmpint (((DlModelEntry *)entries->pdata[5])->place, ==, DL_MODEL_PLACE_COMFYUI);
  app_test_rmtree (dir);
}

static void
test_inspect_errors (void)
{
  g_autofree char *dir = app_test_make_dir ("model-inspect");
  g_autoptr (GError) error = NULL;
  g_autofree char *nothing = g_build_filename (dir, "nothing.safetensors", NULL);
  g_assert_null (dl_model_entry_inspect (nothing, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_clear_error (&error);

  g_autofree char *text = g_build_filename (dir, "notes.txt", NULL);
  app_test_write_file (text, "hello");
  g_assert_null (dl_model_entry_inspect (text, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "is not a Stable Diffusion checkpoint"));
  g_clear_error (&error);

  /* a file with the right name is opened by the model-files code, which says what is wrong */
  g_autofree char *junk = g_build_filename (dir, "junk.safetensors", NULL);
  app_test_write_file (junk, "this is not a safetensors file");
  g_assert_null (dl_model_entry_inspect (junk, &error));
  g_assert_nonnull (error);
  g_test_message ("junk.safetensors: %s", error->message);
  g_assert_nonnull (strstr (error->message, "junk.safetensors"));
  app_test_rmtree (dir);
}

/* The golden tiny model's parts, linked into a folder that also has SDXL's second
 * text encoder: the model-files code calls that SDXL. */
static char *
make_fake_refiner (const char *dir, const char *golden)
{
  /* SDXL's refiner has text_encoder_2 alone */
  char *fake = g_build_filename (dir, "fake-refiner", NULL);
  g_mkdir (fake, 0755);
  const char *parts[] = { "model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler" };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *target = g_build_filename (golden, parts[i], NULL);
      g_autofree char *link =
        g_build_filename (fake, g_str_equal (parts[i], "text_encoder") ? "text_encoder_2" : parts[i], NULL);
      g_assert_cmpint (symlink (target, link), ==, 0);
    }
  return fake;
}

typedef struct
{
  gboolean done;
  char *path;
  GError *error;
} Chosen;

static void
note_chosen (DlModelPage *page, const char *path, GError *error, Chosen *c)
{
  c->done = TRUE;
  g_free (c->path);
  c->path = g_strdup (path);
  g_clear_error (&c->error);
  c->error = error ? g_error_copy (error) : NULL;
}

static void
test_choose (void)
{
  g_autofree char *found = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!found)
    {
      g_test_skip ("the golden tiny model is not there");
      return;
    }
  g_autofree char *golden = g_canonicalize_filename (found, NULL);
  g_autofree char *dir = app_test_make_dir ("model-choose");
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  g_autofree char *path = g_build_filename (dir, "Models.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (win, file, "sks", "dog"));
  DlProject *project = dl_window_get_project (win);
  DlModelPage *page = dl_window_get_model_page (win);
  Chosen c = { 0 };
  g_signal_connect (page, "chosen", G_CALLBACK (note_chosen), &c);

  /* an SD 1.x model: taken, with its family */
  dl_model_page_choose (page, golden);
  APP_TEST_WAIT_UNTIL (c.done, 30);
  g_assert_no_error (c.error);
  g_assert_cmpstr (c.path, ==, golden);
  g_assert_cmpstr (dl_project_get_base_model (project), ==, golden);
  const DlModelEntry *current = dl_model_page_get_current (page);
  g_assert_nonnull (current);
  g_assert_cmpstr (current->family, ==, dl_model_family_name (DL_FAMILY_SD1));
  g_assert_true (current->diffusers);
  g_assert_cmpuint (current->size, >, 1000000);

  /* a model Dreamloom cannot use (SDXL's refiner): refused with the model-files code's message; the
   * choice stays */
  g_autofree char *sdxl = make_fake_refiner (dir, golden);
  c.done = FALSE;
  dl_model_page_choose (page, sdxl);
  APP_TEST_WAIT_UNTIL (c.done, 30);
  g_assert_null (c.path);
  g_assert_error (c.error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_test_message ("refused: %s", c.error->message);
  g_assert_nonnull (strstr (c.error->message, "SDXL refiner"));
  g_assert_nonnull (strstr (c.error->message, "base models"));
  g_assert_cmpstr (dl_project_get_base_model (project), ==, golden);
  g_assert_cmpstr (dl_model_page_get_current (page)->path, ==, golden);

  /* a project whose model is such a folder opens, and the page says why it cannot be used */
  dl_project_set_base_model (project, sdxl);
  c.done = FALSE;
  APP_TEST_WAIT_UNTIL (c.done, 30);
  g_assert_error (c.error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_null (dl_model_page_get_current (page));

  gpointer weak = win;
  g_object_add_weak_pointer (G_OBJECT (win), &weak);
  gtk_window_destroy (GTK_WINDOW (win));
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
  dl_file_writer_wait ();
  g_free (c.path);
  g_clear_error (&c.error);
  app_test_rmtree (dir);
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  g_test_add_func ("/app/model/scan", test_scan);
  g_test_add_func ("/app/model/inspect-errors", test_inspect_errors);
  g_test_add_func ("/app/model/choose", test_choose);
  int ret = g_test_run ();
  g_object_unref (app);
  return ret;
}
