/* dl-vae.c: see dl-vae.h; structure as CompVis
 * ldm/modules/diffusionmodules/model.py Encoder/Decoder and diffusers
 * models/autoencoders/vae.py (docs/formats.md, “SD 1.5 model numbers” and
 * “Building blocks”). */
#include "dl-config.h"

#include "nn/dl-vae.h"

#include "dl-error.h"
#include "nn/dl-nn.h"
#include "nn/dl-sd-blocks.h"

#include <string.h>

static void
keep (GHashTable *acts, const char *name, DlTensor *t)
{
  if (acts)
    g_hash_table_replace (acts, g_strdup (name), dl_tensor_ref (t));
}

static gboolean
advance (DlTensor **h, DlTensor *next)
{
  if (!next)
    return FALSE;
  dl_tensor_unref (*h);
  *h = next;
  return TRUE;
}

static gboolean
mid_block (DlParams *p, DlTape *tape, const char *prefix, DlTensor **h, int G, float eps, GError **error)
{
  g_autofree char *r0 = g_strconcat (prefix, ".resnets.0", NULL);
  g_autofree char *a0 = g_strconcat (prefix, ".attentions.0", NULL);
  g_autofree char *r1 = g_strconcat (prefix, ".resnets.1", NULL);
  return advance (h, dl_sd_resnet (p, tape, r0, *h, NULL, G, eps, FALSE, error)) &&
         advance (h, dl_sd_vae_attention (p, tape, a0, *h, G, eps, error)) &&
         advance (h, dl_sd_resnet (p, tape, r1, *h, NULL, G, eps, FALSE, error));
}

DlTensor *
dl_vae_encode (DlParams *p, const DlVaeConfig *c, DlTape *tape, DlTensor *image, GHashTable *acts, GError **error)
{
  g_return_val_if_fail (p && c && tape && image, NULL);
  int G = c->norm_num_groups;
  float eps = (float)c->norm_eps;
  int64_t f = (int64_t)1 << (c->n_levels - 1);
  if (image->ndim != 4 || image->shape[1] != c->in_channels || image->shape[2] % f || image->shape[3] % f)
    {
      g_autofree char *s = dl_tensor_describe (image);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "the VAE encodes [B, %d, H, W] images with H and W multiples of %" G_GINT64_FORMAT ", not %s",
                   c->in_channels, f, s);
      return NULL;
    }
  g_autoptr (DlTensor) h = dl_params_conv2d (p, tape, image, "vae.encoder.conv_in", 1, 1, error);
  if (!h)
    return NULL;
  for (int i = 0; i < c->n_levels; i++)
    {
      for (int j = 0; j < c->layers_per_block; j++)
        {
          g_autofree char *rn = g_strdup_printf ("vae.encoder.down_blocks.%d.resnets.%d", i, j);
          if (!advance (&h, dl_sd_resnet (p, tape, rn, h, NULL, G, eps, FALSE, error)))
            return NULL;
        }
      if (i < c->n_levels - 1)
        {
          g_autofree char *dn = g_strdup_printf ("vae.encoder.down_blocks.%d.downsamplers.0.conv", i);
          /* diffusers Downsample2D: zero padding (0, 1, 0, 1), then stride 2 */
          DlConv2dParams down = { .stride = 2, .padding = 0, .padding_end = 1 };
          if (!advance (&h, dl_params_conv2d_with (p, tape, h, dn, &down, error)))
            return NULL;
        }
    }
  if (!mid_block (p, tape, "vae.encoder.mid_block", &h, G, eps, error) ||
      !advance (&h, dl_sd_group_norm (p, tape, "vae.encoder.conv_norm_out", h, G, eps, TRUE, error)) ||
      !advance (&h, dl_params_conv2d (p, tape, h, "vae.encoder.conv_out", 1, 1, error)))
    return NULL;
  keep (acts, "encoder", h);
  if (!advance (&h, dl_params_conv2d (p, tape, h, "vae.quant_conv", 1, 0, error)))
    return NULL;
  keep (acts, "quant_conv", h);
  return g_steal_pointer (&h);
}

DlTensor *
dl_vae_decode (DlParams *p, const DlVaeConfig *c, DlTape *tape, DlTensor *z, GHashTable *acts, GError **error)
{
  g_return_val_if_fail (p && c && tape && z, NULL);
  int G = c->norm_num_groups;
  float eps = (float)c->norm_eps;
  if (z->ndim != 4 || z->shape[1] != c->latent_channels)
    {
      g_autofree char *s = dl_tensor_describe (z);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the VAE decodes [B, %d, h, w] latents, not %s",
                   c->latent_channels, s);
      return NULL;
    }
  g_autoptr (DlTensor) h = dl_params_conv2d (p, tape, z, "vae.post_quant_conv", 1, 0, error);
  if (!h)
    return NULL;
  keep (acts, "post_quant_conv", h);
  if (!advance (&h, dl_params_conv2d (p, tape, h, "vae.decoder.conv_in", 1, 1, error)) ||
      !mid_block (p, tape, "vae.decoder.mid_block", &h, G, eps, error))
    return NULL;
  keep (acts, "decoder.mid_block", h);
  for (int i = 0; i < c->n_levels; i++)
    {
      for (int j = 0; j <= c->layers_per_block; j++)
        {
          g_autofree char *rn = g_strdup_printf ("vae.decoder.up_blocks.%d.resnets.%d", i, j);
          if (!advance (&h, dl_sd_resnet (p, tape, rn, h, NULL, G, eps, FALSE, error)))
            return NULL;
        }
      if (i < c->n_levels - 1)
        {
          g_autofree char *un = g_strdup_printf ("vae.decoder.up_blocks.%d.upsamplers.0.conv", i);
          if (!advance (&h, dl_nn_upsample2x (tape, h, error)) ||
              !advance (&h, dl_params_conv2d (p, tape, h, un, 1, 1, error)))
            return NULL;
        }
    }
  if (!advance (&h, dl_sd_group_norm (p, tape, "vae.decoder.conv_norm_out", h, G, eps, TRUE, error)))
    return NULL;
  return dl_params_conv2d (p, tape, h, "vae.decoder.conv_out", 1, 1, error);
}

/* ---- tiled decoding ----
 *
 * The same idea as diffusers' AutoencoderKL.tiled_decode and the tiled VAE of
 * A1111 (multidiffusion-upscaler) and ComfyUI (VAEDecodeTiled): overlapping
 * latent tiles are decoded one after another, so the activations are those of
 * one tile, and their overlaps are cross-faded.  The fade is ComfyUI's
 * tiled_scale kind: each tile's pixels weigh by a linear ramp over its overlap
 * with each neighbour (a product of one ramp per axis), and the sum is divided
 * by the summed weights.  Tiles all have the requested size (the last one of a
 * row or column is moved back to end at the edge), so every tile runs the same
 * shapes.  The crops and the blend are done on the host: latents are small,
 * and the image is read back anyway. */

/* Tile starts along one axis of `len` latent pixels: n tiles of `tile` with at
 * least `overlap` in common, the last one ending at len. */
static int
tile_starts (int64_t len, int64_t tile, int64_t overlap, int64_t **starts)
{
  int n = 1;
  if (len > tile)
    {
      int64_t stride = tile - overlap;
      n = (int)((len - tile + stride - 1) / stride) + 1;
    }
  *starts = g_new (int64_t, n);
  for (int i = 0; i < n; i++)
    (*starts)[i] = MIN ((int64_t)i * (tile - overlap), MAX (len - tile, 0));
  return n;
}

/* Weights of tile i's pixels along one axis (tile * f of them): rising over
 * the overlap with the previous tile, falling over the one with the next,
 * (k + 0.5) / overlap so that two neighbours' weights add up to 1 and none is 0. */
static void
axis_weights (const int64_t *starts, int n, int i, int64_t tile, int64_t f, float *wt)
{
  int64_t P = tile * f;
  for (int64_t u = 0; u < P; u++)
    wt[u] = 1.0f;
  if (i > 0)
    {
      int64_t lo = (starts[i - 1] + tile - starts[i]) * f;
      for (int64_t u = 0; u < MIN (lo, P); u++)
        wt[u] *= (float)((u + 0.5) / lo);
    }
  if (i < n - 1)
    {
      int64_t ro = (starts[i] + tile - starts[i + 1]) * f;
      for (int64_t u = MAX (P - ro, 0); u < P; u++)
        wt[u] *= (float)((P - u - 0.5) / ro);
    }
}

DlTensor *
dl_vae_decode_tiled (DlParams *p, const DlVaeConfig *c, DlTape *tape, DlTensor *z, int tile, int overlap,
                     GError **error)
{
  g_return_val_if_fail (p && c && tape && z, NULL);
  if (z->ndim != 4 || z->shape[1] != c->latent_channels)
    return dl_vae_decode (p, c, tape, z, NULL, error); /* its error */
  if (tile < 1 || overlap < 0 || overlap >= tile)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "a tiled VAE decode needs tiles of at least 1 latent pixel and an overlap smaller than the tile, "
                   "not %d and %d",
                   tile, overlap);
      return NULL;
    }
  int64_t B = z->shape[0], L = z->shape[1], h = z->shape[2], w = z->shape[3];
  if (tile >= h && tile >= w)
    return dl_vae_decode (p, c, tape, z, NULL, error);
  if (dl_tape_get_enabled (tape))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "the tiled VAE decode is for inference: it needs a tape that records nothing");
      return NULL;
    }
  int64_t f = (int64_t)1 << (c->n_levels - 1);
  int64_t th = MIN ((int64_t)tile, h), tw = MIN ((int64_t)tile, w);
  int64_t H = h * f, W = w * f, C = c->out_channels;
  g_autofree int64_t *ys = NULL, *xs = NULL;
  int ny = tile_starts (h, th, MIN ((int64_t)overlap, th - 1), &ys);
  int nx = tile_starts (w, tw, MIN ((int64_t)overlap, tw - 1), &xs);

  DlRecorder *rec = dl_tape_get_recorder (tape);
  DlDevice *device = dl_tape_get_device (tape);
  if (!dl_recorder_finish (rec, error))
    return NULL;
  g_autofree float *zh = dl_tensor_download_f32 (z, error);
  if (!zh)
    return NULL;
  g_autofree float *acc = g_new0 (float, (gsize)(B * C * H * W));
  g_autofree float *wsum = g_new0 (float, (gsize)(H * W));
  g_autofree float *crop = g_new (float, (gsize)(B * L * th * tw));
  g_autofree float *wy = g_new (float, th *f), *wx = g_new (float, tw *f);
  DlDType out_dtype = dl_tape_get_activation_dtype (tape);
  int64_t zs[4] = { B, L, th, tw };
  for (int iy = 0; iy < ny; iy++)
    for (int ix = 0; ix < nx; ix++)
      {
        int64_t y0 = ys[iy], x0 = xs[ix];
        for (int64_t bl = 0; bl < B * L; bl++)
          for (int64_t y = 0; y < th; y++)
            memcpy (crop + (bl * th + y) * tw, zh + (bl * h + y0 + y) * w + x0, (gsize)tw * sizeof (float));
        g_autoptr (DlTensor) zt = dl_tensor_new (device, "vae tile latents", z->dtype, 4, zs, error);
        if (!zt || !dl_tensor_upload (zt, crop, DL_DTYPE_F32, error))
          return NULL;
        g_autoptr (DlTensor) img = dl_vae_decode (p, c, tape, zt, NULL, error);
        if (!img || !dl_recorder_finish (rec, error))
          return NULL;
        out_dtype = img->dtype;
        g_autofree float *px = dl_tensor_download_f32 (img, error);
        if (!px)
          return NULL;
        g_clear_pointer (&img, dl_tensor_unref);
        axis_weights (ys, ny, iy, th, f, wy);
        axis_weights (xs, nx, ix, tw, f, wx);
        int64_t PH = th * f, PW = tw * f, Y0 = y0 * f, X0 = x0 * f;
        for (int64_t bc = 0; bc < B * C; bc++)
          for (int64_t y = 0; y < PH; y++)
            {
              float *dst = acc + (bc * H + Y0 + y) * W + X0;
              const float *src = px + (bc * PH + y) * PW;
              for (int64_t x = 0; x < PW; x++)
                dst[x] += wy[y] * wx[x] * src[x];
            }
        for (int64_t y = 0; y < PH; y++)
          for (int64_t x = 0; x < PW; x++)
            wsum[(Y0 + y) * W + X0 + x] += wy[y] * wx[x];
      }
  for (int64_t bc = 0; bc < B * C; bc++)
    for (int64_t k = 0; k < H * W; k++)
      acc[bc * H * W + k] /= wsum[k];
  int64_t is[4] = { B, C, H, W };
  g_autoptr (DlTensor) out = dl_tensor_new (device, "vae tiled image", out_dtype, 4, is, error);
  if (!out || !dl_tensor_upload (out, acc, DL_DTYPE_F32, error))
    return NULL;
  return g_steal_pointer (&out);
}

/* One ResnetBlock2D's peak, in units of its activation's pixels.  It lets
 * each tensor go once the next is made (dl-sd-blocks.c): its input (Cin wide)
 * lives through the block, and beside it at most the first GroupNorm and conv1
 * (Cin + Cout), or two Cout-wide tensors, or, where the channels change, conv2,
 * the shortcut and the sum (3 Cout). */
static double
resnet_units (double cin, double cout)
{
  return cin == cout ? 3.0 * cout : MAX (2.0 * cin + cout, cin + 3.0 * cout);
}

/* The mid block's attention at the smallest size (h x w the image's): its
 * input, the tokens, q, k, v and the attention's output (dl_sd_vae_attention),
 * 6 C, and the scores where the head is too wide for the flash kernels (one
 * head of 512 in every SD VAE: B N² f32 twice, N = h w / 64; 2 GiB at 1024²,
 * the encoder's and the decoder's peak there). */
static guint64
mid_attention_bytes (const DlVaeConfig *c, int64_t batch, int64_t h, int64_t w, DlDType dtype)
{
  int s = c->n_levels - 1;
  int64_t ch = c->block_out_channels[s], n = (h >> s) * (w >> s);
  return (guint64)(6.0 * (double)ch * (double)n * (double)batch * (double)dl_dtype_size (dtype)) +
         dl_nn_attention_scores_bytes (batch, n, n, 1, ch, FALSE);
}

/* The encoder as the decoder below: conv_in's input and output, then each
 * level's first block at the level's size, and a downsampler's input beside
 * its output (a quarter the size). */
guint64
dl_vae_encode_activation_bytes (const DlVaeConfig *c, int64_t batch, int64_t h, int64_t w, DlDType dtype)
{
  int n = c->n_levels;
  double units = ((double)c->in_channels + c->block_out_channels[0]) * (double)h * (double)w;
  for (int i = 0; i < n; i++)
    {
      double px = (double)(h >> i) * (double)(w >> i);
      double cout = c->block_out_channels[i];
      double cin = i == 0 ? cout : c->block_out_channels[i - 1];
      units = MAX (units, resnet_units (cin, cout) * px);
      if (i < n - 1)
        units = MAX (units, 1.25 * cout * px);
    }
  return MAX ((guint64)(units * (double)batch * (double)dl_dtype_size (dtype)),
              mid_attention_bytes (c, batch, h, w, dtype));
}

/* Each level's first block is the widest of the level; an upsampler holds its
 * output and its conv's at the next size.  The peak: the last level for every
 * SD VAE (256 -> 128 channels at full size) up to about 1100² in f32 (780² in
 * f16), the mid block's attention beyond. */
guint64
dl_vae_decode_activation_bytes (const DlVaeConfig *c, int64_t batch, int64_t h, int64_t w, DlDType dtype)
{
  int n = c->n_levels;
  double units = 0;
  for (int i = 0; i < n; i++)
    {
      double px = (double)(h << i) * (double)(w << i);
      double cout = c->block_out_channels[n - 1 - i];
      double cin = i == 0 ? cout : c->block_out_channels[n - i];
      units = MAX (units, resnet_units (cin, cout) * px);
      if (i < n - 1)
        units = MAX (units, 2.0 * cout * 4.0 * px);
    }
  return MAX ((guint64)(units * (double)batch * (double)dl_dtype_size (dtype)),
              mid_attention_bytes (c, batch, h << (n - 1), w << (n - 1), dtype));
}

int
dl_vae_decode_choose_tile (const DlVaeConfig *c, int64_t batch, int64_t h, int64_t w, DlDType dtype, guint64 available,
                           int *overlap)
{
  /* a quarter of the free memory is kept back for the arena's chunks (it grows
   * by whole chunks) and for what the estimate leaves out */
  guint64 room = available / 4 * 3;
  int tile = 0;
  if (dl_vae_decode_activation_bytes (c, batch, h, w, dtype) > room)
    {
      /* the largest tile that fits, in steps of 8 latent pixels */
      tile = (int)MAX (h, w) / 8 * 8;
      while (tile > 16 && dl_vae_decode_activation_bytes (c, batch, MIN (tile, h), MIN (tile, w), dtype) > room)
        tile -= 8;
      tile = MAX (tile, 16);
      if (tile >= h && tile >= w)
        tile = 0;
    }
  if (overlap)
    *overlap = tile / 4;
  return tile;
}

int
dl_vae_decode_auto_tile (const DlVaeConfig *c, DlTape *tape, DlTensor *z, int *overlap)
{
  g_return_val_if_fail (c && tape && z, 0);
  if (overlap)
    *overlap = 0;
  if (z->ndim != 4 || dl_tape_get_enabled (tape))
    return 0;
  guint64 available = dl_arena_available_bytes (dl_tape_get_device (tape), dl_tape_get_arena (tape));
  return dl_vae_decode_choose_tile (c, z->shape[0], z->shape[2], z->shape[3], dl_tape_get_activation_dtype (tape),
                                    available, overlap);
}

DlTensor *
dl_vae_decode_auto (DlParams *p, const DlVaeConfig *c, DlTape *tape, DlTensor *z, GError **error)
{
  g_return_val_if_fail (p && c && tape && z, NULL);
  int overlap = 0;
  int tile = dl_vae_decode_auto_tile (c, tape, z, &overlap);
  if (tile == 0)
    return dl_vae_decode (p, c, tape, z, NULL, error);
  g_debug ("VAE decode of %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " latents in tiles of %d (overlap %d)", z->shape[2],
           z->shape[3], tile, overlap);
  return dl_vae_decode_tiled (p, c, tape, z, tile, overlap, error);
}
