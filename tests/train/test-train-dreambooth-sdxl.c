/* test-train-dreambooth-sdxl.c: DreamBooth on the golden tiny SDXL model.
 *
 *  - a run as it would go on a 24 GB card for SDXL (--fp16 weights with f32
 *    masters, gradient checkpointing, 8-bit AdamW) with prior preservation,
 *    its class image generated through both encoders: the UNet is trained, the
 *    text encoders and the VAE are not; the file it writes is an SGM single
 *    file (diffusers scripts/convert_diffusers_to_original_sdxl.py's names and
 *    shapes: the golden tiny-sdxl-sgm.safetensors key set) and the same run
 *    exported to a folder is a diffusers SDXL folder (text_encoder_2/,
 *    tokenizer_2/, StableDiffusionXLPipeline); both read back as SDXL with the
 *    run's final masters (f16-rounded) in the UNet and the base's bytes
 *    elsewhere, and both sample;
 *  - --train-text-encoder: both encoders trained (kohya sd-scripts'
 *    sdxl_train.py), written in f32 as their masters exactly.
 * Class images are generated with $DREAMLOOM_TEST_CLASS_STEPS=2 sampler
 * steps.  Under $DREAMLOOM_TEST_QUICK (the sanitizer build) the text-encoder
 * run is left out. */
#include "train-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-half.h"
#include "image/dl-png.h"
#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "nn/dl-sd-model.h"
#include "text/dl-clip-tokenizer.h"

static float
f16_round (float v)
{
  return dl_f16_to_f32 (dl_f32_to_f16 (v));
}

static void
run_ok (DlTrainSettings *s, DlTrainer **keep)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TrainLog) log = train_log_new ();
  DlTrainer *t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  g_assert_true (train_test_run (t, log, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < log->loss->len; i++)
    g_assert_true (isfinite (g_array_index (log->loss, double, i)));
  if (keep)
    *keep = t;
  else
    dl_trainer_free (t);
}

static gboolean
is_text (const char *name)
{
  return g_str_has_prefix (name, "text_encoder.") || g_str_has_prefix (name, "text_encoder_2.");
}

typedef struct
{
  guint trained; /* tensors as their masters */
  guint changed; /* of those, differing from the base */
  guint changed_te2;
  guint base; /* tensors as the base stores them */
} Written;

/* The model at `out` (a single file: with the tiny model's configs) against
 * the final masters in `state` for the trained tensors (the UNet; the text
 * encoders with `te_trained`), stored as `dtype`, and against the base for the
 * rest, bit for bit as the base stores them. */
static Written
check_written (const char *out, const char *base, const char *state, gboolean te_trained, DlStDType dtype)
{
  g_autoptr (GError) error = NULL;
  gboolean folder = g_file_test (out, G_FILE_TEST_IS_DIR);
  g_autoptr (DlCheckpoint) w = dl_checkpoint_open (out, folder ? NULL : base, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_checkpoint_get_layout (w), ==, folder ? DL_CHECKPOINT_DIFFUSERS : DL_CHECKPOINT_SINGLE_FILE);
  g_assert_cmpint (dl_checkpoint_get_family (w), ==, DL_FAMILY_SDXL);
  g_autoptr (DlCheckpoint) b = dl_checkpoint_open (base, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (state, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_checkpoint_get_n_params (w), ==, dl_checkpoint_get_n_params (b));
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (w)->len, ==, 0);
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *x = dl_model_config_field_to_string (dl_checkpoint_get_config (b), i);
      g_autofree char *y = dl_model_config_field_to_string (dl_checkpoint_get_config (w), i);
      if (g_strcmp0 (x, y) != 0)
        g_error ("%s: %s is %s, the base has %s", out, dl_model_config_field_name (i), y, x);
    }
  Written r = { 0 };
  for (guint i = 0; i < dl_checkpoint_get_n_params (w); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (w, i);
      gboolean trained = g_str_has_prefix (p->name, "unet.") || (te_trained && is_text (p->name));
      g_autofree char *key = g_strconcat ("param.", p->name, NULL);
      /* the state holds exactly the trained tensors */
      g_assert_true ((dl_safetensors_find (st, key) != NULL) == trained);
      const DlCheckpointParam *bp = dl_checkpoint_find (b, p->name);
      g_assert_nonnull (bp);
      if (!trained)
        {
          const DlStTensor *x = dl_checkpoint_get_stored (b, p->name), *y = dl_checkpoint_get_stored (w, p->name);
          g_assert_cmpint (y->dtype, ==, x->dtype);
          if (x->nbytes != y->nbytes || memcmp (x->data, y->data, x->nbytes) != 0)
            g_error ("%s: %s is not the base's", out, p->name);
          r.base++;
          continue;
        }
      g_assert_cmpint (p->dtype, ==, dtype);
      int64_t n = 0, nm = 0;
      g_autofree float *got = dl_checkpoint_read_f32 (w, p->name, &n, &error);
      g_assert_no_error (error);
      g_autofree float *master = dl_safetensors_read_f32 (st, key, &nm, &error);
      g_assert_no_error (error);
      g_assert_cmpint (nm, ==, n);
      g_autofree float *orig = dl_checkpoint_read_f32 (b, p->name, NULL, &error);
      g_assert_no_error (error);
      gboolean changed = FALSE;
      for (int64_t k = 0; k < n; k++)
        {
          float want = dtype == DL_ST_F16 ? f16_round (master[k]) : master[k];
          if (memcmp (&got[k], &want, sizeof (float)) != 0 && !(got[k] == 0 && want == 0))
            g_error ("%s: %s[%" G_GINT64_FORMAT "] is %.9g, the master %.9g", out, p->name, k, got[k], want);
          changed |= got[k] != orig[k];
        }
      r.trained++;
      r.changed += changed;
      r.changed_te2 += changed && g_str_has_prefix (p->name, "text_encoder_2.");
    }
  g_test_message ("%s: %u trained tensors as the masters (%u changed, %u of text_encoder_2), %u as the base", out,
                  r.trained, r.changed, r.changed_te2, r.base);
  return r;
}

/* The golden SGM file's keys and shapes, and the dtypes of a DreamBooth file
 * of the f32 base: `unet_dtype` for the UNet, F32 for the rest. */
static void
check_sgm_keys (const char *path, DlStDType unet_dtype)
{
  g_autofree char *gold = dl_test_golden_path ("sdxl/tiny-sdxl-sgm.safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) a = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) b = dl_safetensors_open (gold, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (a), ==, dl_safetensors_get_n_tensors (b));
  for (guint i = 0; i < dl_safetensors_get_n_tensors (b); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (b, i);
      const DlStTensor *u = dl_safetensors_find (a, t->name);
      if (!u)
        g_error ("%s has no %s", path, t->name);
      g_assert_cmpint (u->ndim, ==, t->ndim);
      g_assert_cmpmem (u->shape, sizeof (int64_t) * u->ndim, t->shape, sizeof (int64_t) * t->ndim);
      g_assert_cmpint (u->dtype, ==, g_str_has_prefix (t->name, "model.diffusion_model.") ? unet_dtype : DL_ST_F32);
    }
  g_assert_nonnull (dl_safetensors_find (a, "model.diffusion_model.label_emb.0.0.weight"));
  g_assert_nonnull (
    dl_safetensors_find (a, "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"));
  g_assert_cmpstr (dl_safetensors_get_metadata (a, "modelspec.architecture"), ==, "stable-diffusion-xl-v1-base");
}

/* A 32 px sample of `path` (a single file with the tiny model's configs): finite. */
static void
check_samples (const char *path, const char *config_dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = dl_sd_model_load (dl_test_device (), path, config_dir, &error);
  g_assert_no_error (error);
  g_assert_true (dl_model_config_is_sdxl (dl_sd_model_get_config (m)));
  DlCheckpoint *ck = dl_sd_model_get_checkpoint (m);
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (ck), NULL, &error);
  g_assert_no_error (error);
  DlPromptIds ids;
  g_assert_true (dl_prompt_ids_encode (&ids, m, tok, "a photo of sks dog", "", 1, &error));
  g_assert_no_error (error);
  DlSampleParams sp = {
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 2,
    .sampler = DL_SAMPLER_EULER,
    .cfg_scale = 5.0f,
    .seed = 3,
  };
  dl_sample_params_set_prompt_ids (&sp, &ids);
  g_autofree float *images = NULL;
  g_assert_true (dl_sd_sample (m, &sp, NULL, &images, &error));
  g_assert_no_error (error);
  dl_prompt_ids_clear (&ids);
  for (int i = 0; i < 3 * 32 * 32; i++)
    g_assert_true (isfinite (images[i]));
}

static char *
final_state (const char *tmp, const char *run_name, gint64 steps)
{
  g_autofree char *name = g_strdup_printf ("state-%08" G_GINT64_FORMAT ".safetensors", steps);
  return g_build_filename (tmp, run_name, name, NULL);
}

static void
assert_file (const char *dir, const char *rel)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  if (!g_file_test (p, G_FILE_TEST_IS_REGULAR))
    g_error ("%s is missing", p);
}

static void
test_dreambooth_sdxl (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-db-sdxl-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  g_autofree char *images =
    train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny SDXL model or training images");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();

  /* (a) the 24 GB recipe with prior preservation: one SGM file (f16), the same
   * run exported to a folder */
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  g_autofree char *dir_a = g_build_filename (tmp, "a-folder/", NULL);
  g_autofree char *class_dir = g_build_filename (tmp, "class", NULL);
  g_autofree char *cls = g_strconcat ("class-images=", class_dir, NULL);
  {
    const char *const opts[] = { "steps=2",
                                 "lr=1e-4",
                                 "fp16",
                                 "checkpointing",
                                 "optimizer=adamw8bit",
                                 "class-prompt=a photo of dog",
                                 "num-class-images=1",
                                 cls,
                                 "sample-every=2",
                                 "sample-steps=2",
                                 NULL };
    g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_a, opts);
    g_autoptr (DlTrainer) t = NULL;
    run_ok (s, &t);
    /* the encoders trained nothing: every prompt was encoded before the run,
     * and they wait in host memory, sent back after the preview of step 2 */
    g_assert_false (dl_sd_model_text_encoders_on_device (dl_trainer_get_model (t)));
    g_assert_true (dl_trainer_export (t, dir_a, &error));
    g_assert_no_error (error);
  }
  /* the class image, sampled through both encoders */
  g_autofree char *png = g_build_filename (class_dir, "class-00000.png", NULL);
  int w = 0, h = 0;
  g_autoptr (GHashTable) text = NULL;
  g_autofree guint8 *rgba = dl_png_read_rgba (png, &w, &h, &text, &error);
  g_assert_no_error (error);
  g_assert_cmpint (w, ==, 32);
  g_assert_cmpint (h, ==, 32);
  const char *params = text ? g_hash_table_lookup (text, "parameters") : NULL;
  g_assert_nonnull (params);
  g_assert_true (g_str_has_prefix (params, "a photo of dog\n"));

  g_autofree char *state_a = final_state (tmp, "a.run", 2);
  check_sgm_keys (out_a, DL_ST_F16);
  Written wa = check_written (out_a, model, state_a, FALSE, DL_ST_F16);
  g_assert_cmpuint (wa.trained, >, 0);
  g_assert_cmpuint (wa.changed, >, wa.trained / 2);
  g_assert_cmpuint (wa.base, >, 0);
  Written wf = check_written (dir_a, model, state_a, FALSE, DL_ST_F16);
  g_assert_cmpuint (wf.trained, ==, wa.trained);
  const char *files[] = { "model_index.json",
                          "unet/config.json",
                          "unet/diffusion_pytorch_model.safetensors",
                          "text_encoder_2/config.json",
                          "text_encoder_2/model.safetensors",
                          "tokenizer/vocab.json",
                          "tokenizer_2/special_tokens_map.json",
                          "scheduler/scheduler_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    assert_file (dir_a, files[i]);
  g_autofree char *index = NULL;
  g_autofree char *index_path = g_build_filename (dir_a, "model_index.json", NULL);
  g_assert_true (g_file_get_contents (index_path, &index, NULL, NULL));
  g_assert_nonnull (strstr (index, "\"StableDiffusionXLPipeline\""));
  check_samples (out_a, model);
  check_samples (dir_a, NULL);
  g_test_message ("(a) %.1f s", (g_get_monotonic_time () - t0) / 1e6);

  /* (b) both text encoders trained, a folder in f32: the masters exactly */
  if (!g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_autofree char *out_b = g_build_filename (tmp, "b/", NULL);
      const char *const opts[] = { "steps=1", "lr=1e-4", "save-dtype=f32", "train-text-encoder", "text-encoder-lr=1e-3",
                                   NULL };
      g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_b, opts);
      run_ok (s, NULL);
      g_autofree char *state_b = final_state (tmp, "b.run", 1);
      Written wb = check_written (out_b, model, state_b, TRUE, DL_ST_F32);
      g_assert_cmpuint (wb.trained, >, wa.trained);
      g_assert_cmpuint (wb.changed_te2, >, 0);
      g_test_message ("(a, b) %.1f s", (g_get_monotonic_time () - t0) / 1e6);
    }
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_setenv ("DREAMLOOM_TEST_CLASS_STEPS", "2", TRUE);
  dl_test_add ("/train/dreambooth-sdxl/run-and-export", test_dreambooth_sdxl);
  return dl_test_run ();
}
