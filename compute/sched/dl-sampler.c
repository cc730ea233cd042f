/* Samplers, written from the definitions in diffusers (DDIM, Euler, Euler ancestral)
 * and k-diffusion (the Euler family and DPM++ 2M as AUTOMATIC1111 runs them). */
#include "dl-sampler.h"

#include "dl-error.h"

#include <math.h>
#include <string.h>

struct _DlSampler
{
  const DlNoiseSchedule *sched; /* borrowed */
  DlSamplerKind kind;
  DlSigmaSchedule spacing;
  int steps;
  float *timesteps; /* [steps] */
  gboolean diffusers_dpm;
  float *sigmas;       /* [steps + 1] for the k-samplers */
  float *old_denoised; /* DPM++ 2M history */
  gsize old_n;
  int last_step;
};

/* the one list of sampler names (`dreamloom sample --sampler`, the trainer's --sample-sampler, the
 * window's previews), and what each is */
static const char *const sampler_names[] = { "euler_a", "euler", "ddim", "dpmpp_2m_karras", "dpmpp_2m", NULL };
static const struct
{
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
} sampler_kinds[] = {
  { DL_SAMPLER_EULER_A, DL_SIGMAS_KDIFFUSION },  { DL_SAMPLER_EULER, DL_SIGMAS_KDIFFUSION },
  { DL_SAMPLER_DDIM, DL_SIGMAS_LEADING },        { DL_SAMPLER_DPMPP_2M, DL_SIGMAS_KARRAS },
  { DL_SAMPLER_DPMPP_2M, DL_SIGMAS_KDIFFUSION },
};
G_STATIC_ASSERT (G_N_ELEMENTS (sampler_names) == G_N_ELEMENTS (sampler_kinds) + 1);

gboolean
dl_sampler_kind_from_name (const char *name, DlSamplerKind *kind, DlSigmaSchedule *sigmas)
{
  for (guint i = 0; i < G_N_ELEMENTS (sampler_kinds); i++)
    if (g_strcmp0 (name, sampler_names[i]) == 0)
      {
        *kind = sampler_kinds[i].kind;
        *sigmas = sampler_kinds[i].sigmas;
        return TRUE;
      }
  return FALSE;
}

const char *const *
dl_sampler_names (void)
{
  return sampler_names;
}

const char *
dl_sampler_a1111_name (DlSamplerKind kind, DlSigmaSchedule sigmas)
{
  switch (kind)
    {
    case DL_SAMPLER_DDIM:
      return "DDIM";
    case DL_SAMPLER_EULER:
      return "Euler";
    case DL_SAMPLER_EULER_A:
      return "Euler a";
    case DL_SAMPLER_DPMPP_2M:
      return sigmas == DL_SIGMAS_KARRAS ? "DPM++ 2M Karras" : "DPM++ 2M";
    default:
      return "?";
    }
}

const char *
dl_sampler_label (const char *name)
{
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  return dl_sampler_kind_from_name (name, &kind, &sigmas) ? dl_sampler_a1111_name (kind, sigmas) : name;
}

char *
dl_sampler_names_joined (const char *separator)
{
  return g_strjoinv (separator, (char **)sampler_names);
}

/* numpy.interp over the table sigma[t] (t = 0..n-1), in double */
static double
interp_sigma (const DlNoiseSchedule *s, double t)
{
  if (t <= 0)
    return s->sigmas[0];
  if (t >= s->n - 1)
    return s->sigmas[s->n - 1];
  int lo = (int)floor (t);
  double w = t - lo;
  return (1 - w) * (double)s->sigmas[lo] + w * (double)s->sigmas[lo + 1];
}

/* k-diffusion DiscreteSchedule: interpolate log sigma */
static double
t_to_sigma_log (const DlNoiseSchedule *s, double t)
{
  if (t <= 0)
    return s->sigmas[0];
  if (t >= s->n - 1)
    return s->sigmas[s->n - 1];
  int lo = (int)floor (t);
  double w = t - lo;
  return exp ((1 - w) * log ((double)s->sigmas[lo]) + w * log ((double)s->sigmas[lo + 1]));
}

/* k-diffusion sigma_to_t: the fractional timestep whose log sigma this is */
static double
sigma_to_t (const DlNoiseSchedule *s, double sigma)
{
  double ls = log (sigma);
  if (ls <= log ((double)s->sigmas[0]))
    return 0;
  if (ls >= log ((double)s->sigmas[s->n - 1]))
    return s->n - 1;
  int lo = 0;
  while (lo < s->n - 2 && log ((double)s->sigmas[lo + 1]) <= ls)
    lo++;
  double l0 = log ((double)s->sigmas[lo]), l1 = log ((double)s->sigmas[lo + 1]);
  double w = (l0 - ls) / (l0 - l1);
  return lo + w;
}

DlSampler *
dl_sampler_new (const DlNoiseSchedule *sched, DlSamplerKind kind, DlSigmaSchedule spacing, int steps, GError **error)
{
  g_return_val_if_fail (sched != NULL, NULL);
  if (steps < 1 || steps > sched->n)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "steps must be between 1 and %d, not %d", sched->n,
                   steps);
      return NULL;
    }
  if (kind == DL_SAMPLER_DDIM)
    spacing = DL_SIGMAS_LEADING;
  DlSampler *s = g_new0 (DlSampler, 1);
  s->sched = sched;
  s->kind = kind;
  s->spacing = spacing;
  s->steps = steps;
  s->last_step = -1;
  s->timesteps = g_new (float, steps);
  s->sigmas = g_new0 (float, steps + 1);
  int N = sched->n;

  switch (spacing)
    {
    case DL_SIGMAS_LEADING:
      {
        int ratio = N / steps;
        for (int i = 0; i < steps; i++)
          s->timesteps[i] = (float)((steps - 1 - i) * ratio + sched->config.steps_offset);
        for (int i = 0; i < steps; i++)
          s->sigmas[i] = (float)interp_sigma (sched, s->timesteps[i]);
        break;
      }
    case DL_SIGMAS_LINSPACE:
      for (int i = 0; i < steps; i++)
        {
          /* numpy.linspace(0, N-1, steps, dtype=float32)[::-1] */
          double t = steps == 1 ? 0 : (double)(N - 1) * (steps - 1 - i) / (steps - 1);
          s->timesteps[i] = (float)t;
          s->sigmas[i] = (float)interp_sigma (sched, s->timesteps[i]);
        }
      break;
    case DL_SIGMAS_KDIFFUSION:
      for (int i = 0; i < steps; i++)
        {
          double t = steps == 1 ? N - 1 : (double)(N - 1) * (steps - 1 - i) / (steps - 1);
          s->sigmas[i] = (float)t_to_sigma_log (sched, t);
          s->timesteps[i] = (float)sigma_to_t (sched, s->sigmas[i]);
        }
      break;
    case DL_SIGMAS_KARRAS:
      {
        const double rho = 7.0;
        double smin = sched->sigmas[0], smax = sched->sigmas[N - 1];
        double a = pow (smax, 1 / rho), b = pow (smin, 1 / rho);
        for (int i = 0; i < steps; i++)
          {
            double ramp = steps == 1 ? 0 : (double)i / (steps - 1);
            s->sigmas[i] = (float)pow (a + ramp * (b - a), rho);
            s->timesteps[i] = (float)sigma_to_t (sched, s->sigmas[i]);
          }
        break;
      }
    default:
      g_assert_not_reached ();
    }
  s->sigmas[steps] = 0.0f;
  return s;
}

void
dl_sampler_free (DlSampler *s)
{
  if (!s)
    return;
  g_free (s->timesteps);
  g_free (s->sigmas);
  g_free (s->old_denoised);
  g_free (s);
}

int
dl_sampler_get_steps (DlSampler *s)
{
  return s->steps;
}

float
dl_sampler_init_noise_sigma (DlSampler *s)
{
  if (s->kind == DL_SAMPLER_DDIM)
    return 1.0f;
  float m = 0;
  for (int i = 0; i <= s->steps; i++)
    m = MAX (m, s->sigmas[i]);
  /* diffusers: sigma_max for linspace/trailing spacing, sqrt(sigma_max² + 1) for leading;
   * k-diffusion (A1111) starts at sigma_max */
  if (s->spacing == DL_SIGMAS_LEADING || s->diffusers_dpm)
    return sqrtf (m * m + 1.0f);
  return m;
}

float
dl_sampler_timestep (DlSampler *s, int i)
{
  g_return_val_if_fail (i >= 0 && i < s->steps, 0);
  return s->timesteps[i];
}

const float *
dl_sampler_sigmas (DlSampler *s)
{
  return s->kind == DL_SAMPLER_DDIM ? NULL : s->sigmas;
}

float
dl_sampler_input_scale (DlSampler *s, int i)
{
  g_return_val_if_fail (i >= 0 && i < s->steps, 1);
  if (s->kind == DL_SAMPLER_DDIM)
    return 1.0f;
  float sigma = s->sigmas[i];
  return 1.0f / sqrtf (sigma * sigma + 1.0f);
}

gboolean
dl_sampler_needs_noise (DlSampler *s)
{
  return s->kind == DL_SAMPLER_EULER_A;
}

static void
ddim_step (DlSampler *s, int i, const float *mo, float *x, float *x0_out, gsize n)
{
  const DlNoiseSchedule *sc = s->sched;
  int t = (int)s->timesteps[i];
  int prev = t - sc->n / s->steps;
  float a_t = sc->alphas_cumprod[t];
  float a_prev = prev >= 0 ? sc->alphas_cumprod[prev] : (sc->config.set_alpha_to_one ? 1.0f : sc->alphas_cumprod[0]);
  float b_t = 1.0f - a_t;
  float sa = sqrtf (a_t), sb = sqrtf (b_t), sa_prev = sqrtf (a_prev), sdir = sqrtf (1.0f - a_prev);
  gboolean v = sc->config.prediction == DL_PREDICTION_V;
  for (gsize k = 0; k < n; k++)
    {
      float x0, eps;
      if (v)
        {
          x0 = sa * x[k] - sb * mo[k];
          eps = sa * mo[k] + sb * x[k];
        }
      else
        {
          x0 = (x[k] - sb * mo[k]) / sa;
          eps = mo[k];
        }
      if (x0_out)
        x0_out[k] = x0;
      x[k] = sa_prev * x0 + sdir * eps;
    }
}

void
dl_sampler_step (DlSampler *s, int i, const float *mo, float *x, const float *noise, float *x0_out, gsize n)
{
  g_return_if_fail (i >= 0 && i < s->steps);
  g_return_if_fail (s->kind != DL_SAMPLER_EULER_A || noise != NULL);
  if (s->kind == DL_SAMPLER_DDIM)
    {
      ddim_step (s, i, mo, x, x0_out, n);
      s->last_step = i;
      return;
    }

  float sigma = s->sigmas[i], sigma_next = s->sigmas[i + 1];
  gboolean v = s->sched->config.prediction == DL_PREDICTION_V;
  /* v-prediction denoiser scalings (k-diffusion CompVisVDenoiser) */
  float c_skip = 1.0f / (sigma * sigma + 1.0f), c_out_v = -sigma / sqrtf (sigma * sigma + 1.0f);

  float sigma_up = 0, sigma_down = sigma_next;
  if (s->kind == DL_SAMPLER_EULER_A)
    {
      sigma_up = sqrtf (sigma_next * sigma_next * (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma));
      sigma_up = MIN (sigma_up, sigma_next);
      sigma_down = sqrtf (sigma_next * sigma_next - sigma_up * sigma_up);
    }

  /* DPM++ 2M coefficients in terms of t = -log sigma */
  gboolean second_order = s->kind == DL_SAMPLER_DPMPP_2M && s->old_denoised && s->old_n == n && i > 0 &&
                          sigma_next > 0 && s->last_step == i - 1;
  double ratio = 0, expm1_h = 0, r = 0;
  if (s->kind == DL_SAMPLER_DPMPP_2M && sigma_next > 0)
    {
      double t = -log (sigma), t_next = -log (sigma_next), h = t_next - t;
      ratio = sigma_next / (double)sigma;
      expm1_h = expm1 (-h);
      if (second_order)
        {
          double h_last = t - (-log ((double)s->sigmas[i - 1]));
          r = h_last / h;
        }
    }

  if (s->kind == DL_SAMPLER_DPMPP_2M && !s->old_denoised)
    s->old_denoised = g_new (float, n), s->old_n = n;

  for (gsize k = 0; k < n; k++)
    {
      float den = v ? c_skip * x[k] + c_out_v * mo[k] : x[k] - sigma * mo[k];
      if (x0_out)
        x0_out[k] = den;
      switch (s->kind)
        {
        case DL_SAMPLER_EULER:
        case DL_SAMPLER_EULER_A:
          {
            float d = (x[k] - den) / sigma;
            x[k] = x[k] + d * (sigma_down - sigma);
            if (s->kind == DL_SAMPLER_EULER_A && sigma_next > 0)
              x[k] += noise[k] * sigma_up;
            break;
          }
        case DL_SAMPLER_DPMPP_2M:
          {
            if (sigma_next == 0)
              x[k] = den;
            else
              {
                double dd = den;
                if (second_order)
                  dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * s->old_denoised[k];
                x[k] = (float)(ratio * x[k] - expm1_h * dd);
              }
            s->old_denoised[k] = den;
            break;
          }
        case DL_SAMPLER_DDIM:
        default:
          g_assert_not_reached ();
        }
    }
  s->last_step = i;
}

void
dl_sampler_use_diffusers_dpm (DlSampler *s)
{
  g_return_if_fail (s != NULL);
  s->diffusers_dpm = TRUE;
  for (int i = 0; i < s->steps; i++)
    s->timesteps[i] = roundf (s->timesteps[i]);
}
