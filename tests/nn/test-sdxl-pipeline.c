/* test-sdxl-pipeline.c: end-to-end SDXL sampling of the tiny model against
 * diffusers' StableDiffusionXLPipeline (golden set sdxl, case f: Euler and DPM++
 * 2M Karras with the negative prompt "blurry, low quality", and Euler without a
 * negative prompt, whose negative conditioning is all zeros; 8 steps, guidance
 * 5, 32x32, time ids (32, 32, 0, 0, 32, 32)): every step's latents, the final
 * latents and the decoded image, from the diffusers folder and the SGM single
 * file.  Also the f16 model (f32 VAE: force_upcast).
 *
 * Tolerances (the golden README's): latents and images rtol 1e-3. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "nn-test-util.h"
#include "nn/dl-sd-model.h"
#include "train/dl-sd-grad.h"

#define golden_dir nn_golden_dir

static DlSdModel *
load_model (const char *layout, DlDType dtype)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *diffusers = g_build_filename (golden_dir, "tiny-sdxl-diffusers", NULL);
  g_autofree char *sgm = g_build_filename (golden_dir, "tiny-sdxl-sgm.safetensors", NULL);
  gboolean single = g_strcmp0 (layout, "sgm") == 0;
  DlSdModel *m =
    dl_sd_model_load_as (dl_test_device (), single ? sgm : diffusers, single ? diffusers : NULL, dtype, &error);
  g_assert_no_error (error);
  return m;
}

typedef struct
{
  DlSafetensors *st;
  const char *prefix;
  const float *vp_sigmas; /* DPM++: diffusers keeps latents in VP space, x / sqrt(σ² + 1) of ours */
  double rtol;
  gboolean ok;
} StepCheck;

static void
on_step (int step, int n_steps, const float *latents, gpointer data)
{
  StepCheck *c = data;
  g_autofree char *name = g_strdup_printf ("%s.latents.step%d", c->prefix, step);
  int64_t n = 0;
  g_autofree float *want = nn_golden_f32 (c->st, name, &n);
  g_autofree float *got = g_memdup2 (latents, n * sizeof (float));
  if (c->vp_sigmas)
    for (int64_t i = 0; i < n; i++)
      got[i] /= sqrtf (c->vp_sigmas[step + 1] * c->vp_sigmas[step + 1] + 1.0f);
  c->ok &= nn_check_scaled (name, got, want, n, 1e-12, c->rtol);
  (void)n_steps;
}

static void
run_case (const char *layout, const char *run, DlDType dtype, double rtol)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model (layout, dtype);
  g_autoptr (DlSafetensors) st = nn_golden_open ("pipeline.safetensors");
  g_autofree gint32 *pos = nn_golden_ids (st, "prompt_ids.te1", NULL);
  g_autofree gint32 *pos2 = nn_golden_ids (st, "prompt_ids.te2", NULL);
  g_autofree gint32 *neg = nn_golden_ids (st, "negative_prompt_ids.te1", NULL);
  g_autofree gint32 *neg2 = nn_golden_ids (st, "negative_prompt_ids.te2", NULL);
  int64_t n = 0;
  g_autofree float *init = nn_golden_f32 (st, "init_latents", &n);
  g_autofree float *dpm_sigmas = NULL;
  gboolean noneg = g_str_equal (run, "euler_noneg");
  StepCheck check = { .st = st, .prefix = run, .rtol = rtol, .ok = TRUE };
  DlSampleParams p = {
    .prompt_ids = pos,
    .negative_ids = noneg ? NULL : neg,
    .prompt_ids_2 = pos2,
    .negative_ids_2 = noneg ? NULL : neg2,
    .zero_negative = noneg,
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 8,
    .cfg_scale = 5.0f,
    .init_latents = init,
    .on_step = on_step,
    .on_step_data = &check,
  };
  if (g_str_has_prefix (run, "euler"))
    {
      /* EulerDiscreteScheduler, timestep_spacing "leading" */
      p.sampler = DL_SAMPLER_EULER;
      p.sigmas = DL_SIGMAS_LEADING;
    }
  else
    {
      p.sampler = DL_SAMPLER_DPMPP_2M;
      p.sigmas = DL_SIGMAS_KARRAS;
      p.diffusers_dpm = TRUE;
      dpm_sigmas = nn_golden_f32 (st, "dpmpp_2m_karras.sigmas", &n);
      check.vp_sigmas = dpm_sigmas;
    }
  g_autofree float *latents = NULL, *images = NULL;
  g_assert_true (dl_sd_sample (m, &p, &latents, &images, &error));
  g_assert_no_error (error);
  g_autofree char *fl = g_strdup_printf ("%s.final_latents", run);
  g_autofree char *dec = g_strdup_printf ("%s.decoded", run);
  g_autofree float *want_l = nn_golden_f32 (st, fl, &n);
  check.ok &= nn_check_scaled (fl, latents, want_l, n, 1e-12, rtol);
  g_autofree float *want_d = nn_golden_f32 (st, dec, &n);
  check.ok &= nn_check_scaled (dec, images, want_d, n, 1e-12, rtol);
  g_assert_true (check.ok);
}

static void
test_pipeline (gconstpointer data)
{
  const char *const *args = data; /* layout, run */
  run_case (args[0], args[1], DL_DTYPE_F32, 1e-3);
}

/* f16 weights and activations, the VAE in f32.  Measured on lavapipe: final
 * latents 4.2e-3 of their largest element, decoded image 4.6e-3; bound 2e-2. */
static void
test_pipeline_fp16 (void)
{
  run_case ("diffusers", "euler", DL_DTYPE_F16, 2e-2);
}

/* Without the negative prompt's ids (and without zero_negative) guidance has
 * nothing to guide against. */
static void
test_needs_negative (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ("diffusers", DL_DTYPE_F32);
  gint32 ids[77] = { 49406, 49407 };
  DlSampleParams p = {
    .prompt_ids = ids,
    .negative_ids = ids,
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 1,
    .cfg_scale = 5.0f,
    .sampler = DL_SAMPLER_EULER,
  };
  g_assert_false (dl_sd_sample (m, &p, NULL, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  p.prompt_ids_2 = ids;
  g_assert_false (dl_sd_sample (m, &p, NULL, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

/* `dreamloom grad` on SDXL (dl_sd_grad): the UNet case's batch as a user would
 * write it (noisy_latents, target, timesteps, context, text_embeds, time_ids):
 * the loss and every UNet parameter's gradient. */
static void
test_grad (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ("diffusers", DL_DTYPE_F32);
  g_autoptr (DlSafetensors) st = nn_golden_open ("unet.safetensors");
  g_autoptr (DlSafetensorsWriter) bw = dl_safetensors_writer_new ();
  const char *copy[][2] = { { "x", "noisy_latents" }, { "target", "target" },           { "timesteps", "timesteps" },
                            { "context", "context" }, { "text_embeds", "text_embeds" }, { "time_ids", "time_ids" } };
  for (guint i = 0; i < G_N_ELEMENTS (copy); i++)
    {
      const DlStTensor *t = dl_safetensors_find (st, copy[i][0]);
      g_assert_nonnull (t);
      g_assert_true (
        dl_safetensors_writer_add (bw, copy[i][1], t->dtype, t->ndim, t->shape, t->data, t->nbytes, &error));
    }
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-sdxl-grad-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *batch_path = g_build_filename (dir, "batch.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (bw, batch_path, &error));
  g_autoptr (DlSafetensors) batch = dl_safetensors_open (batch_path, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensorsWriter) gw = dl_safetensors_writer_new ();
  g_assert_true (dl_sd_grad (m, batch, NULL, gw, &error));
  g_assert_no_error (error);
  g_autofree char *grad_path = g_build_filename (dir, "grad.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (gw, grad_path, &error));
  g_autoptr (DlSafetensors) got = dl_safetensors_open (grad_path, &error);
  g_assert_no_error (error);
  int64_t n = 0, n2 = 0;
  g_autofree float *loss = dl_safetensors_read_f32 (got, "loss", &n, &error);
  g_autofree float *want_loss = nn_golden_f32 (st, "loss", &n2);
  gboolean ok = nn_check_scaled ("loss", loss, want_loss, 1, 0, 1e-5);
  guint checked = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (got); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (got, i);
      if (!g_str_has_prefix (t->name, "grad.unet."))
        continue;
      g_autofree char *golden = g_strconcat ("grad.", t->name + strlen ("grad.unet."), NULL);
      g_autofree float *g = dl_safetensors_read_f32 (got, t->name, &n, &error);
      g_autofree float *want = nn_golden_f32 (st, golden, &n2);
      g_assert_cmpint (n, ==, n2);
      ok &= nn_check_scaled (golden, g, want, n, 1e-9, 1e-3);
      checked++;
    }
  g_assert_cmpuint (checked, ==, 618);
  g_assert_true (ok);

  /* without time_ids: a clear error */
  g_autoptr (DlSafetensorsWriter) bw2 = dl_safetensors_writer_new ();
  for (guint i = 0; i < G_N_ELEMENTS (copy) - 1; i++)
    {
      const DlStTensor *t = dl_safetensors_find (st, copy[i][0]);
      g_assert_true (
        dl_safetensors_writer_add (bw2, copy[i][1], t->dtype, t->ndim, t->shape, t->data, t->nbytes, &error));
    }
  g_autofree char *bad_path = g_build_filename (dir, "bad.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (bw2, bad_path, &error));
  g_autoptr (DlSafetensors) bad = dl_safetensors_open (bad_path, &error);
  g_autoptr (DlSafetensorsWriter) gw2 = dl_safetensors_writer_new ();
  g_assert_false (dl_sd_grad (m, bad, NULL, gw2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "time_ids"));
  const char *files[] = { batch_path, grad_path, bad_path };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    g_unlink (files[i]);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *found = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  if (!found)
    return dl_test_skip_all ("SDXL golden data (../shared/golden/sdxl) not found");
  golden_dir = g_path_get_dirname (found);
  static const char *layouts[] = { "diffusers", "sgm" };
  static const char *runs[] = { "euler", "dpmpp_2m_karras", "euler_noneg" };
  static const char *args[G_N_ELEMENTS (layouts)][G_N_ELEMENTS (runs)][2];
  /* $DREAMLOOM_TEST_QUICK (the sanitizer build): the folder only */
  guint n_layouts = g_getenv ("DREAMLOOM_TEST_QUICK") ? 1 : G_N_ELEMENTS (layouts);
  for (guint i = 0; i < n_layouts; i++)
    for (guint j = 0; j < G_N_ELEMENTS (runs); j++)
      {
        args[i][j][0] = layouts[i];
        args[i][j][1] = runs[j];
        g_autofree char *path = g_strdup_printf ("/nn/sdxl/pipeline/%s/%s", layouts[i], runs[j]);
        dl_test_add_data (path, args[i][j], test_pipeline);
      }
  dl_test_add ("/nn/sdxl/pipeline/fp16", test_pipeline_fp16);
  dl_test_add ("/nn/sdxl/grad", test_grad);
  dl_test_add ("/nn/sdxl/pipeline/needs-negative", test_needs_negative);
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
