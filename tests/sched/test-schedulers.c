/* Noise schedule and samplers against diffusers (golden case f, schedulers.safetensors). */
#include "dl-test-util.h"

#include "io/dl-safetensors.h"
#include "sched/dl-sampler.h"

#include <math.h>

static DlSafetensors *golden;
static DlNoiseSchedule *sched;

static float *
g (const char *name, int64_t *n)
{
  g_autoptr (GError) error = NULL;
  int64_t dummy;
  float *x = dl_safetensors_read_f32 (golden, name, n ? n : &dummy, &error);
  g_assert_no_error (error);
  return x;
}

static void
test_tables (void)
{
  int64_t n;
  g_autofree float *betas = g ("ddpm.betas", &n);
  g_assert_cmpint (n, ==, 1000);
  g_autofree float *acp = g ("ddpm.alphas_cumprod", NULL);
  /* torch's float32 linspace rounds differently in the last bits (measured: at most
   * 3.3e-7 relative); the cumulative product inherits that (measured 1e-6) */
  dl_test_assert_close ("betas", sched->betas, betas, 1000, 0, 5e-7);
  dl_test_assert_close ("alphas_cumprod", sched->alphas_cumprod, acp, 1000, 0, 2e-6);
}

static void
test_add_noise_velocity_snr (void)
{
  int64_t n;
  g_autofree float *x0 = g ("x0", &n);
  g_autofree float *noise = g ("noise", NULL);
  g_autofree float *t = g ("t", NULL);
  g_autofree float *want_noisy = g ("ddpm.add_noise", NULL);
  g_autofree float *want_v = g ("ddpm.velocity", NULL);
  gsize per = (gsize)n / 4;
  g_autofree float *noisy = g_new (float, n), *v = g_new (float, n);
  for (int b = 0; b < 4; b++)
    {
      dl_noise_schedule_add_noise (sched, (int)t[b], x0 + b * per, noise + b * per, noisy + b * per, per);
      dl_noise_schedule_velocity (sched, (int)t[b], x0 + b * per, noise + b * per, v + b * per, per);
    }
  dl_test_assert_close ("add_noise", noisy, want_noisy, n, 1e-6, 1e-5);
  dl_test_assert_close ("velocity", v, want_v, n, 1e-6, 1e-5);

  int64_t ns;
  g_autofree float *st = g ("snr.t", &ns);
  g_autofree float *snr = g ("snr.snr", NULL);
  g_autofree float *we = g ("snr.min_snr_gamma5.weight_eps", NULL);
  g_autofree float *wv = g ("snr.min_snr_gamma5.weight_v", NULL);
  g_autofree float *got_snr = g_new (float, ns), *got_we = g_new (float, ns), *got_wv = g_new (float, ns);
  for (int i = 0; i < ns; i++)
    {
      got_snr[i] = (float)dl_noise_schedule_snr (sched, (int)st[i]);
      got_we[i] = (float)dl_noise_schedule_min_snr_weight (sched, (int)st[i], 5.0, DL_PREDICTION_EPSILON);
      got_wv[i] = (float)dl_noise_schedule_min_snr_weight (sched, (int)st[i], 5.0, DL_PREDICTION_V);
    }
  dl_test_assert_close ("snr", got_snr, snr, ns, 0, 1e-5);
  dl_test_assert_close ("min-snr weight (eps)", got_we, we, ns, 0, 1e-5);
  dl_test_assert_close ("min-snr weight (v)", got_wv, wv, ns, 0, 1e-5);
}

static void
test_ddim (void)
{
  static const int counts[] = { 10, 20, 50 };
  for (guint c = 0; c < G_N_ELEMENTS (counts); c++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (DlSampler) s = dl_sampler_new (sched, DL_SAMPLER_DDIM, DL_SIGMAS_LEADING, counts[c], &error);
      g_assert_no_error (error);
      g_autofree char *name = g_strdup_printf ("ddim.timesteps.%d", counts[c]);
      int64_t n;
      g_autofree float *want = g (name, &n);
      g_assert_cmpint (n, ==, counts[c]);
      for (int i = 0; i < counts[c]; i++)
        g_assert_cmpfloat (dl_sampler_timestep (s, i), ==, want[i]);
      g_assert_cmpfloat (dl_sampler_init_noise_sigma (s), ==, 1.0f);
    }
  int64_t n;
  g_autofree float *mo = g ("step.model_output", &n);
  g_autofree float *sample = g ("step.sample", NULL);
  g_autoptr (DlSampler) s = dl_sampler_new (sched, DL_SAMPLER_DDIM, DL_SIGMAS_LEADING, 20, NULL);
  static const int which[] = { 0, 19 };
  for (guint k = 0; k < 2; k++)
    {
      g_autofree float *x = g_memdup2 (sample, n * sizeof (float));
      g_autofree float *x0 = g_new (float, n);
      dl_sampler_step (s, which[k], mo, x, NULL, x0, n);
      g_autofree char *pn = g_strdup_printf ("ddim.20.step%d.prev_sample", which[k]);
      g_autofree char *on = g_strdup_printf ("ddim.20.step%d.pred_original_sample", which[k]);
      g_autofree float *wp = g (pn, NULL);
      g_autofree float *wo = g (on, NULL);
      dl_test_assert_close (pn, x, wp, n, 1e-5, 1e-5);
      dl_test_assert_close (on, x0, wo, n, 1e-5, 1e-5);
    }
}

static void
check_k_sampler (const char *prefix, DlSamplerKind kind, DlSigmaSchedule spacing)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSampler) s = dl_sampler_new (sched, kind, spacing, 20, &error);
  g_assert_no_error (error);
  g_autofree char *tn = g_strdup_printf ("%s.20.timesteps", prefix);
  g_autofree char *sn = g_strdup_printf ("%s.20.sigmas", prefix);
  g_autofree char *in = g_strdup_printf ("%s.20.init_noise_sigma", prefix);
  g_autofree float *ts = g (tn, NULL);
  g_autofree float *sg = g (sn, NULL);
  g_autofree float *init = g (in, NULL);
  float got_t[20];
  for (int i = 0; i < 20; i++)
    got_t[i] = dl_sampler_timestep (s, i);
  dl_test_assert_close (tn, got_t, ts, 20, 0, 0);
  /* small sigmas amplify the last-bit differences of alphas_cumprod (measured 1.5e-6) */
  dl_test_assert_close (sn, dl_sampler_sigmas (s), sg, 21, 0, 3e-6);
  float gi = dl_sampler_init_noise_sigma (s);
  dl_test_assert_close (in, &gi, init, 1, 0, 1e-6);

  int64_t n;
  g_autofree float *mo = g ("step.model_output", &n);
  g_autofree float *sample = g ("step.sample", NULL);
  static const int which[] = { 0, 10 };
  for (guint k = 0; k < 2; k++)
    {
      int i = which[k];
      g_autofree char *base = g_strdup_printf ("%s.20.step%d", prefix, i);
      g_autofree char *scn = g_strdup_printf ("%s.scaled_input", base);
      g_autofree char *pn = g_strdup_printf ("%s.prev_sample", base);
      g_autofree char *on = g_strdup_printf ("%s.pred_original_sample", base);
      g_autofree char *nn = g_strdup_printf ("%s.noise", base);
      g_autofree float *wsc = g (scn, NULL);
      g_autofree float *scaled = g_new (float, n);
      float scale = dl_sampler_input_scale (s, i);
      for (int64_t e = 0; e < n; e++)
        scaled[e] = sample[e] * scale;
      dl_test_assert_close (scn, scaled, wsc, n, 1e-6, 1e-6);
      g_autofree float *noise = kind == DL_SAMPLER_EULER_A ? g (nn, NULL) : NULL;
      g_autofree float *x = g_memdup2 (sample, n * sizeof (float));
      g_autofree float *x0 = g_new (float, n);
      dl_sampler_step (s, i, mo, x, noise, x0, n);
      g_autofree float *wp = g (pn, NULL);
      g_autofree float *wo = g (on, NULL);
      dl_test_assert_close (pn, x, wp, n, 1e-5, 1e-5);
      dl_test_assert_close (on, x0, wo, n, 1e-5, 1e-5);
    }
}

static void
test_euler (void)
{
  check_k_sampler ("euler.linspace", DL_SAMPLER_EULER, DL_SIGMAS_LINSPACE);
  check_k_sampler ("euler.leading", DL_SAMPLER_EULER, DL_SIGMAS_LEADING);
}

static void
test_euler_a (void)
{
  check_k_sampler ("euler_a.linspace", DL_SAMPLER_EULER_A, DL_SIGMAS_LINSPACE);
  check_k_sampler ("euler_a.leading", DL_SAMPLER_EULER_A, DL_SIGMAS_LEADING);
}

/* DPM++ 2M (Karras) has no golden case: check its defining properties instead. */
static void
test_dpmpp_2m_karras (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSampler) s = dl_sampler_new (sched, DL_SAMPLER_DPMPP_2M, DL_SIGMAS_KARRAS, 20, &error);
  g_assert_no_error (error);
  const float *sg = dl_sampler_sigmas (s);
  /* Karras et al. eq. 5 with rho 7 spans exactly [sigma_min, sigma_max] of the model */
  g_assert_cmpfloat_with_epsilon (sg[0], sched->sigmas[999], 1e-4);
  g_assert_cmpfloat_with_epsilon (sg[19], sched->sigmas[0], 1e-6);
  g_assert_cmpfloat (sg[20], ==, 0);
  for (int i = 0; i < 19; i++)
    g_assert_cmpfloat (sg[i], >, sg[i + 1]);
  /* the timesteps fed to the UNet map back to those sigmas */
  g_assert_cmpfloat_with_epsilon (dl_sampler_timestep (s, 0), 999.0, 1e-3);
  g_assert_cmpfloat_with_epsilon (dl_sampler_timestep (s, 19), 0.0, 1e-3);

  /* A model that predicts the noise exactly: x = x0 + sigma*eps with eps fixed.
   * Every DPM++ update must then land on x0 + sigma_next*eps (the ODE is exact). */
  const gsize n = 64;
  g_autofree float *x0 = dl_test_random (n, 1, -1, 1), *eps = dl_test_random (n, 2, -1, 1);
  g_autofree float *x = g_new (float, n);
  for (gsize k = 0; k < n; k++)
    x[k] = x0[k] + sg[0] * eps[k];
  for (int i = 0; i < 20; i++)
    {
      dl_sampler_step (s, i, eps, x, NULL, NULL, n);
      for (gsize k = 0; k < n; k++)
        g_assert_cmpfloat_with_epsilon (x[k], x0[k] + sg[i + 1] * eps[k], 2e-4 * (1 + sg[i + 1]));
    }
}

static void
test_bad_steps (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (dl_sampler_new (sched, DL_SAMPLER_EULER, DL_SIGMAS_LINSPACE, 0, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  DlSamplerKind k;
  DlSigmaSchedule sp;
  g_assert_true (dl_sampler_kind_from_name ("dpmpp_2m_karras", &k, &sp));
  g_assert_cmpint (k, ==, DL_SAMPLER_DPMPP_2M);
  g_assert_cmpint (sp, ==, DL_SIGMAS_KARRAS);
  g_assert_cmpstr (dl_sampler_a1111_name (k, sp), ==, "DPM++ 2M Karras");
  g_assert_false (dl_sampler_kind_from_name ("plms", &k, &sp));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *path = dl_test_golden_path ("schedulers.safetensors");
  if (!path)
    return dl_test_skip_all ("golden data schedulers.safetensors is absent");
  g_autoptr (GError) error = NULL;
  golden = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  DlNoiseScheduleConfig cfg;
  dl_noise_schedule_config_sd15 (&cfg);
  sched = dl_noise_schedule_new (&cfg);
  dl_test_add ("/sched/tables", test_tables);
  dl_test_add ("/sched/add-noise-velocity-snr", test_add_noise_velocity_snr);
  dl_test_add ("/sched/ddim", test_ddim);
  dl_test_add ("/sched/euler", test_euler);
  dl_test_add ("/sched/euler-a", test_euler_a);
  dl_test_add ("/sched/dpmpp-2m-karras", test_dpmpp_2m_karras);
  dl_test_add ("/sched/bad-steps", test_bad_steps);
  int status = dl_test_run ();
  dl_noise_schedule_free (sched);
  dl_safetensors_free (golden);
  return status;
}
