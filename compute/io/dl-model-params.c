#include "dl-model-params.h"

#include <string.h>

static const char *const component_names[DL_N_COMPONENTS] = { "unet", "vae", "text_encoder", "text_encoder_2" };

const char *
dl_component_name (DlComponent c)
{
  g_return_val_if_fail (c < DL_N_COMPONENTS, "?");
  return component_names[c];
}

gboolean
dl_component_from_name (const char *internal_name, DlComponent *out)
{
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      gsize n = strlen (component_names[c]);
      if (strncmp (internal_name, component_names[c], n) == 0 && internal_name[n] == '.')
        {
          *out = (DlComponent)c;
          return TRUE;
        }
    }
  return FALSE;
}

gboolean
dl_component_is_text_encoder_param (const char *internal_name)
{
  DlComponent c;
  return dl_component_from_name (internal_name, &c) &&
         (c == DL_COMPONENT_TEXT_ENCODER || c == DL_COMPONENT_TEXT_ENCODER_2);
}

int64_t
dl_param_spec_numel (const DlParamSpec *spec)
{
  int64_t n = 1;
  for (int i = 0; i < spec->ndim; i++)
    n *= spec->shape[i];
  return n;
}

static void
spec_free (DlParamSpec *s)
{
  g_free (s->name);
  g_free (s);
}

typedef struct
{
  GPtrArray *out;
  DlComponent component;
} Builder;

static void G_GNUC_PRINTF (3, 4) add (Builder *b, int ndim_and_shape[5], const char *fmt, ...)
{
  DlParamSpec *s = g_new0 (DlParamSpec, 1);
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *tail = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  s->name = g_strconcat (component_names[b->component], ".", tail, NULL);
  s->component = b->component;
  s->ndim = ndim_and_shape[0];
  for (int i = 0; i < s->ndim; i++)
    s->shape[i] = ndim_and_shape[1 + i];
  g_ptr_array_add (b->out, s);
}

#define S1(a) ((int[5]){ 1, (a) })
#define S2(a, b) ((int[5]){ 2, (a), (b) })
#define S4(a, b, c, d) ((int[5]){ 4, (a), (b), (c), (d) })

/* weight + bias of a Linear, a 3x3 / 1x1 conv or a norm */
static void
linear (Builder *b, const char *p, int out, int in, gboolean bias)
{
  add (b, S2 (out, in), "%s.weight", p);
  if (bias)
    add (b, S1 (out), "%s.bias", p);
}

static void
conv (Builder *b, const char *p, int out, int in, int k)
{
  add (b, S4 (out, in, k, k), "%s.weight", p);
  add (b, S1 (out), "%s.bias", p);
}

static void
norm (Builder *b, const char *p, int c)
{
  add (b, S1 (c), "%s.weight", p);
  add (b, S1 (c), "%s.bias", p);
}

/* ---- UNet ---- */

static void
unet_resnet (Builder *b, const DlUNetConfig *c, const char *p, int ci, int co)
{
  g_autofree char *n1 = g_strdup_printf ("%s.norm1", p), *c1 = g_strdup_printf ("%s.conv1", p),
                  *te = g_strdup_printf ("%s.time_emb_proj", p), *n2 = g_strdup_printf ("%s.norm2", p),
                  *c2 = g_strdup_printf ("%s.conv2", p), *sc = g_strdup_printf ("%s.conv_shortcut", p);
  norm (b, n1, ci);
  conv (b, c1, co, ci, 3);
  linear (b, te, co, c->time_embed_dim, TRUE);
  norm (b, n2, co);
  conv (b, c2, co, co, 3);
  if (ci != co)
    conv (b, sc, co, ci, 1);
}

static void
unet_transformer (Builder *b, const DlUNetConfig *c, const char *p, int ch, int depth)
{
  g_autofree char *nm = g_strdup_printf ("%s.norm", p);
  norm (b, nm, ch);
  const char *proj[2] = { "proj_in", NULL };
  for (int k = 0; k < 2; k++)
    {
      if (k == 1)
        {
          for (int d = 0; d < depth; d++)
            {
              g_autofree char *tb = g_strdup_printf ("%s.transformer_blocks.%d", p, d);
              g_autofree char *q1 = g_strdup_printf ("%s.attn1.to_q", tb), *k1 = g_strdup_printf ("%s.attn1.to_k", tb),
                              *v1 = g_strdup_printf ("%s.attn1.to_v", tb),
                              *o1 = g_strdup_printf ("%s.attn1.to_out.0", tb),
                              *ff0 = g_strdup_printf ("%s.ff.net.0.proj", tb),
                              *ff2 = g_strdup_printf ("%s.ff.net.2", tb), *q2 = g_strdup_printf ("%s.attn2.to_q", tb),
                              *k2 = g_strdup_printf ("%s.attn2.to_k", tb), *v2 = g_strdup_printf ("%s.attn2.to_v", tb),
                              *o2 = g_strdup_printf ("%s.attn2.to_out.0", tb), *n1 = g_strdup_printf ("%s.norm1", tb),
                              *n2 = g_strdup_printf ("%s.norm2", tb), *n3 = g_strdup_printf ("%s.norm3", tb);
              /* state-dict order: attn1, ff, attn2, norm1..3 (registration order of
               * CompVis ldm/modules/attention.py BasicTransformerBlock.__init__) */
              linear (b, q1, ch, ch, FALSE);
              linear (b, k1, ch, ch, FALSE);
              linear (b, v1, ch, ch, FALSE);
              linear (b, o1, ch, ch, TRUE);
              linear (b, ff0, 8 * ch, ch, TRUE);
              linear (b, ff2, ch, 4 * ch, TRUE);
              linear (b, q2, ch, ch, FALSE);
              linear (b, k2, ch, c->cross_attention_dim, FALSE);
              linear (b, v2, ch, c->cross_attention_dim, FALSE);
              linear (b, o2, ch, ch, TRUE);
              norm (b, n1, ch);
              norm (b, n2, ch);
              norm (b, n3, ch);
            }
          proj[1] = "proj_out";
        }
      g_autofree char *pp = g_strdup_printf ("%s.%s", p, proj[k]);
      if (c->use_linear_projection)
        linear (b, pp, ch, ch, TRUE);
      else
        conv (b, pp, ch, ch, 1);
    }
}

static void
unet_specs (Builder *b, const DlUNetConfig *c)
{
  const int L = c->n_levels, lpb = c->layers_per_block;
  const int *C = c->block_out_channels;
  conv (b, "conv_in", C[0], c->in_channels, 3);
  linear (b, "time_embedding.linear_1", c->time_embed_dim, c->time_proj_dim, TRUE);
  linear (b, "time_embedding.linear_2", c->time_embed_dim, c->time_embed_dim, TRUE);
  if (c->addition_time_embed_dim > 0)
    {
      linear (b, "add_embedding.linear_1", c->time_embed_dim, c->projection_class_embeddings_input_dim, TRUE);
      linear (b, "add_embedding.linear_2", c->time_embed_dim, c->time_embed_dim, TRUE);
    }
  for (int lv = 0; lv < L; lv++)
    {
      for (int j = 0; j < lpb; j++)
        {
          g_autofree char *r = g_strdup_printf ("down_blocks.%d.resnets.%d", lv, j);
          unet_resnet (b, c, r, j > 0 ? C[lv] : lv > 0 ? C[lv - 1] : C[0], C[lv]);
          if (c->level_has_attention[lv])
            {
              g_autofree char *a = g_strdup_printf ("down_blocks.%d.attentions.%d", lv, j);
              unet_transformer (b, c, a, C[lv], c->transformer_depth[lv]);
            }
        }
      if (lv < L - 1)
        {
          g_autofree char *d = g_strdup_printf ("down_blocks.%d.downsamplers.0.conv", lv);
          conv (b, d, C[lv], C[lv], 3);
        }
    }
  unet_resnet (b, c, "mid_block.resnets.0", C[L - 1], C[L - 1]);
  unet_transformer (b, c, "mid_block.attentions.0", C[L - 1], c->mid_transformer_depth);
  unet_resnet (b, c, "mid_block.resnets.1", C[L - 1], C[L - 1]);
  int out = C[L - 1];
  for (int ub = 0; ub < L; ub++)
    {
      /* diffusers UNet2DConditionModel.__init__: reversed channels; the last
       * resnet of each up block takes the skip of the matching down block's
       * input */
      int prev = out;
      out = C[L - 1 - ub];
      int skip_in = C[MAX (L - 2 - ub, 0)];
      for (int j = 0; j <= lpb; j++)
        {
          int skip = j == lpb ? skip_in : out;
          int rin = j == 0 ? prev : out;
          g_autofree char *r = g_strdup_printf ("up_blocks.%d.resnets.%d", ub, j);
          unet_resnet (b, c, r, rin + skip, out);
          if (c->level_has_attention[L - 1 - ub])
            {
              g_autofree char *a = g_strdup_printf ("up_blocks.%d.attentions.%d", ub, j);
              unet_transformer (b, c, a, out, c->transformer_depth[L - 1 - ub]);
            }
        }
      if (ub < L - 1)
        {
          g_autofree char *u = g_strdup_printf ("up_blocks.%d.upsamplers.0.conv", ub);
          conv (b, u, out, out, 3);
        }
    }
  norm (b, "conv_norm_out", C[0]);
  conv (b, "conv_out", c->out_channels, C[0], 3);
}

/* ---- VAE ---- */

static void
vae_resnet (Builder *b, const char *p, int ci, int co)
{
  g_autofree char *n1 = g_strdup_printf ("%s.norm1", p), *c1 = g_strdup_printf ("%s.conv1", p),
                  *n2 = g_strdup_printf ("%s.norm2", p), *c2 = g_strdup_printf ("%s.conv2", p),
                  *sc = g_strdup_printf ("%s.conv_shortcut", p);
  norm (b, n1, ci);
  conv (b, c1, co, ci, 3);
  norm (b, n2, co);
  conv (b, c2, co, co, 3);
  if (ci != co)
    conv (b, sc, co, ci, 1);
}

static void
vae_mid (Builder *b, const char *p, int ch)
{
  g_autofree char *r0 = g_strdup_printf ("%s.mid_block.resnets.0", p);
  g_autofree char *r1 = g_strdup_printf ("%s.mid_block.resnets.1", p);
  g_autofree char *a = g_strdup_printf ("%s.mid_block.attentions.0", p);
  vae_resnet (b, r0, ch, ch);
  g_autofree char *gn = g_strdup_printf ("%s.group_norm", a);
  norm (b, gn, ch);
  const char *proj[4] = { "to_q", "to_k", "to_v", "to_out.0" };
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *pp = g_strdup_printf ("%s.%s", a, proj[i]);
      linear (b, pp, ch, ch, TRUE);
      DlParamSpec *w = b->out->pdata[b->out->len - 2];
      w->conv1x1_in_ldm = TRUE;
    }
  vae_resnet (b, r1, ch, ch);
}

static void
vae_specs (Builder *b, const DlVaeConfig *c)
{
  const int L = c->n_levels, lpb = c->layers_per_block;
  const int *C = c->block_out_channels;
  const int z = c->latent_channels;
  conv (b, "encoder.conv_in", C[0], c->in_channels, 3);
  for (int lv = 0; lv < L; lv++)
    {
      for (int j = 0; j < lpb; j++)
        {
          g_autofree char *r = g_strdup_printf ("encoder.down_blocks.%d.resnets.%d", lv, j);
          vae_resnet (b, r, j > 0 ? C[lv] : lv > 0 ? C[lv - 1] : C[0], C[lv]);
        }
      if (lv < L - 1)
        {
          g_autofree char *d = g_strdup_printf ("encoder.down_blocks.%d.downsamplers.0.conv", lv);
          conv (b, d, C[lv], C[lv], 3);
        }
    }
  vae_mid (b, "encoder", C[L - 1]);
  norm (b, "encoder.conv_norm_out", C[L - 1]);
  conv (b, "encoder.conv_out", 2 * z, C[L - 1], 3);
  conv (b, "decoder.conv_in", C[L - 1], z, 3);
  vae_mid (b, "decoder", C[L - 1]);
  int out = C[L - 1];
  for (int ub = 0; ub < L; ub++)
    {
      int prev = out;
      out = C[L - 1 - ub];
      for (int j = 0; j <= lpb; j++)
        {
          g_autofree char *r = g_strdup_printf ("decoder.up_blocks.%d.resnets.%d", ub, j);
          vae_resnet (b, r, j == 0 ? prev : out, out);
        }
      if (ub < L - 1)
        {
          g_autofree char *u = g_strdup_printf ("decoder.up_blocks.%d.upsamplers.0.conv", ub);
          conv (b, u, out, out, 3);
        }
    }
  norm (b, "decoder.conv_norm_out", C[0]);
  conv (b, "decoder.conv_out", c->out_channels, C[0], 3);
  conv (b, "quant_conv", 2 * z, 2 * z, 1);
  conv (b, "post_quant_conv", z, z, 1);
}

/* ---- CLIP text model ---- */

static void
text_specs (Builder *b, const DlTextEncoderConfig *c)
{
  const int H = c->hidden_size;
  add (b, S2 (c->vocab_size, H), "text_model.embeddings.token_embedding.weight");
  add (b, S2 (c->max_positions, H), "text_model.embeddings.position_embedding.weight");
  for (int l = 0; l < c->n_layers; l++)
    {
      const char *proj[4] = { "k_proj", "v_proj", "q_proj", "out_proj" };
      for (int i = 0; i < 4; i++)
        {
          g_autofree char *p = g_strdup_printf ("text_model.encoder.layers.%d.self_attn.%s", l, proj[i]);
          linear (b, p, H, H, TRUE);
        }
      g_autofree char *ln1 = g_strdup_printf ("text_model.encoder.layers.%d.layer_norm1", l);
      g_autofree char *fc1 = g_strdup_printf ("text_model.encoder.layers.%d.mlp.fc1", l);
      g_autofree char *fc2 = g_strdup_printf ("text_model.encoder.layers.%d.mlp.fc2", l);
      g_autofree char *ln2 = g_strdup_printf ("text_model.encoder.layers.%d.layer_norm2", l);
      norm (b, ln1, H);
      linear (b, fc1, c->intermediate_size, H, TRUE);
      linear (b, fc2, H, c->intermediate_size, TRUE);
      norm (b, ln2, H);
    }
  norm (b, "text_model.final_layer_norm", H);
  if (c->projection_dim > 0)
    linear (b, "text_projection", c->projection_dim, H, FALSE);
}

GPtrArray *
dl_model_param_specs (const DlModelConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->unet.n_levels >= 1 && config->unet.n_levels <= DL_MODEL_MAX_LEVELS, NULL);
  g_return_val_if_fail (config->vae.n_levels >= 1 && config->vae.n_levels <= DL_MODEL_MAX_LEVELS, NULL);
  Builder b = { g_ptr_array_new_with_free_func ((GDestroyNotify)spec_free), DL_COMPONENT_UNET };
  unet_specs (&b, &config->unet);
  b.component = DL_COMPONENT_VAE;
  vae_specs (&b, &config->vae);
  b.component = DL_COMPONENT_TEXT_ENCODER;
  text_specs (&b, &config->text_encoder);
  if (config->text_encoder_2.n_layers > 0)
    {
      b.component = DL_COMPONENT_TEXT_ENCODER_2;
      text_specs (&b, &config->text_encoder_2);
    }
  return b.out;
}
