#include "dl-keymap-sgm.h"

#include <string.h>

/* If s starts with prefix, the part after it. */
static const char *
after (const char *s, const char *prefix)
{
  gsize n = strlen (prefix);
  return strncmp (s, prefix, n) == 0 ? s + n : NULL;
}

/* A canonical decimal index followed by '.'; -1 otherwise. */
static int
layer_index (const char *s, const char **rest)
{
  int v = 0, n = 0;
  while (g_ascii_isdigit (s[n]) && n < 6)
    v = v * 10 + (s[n++] - '0');
  if (n == 0 || (n > 1 && s[0] == '0') || s[n] != '.')
    return -1;
  *rest = s + n + 1;
  return v;
}

/* inside a residual block (OpenCLIP ResidualAttentionBlock ->
 * transformers CLIPEncoderLayer) */
static const char *const layer_renames[][2] = {
  { "ln_1.", "layer_norm1." },
  { "ln_2.", "layer_norm2." },
  { "mlp.c_fc.", "mlp.fc1." },
  { "mlp.c_proj.", "mlp.fc2." },
  { "attn.out_proj.", "self_attn.out_proj." },
};

/* whole tensors outside the blocks */
static const char *const top_renames[][2] = {
  { "token_embedding.weight", "text_model.embeddings.token_embedding.weight" },
  { "positional_embedding", "text_model.embeddings.position_embedding.weight" },
  { "ln_final.weight", "text_model.final_layer_norm.weight" },
  { "ln_final.bias", "text_model.final_layer_norm.bias" },
};

static const char *const qkv[] = { "q_proj", "k_proj", "v_proj" };

guint
dl_keymap_openclip_to_internal (const char *key, const char *component, DlLdmTarget out[3])
{
  g_return_val_if_fail (key != NULL && component != NULL && out != NULL, 0);
  for (guint i = 0; i < G_N_ELEMENTS (top_renames); i++)
    if (strcmp (key, top_renames[i][0]) == 0)
      {
        out[0].name = g_strdup_printf ("%s.%s", component, top_renames[i][1]);
        out[0].part = DL_LDM_PART_WHOLE;
        return 1;
      }
  /* stored (in, out) for `x @ text_projection`; diffusers transposes it into
   * the Linear weight (convert_open_clip_checkpoint) */
  if (strcmp (key, "text_projection") == 0)
    {
      out[0].name = g_strdup_printf ("%s.text_projection.weight", component);
      out[0].part = DL_LDM_PART_TRANSPOSED;
      return 1;
    }
  const char *r, *rest;
  if (!(r = after (key, "transformer.resblocks.")))
    return 0;
  int i = layer_index (r, &rest);
  if (i < 0)
    return 0;
  for (guint k = 0; k < G_N_ELEMENTS (layer_renames); k++)
    if ((r = after (rest, layer_renames[k][0])))
      {
        out[0].name = g_strdup_printf ("%s.text_model.encoder.layers.%d.%s%s", component, i, layer_renames[k][1], r);
        out[0].part = DL_LDM_PART_WHOLE;
        return 1;
      }
  /* nn.MultiheadAttention's packed projection: q, k, v stacked by rows */
  const char *what = strcmp (rest, "attn.in_proj_weight") == 0 ? "weight"
                     : strcmp (rest, "attn.in_proj_bias") == 0 ? "bias"
                                                               : NULL;
  if (!what)
    return 0;
  for (int k = 0; k < 3; k++)
    {
      out[k].name = g_strdup_printf ("%s.text_model.encoder.layers.%d.self_attn.%s.%s", component, i, qkv[k], what);
      out[k].part = (DlLdmPart)(DL_LDM_PART_Q + k);
    }
  return 3;
}

char *
dl_keymap_internal_to_openclip (const char *name, DlLdmPart *part)
{
  g_return_val_if_fail (name != NULL && part != NULL, NULL);
  *part = DL_LDM_PART_WHOLE;
  for (guint i = 0; i < G_N_ELEMENTS (top_renames); i++)
    if (strcmp (name, top_renames[i][1]) == 0)
      return g_strdup (top_renames[i][0]);
  if (strcmp (name, "text_projection.weight") == 0)
    {
      *part = DL_LDM_PART_TRANSPOSED;
      return g_strdup ("text_projection");
    }
  const char *r, *rest;
  if (!(r = after (name, "text_model.encoder.layers.")))
    return NULL;
  int i = layer_index (r, &rest);
  if (i < 0)
    return NULL;
  for (guint k = 0; k < G_N_ELEMENTS (layer_renames); k++)
    if ((r = after (rest, layer_renames[k][1])))
      return g_strdup_printf ("transformer.resblocks.%d.%s%s", i, layer_renames[k][0], r);
  if (!(r = after (rest, "self_attn.")))
    return NULL;
  for (int k = 0; k < 3; k++)
    {
      const char *t = after (r, qkv[k]);
      if (t && (strcmp (t, ".weight") == 0 || strcmp (t, ".bias") == 0))
        {
          *part = (DlLdmPart)(DL_LDM_PART_Q + k);
          return g_strdup_printf ("transformer.resblocks.%d.attn.in_proj_%s", i, t + 1);
        }
    }
  return NULL;
}
