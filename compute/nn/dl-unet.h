/* dl-unet.h: the SD 1.x and SDXL UNet (diffusers UNet2DConditionModel),
 * forward with its backward recorded on the tape. */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

typedef struct
{
  /* SDXL's added conditioning (required when the config has
   * addition_time_embed_dim): */
  DlTensor *text_embeds;   /* the pooled text embedding [B, P] */
  DlTensor *time_ids;      /* f32 [B, 6]: original size (h, w), crop top-left (top, left), target size (h, w) */
  gboolean checkpoint;     /* gradient checkpointing per ResNet and transformer block */
  GHashTable *activations; /* when not NULL, receives module outputs by diffusers name
                            * ("time_proj", "time_embedding", "conv_in", "down_blocks.i",
                            * "mid_block", "up_blocks.i", "conv_norm_out"; SDXL also
                            * "add_time_proj", "add_embedding", "emb"): char* -> DlTensor* */
} DlUNetOptions;

/* eps [B, out, H, W] = unet(x [B, in, H, W], timesteps f32/i32 [B], context [B, T, C]).
 * Parameters are `unet.*` in `params`. */
DlTensor *dl_unet_forward (DlParams *params, const DlUNetConfig *config, DlTape *tape, DlTensor *x, DlTensor *timesteps,
                           DlTensor *context, const DlUNetOptions *options, GError **error);

/* Device memory one forward pass without a tape needs for its activations
 * (rows x [in, lh, lw] latents, `dtype` activations), an upper estimate for
 * deciding what to move off the device: the skip connections the down path
 * keeps for the up path, plus the working set of the widest block (a
 * transformer's q/k/v, attention output and GEGLU feed-forward, or an up
 * ResNet on its concatenated input), plus the arena's rounding. */
guint64 dl_unet_inference_activation_bytes (const DlUNetConfig *config, int64_t rows, int64_t lh, int64_t lw,
                                            DlDType dtype);

/* A hash table suitable for DlUNetOptions.activations. */
GHashTable *dl_unet_activations_new (void);

G_END_DECLS
