/* test-train-ti-sdxl.c: Textual Inversion on the golden tiny SDXL model (kohya
 * sd-scripts sdxl_train_textual_inversion.py's scheme: one vector set per text
 * encoder under the same token ids, the rest frozen).
 *
 *  - a run's step-0 state holds each encoder's own token rows of the init
 *    text ("dog"), and both sets move in training (their gradients come through
 *    both encoders' contexts and the pooled embedding);
 *  - the file is the SDXL embedding {clip_l [n, 12], clip_g [n, 16]} with
 *    kohya's model spec (stable-diffusion-xl-v1-base/textual-inversion), as are
 *    the checkpoints' copies;
 *  - a run stopped after its checkpoint and resumed ends with the same file and
 *    the same losses (the state file keeps both sets and their moments);
 *  - the file samples by its name (dl_prompt_embeddings_load), differently from
 *    the word without it;
 *  - --out-diffusers (one encoder's learned_embeds) is refused on SDXL.
 * Under $DREAMLOOM_TEST_QUICK (the sanitizer build) the resume part is left to
 * the plain build. */
#include "train-test-util.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-safetensors.h"
#include "nn/dl-prompt-embeddings.h"
#include "nn/dl-sd-model.h"
#include "text/dl-clip-tokenizer.h"

#define STEPS 6
#define NAME "xlpet"

static const char *const opts[] = { "steps=6",          "save-every=3",
                                    "vectors=2",        "placeholder=<xlpet>",
                                    "init-text=dog",    "lr=2e-2",
                                    "save-dtype=f32",   "lr-scheduler=constant",
                                    "validate-every=6", NULL };

static float *
tensor_f32 (DlSafetensors *st, const char *name, int64_t rows, int64_t cols)
{
  g_autoptr (GError) error = NULL;
  const DlStTensor *t = dl_safetensors_find (st, name);
  g_assert_nonnull (t);
  g_assert_cmpint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, rows);
  g_assert_cmpint (t->shape[1], ==, cols);
  float *v = g_new (float, rows *cols);
  g_assert_true (dl_st_convert_to_f32 (t, v, name, &error));
  g_assert_no_error (error);
  return v;
}

/* Row `id` of a token table of the model. */
static float *
token_row (DlSdModel *m, const char *component, gint32 id, int width)
{
  DlTensor *t =
    dl_params_lookupf (dl_sd_model_get_params (m), "%s.text_model.embeddings.token_embedding.weight", component);
  g_assert_nonnull (t);
  g_assert_cmpint (t->shape[1], ==, width);
  g_autofree float *all = dl_test_download (t);
  return g_memdup2 (all + (gsize)id * width, sizeof (float) * width);
}

static float *
sample (DlSdModel *m, DlClipTokenizer *tok, const char *prompt)
{
  g_autoptr (GError) error = NULL;
  DlPromptIds ids;
  g_assert_true (dl_prompt_ids_encode (&ids, m, tok, prompt, "", 1, &error));
  g_assert_no_error (error);
  DlSampleParams sp = {
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 2,
    .sampler = DL_SAMPLER_EULER,
    .cfg_scale = 5.0f,
    .seed = 11,
  };
  dl_sample_params_set_prompt_ids (&sp, &ids);
  float *latents = NULL;
  g_assert_true (dl_sd_sample (m, &sp, &latents, NULL, &error));
  g_assert_no_error (error);
  dl_prompt_ids_clear (&ids);
  return latents;
}

static void
test_ti_sdxl (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-ti-sdxl-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  g_autofree char *images =
    train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny SDXL model or training images");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  g_autofree char *out = g_build_filename (tmp, NAME ".safetensors", NULL);
  g_autofree char *run = g_build_filename (tmp, NAME ".run", NULL);
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_TEXTUAL_INVERSION, model, images, out, opts);
  g_autoptr (TrainLog) la = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, la, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (la->steps->len, ==, STEPS);
  g_assert_cmpuint (la->val->len, ==, 2);
  double v0 = g_array_index (la->val, double, 0), v1 = g_array_index (la->val, double, 1);
  g_test_message ("validation loss %.6f at step 0, %.6f at step %d; %.1f s", v0, v1, STEPS,
                  (g_get_monotonic_time () - t0) / 1e6);
  g_assert_true (isfinite (v0) && isfinite (v1));

  /* the file: kohya's SDXL embedding */
  g_autoptr (DlSafetensors) st = dl_safetensors_open (out, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 2);
  g_autofree float *l = tensor_f32 (st, "clip_l", 2, 12);
  g_autofree float *g = tensor_f32 (st, "clip_g", 2, 16);
  g_assert_cmpint (dl_safetensors_find (st, "clip_l")->dtype, ==, DL_ST_F32);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.architecture"), ==,
                   "stable-diffusion-xl-v1-base/textual-inversion");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.implementation"), ==,
                   "https://github.com/Stability-AI/generative-models");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.trigger_phrase"), ==, "<xlpet> <xlpet>_1");
  g_assert_true (train_test_all_finite (out));
  g_autofree char *ck3 = g_build_filename (run, NAME "-step000003.safetensors", NULL);
  {
    g_autoptr (DlSafetensors) c = dl_safetensors_open (ck3, &error);
    g_assert_no_error (error);
    g_free (tensor_f32 (c, "clip_l", 2, 12));
    g_free (tensor_f32 (c, "clip_g", 2, 16));
  }

  /* step 0: each encoder's own rows of "dog"; then both sets moved */
  g_autoptr (DlSdModel) m = dl_sd_model_load (dl_test_device (), model, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlClipTokenizer) tok =
    dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (dl_sd_model_get_checkpoint (m)), NULL, &error);
  g_assert_no_error (error);
  gint32 dog = dl_clip_tokenizer_lookup (tok, "dog</w>");
  g_assert_cmpint (dog, >=, 0);
  g_autofree float *dog_l = token_row (m, "text_encoder", dog, 12);
  g_autofree float *dog_g = token_row (m, "text_encoder_2", dog, 16);
  /* a run prepared only: its step-0 state (the run above keeps its newest) */
  g_autofree char *out0 = g_build_filename (tmp, "init.safetensors", NULL);
  g_autofree char *state0 = g_build_filename (tmp, "init.run", "state-00000000.safetensors", NULL);
  {
    g_autoptr (DlTrainSettings) s0 = train_test_settings (DL_TRAIN_TEXTUAL_INVERSION, model, images, out0, opts);
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s0, &error);
    g_assert_no_error (error);
    g_assert_true (dl_trainer_prepare (t, NULL, &error));
    g_assert_no_error (error);
  }
  {
    g_autoptr (DlSafetensors) s0 = dl_safetensors_open (state0, &error);
    g_assert_no_error (error);
    g_autofree float *l0 = tensor_f32 (s0, "param.clip_l", 2, 12);
    g_autofree float *g0 = tensor_f32 (s0, "param.clip_g", 2, 16);
    for (int r = 0; r < 2; r++)
      {
        g_assert_true (memcmp (l0 + r * 12, dog_l, sizeof (float) * 12) == 0);
        g_assert_true (memcmp (g0 + r * 16, dog_g, sizeof (float) * 16) == 0);
      }
    double dl = 0, dg = 0;
    for (int k = 0; k < 24; k++)
      dl = MAX (dl, fabs ((double)l[k] - l0[k]));
    for (int k = 0; k < 32; k++)
      dg = MAX (dg, fabs ((double)g[k] - g0[k]));
    g_test_message ("largest change from the init: clip_l %.4g, clip_g %.4g", dl, dg);
    g_assert_cmpfloat (dl, >, 1e-4);
    g_assert_cmpfloat (dg, >, 1e-4);
  }

  /* it samples by its name, and the name means something else without it */
  g_autofree float *plain = sample (m, tok, "a photo of " NAME);
  {
    const char *paths[] = { out, NULL };
    g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_load (tok, dl_sd_model_get_params (m), paths, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dl_prompt_embeddings_get_n_vectors (pe, 0), ==, 2);
    guint hits = 0;
    g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a photo of " NAME, &hits);
    g_assert_cmpuint (hits, ==, 1);
    g_autofree float *with = sample (m, tok, text);
    gsize n = 4 * 16 * 16;
    gboolean finite = TRUE;
    for (gsize k = 0; k < n; k++)
      finite &= isfinite (with[k]);
    g_assert_true (finite);
    g_assert_true (memcmp (with, plain, sizeof (float) * n) != 0);
    dl_params_clear_added_tokens (dl_sd_model_get_params (m));
  }

  /* --out-diffusers is one encoder's form */
  {
    g_autofree char *o2 = g_build_filename (tmp, "other.safetensors", NULL);
    g_autofree char *d2 = g_build_filename (tmp, "other-diffusers.safetensors", NULL);
    g_autoptr (DlTrainSettings) sd = train_test_settings (DL_TRAIN_TEXTUAL_INVERSION, model, images, o2, opts);
    g_assert_true (dl_train_settings_set (sd, "out-diffusers", d2, &error));
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sd, &error);
    g_assert_no_error (error);
    g_assert_false (dl_trainer_prepare (t, NULL, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_test_message ("--out-diffusers on SDXL: %s", error->message);
    g_assert_nonnull (strstr (error->message, "--out-diffusers"));
    g_clear_error (&error);
  }

  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      dl_test_remove_tree (tmp);
      return;
    }
  /* stopped after the checkpoint of step 3 (in step 4), resumed: the same file */
  g_autofree char *out_b = g_build_filename (tmp, "b.safetensors", NULL);
  g_autofree char *run_b = g_build_filename (tmp, "b.run", NULL);
  g_autoptr (DlTrainSettings) sb = train_test_settings (DL_TRAIN_TEXTUAL_INVERSION, model, images, out_b, opts);
  g_autoptr (TrainLog) lb = train_log_new ();
  lb->cancel = g_cancellable_new ();
  lb->cancel_after = 4;
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sb, &error);
    g_assert_no_error (error);
    g_assert_false (train_test_run (t, lb, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
  g_autoptr (TrainLog) lr = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, lr, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (lr->steps->len, ==, STEPS - 3);
  for (guint i = 0; i < lr->steps->len; i++)
    {
      gint64 step = g_array_index (lr->steps, gint64, i);
      double got = g_array_index (lr->loss, double, i), want = train_log_loss_at (la, step);
      g_assert_true (memcmp (&got, &want, sizeof got) == 0);
    }
  train_test_assert_same_tensors (out, out_b);
  g_test_message ("whole test %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train/ti-sdxl", test_ti_sdxl);
  return dl_test_run ();
}
