#include "dl-keymap.h"

#include <string.h>

#include "io/dl-keymap-sgm.h"

/* A canonical decimal index ("0", "12"; no sign, no leading zero) followed by
 * '.' or the end.  Returns -1 otherwise; *rest points after the '.'. */
static int
index_at (const char *s, const char **rest)
{
  int v = 0, n = 0;
  while (g_ascii_isdigit (s[n]) && n < 6)
    v = v * 10 + (s[n++] - '0');
  if (n == 0 || (n > 1 && s[0] == '0') || (s[n] != '.' && s[n] != '\0'))
    return -1;
  *rest = s[n] ? s + n + 1 : s + n;
  return v;
}

/* If s starts with prefix, the part after it. */
static const char *
after (const char *s, const char *prefix)
{
  gsize n = strlen (prefix);
  return strncmp (s, prefix, n) == 0 ? s + n : NULL;
}

/* ---- probing ---- */

gboolean
dl_ldm_layout_probe (const char *const *keys, guint n_keys, DlLdmLayout *layout, char **problem)
{
  memset (layout, 0, sizeof *layout);
  int max_in = -1, min_op = G_MAXINT, max_vae = -1;
  g_autoptr (GHashTable) attn = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint i = 0; i < n_keys; i++)
    {
      const char *r, *rest;
      if (after (keys[i], DL_SGM_PREFIX))
        layout->sgm = TRUE;
      if ((r = after (keys[i], DL_LDM_UNET_PREFIX "input_blocks.")))
        {
          int n = index_at (r, &rest);
          if (n < 0 || n > 1000)
            continue;
          max_in = MAX (max_in, n);
          if (after (rest, "0.op."))
            min_op = MIN (min_op, n);
          if (after (rest, "1."))
            g_hash_table_add (attn, GINT_TO_POINTER (n));
        }
      else if ((r = after (keys[i], DL_LDM_VAE_PREFIX "encoder.down.")))
        {
          int n = index_at (r, &rest);
          if (n >= 0 && n < 1000)
            max_vae = MAX (max_vae, n);
        }
    }
  if (max_in < 1)
    {
      *problem = g_strdup ("no UNet blocks (" DL_LDM_UNET_PREFIX "input_blocks.*)");
      return FALSE;
    }
  int lpb = min_op != G_MAXINT ? min_op - 1 : max_in;
  if (lpb < 1 || (max_in + 1) % (lpb + 1) != 0 || (max_in + 1) / (lpb + 1) > DL_MODEL_MAX_LEVELS)
    {
      *problem = g_strdup_printf ("the UNet input blocks (0 to %d, first downsampler at %d) do not form levels", max_in,
                                  min_op == G_MAXINT ? -1 : min_op);
      return FALSE;
    }
  layout->unet_layers_per_block = lpb;
  layout->unet_levels = (max_in + 1) / (lpb + 1);
  for (int b = 0; b < layout->unet_levels; b++)
    layout->unet_level_attention[b] = g_hash_table_contains (attn, GINT_TO_POINTER (1 + b * (lpb + 1)));
  if (max_vae >= DL_MODEL_MAX_LEVELS)
    {
      *problem = g_strdup_printf ("the VAE has %d levels, more than %d", max_vae + 1, DL_MODEL_MAX_LEVELS);
      return FALSE;
    }
  layout->vae_levels = max_vae + 1;
  return TRUE;
}

void
dl_ldm_layout_from_config (const DlModelConfig *config, DlLdmLayout *layout)
{
  memset (layout, 0, sizeof *layout);
  layout->unet_levels = config->unet.n_levels;
  layout->unet_layers_per_block = config->unet.layers_per_block;
  for (int b = 0; b < config->unet.n_levels; b++)
    layout->unet_level_attention[b] = config->unet.level_has_attention[b];
  layout->vae_levels = config->vae.n_levels;
  layout->sgm = dl_model_config_is_sdxl (config);
}

/* ---- LDM -> internal ---- */

static const char *const unet_res_renames[][2] = {
  { "in_layers.0.", "norm1." },  { "in_layers.2.", "conv1." },  { "emb_layers.1.", "time_emb_proj." },
  { "out_layers.0.", "norm2." }, { "out_layers.3.", "conv2." }, { "skip_connection.", "conv_shortcut." },
};

static char *
rename_prefix (const char *rest, const char *const table[][2], guint n, int from)
{
  for (guint i = 0; i < n; i++)
    {
      const char *r = after (rest, table[i][from]);
      if (r)
        return g_strconcat (table[i][1 - from], r, NULL);
    }
  return NULL;
}

static char *
unet_res_to_internal (const char *prefix, const char *rest)
{
  g_autofree char *r = rename_prefix (rest, unet_res_renames, G_N_ELEMENTS (unet_res_renames), 0);
  return r ? g_strconcat ("unet.", prefix, r, NULL) : NULL;
}

static char *
ldm_unet (const char *k, const DlLdmLayout *lo)
{
  const int L = lo->unet_levels, lpb = lo->unet_layers_per_block, per = lpb + 1;
  const char *r, *rest;
  if ((r = after (k, "time_embed.0.")))
    return g_strconcat ("unet.time_embedding.linear_1.", r, NULL);
  if ((r = after (k, "time_embed.2.")))
    return g_strconcat ("unet.time_embedding.linear_2.", r, NULL);
  /* SDXL's added conditioning: SGM's label_emb Sequential(Sequential(Linear,
   * SiLU, Linear)) is diffusers' add_embedding (scripts/convert_diffusers_to_original_sdxl.py) */
  if ((r = after (k, "label_emb.0.0.")))
    return g_strconcat ("unet.add_embedding.linear_1.", r, NULL);
  if ((r = after (k, "label_emb.0.2.")))
    return g_strconcat ("unet.add_embedding.linear_2.", r, NULL);
  if ((r = after (k, "out.0.")))
    return g_strconcat ("unet.conv_norm_out.", r, NULL);
  if ((r = after (k, "out.2.")))
    return g_strconcat ("unet.conv_out.", r, NULL);
  if ((r = after (k, "input_blocks.")))
    {
      int n = index_at (r, &rest);
      if (n < 0)
        return NULL;
      int sub = index_at (rest, &rest);
      if (n == 0)
        return sub == 0 ? g_strconcat ("unet.conv_in.", rest, NULL) : NULL;
      int b = (n - 1) / per, j = (n - 1) % per;
      if (b >= L)
        return NULL;
      g_autofree char *p = NULL;
      if (j < lpb && sub == 0)
        {
          p = g_strdup_printf ("down_blocks.%d.resnets.%d.", b, j);
          return unet_res_to_internal (p, rest);
        }
      if (j < lpb && sub == 1 && lo->unet_level_attention[b])
        return g_strdup_printf ("unet.down_blocks.%d.attentions.%d.%s", b, j, rest);
      if (j == lpb && b < L - 1 && sub == 0 && (r = after (rest, "op.")))
        return g_strdup_printf ("unet.down_blocks.%d.downsamplers.0.conv.%s", b, r);
      return NULL;
    }
  if ((r = after (k, "middle_block.")))
    {
      int sub = index_at (r, &rest);
      if (sub == 0 || sub == 2)
        return unet_res_to_internal (sub == 0 ? "mid_block.resnets.0." : "mid_block.resnets.1.", rest);
      if (sub == 1)
        return g_strconcat ("unet.mid_block.attentions.0.", rest, NULL);
      return NULL;
    }
  if ((r = after (k, "output_blocks.")))
    {
      int n = index_at (r, &rest);
      if (n < 0)
        return NULL;
      int sub = index_at (rest, &rest);
      int b = n / per, j = n % per;
      if (b >= L)
        return NULL;
      gboolean attn = lo->unet_level_attention[L - 1 - b];
      const char *conv_rest = after (rest, "conv.");
      if (sub == 0)
        {
          g_autofree char *p = g_strdup_printf ("up_blocks.%d.resnets.%d.", b, j);
          return unet_res_to_internal (p, rest);
        }
      /* the upsampler follows the last resnet, after its attention if any */
      if (j == lpb && b < L - 1 && conv_rest && sub == (attn ? 2 : 1))
        return g_strdup_printf ("unet.up_blocks.%d.upsamplers.0.conv.%s", b, conv_rest);
      if (sub == 1 && attn)
        return g_strdup_printf ("unet.up_blocks.%d.attentions.%d.%s", b, j, rest);
      return NULL;
    }
  return NULL;
}

static const char *const vae_attn_renames[][2] = {
  { "norm.", "group_norm." }, { "q.", "to_q." }, { "k.", "to_k." }, { "v.", "to_v." }, { "proj_out.", "to_out.0." },
};

static char *
vae_res (const char *rest)
{
  const char *r = after (rest, "nin_shortcut.");
  return r ? g_strconcat ("conv_shortcut.", r, NULL) : g_strdup (rest);
}

static char *
ldm_vae_half (const char *half, const char *k, int L)
{
  const char *r, *rest;
  if ((r = after (k, "mid.block_1.")))
    {
      g_autofree char *t = vae_res (r);
      return g_strdup_printf ("vae.%s.mid_block.resnets.0.%s", half, t);
    }
  if ((r = after (k, "mid.block_2.")))
    {
      g_autofree char *t = vae_res (r);
      return g_strdup_printf ("vae.%s.mid_block.resnets.1.%s", half, t);
    }
  if ((r = after (k, "mid.attn_1.")))
    {
      g_autofree char *t = rename_prefix (r, vae_attn_renames, G_N_ELEMENTS (vae_attn_renames), 0);
      return t ? g_strdup_printf ("vae.%s.mid_block.attentions.0.%s", half, t) : NULL;
    }
  if ((r = after (k, "norm_out.")))
    return g_strdup_printf ("vae.%s.conv_norm_out.%s", half, r);
  if (after (k, "conv_in.") || after (k, "conv_out."))
    return g_strdup_printf ("vae.%s.%s", half, k);
  gboolean enc = strcmp (half, "encoder") == 0;
  if ((r = after (k, enc ? "down." : "up.")))
    {
      int i = index_at (r, &rest);
      if (i < 0 || i >= L)
        return NULL;
      /* the LDM decoder lists its levels from the highest resolution */
      int lv = enc ? i : L - 1 - i;
      const char *blk = enc ? "down_blocks" : "up_blocks";
      if ((r = after (rest, "block.")))
        {
          int j = index_at (r, &rest);
          if (j < 0)
            return NULL;
          g_autofree char *t = vae_res (rest);
          return g_strdup_printf ("vae.%s.%s.%d.resnets.%d.%s", half, blk, lv, j, t);
        }
      if ((r = after (rest, enc ? "downsample.conv." : "upsample.conv.")) && lv < L - 1)
        return g_strdup_printf ("vae.%s.%s.%d.%s.0.conv.%s", half, blk, lv, enc ? "downsamplers" : "upsamplers", r);
    }
  return NULL;
}

static char *
ldm_vae (const char *k, const DlLdmLayout *lo)
{
  const char *r;
  if ((r = after (k, "encoder.")))
    return ldm_vae_half ("encoder", r, lo->vae_levels);
  if ((r = after (k, "decoder.")))
    return ldm_vae_half ("decoder", r, lo->vae_levels);
  if (after (k, "quant_conv.") || after (k, "post_quant_conv."))
    return g_strconcat ("vae.", k, NULL);
  return NULL;
}

/* One name, a whole tensor (or NULL: none). */
static guint
one_target (char *name, DlLdmTarget out[3])
{
  if (!name)
    return 0;
  out[0].name = name;
  out[0].part = DL_LDM_PART_WHOLE;
  return 1;
}

guint
dl_keymap_ldm_to_internal_parts (const char *key, const DlLdmLayout *layout, DlLdmTarget out[3])
{
  g_return_val_if_fail (key != NULL && layout != NULL && out != NULL, 0);
  const char *r;
  if ((r = after (key, DL_LDM_UNET_PREFIX)))
    return one_target (layout->unet_levels > 0 ? ldm_unet (r, layout) : NULL, out);
  if ((r = after (key, DL_LDM_VAE_PREFIX)))
    return one_target (layout->vae_levels > 0 ? ldm_vae (r, layout) : NULL, out);
  if ((r = after (key, DL_LDM_CLIP_PREFIX)))
    {
      if (after (r, "text_model."))
        return one_target (g_strconcat ("text_encoder.", r, NULL), out);
      /* old SD 1.x files spell the CLIP keys without text_model. (A1111
       * checkpoint_dict_replacements_sd1) */
      if (after (r, "embeddings.") || after (r, "encoder.") || after (r, "final_layer_norm."))
        return one_target (g_strconcat ("text_encoder.text_model.", r, NULL), out);
      return 0;
    }
  /* SDXL: CLIP ViT-L under its transformers names (FrozenCLIPEmbedder's
   * .transformer), OpenCLIP bigG under OpenCLIP's (FrozenOpenCLIPEmbedder2's
   * .model) */
  if ((r = after (key, DL_SGM_CLIP_PREFIX)) && after (r, "text_model."))
    return one_target (g_strconcat ("text_encoder.", r, NULL), out);
  if ((r = after (key, DL_SGM_OPENCLIP_PREFIX)))
    return dl_keymap_openclip_to_internal (r, "text_encoder_2", out);
  return 0;
}

char *
dl_keymap_ldm_to_internal (const char *key, const DlLdmLayout *layout)
{
  g_return_val_if_fail (key != NULL && layout != NULL, NULL);
  DlLdmTarget t[3];
  guint n = dl_keymap_ldm_to_internal_parts (key, layout, t);
  if (n == 1)
    return t[0].name;
  for (guint i = 0; i < n; i++)
    g_free (t[i].name);
  return NULL;
}

/* ---- internal -> LDM ---- */

static char *
unet_res_to_ldm (const char *rest)
{
  return rename_prefix (rest, unet_res_renames, G_N_ELEMENTS (unet_res_renames), 1);
}

static char *
internal_unet (const char *k, const DlLdmLayout *lo)
{
  const int L = lo->unet_levels, lpb = lo->unet_layers_per_block, per = lpb + 1;
  const char *r, *rest;
  g_autofree char *t = NULL;
  if ((r = after (k, "conv_in.")))
    return g_strconcat ("input_blocks.0.0.", r, NULL);
  if ((r = after (k, "time_embedding.linear_1.")))
    return g_strconcat ("time_embed.0.", r, NULL);
  if ((r = after (k, "time_embedding.linear_2.")))
    return g_strconcat ("time_embed.2.", r, NULL);
  if ((r = after (k, "add_embedding.linear_1.")))
    return g_strconcat ("label_emb.0.0.", r, NULL);
  if ((r = after (k, "add_embedding.linear_2.")))
    return g_strconcat ("label_emb.0.2.", r, NULL);
  if ((r = after (k, "conv_norm_out.")))
    return g_strconcat ("out.0.", r, NULL);
  if ((r = after (k, "conv_out.")))
    return g_strconcat ("out.2.", r, NULL);
  if ((r = after (k, "mid_block.resnets.")))
    {
      int j = index_at (r, &rest);
      if (j < 0 || j > 1 || !(t = unet_res_to_ldm (rest)))
        return NULL;
      return g_strdup_printf ("middle_block.%d.%s", 2 * j, t);
    }
  if ((r = after (k, "mid_block.attentions.0.")))
    return g_strconcat ("middle_block.1.", r, NULL);
  gboolean down = after (k, "down_blocks.") != NULL;
  if ((r = after (k, down ? "down_blocks." : "up_blocks.")))
    {
      int b = index_at (r, &rest);
      if (b < 0 || b >= L)
        return NULL;
      int base = down ? 1 + b * per : b * per;
      if ((r = after (rest, "resnets.")))
        {
          int j = index_at (r, &rest);
          if (j < 0 || j >= (down ? lpb : per) || !(t = unet_res_to_ldm (rest)))
            return NULL;
          return g_strdup_printf ("%s.%d.0.%s", down ? "input_blocks" : "output_blocks", base + j, t);
        }
      if ((r = after (rest, "attentions.")))
        {
          int j = index_at (r, &rest);
          if (j < 0 || j >= (down ? lpb : per))
            return NULL;
          return g_strdup_printf ("%s.%d.1.%s", down ? "input_blocks" : "output_blocks", base + j, rest);
        }
      if (down && (r = after (rest, "downsamplers.0.conv.")) && b < L - 1)
        return g_strdup_printf ("input_blocks.%d.0.op.%s", (b + 1) * per, r);
      if (!down && (r = after (rest, "upsamplers.0.conv.")) && b < L - 1)
        return g_strdup_printf ("output_blocks.%d.%d.conv.%s", base + lpb, lo->unet_level_attention[L - 1 - b] ? 2 : 1,
                                r);
    }
  return NULL;
}

static char *
internal_vae_res (const char *rest)
{
  const char *r = after (rest, "conv_shortcut.");
  return r ? g_strconcat ("nin_shortcut.", r, NULL) : g_strdup (rest);
}

static char *
internal_vae (const char *k, const DlLdmLayout *lo)
{
  const int L = lo->vae_levels;
  const char *r, *rest;
  if (after (k, "quant_conv.") || after (k, "post_quant_conv."))
    return g_strdup (k);
  gboolean enc = after (k, "encoder.") != NULL;
  const char *half = enc ? "encoder" : "decoder";
  if (!(k = after (k, enc ? "encoder." : "decoder.")))
    return NULL;
  if ((r = after (k, "mid_block.resnets.")))
    {
      int j = index_at (r, &rest);
      if (j < 0 || j > 1)
        return NULL;
      g_autofree char *t = internal_vae_res (rest);
      return g_strdup_printf ("%s.mid.block_%d.%s", half, j + 1, t);
    }
  if ((r = after (k, "mid_block.attentions.0.")))
    {
      g_autofree char *t = rename_prefix (r, vae_attn_renames, G_N_ELEMENTS (vae_attn_renames), 1);
      return t ? g_strdup_printf ("%s.mid.attn_1.%s", half, t) : NULL;
    }
  if ((r = after (k, "conv_norm_out.")))
    return g_strdup_printf ("%s.norm_out.%s", half, r);
  if (after (k, "conv_in.") || after (k, "conv_out."))
    return g_strdup_printf ("%s.%s", half, k);
  if ((r = after (k, enc ? "down_blocks." : "up_blocks.")))
    {
      int lv = index_at (r, &rest);
      if (lv < 0 || lv >= L)
        return NULL;
      int i = enc ? lv : L - 1 - lv;
      if ((r = after (rest, "resnets.")))
        {
          int j = index_at (r, &rest);
          if (j < 0)
            return NULL;
          g_autofree char *t = internal_vae_res (rest);
          return g_strdup_printf ("%s.%s.%d.block.%d.%s", half, enc ? "down" : "up", i, j, t);
        }
      if ((r = after (rest, enc ? "downsamplers.0.conv." : "upsamplers.0.conv.")) && lv < L - 1)
        return g_strdup_printf ("%s.%s.%d.%s.conv.%s", half, enc ? "down" : "up", i, enc ? "downsample" : "upsample",
                                r);
    }
  return NULL;
}

char *
dl_keymap_internal_to_ldm_part (const char *name, const DlLdmLayout *layout, DlLdmPart *part)
{
  g_return_val_if_fail (name != NULL && layout != NULL, NULL);
  DlLdmPart whole = DL_LDM_PART_WHOLE;
  if (!part)
    part = &whole;
  *part = DL_LDM_PART_WHOLE;
  const char *r;
  g_autofree char *t = NULL;
  if ((r = after (name, "unet.")) && (t = internal_unet (r, layout)))
    return g_strconcat (DL_LDM_UNET_PREFIX, t, NULL);
  if ((r = after (name, "vae.")) && (t = internal_vae (r, layout)))
    return g_strconcat (DL_LDM_VAE_PREFIX, t, NULL);
  if ((r = after (name, "text_encoder.")) && after (r, "text_model."))
    return g_strconcat (layout->sgm ? DL_SGM_CLIP_PREFIX : DL_LDM_CLIP_PREFIX, r, NULL);
  if ((r = after (name, "text_encoder_2.")) && layout->sgm && (t = dl_keymap_internal_to_openclip (r, part)))
    return g_strconcat (DL_SGM_OPENCLIP_PREFIX, t, NULL);
  *part = DL_LDM_PART_WHOLE;
  return NULL;
}

char *
dl_keymap_internal_to_ldm (const char *name, const DlLdmLayout *layout)
{
  return dl_keymap_internal_to_ldm_part (name, layout, NULL);
}

/* ---- diffusers ---- */

static const char *const old_vae_attn[][2] = {
  { "query.", "to_q." },
  { "key.", "to_k." },
  { "value.", "to_v." },
  { "proj_attn.", "to_out.0." },
};

char *
dl_keymap_diffusers_to_internal (DlComponent component, const char *key)
{
  g_return_val_if_fail (component < DL_N_COMPONENTS && key != NULL, NULL);
  const char *prefix = dl_component_name (component);
  if (component == DL_COMPONENT_VAE)
    {
      /* diffusers < 0.14 named the mid-block attention projections differently */
      const char *p = strstr (key, "mid_block.attentions.0.");
      if (p)
        {
          const char *tail = p + strlen ("mid_block.attentions.0.");
          g_autofree char *t = rename_prefix (tail, old_vae_attn, G_N_ELEMENTS (old_vae_attn), 0);
          if (t)
            return g_strdup_printf ("%s.%.*s%s", prefix, (int)(tail - key), key, t);
        }
    }
  return g_strconcat (prefix, ".", key, NULL);
}

gboolean
dl_keymap_is_known_extra (const char *key)
{
  static const char *const ddpm[] = {
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
    "model_ema.decay",
    "model_ema.num_updates",
  };
  for (guint i = 0; i < G_N_ELEMENTS (ddpm); i++)
    if (strcmp (key, ddpm[i]) == 0)
      return TRUE;
  /* OpenCLIP's contrastive temperature and its causal-mask buffer (SGM files
   * of SDXL hold them; diffusers single_file_utils drops them) */
  if (strcmp (key, DL_SGM_OPENCLIP_PREFIX "logit_scale") == 0 || strcmp (key, DL_SGM_OPENCLIP_PREFIX "attn_mask") == 0)
    return TRUE;
  return g_str_has_prefix (key, "model_ema.") || g_str_has_suffix (key, "embeddings.position_ids");
}
