/* dl-sampler.h: inference samplers (the update rule between UNet evaluations).
 *
 * Everything here is host arithmetic on latents (a few thousand floats per step):
 * the caller runs the UNet on dl_sampler_model_input() at dl_sampler_timestep(),
 * then hands the model output to dl_sampler_step(). */
#pragma once

#include <glib.h>

#include "sched/dl-noise-schedule.h"

G_BEGIN_DECLS

typedef enum
{
  DL_SAMPLER_DDIM, /* eta 0 */
  DL_SAMPLER_EULER,
  DL_SAMPLER_EULER_A,  /* ancestral: needs fresh noise every step */
  DL_SAMPLER_DPMPP_2M, /* DPM-Solver++(2M); with Karras sigmas this is A1111's "DPM++ 2M Karras" */
} DlSamplerKind;

typedef enum
{
  /* diffusers: timesteps linspace(0, N-1, steps) reversed, sigmas interpolated linearly */
  DL_SIGMAS_LINSPACE,
  /* diffusers "leading" (SD 1.5's DDIM/PNDM config): step_ratio spacing + steps_offset */
  DL_SIGMAS_LEADING,
  /* k-diffusion as AUTOMATIC1111 uses it: linspace timesteps, log-sigma interpolation */
  DL_SIGMAS_KDIFFUSION,
  /* Karras et al. (rho = 7) between the model's smallest and largest sigma */
  DL_SIGMAS_KARRAS,
} DlSigmaSchedule;

typedef struct _DlSampler DlSampler;

/* DDIM always uses "leading" timesteps (SD 1.5's config); the sigma schedule applies
 * to the Euler-family and DPM++ samplers. */
DlSampler *dl_sampler_new (const DlNoiseSchedule *schedule, DlSamplerKind kind, DlSigmaSchedule sigmas, int steps,
                           GError **error);
void dl_sampler_free (DlSampler *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlSampler, dl_sampler_free)

/* "euler_a", "euler", "ddim", "dpmpp_2m_karras", "dpmpp_2m" (the names `dreamloom sample`
 * takes, the window offers and its settings store). */
gboolean dl_sampler_kind_from_name (const char *name, DlSamplerKind *kind, DlSigmaSchedule *sigmas);
/* Every name dl_sampler_kind_from_name takes, NULL-ended. */
const char *const *dl_sampler_names (void);
/* A1111's name for the "Sampler:" field of the PNG parameters ("Euler a", "DPM++ 2M Karras", ...). */
const char *dl_sampler_a1111_name (DlSamplerKind kind, DlSigmaSchedule sigmas);
/* The same for one of dl_sampler_names (what the window shows); other names as they are. */
const char *dl_sampler_label (const char *name);
/* dl_sampler_names joined by `separator` (help texts and errors; g_free). */
char *dl_sampler_names_joined (const char *separator);

int dl_sampler_get_steps (DlSampler *s);
/* diffusers' DPMSolverMultistepScheduler conventions instead of k-diffusion's
 * (AUTOMATIC1111's): the model sees rounded integer timesteps and the start is
 * scaled by sqrt(σ_max² + 1).  Only for comparing with diffusers. */
void dl_sampler_use_diffusers_dpm (DlSampler *s);
/* Multiply the unit-variance starting noise by this (diffusers' init_noise_sigma). */
float dl_sampler_init_noise_sigma (DlSampler *s);
/* Timestep fed to the UNet at step i (fractional for the k-samplers). */
float dl_sampler_timestep (DlSampler *s, int i);
/* The sigma schedule (steps + 1 values, last 0); NULL for DDIM. */
const float *dl_sampler_sigmas (DlSampler *s);
/* The UNet sees sample * scale (1/√(σ²+1) for the k-samplers, 1 for DDIM). */
float dl_sampler_input_scale (DlSampler *s, int i);
gboolean dl_sampler_needs_noise (DlSampler *s);

/* Advance `sample` (n floats, in place) by step i given the model output at
 * dl_sampler_timestep(i) (epsilon or v, per the schedule's prediction).
 * `noise` (n unit Gaussians) is required for ancestral samplers, ignored otherwise.
 * `pred_original` (nullable) receives the predicted clean sample.
 * Steps must be taken in order, 0..steps-1 (DPM++ keeps the previous prediction). */
void dl_sampler_step (DlSampler *s, int i, const float *model_output, float *sample, const float *noise,
                      float *pred_original, gsize n);

G_END_DECLS
