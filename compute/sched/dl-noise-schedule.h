/* dl-noise-schedule.h: the DDPM noise schedule of Stable Diffusion training and the
 * quantities trainers derive from it (noisy inputs, v targets, SNR weights). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  DL_PREDICTION_EPSILON,
  DL_PREDICTION_V,
} DlPrediction;

typedef enum
{
  DL_BETA_SCALED_LINEAR, /* linspace(√start, √end, N)²: SD's "linear" in LDM terms */
  DL_BETA_LINEAR,
} DlBetaSchedule;

typedef struct
{
  int num_train_timesteps;
  double beta_start;
  double beta_end;
  DlBetaSchedule beta_schedule;
  DlPrediction prediction;
  int steps_offset;
  gboolean set_alpha_to_one;
} DlNoiseScheduleConfig;

/* SD 1.5's scheduler_config.json. */
void dl_noise_schedule_config_sd15 (DlNoiseScheduleConfig *config);

typedef struct
{
  DlNoiseScheduleConfig config;
  int n;                 /* num_train_timesteps */
  float *betas;          /* [n] */
  float *alphas_cumprod; /* [n], float32 cumulative product as diffusers computes it */
  float *sigmas;         /* [n] sqrt((1 - acp) / acp), indexed by timestep */
} DlNoiseSchedule;

DlNoiseSchedule *dl_noise_schedule_new (const DlNoiseScheduleConfig *config);
void dl_noise_schedule_free (DlNoiseSchedule *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlNoiseSchedule, dl_noise_schedule_free)

/* out = √acp[t]·x0 + √(1−acp[t])·noise  (diffusers add_noise) */
void dl_noise_schedule_add_noise (const DlNoiseSchedule *s, int t, const float *x0, const float *noise, float *out,
                                  gsize n);
/* out = √acp[t]·noise − √(1−acp[t])·x0  (the v-prediction target) */
void dl_noise_schedule_velocity (const DlNoiseSchedule *s, int t, const float *x0, const float *noise, float *out,
                                 gsize n);
/* acp[t] / (1 − acp[t]) */
double dl_noise_schedule_snr (const DlNoiseSchedule *s, int t);
/* Min-SNR-γ loss weight as the diffusers training scripts compute it:
 * epsilon: min(snr, γ)/snr; v-prediction: min(snr, γ)/snr + 1. */
double dl_noise_schedule_min_snr_weight (const DlNoiseSchedule *s, int t, double gamma, DlPrediction prediction);

G_END_DECLS
