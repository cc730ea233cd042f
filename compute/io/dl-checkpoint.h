/* dl-checkpoint.h: a Stable Diffusion model on disk, whatever its layout.
 *
 * Opens a single file (.safetensors or PyTorch .ckpt) of SD 1.x with the
 * original LDM names or of SDXL with Stability's generative-models (SGM) names,
 * or a diffusers folder (model_index.json, unet/, vae/, text_encoder/,
 * [text_encoder_2/,] tokenizer/, scheduler/), with f32/f16/bf16 weights, and
 * presents them all the same way:
 *  - parameters under one internal naming (dl-model-params.h): `unet.<diffusers
 *    UNet2DConditionModel key>`, `vae.<diffusers AutoencoderKL key>`,
 *    `text_encoder.<transformers CLIPTextModel key>`, SDXL's
 *    `text_encoder_2.<transformers CLIPTextModelWithProjection key>`, with
 *    diffusers shapes and orientation (dl-keymap.h for the SGM names);
 *  - a DlModelConfig from the shapes, then `config_dir` (diffusers config.json
 *    files), then a diffusers folder's own config.json files, then a sidecar
 *    LDM/SGM .yaml next to a single file ("model.yaml" or
 *    "model.safetensors.yaml"), then the family's defaults (dl-config-resolve.h).
 * The family is detected from keys and shapes; anything but SD 1.x and SDXL
 * base fails with DL_ERROR_UNSUPPORTED, "recognised as X, not supported yet"
 * (the SDXL refiner and inpainting models included).  Every parameter of the
 * architecture must be present (a missing one is an error naming its file key);
 * keys that are not parameters are listed, never fatal. */
#pragma once

#include <glib.h>

#include "io/dl-model-config.h"
#include "io/dl-model-params.h"
#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef enum
{
  DL_CHECKPOINT_SINGLE_FILE,    /* LDM (SDXL: SGM) names in one .safetensors */
  DL_CHECKPOINT_SINGLE_FILE_PT, /* LDM (SDXL: SGM) names in one PyTorch .ckpt */
  DL_CHECKPOINT_DIFFUSERS,      /* a diffusers folder */
} DlCheckpointLayout;

typedef struct
{
  const char *name; /* internal name */
  DlComponent component;
  const char *file_key;  /* the name inside its file; SDXL's OpenCLIP q/k/v
                          * projections are a third of the rows of the fused
                          * ...attn.in_proj_weight/_bias each, and its
                          * text_projection.weight the transpose of
                          * ...text_projection: those keys are named */
  const char *file_path; /* the file that holds it */
  DlStDType dtype;       /* as stored */
  int ndim;              /* the internal shape (may differ from the file's: VAE */
  int64_t shape[4];      /* attention 1x1 convs are exposed as Linear) */
  int64_t numel;
} DlCheckpointParam;

typedef struct _DlCheckpoint DlCheckpoint;

/* `config_dir` may be NULL.  Errors name the file and the problem;
 * DL_ERROR_UNSUPPORTED for a recognised family other than SD 1.x and SDXL. */
DlCheckpoint *dl_checkpoint_open (const char *path, const char *config_dir, GError **error);
void dl_checkpoint_free (DlCheckpoint *ckpt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlCheckpoint, dl_checkpoint_free)

const char *dl_checkpoint_get_path (DlCheckpoint *ckpt);
DlCheckpointLayout dl_checkpoint_get_layout (DlCheckpoint *ckpt);
DlModelFamily dl_checkpoint_get_family (DlCheckpoint *ckpt);
const DlModelConfig *dl_checkpoint_get_config (DlCheckpoint *ckpt);
/* Where a config field's value came from: "weights", a config file, "SD 1.x default". */
const char *dl_checkpoint_get_config_source (DlCheckpoint *ckpt, const char *field);
/* Config files that disagree with the weights (the weights win), as sentences. */
GPtrArray *dl_checkpoint_get_config_warnings (DlCheckpoint *ckpt);

/* Every parameter of the model, in module order. */
guint dl_checkpoint_get_n_params (DlCheckpoint *ckpt);
const DlCheckpointParam *dl_checkpoint_get_param (DlCheckpoint *ckpt, guint index);
const DlCheckpointParam *dl_checkpoint_find (DlCheckpoint *ckpt, const char *name);

/* The parameter as floats (g_free), in the internal shape (and orientation). */
float *dl_checkpoint_read_f32 (DlCheckpoint *ckpt, const char *name, int64_t *numel, GError **error);
/* The parameter as stored: the file's dtype and bytes (valid while ckpt is
 * open), in the internal orientation (SDXL's split q/k/v: a view of the fused
 * tensor's rows; its text_projection: a transposed copy); NULL when there is no
 * such parameter.  For copying tensors unchanged. */
const DlStTensor *dl_checkpoint_get_stored (DlCheckpoint *ckpt, const char *name);
/* The parameter on the device as `dtype`, in the internal shape, named by its
 * internal name. */
DlTensor *dl_checkpoint_upload (DlCheckpoint *ckpt, const char *name, DlDevice *device, DlDType dtype, GError **error);

/* File keys that are not parameters of the model, sorted ("unet/<key>" in a
 * diffusers folder).  Reported, never fatal. */
GPtrArray *dl_checkpoint_get_unknown_keys (DlCheckpoint *ckpt);
/* Keys that are known not to be parameters and were skipped on purpose (DDPM
 * schedule buffers, position_ids, EMA copies). */
GPtrArray *dl_checkpoint_get_ignored_keys (DlCheckpoint *ckpt);

/* The model's own tokenizer folder (vocab.json + merges.txt): the diffusers
 * folder's tokenizer/, else config_dir's; NULL when there is none. */
const char *dl_checkpoint_get_tokenizer_dir (DlCheckpoint *ckpt);

/* __metadata__ of a single .safetensors file (NULL elsewhere). */
DlSafetensors *dl_checkpoint_get_safetensors (DlCheckpoint *ckpt);

G_END_DECLS
