/* dl-lora-file.h: LoRA files as AUTOMATIC1111, ComfyUI and kohya sd-scripts write
 * them (kohya sd-scripts networks/lora.py LoRANetwork.create_modules and
 * save_weights; docs/formats.md, “LoRA files”): per module `N.lora_down.weight`,
 * `N.lora_up.weight` and an optional 0-dim `N.alpha`, N = `lora_unet_<diffusers
 * path>` or `lora_te_<transformers path>` with dots as underscores.  The diffusers
 * (PEFT) spelling `unet.<path>.lora_A.weight` / `.lora_B.weight` is read too. */
#pragma once

#include <glib.h>

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

/* Match every module against the model's modules (internal names, e.g.
 * "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"; a set: keys only).
 * Modules that match nothing are listed in *unmatched (may be NULL) and dropped, as
 * A1111 does; a file where nothing matches is an error. */
gboolean dl_lora_file_resolve (DlLoraFile *f, GHashTable *model_modules, GPtrArray **unmatched, GError **error);

guint dl_lora_file_get_n_modules (DlLoraFile *f);
const DlLoraModule *dl_lora_file_get_module (DlLoraFile *f, guint i);
DlSafetensors *dl_lora_file_get_safetensors (DlLoraFile *f);
const char *dl_lora_file_get_path (DlLoraFile *f);

/* The kohya module name for an internal module name ("unet.x.y" -> "lora_unet_x_y",
 * "text_encoder.text_model.z" -> "lora_te_text_model_z"); NULL for other components. */
char *dl_lora_kohya_name (const char *internal_module);

G_END_DECLS
