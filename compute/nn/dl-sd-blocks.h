/* dl-sd-blocks.h: the blocks the UNet and the VAE are built from (diffusers
 * models/resnet.py ResnetBlock2D, models/transformers/transformer_2d.py
 * Transformer2DModel, models/attention.py BasicTransformerBlock; CompVis
 * ldm/modules/diffusionmodules/model.py AttnBlock; docs/formats.md, “Building
 * blocks”), each optionally run under gradient checkpointing. */
#pragma once

#include "nn/dl-params.h"

G_BEGIN_DECLS

/* ResnetBlock2D: GN+SiLU, conv3x3, (+ time_emb_proj(temb_act)), GN+SiLU,
 * conv3x3, plus the input (through conv_shortcut when it exists).  temb_act is
 * SiLU(time embedding) [B, T], or NULL (VAE). */
DlTensor *dl_sd_resnet (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, DlTensor *temb_act, int groups,
                        float eps, gboolean checkpoint, GError **error);

/* Transformer2DModel (SD1 spatial transformer with `depth` BasicTransformerBlocks). */
DlTensor *dl_sd_transformer (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, DlTensor *context, int n_heads,
                             int groups, int depth, gboolean linear_projection, gboolean checkpoint, GError **error);

/* The VAE's single-head mid-block attention (group_norm, to_q/k/v, to_out.0, residual). */
DlTensor *dl_sd_vae_attention (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, int groups, float eps,
                               GError **error);

/* GroupNorm module `prefix` (weight, bias), optionally with SiLU. */
DlTensor *dl_sd_group_norm (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, int groups, float eps,
                            gboolean silu, GError **error);

G_END_DECLS
