/* dl-lora-file.h: LoRA files as AUTOMATIC1111, ComfyUI and kohya sd-scripts write
 * them (kohya sd-scripts networks/lora.py LoRANetwork.create_modules and
 * save_weights; docs/formats.md, “LoRA files”): per module `N.lora_down.weight`,
 * `N.lora_up.weight` and an optional 0-dim `N.alpha`, N = `lora_unet_<diffusers
 * path>` or `lora_te_<transformers path>` with dots as underscores.  The diffusers
 * (PEFT) spelling `unet.<path>.lora_A.weight` / `.lora_B.weight` is read too.
 *
 * SDXL (kohya sd-scripts networks/lora.py with library/sdxl_original_unet.py):
 * `lora_te1_<path>` (text_encoder), `lora_te2_<path>` (text_encoder_2) and
 * `lora_unet_<SGM module path>`: kohya's SDXL UNet has the SGM (LDM) module tree,
 * so its names are `lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`,
 * not diffusers paths.  UNet names in the other spelling (LDM paths for SD 1.x,
 * diffusers paths for SDXL) are accepted too, as ComfyUI does; the diffusers
 * (PEFT) spelling `text_encoder_2.<path>.lora_A.weight` as well. */
#pragma once

#include <glib.h>

#include "io/dl-keymap.h"
#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  char *file_name;        /* the module name as written in the file */
  char *target;           /* internal module name, e.g. "unet.down_blocks.0.attentions.0.proj_in" */
  const DlStTensor *down; /* [r, in] or [r, in, kh, kw] */
  const DlStTensor *up;   /* [out, r] or [out, r, 1, 1] */
  int rank;
  float alpha; /* = rank when the file has none (scale 1) */
  gboolean conv;
} DlLoraModule;

typedef struct _DlLoraFile DlLoraFile;

/* Open and check the file: every module has both matrices with compatible ranks. */
DlLoraFile *dl_lora_file_open (const char *path, GError **error);
void dl_lora_file_free (DlLoraFile *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlLoraFile, dl_lora_file_free)

/* The model family a file was made for, read from its module names and
 * metadata (kohya's ss_base_model_version, modelspec.architecture). */
typedef enum
{
  DL_LORA_FAMILY_UNKNOWN, /* nothing says */
  DL_LORA_FAMILY_SD,      /* Stable Diffusion 1.x/2.x: lora_te_, a four-level UNet */
  DL_LORA_FAMILY_SDXL,    /* lora_te1_/lora_te2_, text_encoder_2., sdxl_* versions */
} DlLoraFamily;

/* The family and what says so (e.g. "lora_te1_/lora_te2_ modules"; NULL for
 * DL_LORA_FAMILY_UNKNOWN; owned by the file). */
DlLoraFamily dl_lora_file_get_family (DlLoraFile *f, const char **evidence);

/* Match every module against the model's modules (internal names, e.g.
 * "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"; a set: keys only).
 * The model is SDXL when it has text_encoder_2 or unet.add_embedding modules; a
 * file made for the other family is an error (one line naming both) before
 * anything is matched.  Modules that match nothing are listed in *unmatched (may
 * be NULL) and dropped, as A1111 does; a file where nothing matches is an error. */
gboolean dl_lora_file_resolve (DlLoraFile *f, GHashTable *model_modules, GPtrArray **unmatched, GError **error);

guint dl_lora_file_get_n_modules (DlLoraFile *f);
const DlLoraModule *dl_lora_file_get_module (DlLoraFile *f, guint i);
DlSafetensors *dl_lora_file_get_safetensors (DlLoraFile *f);
const char *dl_lora_file_get_path (DlLoraFile *f);

/* The kohya module name for an internal module name ("unet.x.y" -> "lora_unet_x_y",
 * "text_encoder.text_model.z" -> "lora_te_text_model_z"); NULL for other components. */
char *dl_lora_kohya_name (const char *internal_module);

/* kohya's SDXL name for an internal module name: "text_encoder.x" ->
 * "lora_te1_x", "text_encoder_2.x" -> "lora_te2_x", a UNet module -> "lora_unet_"
 * + its SGM path ("unet.down_blocks.1.attentions.0.proj_in" ->
 * "lora_unet_input_blocks_4_1_proj_in" for SDXL's layout); NULL for other
 * components and UNet modules the layout cannot place. */
char *dl_lora_kohya_name_sdxl (const char *internal_module, const DlLdmLayout *layout);

/* The UNet block structure read from a model's module names (a set as for
 * dl_lora_file_resolve): levels (unet.down_blocks.N), resnets per level and
 * which levels have attention; vae_levels stays 0.  FALSE when the set has no
 * UNet blocks. */
gboolean dl_lora_ldm_layout_from_modules (GHashTable *model_modules, DlLdmLayout *layout);

G_END_DECLS
