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

/* The same in overlapping tiles of `tile` x `tile` latent pixels sharing at
 * least `overlap` (0 <= overlap < tile), for inference (a tape that records
 * nothing): the activations are one tile's, the overlaps are cross-faded with
 * linear ramps (diffusers' AutoencoderKL.tiled_decode, A1111's and ComfyUI's
 * tiled VAE).  The mid-block attention and the GroupNorms see one tile, not
 * the whole latent, so the result differs a little from dl_vae_decode's
 * (tests/nn/test-vae-tiled.c measures it); a tile covering the whole latent
 * is dl_vae_decode itself.  The image is a new tensor (not the arena's). */
DlTensor *dl_vae_decode_tiled (DlParams *params, const DlVaeConfig *config, DlTape *tape, DlTensor *z, int tile,
                               int overlap, GError **error);

/* Bytes of activations dl_vae_encode holds at its peak for `batch` images of
 * h x w pixels in `dtype` (an upper estimate, from the encoder's widest level:
 * the first, at full size; checked against the arena's peak in
 * tests/nn/test-vae-tiled.c). */
guint64 dl_vae_encode_activation_bytes (const DlVaeConfig *config, int64_t batch, int64_t h, int64_t w, DlDType dtype);

/* Bytes of activations dl_vae_decode holds at its peak for `batch` latents of
 * h x w in `dtype` (an upper estimate, from the decoder's widest full-size
 * level; checked against the arena's peak in tests/nn/test-vae-tiled.c). */
guint64 dl_vae_decode_activation_bytes (const DlVaeConfig *config, int64_t batch, int64_t h, int64_t w, DlDType dtype);

/* The tile (latent pixels) whose decode fits `available` bytes of activation
 * memory with room to spare, and its overlap (a quarter of it, as diffusers'
 * tile_overlap_factor); 0 when the untiled decode fits.  Never below 16 latent
 * pixels (128 image pixels): smaller tiles would show their seams. */
int dl_vae_decode_choose_tile (const DlVaeConfig *config, int64_t batch, int64_t h, int64_t w, DlDType dtype,
                               guint64 available, int *overlap);

/* The tile dl_vae_decode_auto would use for z on the tape's device (and its
 * overlap), 0 for none: chosen for the device's free memory, its budget
 * (dl_device_get_memory_budget) less what is in use, plus what the tape's
 * arena holds unused. */
int dl_vae_decode_auto_tile (const DlVaeConfig *config, DlTape *tape, DlTensor *z, int *overlap);

/* dl_vae_decode, or dl_vae_decode_tiled when the untiled activations would not
 * fit the device's free memory: what sampling decodes with. */
DlTensor *dl_vae_decode_auto (DlParams *params, const DlVaeConfig *config, DlTape *tape, DlTensor *z, GError **error);

G_END_DECLS
