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
#include <unistd.h>

#include "nn-test-util.h"
#include "nn/dl-sd-model.h"
#include "nn/dl-unet.h"
#include "nn/dl-vae.h"
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
  DlSdModel *model; /* with expect_host: the text encoders must be on the host during every step */
  gboolean expect_host;
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
  if (c->expect_host)
    g_assert_false (dl_sd_model_text_encoders_on_device (c->model));
  (void)n_steps;
}

/* One golden run; with `on_host` the text encoders wait on the host while the
 * UNet runs.  *latents_out / *images_out (may be NULL) receive the results. */
static void
run_case_full (const char *layout, const char *run, DlDType dtype, double rtol, gboolean on_host, float **latents_out,
               float **images_out)
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
  StepCheck check = { .st = st, .prefix = run, .rtol = rtol, .ok = TRUE, .model = m, .expect_host = on_host };
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
    .text_encoders_on_host = on_host,
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
  /* back on the device once sampling is done */
  g_assert_true (dl_sd_model_text_encoders_on_device (m));
  if (latents_out)
    *latents_out = g_steal_pointer (&latents);
  if (images_out)
    *images_out = g_steal_pointer (&images);
}

static void
run_case (const char *layout, const char *run, DlDType dtype, double rtol)
{
  run_case_full (layout, run, dtype, rtol, FALSE, NULL, NULL);
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

/* The text encoders on the host while the UNet runs (what sampling does when
 * device memory is short): the same latents and image, bit for bit, with the
 * f16 model as SDXL would run on an 8 GB card; then the move itself: every
 * weight comes back with its bits, and nothing moves while another holder
 * keeps a weight. */
static void
test_text_encoders_on_host (void)
{
  g_autofree float *l0 = NULL, *i0 = NULL, *l1 = NULL, *i1 = NULL;
  run_case_full ("diffusers", "euler", DL_DTYPE_F16, 2e-2, FALSE, &l0, &i0);
  run_case_full ("diffusers", "euler", DL_DTYPE_F16, 2e-2, TRUE, &l1, &i1);
  gsize nl = 4 * 16 * 16, ni = 3 * 32 * 32;
  g_assert_cmpmem (l0, nl * sizeof (float), l1, nl * sizeof (float));
  g_assert_cmpmem (i0, ni * sizeof (float), i1, ni * sizeof (float));

  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ("diffusers", DL_DTYPE_F16);
  DlParams *params = dl_sd_model_get_params (m);
  const char *names[] = { "text_encoder.text_model.embeddings.token_embedding.weight",
                          "text_encoder_2.text_model.final_layer_norm.weight",
                          "text_encoder_2.text_projection.weight" };
  DlTensor *before[G_N_ELEMENTS (names)];
  gpointer bytes[G_N_ELEMENTS (names)] = { NULL };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      before[i] = dl_params_lookup (params, names[i]);
      g_assert_nonnull (before[i]);
      bytes[i] = g_malloc (dl_tensor_nbytes (before[i]));
      g_assert_true (dl_tensor_download (before[i], bytes[i], before[i]->dtype, &error));
    }
  DlDType dtypes[G_N_ELEMENTS (names)] = { before[0]->dtype, before[1]->dtype, before[2]->dtype };
  guint64 in_use = dl_device_get_memory_in_use (dl_test_device ());
  gboolean moved = FALSE;
  g_assert_true (dl_sd_model_text_encoders_to_host (m, &moved, &error));
  g_assert_no_error (error);
  g_assert_true (moved);
  g_assert_false (dl_sd_model_text_encoders_on_device (m));
  g_assert_null (dl_params_lookup (params, names[0]));
  g_assert_nonnull (dl_params_lookup (params, "unet.conv_in.weight"));
  g_assert_cmpuint (dl_device_get_memory_in_use (dl_test_device ()), <, in_use);
  g_assert_true (dl_sd_model_text_encoders_to_device (m, &error));
  g_assert_no_error (error);
  g_assert_true (dl_sd_model_text_encoders_on_device (m));
  g_assert_cmpuint (dl_device_get_memory_in_use (dl_test_device ()), ==, in_use);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      DlTensor *t = dl_params_lookup (params, names[i]);
      g_assert_nonnull (t);
      g_assert_cmpint (t->dtype, ==, dtypes[i]);
      g_autofree gpointer got = g_malloc (dl_tensor_nbytes (t));
      g_assert_true (dl_tensor_download (t, got, t->dtype, &error));
      g_assert_cmpmem (got, dl_tensor_nbytes (t), bytes[i], dl_tensor_nbytes (t));
      g_free (bytes[i]);
    }

  /* an optimizer (here: this test) holding a weight keeps them all on the device */
  g_autoptr (DlTensor) held = dl_tensor_ref (dl_params_lookup (params, names[1]));
  g_assert_true (dl_sd_model_text_encoders_to_host (m, &moved, &error));
  g_assert_no_error (error);
  g_assert_false (moved);
  g_assert_true (dl_sd_model_text_encoders_on_device (m));
  g_assert_true (dl_params_lookup (params, names[1]) == held);
}

/* The UNet's activation estimate that decides the move: above what a
 * forward pass without a tape takes from the arena (tiny model, 64x64
 * latents, CFG's two rows), and for SDXL base at 1024x1024 in f16 a figure
 * that leaves an 8 GB card room once the encoders are off. */
static void
test_unet_memory_estimate (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ("diffusers", DL_DTYPE_F32);
  const DlModelConfig *cfg = dl_sd_model_get_config (m);
  int64_t rows = 2, lh = 64, lw = 64;
  int64_t xshape[4] = { rows, cfg->unet.in_channels, lh, lw }, cshape[3] = { rows, 77, cfg->unet.cross_attention_dim };
  int64_t pshape[2] = { rows, cfg->text_encoder_2.projection_dim }, tshape[2] = { rows, 6 };
  g_autofree float *x = dl_test_random (rows * cfg->unet.in_channels * lh * lw, 1, -1, 1);
  g_autofree float *c = dl_test_random (cshape[0] * cshape[1] * cshape[2], 2, -1, 1);
  g_autofree float *pooled = dl_test_random (pshape[0] * pshape[1], 3, -1, 1);
  float ts[2] = { 500, 500 }, tid[12] = { 512, 512, 0, 0, 512, 512, 512, 512, 0, 0, 512, 512 };
  g_autoptr (DlTensor) xt = dl_test_tensor ("x", DL_DTYPE_F32, 4, xshape, x);
  g_autoptr (DlTensor) ct = dl_test_tensor ("context", DL_DTYPE_F32, 3, cshape, c);
  g_autoptr (DlTensor) pt = dl_test_tensor ("text_embeds", DL_DTYPE_F32, 2, pshape, pooled);
  g_autoptr (DlTensor) tt = dl_test_tensor ("timesteps", DL_DTYPE_F32, 1, &rows, ts);
  g_autoptr (DlTensor) it = dl_test_tensor ("time_ids", DL_DTYPE_F32, 2, tshape, tid);
  DlArena *arena = dl_sd_model_get_arena (m);
  g_autoptr (DlTape) tape = dl_tape_new (dl_sd_model_get_recorder (m), arena);
  dl_tape_set_enabled (tape, FALSE);
  dl_arena_reset_peak (arena);
  guint64 base = dl_arena_get_in_use (arena);
  DlUNetOptions o = { .text_embeds = pt, .time_ids = it };
  g_autoptr (DlTensor) eps = dl_unet_forward (dl_sd_model_get_params (m), &cfg->unet, tape, xt, tt, ct, &o, &error);
  g_assert_no_error (error);
  g_assert_true (dl_recorder_finish (dl_sd_model_get_recorder (m), &error));
  guint64 peak = dl_arena_get_peak (arena) - base;
  guint64 estimate = dl_unet_inference_activation_bytes (&cfg->unet, rows, lh, lw, DL_DTYPE_F32);
  g_test_message ("tiny SDXL UNet, 2 x 64 x 64 latents: arena peak %.2f MiB, estimate %.2f MiB", peak / 1048576.0,
                  estimate / 1048576.0);
  /* the estimate without its fixed 16 MiB still covers the peak */
  g_assert_cmpuint (estimate - (16u << 20), >=, peak);
  g_assert_cmpuint (estimate - (16u << 20), <=, 4 * peak);

  DlModelConfig xl;
  dl_model_config_init_sdxl (&xl);
  guint64 big = dl_unet_inference_activation_bytes (&xl.unet, 2, 128, 128, DL_DTYPE_F16);
  g_test_message ("SDXL base, 1024x1024 with CFG, f16: estimate %.0f MiB", big / 1048576.0);
  g_assert_cmpuint (big, >, 256u << 20);
  g_assert_cmpuint (big, <, 1536u << 20);
}

/* A VAE whose config says it is f16-safe (force_upcast false, as
 * madebyollin/sdxl-vae-fp16-fix's does) stays f16 with an f16 model; the
 * published one (force_upcast true) is upcast.  The f16 VAE's image against
 * diffusers' f32 one: bound 2e-2 of the largest element, as the f16 case. */
static void
test_f16_safe_vae (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-sdxl-vae-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *src = g_build_filename (golden_dir, "tiny-sdxl-diffusers", NULL);
  const char *linked[] = { "model_index.json", "scheduler",   "text_encoder", "text_encoder_2",
                           "tokenizer",        "tokenizer_2", "unet" };
  for (guint i = 0; i < G_N_ELEMENTS (linked); i++)
    {
      g_autofree char *from = g_build_filename (src, linked[i], NULL);
      g_autofree char *to = g_build_filename (dir, linked[i], NULL);
      g_assert_cmpint (symlink (from, to), ==, 0);
    }
  g_autofree char *vae = g_build_filename (dir, "vae", NULL);
  g_assert_cmpint (g_mkdir (vae, 0755), ==, 0);
  g_autofree char *weights_from = g_build_filename (src, "vae", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *weights_to = g_build_filename (vae, "diffusion_pytorch_model.safetensors", NULL);
  g_assert_cmpint (symlink (weights_from, weights_to), ==, 0);
  g_autofree char *config_from = g_build_filename (src, "vae", "config.json", NULL);
  g_autofree char *config_to = g_build_filename (vae, "config.json", NULL);
  g_autofree char *json = NULL;
  g_assert_true (g_file_get_contents (config_from, &json, NULL, &error));
  GString *edited = g_string_new (json);
  g_assert_cmpuint (g_string_replace (edited, "\"force_upcast\": true", "\"force_upcast\": false", 1), ==, 1);
  g_assert_true (g_file_set_contents (config_to, edited->str, -1, &error));
  g_string_free (edited, TRUE);

  g_autoptr (DlSdModel) upcast = load_model ("diffusers", DL_DTYPE_F16);
  g_assert_cmpint (dl_sd_model_get_vae_dtype (upcast), ==, DL_DTYPE_F32);
  g_autoptr (DlSdModel) safe = dl_sd_model_load_as (dl_test_device (), dir, NULL, DL_DTYPE_F16, &error);
  g_assert_no_error (error);
  g_assert_false (dl_sd_model_get_config (safe)->vae.force_upcast);
  g_assert_cmpint (dl_sd_model_get_vae_dtype (safe), ==, DL_DTYPE_F16);
  g_autoptr (DlSdModel) safe32 = dl_sd_model_load_as (dl_test_device (), dir, NULL, DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_sd_model_get_vae_dtype (safe32), ==, DL_DTYPE_F32);

  /* its image, from the golden final latents */
  g_autoptr (DlSafetensors) st = nn_golden_open ("pipeline.safetensors");
  int64_t n = 0;
  g_autofree float *latents = nn_golden_f32 (st, "euler.final_latents", &n);
  g_assert_cmpint (n, ==, 4 * 16 * 16);
  const DlModelConfig *cfg = dl_sd_model_get_config (safe);
  for (int64_t i = 0; i < n; i++)
    latents[i] /= (float)cfg->vae.scaling_factor;
  int64_t zshape[4] = { 1, 4, 16, 16 };
  g_autoptr (DlTensor) z = dl_tensor_new (dl_test_device (), "z", DL_DTYPE_F16, 4, zshape, &error);
  g_assert_true (dl_tensor_upload (z, latents, DL_DTYPE_F32, &error));
  g_autoptr (DlTape) tape = dl_tape_new (dl_sd_model_get_recorder (safe), dl_sd_model_get_arena (safe));
  dl_tape_set_enabled (tape, FALSE);
  dl_tape_set_activation_dtype (tape, DL_DTYPE_F16);
  g_autoptr (DlTensor) img = dl_vae_decode (dl_sd_model_get_params (safe), &cfg->vae, tape, z, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (img->dtype, ==, DL_DTYPE_F16);
  g_assert_true (dl_recorder_finish (dl_sd_model_get_recorder (safe), &error));
  g_autofree float *got = dl_tensor_download_f32 (img, &error);
  g_autofree float *want = nn_golden_f32 (st, "euler.decoded", &n);
  g_assert_true (nn_check_scaled ("f16 VAE decode", got, want, n, 1e-12, 2e-2));
  dl_test_remove_tree (dir);
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
  dl_test_add ("/nn/sdxl/pipeline/text-encoders-on-host", test_text_encoders_on_host);
  dl_test_add ("/nn/sdxl/pipeline/unet-memory-estimate", test_unet_memory_estimate);
  dl_test_add ("/nn/sdxl/pipeline/f16-safe-vae", test_f16_safe_vae);
  dl_test_add ("/nn/sdxl/grad", test_grad);
  dl_test_add ("/nn/sdxl/pipeline/needs-negative", test_needs_negative);
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
