/* dl-sd-model.h: a loaded Stable Diffusion model and what is done with it
 * whole: text to conditioning, sampling with classifier-free guidance, decoding
 * to pixels, and one training forward/backward (the `grad` check). */
#pragma once

#include <gio/gio.h>

#include "io/dl-checkpoint.h"
#include "nn/dl-params.h"
#include "sched/dl-noise-schedule.h"
#include "sched/dl-sampler.h"
#include "text/dl-clip-tokenizer.h"

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
/* The dtype the VAE runs in: the model's, except f32 for an SDXL model loaded
 * as f16 whose VAE config has force_upcast (the published one: SDXL's VAE
 * overflows in f16). */
DlDType dl_sd_model_get_vae_dtype (DlSdModel *m);
/* The training noise schedule from the model's scheduler config. */
const DlNoiseSchedule *dl_sd_model_get_schedule (DlSdModel *m);

typedef void (*DlSampleStepFunc) (int step, int n_steps, const float *latents, gpointer user_data);

typedef struct
{
  const gint32 *prompt_ids;   /* [batch, 77] */
  const gint32 *negative_ids; /* [batch, 77]; NULL: the empty prompt's ids are needed, so required when cfg != 1 */
  /* SDXL: text_encoder_2's ids (tokenizer_2, padded with 0), required */
  const gint32 *prompt_ids_2;
  const gint32 *negative_ids_2; /* required when cfg != 1 unless zero_negative */
  /* SDXL: diffusers' force_zeros_for_empty_prompt (StableDiffusionXLPipeline
   * with negative_prompt=None): all-zero negative conditioning, not the empty
   * prompt's (what A1111 and ComfyUI use) */
  gboolean zero_negative;
  /* SDXL's time ids: original size, crop top-left, target size (pixels); 0 =
   * width and height (original and target) and (0, 0) for the crop, as the
   * diffusers pipeline and A1111 pass them */
  int original_width, original_height;
  int crop_left, crop_top;
  int target_width, target_height;
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
  /* the text encoders wait on the host while the UNet runs even when memory is
   * not short (A1111's --medvram-sdxl does this for SDXL) */
  gboolean text_encoders_on_host;
  DlSampleStepFunc on_step; /* after each step (may be NULL); also the place to report progress */
  gpointer on_step_data;
  GCancellable *cancellable;
} DlSampleParams;

/* The token ids a DlSampleParams takes for a prompt and a negative prompt
 * (NULL: the empty prompt), `batch` rows of each: through `tok` (the model's
 * first tokenizer) and, for SDXL, through tokenizer_2 as diffusers loads it
 * (dl_clip_tokenizer_set_pad_style DL_CLIP_PAD_SDXL_DIFFUSERS).  The one place
 * that turns prompts into sampling input: the CLI, the Previews page and a
 * run's previews use it. */
typedef struct
{
  gint32 *prompt, *negative;     /* [batch, 77] */
  gint32 *prompt_2, *negative_2; /* SDXL; NULL otherwise */
} DlPromptIds;

gboolean dl_prompt_ids_encode (DlPromptIds *ids, DlSdModel *m, DlClipTokenizer *tok, const char *prompt,
                               const char *negative, int batch, GError **error);
void dl_prompt_ids_clear (DlPromptIds *ids);
/* Points the params' id fields at `ids`. */
void dl_sample_params_set_prompt_ids (DlSampleParams *sp, const DlPromptIds *ids);

/* Runs the sampler; *latents (may be NULL) receives the final latents [batch, 4,
 * h, w] and *images (may be NULL) the decoded images [batch, 3, H, W] in about
 * [-1, 1] (unclamped), both g_free'd by the caller.  When the device's free
 * memory after encoding the prompts is less than the UNet's activations need
 * (dl_unet_inference_activation_bytes), the text encoders' weights wait on the
 * host while the UNet and the VAE run, and go back to the device before it
 * returns (SDXL's encoders hold 1.6 GB in f16). */
gboolean dl_sd_sample (DlSdModel *m, const DlSampleParams *params, float **latents, float **images, GError **error);

/* The text encoders' weights to host memory (their device memory freed) and
 * back: the same values, bit for bit.  Nothing moves while something else
 * holds one of them (an optimizer training them, a view): to_host then leaves
 * them on the device and says so in *moved (may be NULL).  Everything that
 * runs a text encoder calls to_device first (a no-op when they are there). */
gboolean dl_sd_model_text_encoders_to_host (DlSdModel *m, gboolean *moved, GError **error);
gboolean dl_sd_model_text_encoders_to_device (DlSdModel *m, GError **error);
gboolean dl_sd_model_text_encoders_on_device (DlSdModel *m);

G_END_DECLS
