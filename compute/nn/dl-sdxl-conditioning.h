/* dl-sdxl-conditioning.h: SDXL's text conditioning, as diffusers
 * StableDiffusionXLPipeline.encode_prompt computes it (and kohya sd-scripts
 * train_util.get_hidden_states_sdxl): the penultimate hidden state of both text
 * encoders, without final_layer_norm, concatenated on the feature axis
 * (text_encoder first) into the UNet's context, and text_encoder_2's pooled,
 * projected output for its added conditioning (docs/formats.md, “SDXL”). */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

typedef struct
{
  int clip_skip;              /* N = hidden_states[-N] of both; 0 means SDXL's 2 (diffusers' clip_skip k is k + 2) */
  GPtrArray *hidden_states_1; /* when not NULL, receive every hidden state of each encoder */
  GPtrArray *hidden_states_2;
} DlSdxlEncodeOptions;

/* ids_1: text_encoder's ids i32 [B, 77] (padded with the end id), ids_2:
 * text_encoder_2's [B, 77] (padded with 0), host_ids_2 the same on the host.
 * *context [B, 77, D1 + D2], *pooled [B, P]. */
gboolean dl_sdxl_encode_prompt (DlParams *params, const DlModelConfig *config, DlTape *tape, DlTensor *ids_1,
                                DlTensor *ids_2, const gint32 *host_ids_2, const DlSdxlEncodeOptions *options,
                                DlTensor **context, DlTensor **pooled, GError **error);

/* SDXL's 6 time ids in the UNet's order (diffusers
 * StableDiffusionXLPipeline._get_add_time_ids): original size (height, width),
 * crop top-left (top, left), target size (height, width). */
void dl_sdxl_time_ids (float out[6], int original_width, int original_height, int crop_left, int crop_top,
                       int target_width, int target_height);

/* [B, T, Da] and [B, T, Db] -> [B, T, Da + Db], with its backward. */
DlTensor *dl_sdxl_concat_features (DlTape *tape, DlTensor *a, DlTensor *b, GError **error);

G_END_DECLS
