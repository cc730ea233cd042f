/* dl-sd-model.h: a loaded Stable Diffusion model and what is done with it
 * whole: text to conditioning, sampling with classifier-free guidance, decoding
 * to pixels, and one training forward/backward (the `grad` check). */
#pragma once

#include <gio/gio.h>

#include "io/dl-checkpoint.h"
#include "nn/dl-params.h"
#include "sched/dl-noise-schedule.h"
#include "sched/dl-sampler.h"

G_BEGIN_DECLS

typedef struct _DlSdModel DlSdModel;

/* All three components, uploaded as f32. */
DlSdModel *dl_sd_model_load (DlDevice *device, const char *path, const char *config_dir, GError **error);
/* The same with weights stored as `dtype` (f32 or f16); with f16, sampling also
 * keeps its activations in f16 (arithmetic and accumulation stay fp32): half
 * the memory and traffic. */
DlSdModel *dl_sd_model_load_as (DlDevice *device, const char *path, const char *config_dir, DlDType dtype,
                                GError **error);
DlDType dl_sd_model_get_dtype (DlSdModel *m);
/* A model of `config`'s shapes with random weights (benchmarks; no checkpoint:
 * dl_sd_model_get_checkpoint returns NULL). */
DlSdModel *dl_sd_model_new_random (DlDevice *device, const DlModelConfig *config, DlDType dtype, guint64 seed,
                                   GError **error);
void dl_sd_model_free (DlSdModel *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlSdModel, dl_sd_model_free)

/* NULL for a model of random weights. */
DlCheckpoint *dl_sd_model_get_checkpoint (DlSdModel *m);
DlParams *dl_sd_model_get_params (DlSdModel *m);
const DlModelConfig *dl_sd_model_get_config (DlSdModel *m);
DlRecorder *dl_sd_model_get_recorder (DlSdModel *m);
DlArena *dl_sd_model_get_arena (DlSdModel *m);
/* The training noise schedule from the model's scheduler config. */
const DlNoiseSchedule *dl_sd_model_get_schedule (DlSdModel *m);

typedef void (*DlSampleStepFunc) (int step, int n_steps, const float *latents, gpointer user_data);

typedef struct
{
  const gint32 *prompt_ids;   /* [batch, 77] */
  const gint32 *negative_ids; /* [batch, 77]; NULL: the empty prompt's ids are needed, so required when cfg != 1 */
  int batch;
  int width, height; /* pixels, multiples of 8 */
  int steps;
  DlSamplerKind sampler;
  DlSigmaSchedule sigmas;
  float cfg_scale;
  guint64 seed;              /* image i uses seed + i, as AUTOMATIC1111 */
  int clip_skip;             /* A1111 convention, 1 = last layer */
  const float *init_latents; /* [batch, 4, h, w] unit-variance noise, or NULL for A1111's noise from the seed */
  gboolean diffusers_dpm;    /* DPM++: diffusers' conventions (dl_sampler_use_diffusers_dpm), for tests */
  DlSampleStepFunc on_step;  /* after each step (may be NULL); also the place to report progress */
  gpointer on_step_data;
  GCancellable *cancellable;
} DlSampleParams;

/* Runs the sampler; *latents (may be NULL) receives the final latents [batch, 4,
 * h, w] and *images (may be NULL) the decoded images [batch, 3, H, W] in about
 * [-1, 1] (unclamped), both g_free'd by the caller. */
gboolean dl_sd_sample (DlSdModel *m, const DlSampleParams *params, float **latents, float **images, GError **error);

G_END_DECLS
