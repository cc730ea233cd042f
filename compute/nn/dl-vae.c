/* dl-vae.c: see dl-vae.h; structure as CompVis
 * ldm/modules/diffusionmodules/model.py Encoder/Decoder and diffusers
 * models/autoencoders/vae.py (docs/formats.md, “SD 1.5 model numbers” and
 * “Building blocks”). */
#include "dl-config.h"

#include "nn/dl-vae.h"

#include "dl-error.h"
#include "nn/dl-nn.h"
#include "nn/dl-sd-blocks.h"

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
          if (!advance (&h, dl_nn_pad_right_bottom (tape, h, error)) ||
              !advance (&h, dl_params_conv2d (p, tape, h, dn, 2, 0, error)))
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
