/* dl-keymap.h: tensor names of the original LDM single-file layout, of SDXL's
 * single files (Stability's generative-models, "SGM") and of diffusers folders,
 * to and from Dreamloom's internal names (diffusers
 * scripts/convert_diffusers_to_original_stable_diffusion.py unet_conversion_map
 * and vae_conversion_map, scripts/convert_diffusers_to_original_sdxl.py;
 * docs/formats.md, “LDM and diffusers key maps”).
 *
 * SGM files keep the LDM names for the UNet (plus label_emb.0.0/label_emb.0.2
 * for diffusers' add_embedding) and the VAE, CLIP ViT-L under
 * conditioner.embedders.0.transformer. (transformers names) and OpenCLIP bigG
 * under conditioner.embedders.1.model. (OpenCLIP names, mapped as diffusers
 * single_file_utils convert_open_clip_checkpoint does).  Two OpenCLIP tensors
 * are not one parameter each: attn.in_proj_weight/in_proj_bias stack q, k and
 * v (rows in that order), and text_projection is stored (in, out), the
 * transpose of transformers' text_projection.weight (DlLdmPart).
 *
 * The LDM UNet numbers its blocks flatly (input_blocks.0..11), so translating
 * needs the block structure: levels, resnets per level and which levels have
 * attention.  dl_ldm_layout_probe reads it from the file's own keys, so the same
 * rules serve SD 1.5 and the tiny test models. */
#pragma once

#include <glib.h>

#include "io/dl-model-config.h"
#include "io/dl-model-params.h"

G_BEGIN_DECLS

typedef struct
{
  int unet_levels;
  int unet_layers_per_block;
  gboolean unet_level_attention[DL_MODEL_MAX_LEVELS];
  int vae_levels;
  gboolean sgm; /* SDXL's names: text encoders under conditioner.embedders.{0,1} */
} DlLdmLayout;

#define DL_LDM_UNET_PREFIX "model.diffusion_model."
#define DL_LDM_VAE_PREFIX "first_stage_model."
#define DL_LDM_CLIP_PREFIX "cond_stage_model.transformer."
#define DL_SGM_PREFIX "conditioner.embedders."
#define DL_SGM_CLIP_PREFIX "conditioner.embedders.0.transformer."
#define DL_SGM_OPENCLIP_PREFIX "conditioner.embedders.1.model."

/* Which part of its LDM/SGM tensor a parameter is. */
typedef enum
{
  DL_LDM_PART_WHOLE,      /* all of it (VAE attention 1x1 convs: as Linear) */
  DL_LDM_PART_Q,          /* rows [0, n/3) of OpenCLIP's attn.in_proj_weight / in_proj_bias */
  DL_LDM_PART_K,          /* rows [n/3, 2n/3) */
  DL_LDM_PART_V,          /* rows [2n/3, n) */
  DL_LDM_PART_TRANSPOSED, /* OpenCLIP's text_projection [in, out]: the transpose of the Linear weight */
} DlLdmPart;

typedef struct
{
  char *name; /* internal name (owned) */
  DlLdmPart part;
} DlLdmTarget;

/* The block structure from LDM keys (and `sgm` when any key starts with
 * conditioner.embedders.).  FALSE with *problem set when the UNet or VAE keys
 * are absent or inconsistent. */
gboolean dl_ldm_layout_probe (const char *const *keys, guint n_keys, DlLdmLayout *layout, char **problem);
/* The same structure from a configuration (for writing LDM names; `sgm` for
 * an SDXL configuration). */
void dl_ldm_layout_from_config (const DlModelConfig *config, DlLdmLayout *layout);

/* The parameters an LDM or SGM key holds, in `out` (names owned by the caller):
 * 0 when it is not a UNet, VAE or text-encoder parameter name (the caller then
 * checks the names against the model's parameter list), 3 for OpenCLIP's fused
 * q/k/v (DL_LDM_PART_Q, _K, _V), else 1. */
guint dl_keymap_ldm_to_internal_parts (const char *key, const DlLdmLayout *layout, DlLdmTarget out[3]);
/* An LDM key as one internal name; NULL when it holds none or several (OpenCLIP's
 * fused q/k/v).  OpenCLIP's text_projection gives text_encoder_2.text_projection.weight,
 * whose data is its transpose (see dl_keymap_ldm_to_internal_parts). */
char *dl_keymap_ldm_to_internal (const char *key, const DlLdmLayout *layout);
/* The inverse: the LDM (SGM) key an internal name is stored under, and which
 * part of it the parameter is (`part` may be NULL).  Several parameters share a
 * key only where *part is _Q, _K or _V: a writer of SGM files must stack them
 * (and transpose text_projection). */
char *dl_keymap_internal_to_ldm_part (const char *name, const DlLdmLayout *layout, DlLdmPart *part);
char *dl_keymap_internal_to_ldm (const char *name, const DlLdmLayout *layout);

/* A key of a diffusers component file as an internal name (accepts the older
 * VAE attention names query/key/value/proj_attn). */
char *dl_keymap_diffusers_to_internal (DlComponent component, const char *key);

/* Keys real checkpoints carry that are not model parameters and are ignored on
 * purpose: DDPM schedule buffers (CompVis ldm/models/diffusion/ddpm.py
 * register_schedule), CLIP position_ids, EMA copies (docs/formats.md,
 * “Checkpoint layouts”), OpenCLIP's logit_scale and attn_mask buffer in SDXL
 * files. */
gboolean dl_keymap_is_known_extra (const char *key);

G_END_DECLS
