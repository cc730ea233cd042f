/* The project model without GTK: the file written and read back with its typed
 * training settings, older files' "training" sections, the settings of a run
 * filled in from the project, the images to train on, and decoding the dataset
 * with no window (a plain GLib main loop). */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "dl-project.h"
#include "image/dl-png.h"

static char *base_tmp_dir;

/* A fresh folder under the test's temporary folder. */
static char *
make_dir (const char *name)
{
  char *dir = g_build_filename (base_tmp_dir, name, NULL);
  dl_test_remove_tree (dir);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  return dir;
}

static char *
write_text (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
  g_assert_no_error (error);
  return path;
}

/* w x h grey, brightness `shade` (different shades: different files) */
static char *
write_png (const char *dir, const char *name, int w, int h, guint8 shade)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autofree guint8 *rgb = g_malloc ((gsize)w * h * 3);
  memset (rgb, shade, (gsize)w * h * 3);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_png_write (path, rgb, w, h, 3, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static DlProject *
read_project (const char *path, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  return dl_project_read (file, error);
}

static JsonObject *
parse_object (JsonParser *parser, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static GPtrArray *
files_of (const char *first, ...)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (g_object_unref);
  va_list ap;
  va_start (ap, first);
  for (const char *p = first; p; p = va_arg (ap, const char *))
    g_ptr_array_add (files, g_file_new_for_path (p));
  va_end (ap);
  return files;
}

/* ---- the file ---- */

static void
test_round_trip (void)
{
  g_autofree char *dir = make_dir ("round-trip");
  g_autofree char *path = g_build_filename (dir, "Dog.dreamloom", NULL);
  g_autofree char *a = write_png (dir, "a.png", 8, 8, 10);
  g_autofree char *b = write_png (dir, "b.png", 8, 8, 20);

  g_autoptr (DlTrainSettings) ti = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  ti->steps = 123;
  ti->lr = 0.0025;
  ti->vectors = 2;
  ti->out = g_strdup ("out/dog.pt");
  ti->sample_prompts = g_strsplit ("a dog|a cat", "|", -1);
  /* the project's own: not kept in the settings */
  ti->model = g_strdup ("/elsewhere/model.safetensors");
  ti->images = g_strdup ("/elsewhere/images");
  ti->placeholder = g_strdup ("<dog>");
  ti->instance_prompt = g_strdup ("a dog");
  ti->resolution = 768;
  {
    g_autoptr (GFile) file = g_file_new_for_path (path);
    g_autoptr (DlProject) p = dl_project_new (file);
    dl_project_set_token (p, "zwx");
    dl_project_set_class_word (p, "dog");
    dl_project_set_resolution (p, 640);
    dl_project_set_base_model (p, "/models/sd15.safetensors");
    g_autoptr (GPtrArray) files = files_of (a, b, NULL);
    g_assert_cmpuint (dl_project_add_files (p, files, NULL), ==, 2);
    g_autoptr (DlDatasetImage) first = g_list_model_get_item (dl_project_get_images (p), 0);
    dl_dataset_image_set_caption (first, "a photo of zwx dog");
    dl_project_set_train_settings (p, ti);
    g_assert_null (dl_project_get_train_settings (p)->model);
    g_assert_null (dl_project_get_train_settings (p)->placeholder);
    g_assert_true (dl_project_get_dirty (p));
    g_autoptr (GError) error = NULL;
    g_assert_true (dl_project_save (p, &error));
    g_assert_no_error (error);
    g_assert_false (dl_project_get_dirty (p));
    /* the same settings again are no change */
    dl_project_set_train_settings (p, ti);
    g_assert_false (dl_project_get_dirty (p));
  }

  /* the file: typed settings, without the project's own options */
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *training = json_object_get_object_member (parse_object (parser, text), "training");
  g_assert_cmpint (json_object_get_int_member (training, "version"), ==, DL_PROJECT_TRAINING_VERSION);
  g_assert_cmpstr (json_object_get_string_member (training, "method"), ==, "textual-inversion");
  g_assert_cmpint (json_object_get_int_member (training, "steps"), ==, 123);
  static const char *const derived[] = DL_PROJECT_TRAIN_DERIVED;
  for (guint i = 0; derived[i]; i++)
    g_assert_false (json_object_has_member (training, derived[i]));
  /* numbers with an exponent stay numbers (json-glib 1.6 writes "1e-08.0") */
  g_assert_cmpfloat (json_object_get_double_member (training, "adam-eps"), ==, 1e-8);
  g_assert_null (strstr (text, "e-08.0"));

  g_autoptr (GError) error = NULL;
  g_autoptr (DlProject) back = read_project (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dl_project_get_token (back), ==, "zwx");
  g_assert_cmpstr (dl_project_get_class_word (back), ==, "dog");
  g_assert_cmpint (dl_project_get_resolution (back), ==, 640);
  g_assert_cmpstr (dl_project_get_base_model (back), ==, "/models/sd15.safetensors");
  GListModel *images = dl_project_get_images (back);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 2);
  g_autoptr (DlDatasetImage) ia = g_list_model_get_item (images, 0);
  g_autoptr (DlDatasetImage) ib = g_list_model_get_item (images, 1);
  g_assert_cmpstr (dl_dataset_image_get_path (ia), ==, a);
  g_assert_cmpstr (dl_dataset_image_get_caption (ia), ==, "a photo of zwx dog");
  g_assert_cmpstr (dl_dataset_image_get_path (ib), ==, b);
  g_assert_cmpstr (dl_dataset_image_get_caption (ib), ==, "");
  /* read headless: not decoded */
  g_assert_cmpint (dl_dataset_image_get_state (ia), ==, DL_IMAGE_STATE_LOADING);
  g_assert_false (dl_project_get_dirty (back));

  const DlTrainSettings *s = dl_project_get_train_settings (back);
  g_autoptr (DlTrainSettings) want = dl_train_settings_copy (ti);
  g_clear_pointer (&want->model, g_free);
  g_clear_pointer (&want->images, g_free);
  g_clear_pointer (&want->placeholder, g_free);
  g_clear_pointer (&want->instance_prompt, g_free);
  want->resolution = DL_PROJECT_DEFAULT_RESOLUTION;
  g_autofree char *diff = dl_train_settings_diff (s, want, NULL);
  g_assert_cmpstr (diff, ==, NULL);
  g_assert_cmpstr (s->sample_prompts[1], ==, "a cat");
}

/* Files of version 1 held an opaque "training" object; none at all is fine too. */
static void
test_old_training (void)
{
  g_autofree char *dir = make_dir ("old-training");
  g_autoptr (DlTrainSettings) lora = dl_train_settings_new (DL_TRAIN_LORA);
  const char *const cases[] = {
    "{ \"format\": \"dreamloom-project\", \"version\": 1, \"training\": { \"version\": 1, \"steps\": \"many\", "
    "\"notes\": [1, 2] } }",
    "{ \"format\": \"dreamloom-project\", \"version\": 1 }",
    "{ \"format\": \"dreamloom-project\", \"version\": 1, \"training\": {} }",
    /* typed, but with no method: LoRA's */
    "{ \"format\": \"dreamloom-project\", \"version\": 1, \"training\": { \"version\": 2 } }",
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("old%u.dreamloom", i);
      g_autofree char *path = write_text (dir, name, cases[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlProject) p = read_project (path, &error);
      g_assert_no_error (error);
      g_autofree char *diff = dl_train_settings_diff (dl_project_get_train_settings (p), lora, NULL);
      g_assert_cmpstr (diff, ==, NULL);
      g_assert_true (dl_project_save (p, &error));
      g_assert_no_error (error);
      /* saved typed; what was no option kept, the rest of the old object gone */
      g_autofree char *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonObject *training = json_object_get_object_member (parse_object (parser, text), "training");
      g_assert_cmpint (json_object_get_int_member (training, "version"), ==, 2);
      g_assert_cmpstr (json_object_get_string_member (training, "method"), ==, "lora");
      g_assert_cmpint (json_object_get_int_member (training, "steps"), ==, lora->steps);
      g_assert_true (json_object_has_member (training, "notes") == (i == 0));
    }
}

static void
test_newer_training (void)
{
  g_autofree char *dir = make_dir ("newer-training");
  g_autofree char *path = write_text (dir, "new.dreamloom",
                                      "{ \"format\": \"dreamloom-project\", \"version\": 1, \"training\": "
                                      "{ \"version\": 3, \"method\": \"lora\", \"rank\": 4, \"future-knob\": 0.5 } }");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlProject) p = read_project (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_project_get_train_settings (p)->rank, ==, 4);
  g_autofree char *json = dl_project_to_json (p);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *training = json_object_get_object_member (parse_object (parser, json), "training");
  g_assert_cmpfloat (json_object_get_double_member (training, "future-knob"), ==, 0.5);
  g_assert_cmpint (json_object_get_int_member (training, "rank"), ==, 4);
}

static void
test_bad_training (void)
{
  g_autofree char *dir = make_dir ("bad-training");
  const struct
  {
    const char *training;
    const char *message;
  } cases[] = {
    { "{ \"version\": 2, \"steps\": \"many\" }",
      "“bad.dreamloom” is not a valid project: training settings: “steps”: --steps many: not a number" },
    { "{ \"version\": 2, \"method\": 7 }", "“bad.dreamloom” is not a valid project: training.method should be text" },
    { "{ \"version\": 2, \"method\": \"knitting\" }",
      "“bad.dreamloom” is not a valid project: training settings: unknown method “knitting”" },
    { "{ \"version\": 1.5 }",
      "“bad.dreamloom” is not a valid project: training.version should be a whole number from 1" },
    { "[ 1 ]", "“bad.dreamloom” is not a valid project: training should be an object" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text =
        g_strdup_printf ("{ \"format\": \"dreamloom-project\", \"version\": 1, \"training\": %s }", cases[i].training);
      g_autofree char *path = write_text (dir, "bad.dreamloom", text);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlProject) p = read_project (path, &error);
      g_assert_null (p);
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
      g_assert_cmpstr (error->message, ==, cases[i].message);
    }
}

/* ---- a run's settings ---- */

static void
test_fill_settings (void)
{
  g_autofree char *dir = make_dir ("fill");
  g_autofree char *path = g_build_filename (dir, "My Cat.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (DlProject) p = dl_project_new (file);
  dl_project_set_token (p, "zwx");
  dl_project_set_class_word (p, "cat");
  dl_project_set_resolution (p, 640);
  dl_project_set_base_model (p, "/models/sd15.safetensors");

  g_autoptr (DlTrainSettings) s = dl_project_make_train_settings (p);
  g_assert_cmpint (s->method, ==, DL_TRAIN_LORA);
  g_assert_cmpstr (s->model, ==, "/models/sd15.safetensors");
  g_assert_cmpstr (s->images, ==, path);
  g_assert_cmpint (s->resolution, ==, 640);
  g_assert_null (s->placeholder);
  g_assert_cmpstr (s->instance_prompt, ==, "a photo of zwx cat");
  g_autofree char *out = g_build_filename (dir, "My Cat-lora.safetensors", NULL);
  g_assert_cmpstr (s->out, ==, out);
  g_autofree char *run_dir = dl_train_settings_run_dir (s);
  g_autofree char *want_run_dir = g_build_filename (dir, "My Cat-lora.run", NULL);
  g_assert_cmpstr (run_dir, ==, want_run_dir);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_train_settings_validate (s, &error));
  g_assert_no_error (error);

  /* Textual Inversion: the token is the placeholder; paths of the project's folder */
  g_autoptr (DlTrainSettings) ti = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  ti->out = g_strdup ("embeddings/zwx.pt");
  ti->run_dir = g_strdup ("runs/zwx");
  dl_project_set_train_settings (p, ti);
  dl_project_set_caption_template (p, "");
  g_autoptr (DlTrainSettings) t = dl_project_make_train_settings (p);
  g_assert_cmpint (t->method, ==, DL_TRAIN_TEXTUAL_INVERSION);
  g_assert_cmpstr (t->placeholder, ==, "zwx");
  g_assert_null (t->instance_prompt);
  g_autofree char *ti_out = g_build_filename (dir, "embeddings", "zwx.pt", NULL);
  g_assert_cmpstr (t->out, ==, ti_out);
  g_autofree char *ti_run = g_build_filename (dir, "runs", "zwx", NULL);
  g_assert_cmpstr (t->run_dir, ==, ti_run);
  g_assert_true (dl_train_settings_validate (t, &error));
  g_assert_no_error (error);
  /* the kept settings are untouched */
  g_assert_cmpstr (dl_project_get_train_settings (p)->out, ==, "embeddings/zwx.pt");

  /* another method's defaults, filled */
  g_autoptr (DlTrainSettings) other = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  dl_project_fill_train_settings (p, other);
  g_autofree char *other_out = g_build_filename (dir, "My Cat-textual-inversion.safetensors", NULL);
  g_assert_cmpstr (other->out, ==, other_out);

  /* no base model: no model */
  dl_project_set_base_model (p, NULL);
  g_autoptr (DlTrainSettings) none = dl_project_make_train_settings (p);
  g_assert_null (none->model);
  dl_project_discard_changes (p);
}

static void
test_training_images (void)
{
  g_autofree char *dir = make_dir ("training-images");
  g_autofree char *path = g_build_filename (dir, "Set.dreamloom", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (DlProject) p = dl_project_new (file);

  g_auto (GStrv) paths = NULL;
  g_auto (GStrv) captions = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_false (dl_project_dup_training_images (p, &paths, &captions, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "“Set.dreamloom”: the dataset has no images to train on");
  g_clear_error (&error);

  g_auto (GStrv) names = g_new0 (char *, 7);
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *name = g_strdup_printf ("%c.png", 'f' - i);
      names[i] = write_png (dir, name, 8, 8, (guint8)(10 * i));
    }
  g_autoptr (GPtrArray) files = files_of (names[0], names[1], names[2], names[3], names[4], names[5], NULL);
  g_assert_cmpuint (dl_project_add_files (p, files, NULL), ==, 6);
  g_autoptr (DlDatasetImage) second = g_list_model_get_item (dl_project_get_images (p), 1);
  dl_dataset_image_set_caption (second, "a photo of sks dog");

  /* the dataset's order (not the file names'), with the captions */
  g_assert_true (dl_project_dup_training_images (p, &paths, &captions, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (paths), ==, 6);
  g_assert_cmpuint (g_strv_length (captions), ==, 6);
  for (guint i = 0; i < 6; i++)
    {
      g_assert_cmpstr (paths[i], ==, names[i]);
      g_assert_cmpstr (captions[i], ==, i == 1 ? "a photo of sks dog" : "");
    }
  g_clear_pointer (&paths, g_strfreev);
  g_clear_pointer (&captions, g_strfreev);

  /* missing files are named, a few of them */
  g_assert_cmpint (g_remove (names[2]), ==, 0);
  g_assert_false (dl_project_dup_training_images (p, &paths, &captions, &error));
  g_autofree char *one = g_strdup_printf ("“Set.dreamloom”: 1 image is missing: “%s”", names[2]);
  g_assert_cmpstr (error->message, ==, one);
  g_assert_null (paths);
  g_clear_error (&error);
  for (guint i = 0; i < 6; i++)
    g_remove (names[i]);
  g_assert_false (dl_project_dup_training_images (p, &paths, &captions, &error));
  g_autofree char *all = g_strdup_printf ("“Set.dreamloom”: 6 images are missing: “%s”, “%s”, “%s” and 3 more",
                                          names[0], names[1], names[2]);
  g_assert_cmpstr (error->message, ==, all);
  dl_project_discard_changes (p);
}

/* ---- decoding, with no window ---- */

static gboolean
timed_out (gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_decode (void)
{
  g_autofree char *dir = make_dir ("decode");
  g_autofree char *path = g_build_filename (dir, "Decode.dreamloom", NULL);
  g_autofree char *big = write_png (dir, "big.png", 96, 64, 30);
  g_autofree char *small = write_png (dir, "small.png", 40, 48, 40);
  g_autofree char *copy = g_build_filename (dir, "copy.png", NULL);
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (big, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (copy, bytes, (gssize)len, NULL));
  g_autofree char *junk = write_text (dir, "junk.png", "not a picture");
  g_autofree char *gone = g_build_filename (dir, "gone.png", NULL);
  g_autofree char *sidecar = write_text (dir, "small.txt", "a photo of sks dog on grass\n");

  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (DlProject) p = dl_project_new (file);
  dl_project_set_resolution (p, 64);
  g_autoptr (GPtrArray) files = files_of (big, small, copy, junk, gone, NULL);
  g_assert_cmpuint (dl_project_add_files (p, files, NULL), ==, 5);
  g_assert_cmpuint (dl_project_get_n_loading (p), ==, 5);
  gboolean late = FALSE;
  guint timeout = g_timeout_add_seconds (30, timed_out, &late);
  while (!late && dl_project_get_n_loading (p) > 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (late);
  g_source_remove (timeout);

  GListModel *images = dl_project_get_images (p);
  g_autoptr (DlDatasetImage) ibig = g_list_model_get_item (images, 0);
  g_autoptr (DlDatasetImage) ismall = g_list_model_get_item (images, 1);
  g_autoptr (DlDatasetImage) icopy = g_list_model_get_item (images, 2);
  g_autoptr (DlDatasetImage) ijunk = g_list_model_get_item (images, 3);
  g_autoptr (DlDatasetImage) igone = g_list_model_get_item (images, 4);
  g_assert_cmpint (dl_dataset_image_get_state (ibig), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpint (dl_dataset_image_get_width (ibig), ==, 96);
  g_assert_cmpint (dl_dataset_image_get_height (ibig), ==, 64);
  g_assert_cmpuint (strlen (dl_dataset_image_get_content_hash (ibig)), ==, 64);
  g_assert_null (dl_dataset_image_get_warning (ibig));
  /* the sidecar's caption fills the empty one */
  g_assert_cmpstr (dl_dataset_image_get_caption (ismall), ==, "a photo of sks dog on grass");
  g_assert_cmpstr (dl_dataset_image_get_warning (ismall), ==, "Too small for 64 px training (shorter side 40 px)");
  g_assert_cmpstr (dl_dataset_image_get_duplicate_of (icopy), ==, "big.png");
  g_assert_cmpint (dl_dataset_image_get_state (ijunk), ==, DL_IMAGE_STATE_UNREADABLE);
  g_assert_cmpint (dl_dataset_image_get_state (igone), ==, DL_IMAGE_STATE_MISSING);
  g_assert_cmpuint (dl_project_get_n_warnings (p), ==, 2);
  g_assert_cmpuint (dl_project_get_n_missing (p), ==, 1);
  g_assert_cmpuint (dl_project_get_n_unreadable (p), ==, 1);
  dl_project_discard_changes (p);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  base_tmp_dir = g_dir_make_tmp ("dl-test-project-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  g_test_add_func ("/project/round-trip", test_round_trip);
  g_test_add_func ("/project/old-training", test_old_training);
  g_test_add_func ("/project/newer-training", test_newer_training);
  g_test_add_func ("/project/bad-training", test_bad_training);
  g_test_add_func ("/project/fill-settings", test_fill_settings);
  g_test_add_func ("/project/training-images", test_training_images);
  g_test_add_func ("/project/decode", test_decode);
  int status = g_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return status;
}
