/* test-sd-pipeline.c: end-to-end sampling of the tiny model against diffusers'
 * StableDiffusionPipeline (golden case g: DDIM, Euler, DPM++ 2M Karras, 10
 * steps, CFG 7.5, every step's latents and the decoded image), and the LoRA
 * training gradients against kohya-style LoRA on PyTorch (case h), both
 * checkpoint layouts.
 *
 * Tolerances (scale-aware: max|err| <= rtol * max|golden|): step latents and
 * final latents rtol 1e-3, ten times a single forward's 1e-4 because ten
 * steps of classifier-free guidance (scale 7.5) amplify rounding differences;
 * decoded images rtol 1e-3; LoRA gradients rtol 1e-3 and loss rtol 1e-5. */
#include "dl-config.h"

#include "nn-test-util.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-lora.h"
#include "train/dl-sd-grad.h"
#include "nn/dl-sd-model.h"
#include "nn/dl-unet.h"

#include <glib/gstdio.h>
#include <math.h>

#define golden_dir nn_golden_dir

static DlSdModel *
load_model (const char *layout)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *diffusers = g_build_filename (golden_dir, "tiny-sd15-diffusers", NULL);
  g_autofree char *ldm = g_build_filename (golden_dir, "tiny-sd15-ldm.safetensors", NULL);
  gboolean single = g_strcmp0 (layout, "ldm") == 0;
  DlSdModel *m = dl_sd_model_load (dl_test_device (), single ? ldm : diffusers, single ? diffusers : NULL, &error);
  g_assert_no_error (error);
  return m;
}

static gboolean
check_scaled (const char *what, const float *got, const float *want, int64_t n, double rtol)
{
  return nn_check_scaled (what, got, want, n, 1e-12, rtol);
}

typedef struct
{
  DlSafetensors *st;
  const char *prefix;
  const float *vp_sigmas; /* DPM++: diffusers keeps latents in VP space, x / sqrt(σ² + 1) of ours */
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
  c->ok &= check_scaled (name, got, want, n, 1e-3);
  (void)n_steps;
}

static void
test_pipeline (gconstpointer data)
{
  const char *const *args = data; /* layout, sampler */
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model (args[0]);
  g_autoptr (DlSafetensors) st = nn_golden_open ("pipeline.safetensors");
  g_autofree gint32 *pos = nn_golden_ids (st, "prompt_ids", NULL);
  g_autofree gint32 *neg = nn_golden_ids (st, "negative_prompt_ids", NULL);
  int64_t n = 0;
  g_autofree float *init = nn_golden_f32 (st, "init_latents", &n);
  g_autofree float *dpm_sigmas = NULL;
  StepCheck check = { .st = st, .prefix = args[1], .ok = TRUE };
  DlSampleParams p = {
    .prompt_ids = pos,
    .negative_ids = neg,
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 10,
    .cfg_scale = 7.5f,
    .clip_skip = 1,
    .init_latents = init,
    .on_step = on_step,
    .on_step_data = &check,
  };
  if (g_str_equal (args[1], "ddim"))
    {
      p.sampler = DL_SAMPLER_DDIM;
      p.sigmas = DL_SIGMAS_LEADING;
    }
  else if (g_str_equal (args[1], "euler"))
    {
      p.sampler = DL_SAMPLER_EULER;
      p.sigmas = DL_SIGMAS_LINSPACE;
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
  g_autofree char *fl = g_strdup_printf ("%s.final_latents", args[1]);
  g_autofree char *dec = g_strdup_printf ("%s.decoded", args[1]);
  g_autofree float *want_l = nn_golden_f32 (st, fl, &n);
  check.ok &= check_scaled (fl, latents, want_l, n, 1e-3);
  g_autofree float *want_d = nn_golden_f32 (st, dec, &n);
  check.ok &= check_scaled (dec, images, want_d, n, 1e-3);
  g_assert_true (check.ok);
}

/* case h: LoRA gradients through dl_sd_grad, the code behind `dreamloom grad --lora` */
static void
test_lora_grad (gconstpointer data)
{
  const char *const *args = data; /* layout, lora file, golden prefix */
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model (args[0]);
  g_autoptr (DlSafetensors) st = nn_golden_open ("lora.safetensors");

  /* the batch file, as a user would write it */
  g_autoptr (DlSafetensorsWriter) bw = dl_safetensors_writer_new ();
  const char *copy[][2] = {
    { "x", "noisy_latents" }, { "target", "target" }, { "timesteps", "timesteps" }, { "input_ids", "input_ids" }
  };
  for (guint i = 0; i < G_N_ELEMENTS (copy); i++)
    {
      const DlStTensor *t = dl_safetensors_find (st, copy[i][0]);
      g_assert_nonnull (t);
      g_assert_true (
        dl_safetensors_writer_add (bw, copy[i][1], t->dtype, t->ndim, t->shape, t->data, t->nbytes, &error));
    }
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-grad-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *batch_path = g_build_filename (dir, "batch.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (bw, batch_path, &error));
  g_autoptr (DlSafetensors) batch = dl_safetensors_open (batch_path, &error);
  g_assert_no_error (error);

  g_autofree char *lora_path = g_build_filename (golden_dir, args[1], NULL);
  g_autoptr (DlLoraFile) lf = dl_lora_file_open (lora_path, &error);
  g_assert_no_error (error);
  g_autoptr (GHashTable) tensors =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) unmatched = NULL;
  g_assert_true (dl_lora_attach (dl_sd_model_get_params (m), lf, 1.0f, tensors, &unmatched, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unmatched ? unmatched->len : 0, ==, 0);

  /* the LoRA-applied forward: context and eps (rtol 1e-4) */
  {
    const DlModelConfig *cfg = dl_sd_model_get_config (m);
    g_autoptr (DlTape) infer = dl_tape_new (dl_sd_model_get_recorder (m), dl_sd_model_get_arena (m));
    dl_tape_set_enabled (infer, FALSE);
    g_autoptr (DlTensor) ids = nn_golden_upload (st, "input_ids", DL_DTYPE_I32);
    g_autoptr (DlTensor) x = nn_golden_upload (st, "x", DL_DTYPE_F32);
    g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
    g_autoptr (DlTensor) ctx =
      dl_text_encoder_forward (dl_sd_model_get_params (m), &cfg->text_encoder, infer, ids, NULL, &error);
    g_assert_no_error (error);
    g_autoptr (DlTensor) eps = dl_unet_forward (dl_sd_model_get_params (m), &cfg->unet, infer, x, t, ctx, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dl_recorder_finish (dl_sd_model_get_recorder (m), &error));
    g_autofree float *got_ctx = dl_test_download (ctx), *got_eps = dl_test_download (eps);
    g_autofree char *cn = g_strconcat (args[2], "context", NULL), *en = g_strconcat (args[2], "eps", NULL);
    int64_t nc = 0, ne = 0;
    g_autofree float *want_ctx = nn_golden_f32 (st, cn, &nc), *want_eps = nn_golden_f32 (st, en, &ne);
    g_assert_true (nn_check_scaled (cn, got_ctx, want_ctx, nc, 1e-7, 1e-4));
    g_assert_true (nn_check_scaled (en, got_eps, want_eps, ne, 1e-7, 1e-4));
  }

  g_autoptr (DlSafetensorsWriter) gw = dl_safetensors_writer_new ();
  g_assert_true (dl_sd_grad (m, batch, tensors, gw, &error));
  g_assert_no_error (error);
  g_autofree char *grad_path = g_build_filename (dir, "grad.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (gw, grad_path, &error));
  g_autoptr (DlSafetensors) got = dl_safetensors_open (grad_path, &error);
  g_assert_no_error (error);

  const char *prefix = args[2];
  gboolean ok = TRUE;
  int64_t n = 0, n2 = 0;
  g_autofree char *lname = g_strconcat (prefix, "loss", NULL);
  g_autofree float *want_loss = nn_golden_f32 (st, lname, &n);
  g_autofree float *got_loss = nn_golden_f32 (got, "loss", &n2);
  ok &= check_scaled (lname, got_loss, want_loss, 1, 1e-5);
  guint checked = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      g_autofree char *gp = g_strconcat (prefix, "grad.", NULL);
      if (!g_str_has_prefix (t->name, gp) || (!*prefix && g_str_has_prefix (t->name, "locon.")))
        continue;
      const char *key = t->name + strlen (prefix);
      g_autofree float *want = nn_golden_f32 (st, t->name, &n);
      g_assert_nonnull (dl_safetensors_find (got, key));
      g_autofree float *have = nn_golden_f32 (got, key, &n2);
      g_assert_cmpint (n, ==, n2);
      ok &= check_scaled (t->name, have, want, n, 1e-3);
      checked++;
    }
  g_assert_cmpuint (checked, ==, g_hash_table_size (tensors));
  g_assert_true (ok);
  g_unlink (batch_path);
  g_unlink (grad_path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *probe = dl_test_golden_path ("pipeline.safetensors");
  if (!probe)
    return dl_test_skip_all ("golden data (../shared/golden) not found");
  golden_dir = g_path_get_dirname (probe);
  static const char *cases[][2] = {
    { "diffusers", "ddim" },
    { "diffusers", "euler" },
    { "diffusers", "dpmpp_2m_karras" },
    { "ldm", "euler" },
  };
  /* $DREAMLOOM_TEST_QUICK (the sanitizer build in CI): one sampler and the
   * conv LoRA only; the plain build runs every case */
  gboolean quick = g_getenv ("DREAMLOOM_TEST_QUICK") != NULL;
  for (guint i = 0; i < (quick ? 1 : G_N_ELEMENTS (cases)); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pipeline/%s/%s", cases[i][1], cases[i][0]);
      dl_test_add_data (path, cases[i], test_pipeline);
    }
  static const char *lora_cases[][3] = {
    { "diffusers", "lora_kohya.safetensors", "" },
    { "ldm", "lora_kohya.safetensors", "" },
    { "diffusers", "lora_kohya_locon.safetensors", "locon." },
  };
  for (guint i = quick ? 2 : 0; i < G_N_ELEMENTS (lora_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/lora-grad/%s/%s", lora_cases[i][1], lora_cases[i][0]);
      dl_test_add_data (path, lora_cases[i], test_lora_grad);
    }
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
