/* dl-unet.c: see dl-unet.h; block order as CompVis
 * ldm/modules/diffusionmodules/openaimodel.py UNetModel.forward and diffusers
 * UNet2DConditionModel (docs/formats.md, “UNet block order”). */
#include "dl-config.h"

#include "nn/dl-unet.h"

#include "dl-error.h"
#include "nn/dl-nn.h"
#include "nn/dl-sd-blocks.h"
#include "ops/dl-ops.h"

guint64
dl_unet_inference_activation_bytes (const DlUNetConfig *u, int64_t rows, int64_t lh, int64_t lw, DlDType dtype)
{
  g_return_val_if_fail (u && u->n_levels > 0, 0);
  double skips = (double)lh * lw * u->block_out_channels[0], working = 0;
  for (int l = 0; l < u->n_levels; l++)
    {
      double n = (double)(lh >> l) * (lw >> l), cn = n * u->block_out_channels[l];
      /* the down block's outputs, and its downsampler's */
      skips += u->layers_per_block * cn;
      if (l + 1 < u->n_levels)
        skips += (double)(lh >> (l + 1)) * (lw >> (l + 1)) * u->block_out_channels[l];
      /* a transformer block: x, its norms, q, k, v, attention, projection
       * (8) and the GEGLU's 8C-wide projection and 4C gate (12); an up
       * ResNet: the 2C-wide concatenated input, its norm, two convolutions,
       * the shortcut, and the upsampler's 4x larger output (10) */
      working = MAX (working, (u->level_has_attention[l] ? 20.0 : 10.0) * cn);
    }
  double bytes = (skips + working) * (double)rows * dl_dtype_size (dtype);
  return (guint64)(bytes * 1.25) + (16u << 20);
}

GHashTable *
dl_unet_activations_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
}

static void
keep (const DlUNetOptions *o, const char *name, DlTensor *t)
{
  if (o && o->activations)
    g_hash_table_replace (o->activations, g_strdup (name), dl_tensor_ref (t));
}

/* Replace *h by next (which may be NULL on error). */
static gboolean
advance (DlTensor **h, DlTensor *next)
{
  if (!next)
    return FALSE;
  dl_tensor_unref (*h);
  *h = next;
  return TRUE;
}

static DlTensor *
time_embedding (DlParams *p, const DlUNetConfig *c, DlTape *tape, DlTensor *timesteps, const DlUNetOptions *o,
                GError **error)
{
  int64_t B = timesteps->shape[0];
  int64_t shape[2] = { B, c->time_proj_dim };
  g_autoptr (DlTensor) proj = dl_tape_tensor (tape, "time_proj", dl_tape_get_activation_dtype (tape), 2, shape, error);
  DlTimestepEmbeddingParams tp = DL_TIMESTEP_EMBEDDING_SD;
  tp.flip_sin_to_cos = c->flip_sin_to_cos;
  tp.freq_shift = (float)c->freq_shift;
  if (!proj || !dl_op_timestep_embedding (dl_tape_get_recorder (tape), proj, timesteps, &tp, error))
    return NULL;
  keep (o, "time_proj", proj);
  g_autoptr (DlTensor) l1 = dl_params_linear (p, tape, proj, "unet.time_embedding.linear_1", error);
  g_autoptr (DlTensor) a = l1 ? dl_nn_activation (tape, l1, DL_ACT_SILU, error) : NULL;
  g_autoptr (DlTensor) temb = a ? dl_params_linear (p, tape, a, "unet.time_embedding.linear_2", error) : NULL;
  if (temb)
    keep (o, "time_embedding", temb);
  return g_steal_pointer (&temb);
}

/* SDXL (diffusers UNet2DConditionModel.get_aug_embed, "text_time"): each time
 * id through the timestep sinusoid of width a, appended to the pooled text
 * embedding (text first), through add_embedding; added to the time embedding. */
static DlTensor *
added_embedding (DlParams *p, const DlUNetConfig *c, DlTape *tape, DlTensor *temb, const DlUNetOptions *o,
                 GError **error)
{
  int64_t B = temb->shape[0];
  int a = c->addition_time_embed_dim;
  DlTensor *text = o ? o->text_embeds : NULL, *ids = o ? o->time_ids : NULL;
  int64_t pooled = c->projection_class_embeddings_input_dim - 6 * a;
  if (!text || !ids || text->ndim != 2 || text->shape[0] != B || text->shape[1] != pooled || ids->ndim != 2 ||
      ids->shape[0] != B || ids->shape[1] != 6 || ids->dtype != DL_DTYPE_F32)
    {
      g_autofree char *ts = text ? dl_tensor_describe (text) : g_strdup ("none");
      g_autofree char *is = ids ? dl_tensor_describe (ids) : g_strdup ("none");
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "an SDXL UNet needs text_embeds [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "] and f32 time_ids [%" G_GINT64_FORMAT ", 6], not %s and %s",
                   B, pooled, B, ts, is);
      return NULL;
    }
  int64_t flat_shape[1] = { B * 6 };
  g_autoptr (DlTensor) flat = dl_tensor_reshape (ids, 1, flat_shape, error);
  int64_t proj_shape[2] = { B * 6, a };
  g_autoptr (DlTensor) proj =
    flat ? dl_tape_tensor (tape, "add_time_proj", dl_tape_get_activation_dtype (tape), 2, proj_shape, error) : NULL;
  DlTimestepEmbeddingParams tp = DL_TIMESTEP_EMBEDDING_SD;
  tp.flip_sin_to_cos = c->flip_sin_to_cos;
  tp.freq_shift = (float)c->freq_shift;
  if (!proj || !dl_op_timestep_embedding (dl_tape_get_recorder (tape), proj, flat, &tp, error))
    return NULL;
  keep (o, "add_time_proj", proj);
  int64_t t4[4] = { B, pooled, 1, 1 }, i4[4] = { B, 6 * a, 1, 1 }, in2[2] = { B, pooled + 6 * a };
  g_autoptr (DlTensor) text4 = dl_nn_reshape (tape, text, 4, t4, error);
  g_autoptr (DlTensor) ids4 = text4 ? dl_nn_reshape (tape, proj, 4, i4, error) : NULL;
  g_autoptr (DlTensor) cat4 = ids4 ? dl_nn_concat_channels (tape, text4, ids4, error) : NULL;
  g_autoptr (DlTensor) cat = cat4 ? dl_nn_reshape (tape, cat4, 2, in2, error) : NULL;
  g_autoptr (DlTensor) l1 = cat ? dl_params_linear (p, tape, cat, "unet.add_embedding.linear_1", error) : NULL;
  g_autoptr (DlTensor) act = l1 ? dl_nn_activation (tape, l1, DL_ACT_SILU, error) : NULL;
  g_autoptr (DlTensor) aug = act ? dl_params_linear (p, tape, act, "unet.add_embedding.linear_2", error) : NULL;
  if (!aug)
    return NULL;
  keep (o, "add_embedding", aug);
  g_autoptr (DlTensor) emb = dl_nn_add (tape, temb, aug, error);
  if (emb)
    keep (o, "emb", emb);
  return g_steal_pointer (&emb);
}

DlTensor *
dl_unet_forward (DlParams *params, const DlUNetConfig *c, DlTape *tape, DlTensor *x, DlTensor *timesteps,
                 DlTensor *context, const DlUNetOptions *o, GError **error)
{
  g_return_val_if_fail (params && c && tape && x && timesteps && context, NULL);
  DlParams *p = params;
  int n = c->n_levels;
  int G = c->norm_num_groups;
  float eps = (float)c->norm_eps;
  gboolean ckpt = o && o->checkpoint;
  int64_t down_factor = (int64_t)1 << (n - 1);
  if (x->ndim != 4 || x->shape[1] != c->in_channels || x->shape[2] % down_factor || x->shape[3] % down_factor)
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "the UNet takes [B, %d, H, W] latents with H and W multiples of %" G_GINT64_FORMAT ", not %s",
                   c->in_channels, down_factor, xs);
      return NULL;
    }

  g_autoptr (DlTensor) temb = time_embedding (p, c, tape, timesteps, o, error);
  if (temb && c->addition_time_embed_dim > 0 && !advance (&temb, added_embedding (p, c, tape, temb, o, error)))
    return NULL;
  g_autoptr (DlTensor) temb_act = temb ? dl_nn_activation (tape, temb, DL_ACT_SILU, error) : NULL;
  if (!temb_act)
    return NULL;

  g_autoptr (DlTensor) h = dl_params_conv2d (p, tape, x, "unet.conv_in", 1, 1, error);
  if (!h)
    return NULL;
  keep (o, "conv_in", h);
  g_autoptr (GPtrArray) skips = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  g_ptr_array_add (skips, dl_tensor_ref (h));

  for (int i = 0; i < n; i++)
    {
      for (int j = 0; j < c->layers_per_block; j++)
        {
          g_autofree char *rn = g_strdup_printf ("unet.down_blocks.%d.resnets.%d", i, j);
          if (!advance (&h, dl_sd_resnet (p, tape, rn, h, temb_act, G, eps, ckpt, error)))
            return NULL;
          if (c->level_has_attention[i])
            {
              g_autofree char *an = g_strdup_printf ("unet.down_blocks.%d.attentions.%d", i, j);
              if (!advance (&h, dl_sd_transformer (p, tape, an, h, context, c->attention_heads[i], G,
                                                   c->transformer_depth[i], c->use_linear_projection, ckpt, error)))
                return NULL;
            }
          g_ptr_array_add (skips, dl_tensor_ref (h));
        }
      if (i < n - 1)
        {
          g_autofree char *dn = g_strdup_printf ("unet.down_blocks.%d.downsamplers.0.conv", i);
          if (!advance (&h, dl_params_conv2d (p, tape, h, dn, 2, 1, error)))
            return NULL;
          g_ptr_array_add (skips, dl_tensor_ref (h));
        }
      g_autofree char *act = g_strdup_printf ("down_blocks.%d", i);
      keep (o, act, h);
    }

  if (!advance (&h, dl_sd_resnet (p, tape, "unet.mid_block.resnets.0", h, temb_act, G, eps, ckpt, error)) ||
      !advance (&h, dl_sd_transformer (p, tape, "unet.mid_block.attentions.0", h, context, c->mid_attention_heads, G,
                                       c->mid_transformer_depth, c->use_linear_projection, ckpt, error)) ||
      !advance (&h, dl_sd_resnet (p, tape, "unet.mid_block.resnets.1", h, temb_act, G, eps, ckpt, error)))
    return NULL;
  keep (o, "mid_block", h);

  for (int i = 0; i < n; i++)
    {
      int level = n - 1 - i;
      for (int j = 0; j <= c->layers_per_block; j++)
        {
          g_autoptr (DlTensor) skip = g_ptr_array_steal_index (skips, skips->len - 1);
          if (!advance (&h, dl_nn_concat_channels (tape, h, skip, error)))
            return NULL;
          g_autofree char *rn = g_strdup_printf ("unet.up_blocks.%d.resnets.%d", i, j);
          if (!advance (&h, dl_sd_resnet (p, tape, rn, h, temb_act, G, eps, ckpt, error)))
            return NULL;
          if (c->level_has_attention[level])
            {
              g_autofree char *an = g_strdup_printf ("unet.up_blocks.%d.attentions.%d", i, j);
              if (!advance (&h, dl_sd_transformer (p, tape, an, h, context, c->attention_heads[level], G,
                                                   c->transformer_depth[level], c->use_linear_projection, ckpt, error)))
                return NULL;
            }
        }
      if (i < n - 1)
        {
          g_autofree char *un = g_strdup_printf ("unet.up_blocks.%d.upsamplers.0.conv", i);
          if (!advance (&h, dl_nn_upsample2x (tape, h, error)) ||
              !advance (&h, dl_params_conv2d (p, tape, h, un, 1, 1, error)))
            return NULL;
        }
      g_autofree char *act = g_strdup_printf ("up_blocks.%d", i);
      keep (o, act, h);
    }

  if (o && o->activations)
    {
      if (!advance (&h, dl_sd_group_norm (p, tape, "unet.conv_norm_out", h, G, eps, FALSE, error)))
        return NULL;
      keep (o, "conv_norm_out", h);
      if (!advance (&h, dl_nn_activation (tape, h, DL_ACT_SILU, error)))
        return NULL;
    }
  else if (!advance (&h, dl_sd_group_norm (p, tape, "unet.conv_norm_out", h, G, eps, TRUE, error)))
    {
      return NULL;
    }
  return dl_params_conv2d (p, tape, h, "unet.conv_out", 1, 1, error);
}
