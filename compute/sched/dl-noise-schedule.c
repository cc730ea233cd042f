#include "dl-noise-schedule.h"

#include <math.h>

void
dl_noise_schedule_config_sd15 (DlNoiseScheduleConfig *c)
{
  *c = (DlNoiseScheduleConfig){
    .num_train_timesteps = 1000,
    .beta_start = 0.00085,
    .beta_end = 0.012,
    .beta_schedule = DL_BETA_SCALED_LINEAR,
    .prediction = DL_PREDICTION_EPSILON,
    .steps_offset = 1,
    .set_alpha_to_one = FALSE,
  };
}

/* torch.linspace in float32: the first half steps up from start, the second half
 * steps down from end, so both ends are exact. */
static float
linspace_f32 (float start, float end, int n, int i)
{
  if (n == 1)
    return start;
  float step = (end - start) / (float)(n - 1);
  return i < n / 2 ? start + step * (float)i : end - step * (float)(n - 1 - i);
}

DlNoiseSchedule *
dl_noise_schedule_new (const DlNoiseScheduleConfig *config)
{
  g_return_val_if_fail (config != NULL && config->num_train_timesteps > 0, NULL);
  DlNoiseSchedule *s = g_new0 (DlNoiseSchedule, 1);
  s->config = *config;
  s->n = config->num_train_timesteps;
  s->betas = g_new (float, s->n);
  s->alphas_cumprod = g_new (float, s->n);
  s->sigmas = g_new (float, s->n);
  for (int i = 0; i < s->n; i++)
    {
      if (config->beta_schedule == DL_BETA_SCALED_LINEAR)
        {
          float b = linspace_f32 ((float)sqrt (config->beta_start), (float)sqrt (config->beta_end), s->n, i);
          s->betas[i] = b * b;
        }
      else
        s->betas[i] = linspace_f32 ((float)config->beta_start, (float)config->beta_end, s->n, i);
    }
  /* torch.cumprod on the CPU accumulates float32 in double */
  double acc = 1.0;
  for (int i = 0; i < s->n; i++)
    {
      acc *= (double)(1.0f - s->betas[i]);
      float a = (float)acc;
      s->alphas_cumprod[i] = a;
      s->sigmas[i] = sqrtf ((1.0f - a) / a);
    }
  return s;
}

void
dl_noise_schedule_free (DlNoiseSchedule *s)
{
  if (!s)
    return;
  g_free (s->betas);
  g_free (s->alphas_cumprod);
  g_free (s->sigmas);
  g_free (s);
}

void
dl_noise_schedule_add_noise (const DlNoiseSchedule *s, int t, const float *x0, const float *noise, float *out, gsize n)
{
  g_return_if_fail (t >= 0 && t < s->n);
  float a = sqrtf (s->alphas_cumprod[t]), b = sqrtf (1.0f - s->alphas_cumprod[t]);
  for (gsize i = 0; i < n; i++)
    out[i] = a * x0[i] + b * noise[i];
}

void
dl_noise_schedule_velocity (const DlNoiseSchedule *s, int t, const float *x0, const float *noise, float *out, gsize n)
{
  g_return_if_fail (t >= 0 && t < s->n);
  float a = sqrtf (s->alphas_cumprod[t]), b = sqrtf (1.0f - s->alphas_cumprod[t]);
  for (gsize i = 0; i < n; i++)
    out[i] = a * noise[i] - b * x0[i];
}

double
dl_noise_schedule_snr (const DlNoiseSchedule *s, int t)
{
  g_return_val_if_fail (t >= 0 && t < s->n, 0);
  /* diffusers: (sqrt(acp) / sqrt(1 - acp))^2, in float32 */
  float a = sqrtf (s->alphas_cumprod[t]), b = sqrtf (1.0f - s->alphas_cumprod[t]);
  float r = a / b;
  return (double)(r * r);
}

double
dl_noise_schedule_min_snr_weight (const DlNoiseSchedule *s, int t, double gamma, DlPrediction prediction)
{
  double snr = dl_noise_schedule_snr (s, t);
  double w = MIN (snr, gamma) / snr;
  return prediction == DL_PREDICTION_V ? w + 1.0 : w;
}
