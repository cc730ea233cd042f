/* dl-vae.h: the SD VAE (diffusers AutoencoderKL): encoder to the latent
 * distribution's moments, decoder back to pixels. */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

/* image [B, 3, H, W] in [-1, 1] -> moments [B, 2L, H/f, W/f] (quant_conv output:
 * mean in the first L channels, logvar in the last L, unclamped).
 * `activations` (may be NULL) receives "encoder" and "quant_conv". */
DlTensor *dl_vae_encode (DlParams *params, const DlVaeConfig *config, DlTape *tape, DlTensor *image,
                         GHashTable *activations, GError **error);

/* z [B, L, h, w] (unscaled: latents / scaling_factor) -> image [B, 3, h*f, w*f].
 * `activations` receives "post_quant_conv" and "decoder.mid_block". */
DlTensor *dl_vae_decode (DlParams *params, const DlVaeConfig *config, DlTape *tape, DlTensor *z,
                         GHashTable *activations, GError **error);

G_END_DECLS
