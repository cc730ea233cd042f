/* test-train-settings.c: the typed settings of a run — defaults per method,
 * option parsing with errors that name the option, the JSON round trip, the
 * comparison a resume makes — and the learning-rate schedule of the optimizer
 * groups, and the generator's draws (pure functions of seed and step). */
#include "dl-test-util.h"

#include <math.h>

#include "train/dl-train-draws.h"
#include "train/dl-train-plan.h"
#include "train/dl-train-settings.h"

static void
test_defaults (void)
{
  g_autoptr (DlTrainSettings) lora = dl_train_settings_new (DL_TRAIN_LORA);
  g_assert_cmpint (lora->rank, ==, 16);
  g_assert_cmpfloat (lora->alpha, ==, 8);
  g_assert_cmpfloat (lora->lr, ==, 1e-4);
  g_assert_cmpfloat (lora->text_encoder_lr, ==, 5e-5);
  g_assert_cmpint (lora->lr_scheduler, ==, DL_LR_COSINE);
  g_assert_cmpint (lora->steps, ==, 1500);
  g_assert_cmpint (lora->resolution, ==, 512);
  g_autoptr (DlTrainSettings) ti = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  g_assert_cmpfloat (ti->lr, ==, 5e-3);
  g_assert_cmpint (ti->vectors, ==, 1);
  g_assert_cmpint (ti->steps, ==, 3000);
  g_assert_cmpfloat (ti->weight_decay, ==, 0);
  g_assert_cmpstr (ti->init_text, ==, "*");
  /* steps for the dataset's size: the defaults are for about 15 images */
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_LORA, 0), ==, 1500);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_LORA, 15), ==, 1500);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_LORA, 3), ==, 500);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_LORA, 200), ==, 3000);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_TEXTUAL_INVERSION, 15), ==, 3000);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_DREAMBOOTH, 10), ==, 800);
  g_assert_cmpint (dl_train_settings_steps_for_dataset (DL_TRAIN_HYPERNETWORK, 40), ==, 2000);
  /* previews: DPM++ 2M Karras, seed 1234, guidance 7 */
  g_autofree char *sampler = dl_train_settings_get (lora, "sample-sampler");
  g_assert_cmpstr (sampler, ==, "dpmpp_2m_karras");
  g_assert_cmpint (lora->sample_seed, ==, 1234);
  g_assert_cmpfloat (lora->sample_cfg, ==, 7);
}

static void
expect_error (DlTrainSettings *s, const char *name, const char *value, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (dl_train_settings_set (s, name, value, &error));
  g_assert_nonnull (error);
  g_test_message ("--%s %s: %s", name, value ? value : "", error->message);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_parse_errors (void)
{
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_LORA);
  expect_error (s, "lr", "fast", "--lr");
  expect_error (s, "steps", "1.5", "--steps");
  expect_error (s, "steps", "0", "out of range");
  expect_error (s, "batch", "-2", "--batch");
  expect_error (s, "lr-scheduler", "exponential", "cosine_with_restarts");
  expect_error (s, "method", "hyper", "--method");
  expect_error (s, "save-dtype", "f8", "f16 or f32");
  expect_error (s, "flip", "maybe", "true or false");
  expect_error (s, "sample-sampler", "plms", "one of euler_a, euler, ddim, dpmpp_2m_karras, dpmpp_2m");
  expect_error (s, "sample-seed", "-1", "out of range");
  expect_error (s, "sample-cfg", "0.5", "out of range");
  expect_error (s, "no-such-option", "1", "no such option");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_train_settings_set (s, "flip", NULL, &error));
  g_assert_true (s->flip);
  g_assert_true (dl_train_settings_set (s, "sample-prompt", "one", &error));
  g_assert_true (dl_train_settings_set (s, "sample-prompt", "two", &error));
  g_assert_cmpuint (g_strv_length (s->sample_prompts), ==, 2);
}

static DlTrainSettings *
complete (DlTrainMethod m)
{
  DlTrainSettings *s = dl_train_settings_new (m);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_train_settings_set (s, "model", "/models/sd15.safetensors", &error));
  g_assert_true (dl_train_settings_set (s, "images", "/data/dog", &error));
  g_assert_true (dl_train_settings_set (s, "out", m == DL_TRAIN_LORA ? "/out/dog.safetensors" : "/out/dog.pt", &error));
  return s;
}

static void
expect_invalid (DlTrainSettings *s, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (dl_train_settings_validate (s, &error));
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_validate (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainSettings) ok = complete (DL_TRAIN_LORA);
  g_assert_true (dl_train_settings_validate (ok, &error));
  g_assert_no_error (error);

  g_autoptr (DlTrainSettings) a = complete (DL_TRAIN_LORA);
  g_assert_true (dl_train_settings_set (a, "vectors", "3", &error));
  expect_invalid (a, "--vectors");
  g_autoptr (DlTrainSettings) b = complete (DL_TRAIN_TEXTUAL_INVERSION);
  g_assert_true (dl_train_settings_set (b, "rank", "8", &error));
  expect_invalid (b, "--rank");
  g_autoptr (DlTrainSettings) c = complete (DL_TRAIN_LORA);
  g_assert_true (dl_train_settings_set (c, "out", "/out/dog.pt", &error));
  expect_invalid (c, "--out");
  g_autoptr (DlTrainSettings) d = complete (DL_TRAIN_LORA);
  g_assert_true (dl_train_settings_set (d, "resolution", "500", &error));
  expect_invalid (d, "--resolution");
  g_autoptr (DlTrainSettings) e = dl_train_settings_new (DL_TRAIN_LORA);
  expect_invalid (e, "--model");
  g_autoptr (DlTrainSettings) f = complete (DL_TRAIN_TEXTUAL_INVERSION);
  g_assert_true (dl_train_settings_set (f, "placeholder", "two words", &error));
  expect_invalid (f, "--placeholder");
}

static void
test_json_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainSettings) s = complete (DL_TRAIN_TEXTUAL_INVERSION);
  const char *const changes[][2] = {
    { "lr", "0.00123" },
    { "steps", "777" },
    { "seed", "9007199254740991" },
    { "lr-scheduler", "polynomial" },
    { "flip", "true" },
    { "placeholder", "<ß*>" },
    { "sample-prompt", "a \"quoted\" prompt" },
    { "vectors", "3" },
    { "save-dtype", "f16" },
    { "adam-eps", "1e-10" },
    { "noise-offset", "0.0357" },
    { "sample-sampler", "euler_a" },
    { "sample-seed", "4294967295" },
    { "sample-cfg", "6.5" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (changes); i++)
    g_assert_true (dl_train_settings_set (s, changes[i][0], changes[i][1], &error));
  g_autofree char *json = dl_train_settings_to_json_string (s);
  g_autoptr (DlTrainSettings) back = dl_train_settings_from_json_string (json, &error);
  g_assert_no_error (error);
  g_autofree char *diff = dl_train_settings_diff (s, back, NULL);
  g_assert_null (diff);
  g_assert_cmpfloat (back->lr, ==, 0.00123);
  g_assert_cmpint (back->seed, ==, G_GINT64_CONSTANT (9007199254740991));
  g_assert_cmpstr (back->placeholder, ==, "<ß*>");
  g_assert_cmpstr (back->sample_prompts[0], ==, "a \"quoted\" prompt");
  g_autofree char *sampler = dl_train_settings_get (back, "sample-sampler");
  g_assert_cmpstr (sampler, ==, "euler_a");
  g_assert_cmpint (back->sample_seed, ==, G_GINT64_CONSTANT (4294967295));
  g_assert_cmpfloat (back->sample_cfg, ==, 6.5);

  /* a value of the wrong kind names the member */
  g_autoptr (DlTrainSettings) bad =
    dl_train_settings_from_json_string ("{\"method\": \"lora\", \"steps\": \"many\"}", &error);
  g_assert_null (bad);
  g_assert_nonnull (strstr (error->message, "steps"));
}

static void
test_diff (void)
{
  g_autoptr (DlTrainSettings) a = complete (DL_TRAIN_LORA);
  g_autoptr (DlTrainSettings) b = dl_train_settings_copy (a);
  g_autoptr (GError) error = NULL;
  g_assert_null (dl_train_settings_diff (a, b, NULL));
  g_assert_true (dl_train_settings_set (b, "lr", "2e-4", &error));
  g_autofree char *d = dl_train_settings_diff (a, b, NULL);
  g_assert_cmpstr (d, ==, "--lr: 0.0001 vs 0.0002");
  const char *only_rank[] = { "rank", NULL };
  g_assert_null (dl_train_settings_diff (a, b, only_rank));
  g_autofree char *run = dl_train_settings_run_dir (a);
  g_assert_cmpstr (run, ==, "/out/dog.run");
}

static void
test_draws_pure (void)
{
  guint bucket_of[5] = { 0, 0, 1, 1, 1 };
  int hw[4] = { 8, 8, 8, 12 };
  DlDrawsConfig c = {
    .seed = 7,
    .n_images = 5,
    .repeats = 2,
    .batch = 2,
    .n_templates = 3,
    .flip = TRUE,
    .noise_offset = 0.1,
    .n_timesteps = 1000,
    .latent_channels = 4,
    .bucket_of = bucket_of,
    .n_buckets = 2,
    .bucket_latent_hw = hw,
  };
  g_autoptr (DlDraws) d1 = dl_draws_new (&c);
  g_autoptr (DlDraws) d2 = dl_draws_new (&c);
  /* per bucket: 4 and 6 entries -> 2 + 3 batches */
  g_assert_cmpuint (dl_draws_batches_per_epoch (d1), ==, 5);
  int seen[5] = { 0 };
  for (guint64 m = 0; m < 5; m++)
    {
      DlStepDraws a, b;
      dl_draws_make (d1, m, &a);
      /* the same micro-batch drawn later, after others, from another generator */
      dl_draws_make (d2, 17 - m, &b);
      dl_step_draws_clear (&b);
      dl_draws_make (d2, m, &b);
      g_assert_cmpint (a.n, ==, b.n);
      g_assert_cmpmem (a.images, a.n * sizeof (gint64), b.images, b.n * sizeof (gint64));
      gsize per = 4 * (gsize)a.latent_h * a.latent_w;
      g_assert_cmpmem (a.noise, per * a.n * sizeof (float), b.noise, per * b.n * sizeof (float));
      g_assert_cmpmem (a.timesteps, a.n * sizeof (gint64), b.timesteps, b.n * sizeof (gint64));
      for (int i = 0; i < a.n; i++)
        {
          seen[a.images[i]]++;
          g_assert_cmpuint (bucket_of[a.images[i]], ==, bucket_of[a.images[0]]);
          g_assert_cmpint (a.timesteps[i], >=, 0);
          g_assert_cmpint (a.timesteps[i], <, 1000);
          g_assert_cmpint (a.templates[i], <, 3);
        }
      g_assert_nonnull (a.offset_eps);
      dl_step_draws_clear (&a);
      dl_step_draws_clear (&b);
    }
  /* one epoch: every image exactly `repeats` times */
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (seen[i], ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/settings/defaults", test_defaults);
  g_test_add_func ("/train/settings/parse-errors", test_parse_errors);
  g_test_add_func ("/train/settings/validate", test_validate);
  g_test_add_func ("/train/settings/json", test_json_round_trip);
  g_test_add_func ("/train/settings/diff", test_diff);
  g_test_add_func ("/train/draws/pure", test_draws_pure);
  return g_test_run ();
}
