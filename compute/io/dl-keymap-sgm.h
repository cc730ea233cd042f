/* dl-keymap-sgm.h (inside dl-keymap): the OpenCLIP text tower's names
 * (OpenCLIP's TextTransformer: token_embedding, positional_embedding,
 * transformer.resblocks.N, ln_final, text_projection) to and from transformers'
 * CLIPTextModel(WithProjection) names, as diffusers single_file_utils
 * convert_open_clip_checkpoint and scripts/convert_diffusers_to_original_sdxl.py
 * (textenc_conversion_lst, convert_openclip_text_enc_state_dict) map them. */
#pragma once

#include <glib.h>

#include "io/dl-keymap.h"

G_BEGIN_DECLS

/* `key` without its prefix ("transformer.resblocks.3.ln_1.weight") as the
 * names under `component` ("text_encoder_2") it holds: 0, 1 or 3 (q, k, v). */
guint dl_keymap_openclip_to_internal (const char *key, const char *component, DlLdmTarget out[3]);
/* An internal name without its component ("text_model.final_layer_norm.bias")
 * as the OpenCLIP key without its prefix, and the part of it the parameter is;
 * NULL when OpenCLIP has no such tensor. */
char *dl_keymap_internal_to_openclip (const char *name, DlLdmPart *part);

G_END_DECLS
