/* dl-keymap.h: tensor names of the original LDM single-file layout and of
 * diffusers folders, to and from Dreamloom's internal names (diffusers
 * scripts/convert_diffusers_to_original_stable_diffusion.py unet_conversion_map
 * and vae_conversion_map; docs/formats.md, “LDM and diffusers key maps”).
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
} DlLdmLayout;

#define DL_LDM_UNET_PREFIX "model.diffusion_model."
#define DL_LDM_VAE_PREFIX "first_stage_model."
#define DL_LDM_CLIP_PREFIX "cond_stage_model.transformer."

/* The block structure from LDM keys.  FALSE with *problem set when the UNet or
 * VAE keys are absent or inconsistent. */
gboolean dl_ldm_layout_probe (const char *const *keys, guint n_keys, DlLdmLayout *layout, char **problem);
/* The same structure from a configuration (for writing LDM names). */
void dl_ldm_layout_from_config (const DlModelConfig *config, DlLdmLayout *layout);

/* An LDM key as an internal name, or NULL when it is not a UNet, VAE or SD 1.x
 * CLIP parameter name (the caller then checks the name against the model's
 * parameter list). */
char *dl_keymap_ldm_to_internal (const char *key, const DlLdmLayout *layout);
/* The inverse: the LDM key an internal name is stored under. */
char *dl_keymap_internal_to_ldm (const char *name, const DlLdmLayout *layout);

/* A key of a diffusers component file as an internal name (accepts the older
 * VAE attention names query/key/value/proj_attn). */
char *dl_keymap_diffusers_to_internal (DlComponent component, const char *key);

/* Keys real checkpoints carry that are not model parameters and are ignored on
 * purpose: DDPM schedule buffers (CompVis ldm/models/diffusion/ddpm.py
 * register_schedule), CLIP position_ids, EMA copies (docs/formats.md,
 * “Checkpoint layouts”). */
gboolean dl_keymap_is_known_extra (const char *key);

G_END_DECLS
