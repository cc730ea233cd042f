/* An LDM config (CompVis v1-inference.yaml and the like) as a configuration
 * source: the keys that say what the weights cannot (head counts,
 * parameterization, the noise schedule, the latent scale).  SDXL's configs
 * from Stability's generative-models (sd_xl_base.yaml) name the UNet
 * network_config rather than unet_config, give transformer_depth per level and
 * the added conditioning's widths (adm_in_channels, the size embedders'
 * outdim). */
#include "dl-config-resolve.h"

#include <string.h>
#include <yaml.h>

#include "dl-error.h"

typedef struct
{
  yaml_document_t doc;
  const char *path;
  GError **error;
} Yaml;

static yaml_node_t *
child (Yaml *y, yaml_node_t *node, const char *key)
{
  if (!node || node->type != YAML_MAPPING_NODE)
    return NULL;
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++)
    {
      yaml_node_t *k = yaml_document_get_node (&y->doc, p->key);
      if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen (key) &&
          memcmp (k->data.scalar.value, key, k->data.scalar.length) == 0)
        return yaml_document_get_node (&y->doc, p->value);
    }
  return NULL;
}

/* "model.params.unet_config.params" from the root */
static yaml_node_t *
at (Yaml *y, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  yaml_node_t *n = yaml_document_get_root_node (&y->doc);
  for (guint i = 0; n && parts[i]; i++)
    n = child (y, n, parts[i]);
  return n;
}

/* NULL for anything but a scalar, or a scalar with a NUL inside */
static char *
scalar (yaml_node_t *n)
{
  if (!n || n->type != YAML_SCALAR_NODE || memchr (n->data.scalar.value, 0, n->data.scalar.length))
    return NULL;
  return g_strndup ((const char *)n->data.scalar.value, n->data.scalar.length);
}

static gboolean G_GNUC_PRINTF (3, 4) bad (Yaml *y, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (y->error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: “%s” %s", y->path, key, msg);
  return FALSE;
}

/* The value of an optional integer key: FALSE on a malformed value (error set),
 * TRUE with *found FALSE when absent. */
static gboolean
get_int (Yaml *y, const char *path, int *out, gboolean *found)
{
  *found = FALSE;
  yaml_node_t *n = at (y, path);
  if (!n)
    return TRUE;
  g_autofree char *s = scalar (n);
  gint64 v;
  if (!s || !g_ascii_string_to_signed (s, 10, G_MININT, G_MAXINT, &v, NULL))
    return bad (y, path, "must be an integer");
  *out = (int)v;
  *found = TRUE;
  return TRUE;
}

static gboolean
get_double (Yaml *y, const char *path, double *out, gboolean *found)
{
  *found = FALSE;
  yaml_node_t *n = at (y, path);
  if (!n)
    return TRUE;
  g_autofree char *s = scalar (n);
  char *end = NULL;
  double v = s ? g_ascii_strtod (s, &end) : 0;
  if (!s || end == s || *end != '\0')
    return bad (y, path, "must be a number");
  *out = v;
  *found = TRUE;
  return TRUE;
}

static gboolean
get_bool (Yaml *y, const char *path, gboolean *out, gboolean *found)
{
  *found = FALSE;
  yaml_node_t *n = at (y, path);
  if (!n)
    return TRUE;
  g_autofree char *s = scalar (n);
  if (s && (g_ascii_strcasecmp (s, "true") == 0 || g_ascii_strcasecmp (s, "yes") == 0))
    *out = TRUE;
  else if (s && (g_ascii_strcasecmp (s, "false") == 0 || g_ascii_strcasecmp (s, "no") == 0))
    *out = FALSE;
  else
    return bad (y, path, "must be true or false");
  *found = TRUE;
  return TRUE;
}

/* A list of integers of at least `min` (channel_mult: 1). */
static gboolean
get_int_list_min (Yaml *y, const char *path, int min, int *out, int *n, gboolean *found)
{
  *found = FALSE;
  yaml_node_t *node = at (y, path);
  if (!node)
    return TRUE;
  if (node->type != YAML_SEQUENCE_NODE)
    return bad (y, path, "must be a list of integers");
  *n = 0;
  for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
    {
      g_autofree char *s = scalar (yaml_document_get_node (&y->doc, *it));
      gint64 v;
      if (*n >= DL_MODEL_MAX_LEVELS || !s || !g_ascii_string_to_signed (s, 10, min, 1 << 20, &v, NULL))
        return bad (y, path, "must be a list of at most %d %s integers", DL_MODEL_MAX_LEVELS,
                    min > 0 ? "positive" : "non-negative");
      out[(*n)++] = (int)v;
    }
  *found = *n > 0;
  return TRUE;
}

static gboolean
get_int_list (Yaml *y, const char *path, int *out, int *n, gboolean *found)
{
  return get_int_list_min (y, path, 1, out, n, found);
}

/* the UNet's parameters: CompVis/SD 2.x unet_config, SGM network_config */
#define UNET_LDM "model.params.unet_config.params."
#define UNET_SGM "model.params.network_config.params."
#define VAE "model.params.first_stage_config.params."

/* transformer_depth: one integer for every level (LDM), or one per level (SGM,
 * where a level without attention may say 0, and the middle block takes the
 * last level's unless transformer_depth_middle says; SGM
 * openaimodel.py UNetModel).  Which levels have attention: those whose
 * downsampling factor 2^level is in attention_resolutions. */
static gboolean
apply_depth (DlConfigResolver *r, Yaml *y, const char *unet, int n_levels)
{
  const char *src = y->path;
  g_autofree char *key = g_strconcat (unet, "transformer_depth", NULL);
  g_autofree char *mid_key = g_strconcat (unet, "transformer_depth_middle", NULL);
  g_autofree char *res_key = g_strconcat (unet, "attention_resolutions", NULL);
  int depth[DL_MODEL_MAX_LEVELS], n = 0, mid, res[DL_MODEL_MAX_LEVELS], n_res = 0;
  gboolean found, have_mid, have_res;
  gboolean attn[DL_MODEL_MAX_LEVELS];
  if (!get_int (y, mid_key, &mid, &have_mid) || !get_int_list (y, res_key, res, &n_res, &have_res))
    return FALSE;
  if (n_levels > 0)
    for (int i = 0; i < n_levels; i++)
      {
        attn[i] = !have_res;
        for (int k = 0; k < n_res; k++)
          attn[i] = attn[i] || res[k] == 1 << i;
      }
  yaml_node_t *node = at (y, key);
  if (node && node->type == YAML_SEQUENCE_NODE)
    {
      if (!get_int_list_min (y, key, 0, depth, &n, &found))
        return FALSE;
      if (n_levels > 0 && n != n_levels)
        return bad (y, key, "lists %d values but the UNet has %d levels", n, n_levels);
      int levels[DL_MODEL_MAX_LEVELS];
      for (int i = 0; i < n; i++)
        {
          if (i < n_levels)
            attn[i] = attn[i] && depth[i] > 0;
          /* a level without attention keeps diffusers' 1 */
          levels[i] = depth[i] > 0 && (i >= n_levels || attn[i]) ? depth[i] : 1;
        }
      if (n > 0)
        {
          dl_config_resolver_set_levels (r, "unet.transformer_depth", levels, n, src);
          if (!have_mid)
            dl_config_resolver_set_int (r, "unet.mid_transformer_depth", depth[n - 1], src);
        }
    }
  else if (node)
    {
      if (!get_int (y, key, &depth[0], &found))
        return FALSE;
      if (depth[0] < 1)
        return bad (y, key, "must be positive");
      dl_config_resolver_set_int (r, "unet.transformer_depth", depth[0], src);
      if (!have_mid)
        dl_config_resolver_set_int (r, "unet.mid_transformer_depth", depth[0], src);
    }
  if (have_mid)
    {
      if (mid < 1)
        return bad (y, mid_key, "must be positive");
      dl_config_resolver_set_int (r, "unet.mid_transformer_depth", mid, src);
    }
  /* only when the file says which levels attend */
  if (n_levels > 0 && (have_res || n > 0))
    {
      int a[DL_MODEL_MAX_LEVELS];
      for (int i = 0; i < n_levels; i++)
        a[i] = attn[i];
      dl_config_resolver_set_levels (r, "unet.level_has_attention", a, n_levels, src);
    }
  return TRUE;
}

/* The size/crop embedders' width: SGM's conditioner lists
 * ConcatTimestepEmbedderND entries with params.outdim (sd_xl_base.yaml: 256). */
static gboolean
apply_time_embed (DlConfigResolver *r, Yaml *y)
{
  const char *path = "model.params.conditioner_config.params.emb_models";
  yaml_node_t *models = at (y, path);
  if (!models || models->type != YAML_SEQUENCE_NODE)
    return TRUE;
  for (yaml_node_item_t *it = models->data.sequence.items.start; it < models->data.sequence.items.top; it++)
    {
      yaml_node_t *m = yaml_document_get_node (&y->doc, *it);
      g_autofree char *target = scalar (child (y, m, "target"));
      if (!target || !g_str_has_suffix (target, "ConcatTimestepEmbedderND"))
        continue;
      g_autofree char *outdim = scalar (child (y, child (y, m, "params"), "outdim"));
      gint64 v;
      if (!outdim || !g_ascii_string_to_signed (outdim, 10, 1, 1 << 20, &v, NULL))
        return bad (y, path, "has a ConcatTimestepEmbedderND without a positive params.outdim");
      dl_config_resolver_set_int (r, "unet.addition_time_embed_dim", (int)v, y->path);
      return TRUE;
    }
  return TRUE;
}

static gboolean
apply (DlConfigResolver *r, Yaml *y)
{
  const char *src = y->path;
  int i;
  double d;
  gboolean b, found;
  const char *UNET = at (y, "model.params.network_config.params") ? UNET_SGM : UNET_LDM;
  static const struct
  {
    gboolean unet; /* under the UNet's parameters */
    const char *key;
    const char *field;
  } ints[] = {
    { FALSE, "model.params.timesteps", "scheduler.num_train_timesteps" },
    { FALSE, "model.params.denoiser_config.params.num_idx", "scheduler.num_train_timesteps" }, /* SGM */
    { FALSE, "model.params.image_size", "unet.sample_size" },
    { TRUE, "in_channels", "unet.in_channels" },
    { TRUE, "out_channels", "unet.out_channels" },
    { TRUE, "num_res_blocks", "unet.layers_per_block" },
    { TRUE, "context_dim", "unet.cross_attention_dim" },
    { TRUE, "adm_in_channels", "unet.projection_class_embeddings_input_dim" }, /* SGM */
    { FALSE, VAE "embed_dim", "vae.latent_channels" },
    { FALSE, VAE "ddconfig.in_channels", "vae.in_channels" },
    { FALSE, VAE "ddconfig.out_ch", "vae.out_channels" },
    { FALSE, VAE "ddconfig.num_res_blocks", "vae.layers_per_block" },
    { FALSE, VAE "ddconfig.resolution", "vae.sample_size" },
  };
  for (guint k = 0; k < G_N_ELEMENTS (ints); k++)
    {
      g_autofree char *key = ints[k].unet ? g_strconcat (UNET, ints[k].key, NULL) : g_strdup (ints[k].key);
      if (!get_int (y, key, &i, &found))
        return FALSE;
      if (found)
        dl_config_resolver_set_int (r, ints[k].field, i, src);
    }
  if (!get_double (y, "model.params.linear_start", &d, &found))
    return FALSE;
  if (found)
    dl_config_resolver_set_double (r, "scheduler.beta_start", d, src);
  if (!get_double (y, "model.params.linear_end", &d, &found))
    return FALSE;
  if (found)
    dl_config_resolver_set_double (r, "scheduler.beta_end", d, src);
  if (!get_double (y, "model.params.scale_factor", &d, &found))
    return FALSE;
  if (found)
    dl_config_resolver_set_double (r, "vae.scaling_factor", d, src);
  g_autofree char *linear_key = g_strconcat (UNET, "use_linear_in_transformer", NULL);
  if (!get_bool (y, linear_key, &b, &found))
    return FALSE;
  if (found)
    dl_config_resolver_set_bool (r, "unet.use_linear_projection", b, src);

  /* LDM calls SD's schedule "linear" (linear in sqrt(beta)), diffusers
   * "scaled_linear"; LDM's "sqrt_linear" is diffusers' "linear" (CompVis
   * ldm/modules/diffusionmodules/util.py make_beta_schedule; diffusers
   * schedulers/scheduling_ddpm.py DDPMScheduler.__init__) */
  g_autofree char *sched = scalar (at (y, "model.params.beta_schedule"));
  if (sched)
    {
      const char *mapped = strcmp (sched, "linear") == 0        ? "scaled_linear"
                           : strcmp (sched, "sqrt_linear") == 0 ? "linear"
                           : strcmp (sched, "cosine") == 0      ? "squaredcos_cap_v2"
                                                                : NULL;
      if (!mapped)
        return bad (y, "model.params.beta_schedule", "is “%s”; expected linear, sqrt_linear or cosine", sched);
      dl_config_resolver_set_string (r, "scheduler.beta_schedule", mapped, src);
    }
  g_autofree char *param = scalar (at (y, "model.params.parameterization"));
  if (param)
    {
      DlPredictionType p;
      if (strcmp (param, "eps") == 0)
        p = DL_PREDICTION_TYPE_EPSILON;
      else if (strcmp (param, "v") == 0)
        p = DL_PREDICTION_TYPE_V;
      else if (strcmp (param, "x0") == 0)
        p = DL_PREDICTION_TYPE_SAMPLE;
      else
        return bad (y, "model.params.parameterization", "is “%s”; expected eps, v or x0", param);
      dl_config_resolver_set_int (r, "scheduler.prediction_type", (int)p, src);
    }

  int mult[DL_MODEL_MAX_LEVELS], n_mult = 0, ch;
  gboolean have_ch;
  g_autofree char *ch_key = g_strconcat (UNET, "model_channels", NULL);
  g_autofree char *mult_key = g_strconcat (UNET, "channel_mult", NULL);
  if (!get_int (y, ch_key, &ch, &have_ch) || !get_int_list (y, mult_key, mult, &n_mult, &found))
    return FALSE;
  if (have_ch && found)
    {
      for (int k = 0; k < n_mult; k++)
        mult[k] *= ch;
      dl_config_resolver_set_levels (r, "unet.block_out_channels", mult, n_mult, src);
    }
  int unet_levels = found ? n_mult : 0;
  if (!get_int (y, VAE "ddconfig.ch", &ch, &have_ch) ||
      !get_int_list (y, VAE "ddconfig.ch_mult", mult, &n_mult, &found))
    return FALSE;
  if (have_ch && found)
    {
      for (int k = 0; k < n_mult; k++)
        mult[k] *= ch;
      dl_config_resolver_set_levels (r, "vae.block_out_channels", mult, n_mult, src);
    }

  /* heads: num_heads (SD 1.x), or num_head_channels = head width (SD 2.x);
   * -1 means "not this one" */
  int heads, head_ch;
  gboolean have_heads, have_head_ch;
  g_autofree char *heads_key = g_strconcat (UNET, "num_heads", NULL);
  g_autofree char *head_ch_key = g_strconcat (UNET, "num_head_channels", NULL);
  if (!get_int (y, heads_key, &heads, &have_heads) || !get_int (y, head_ch_key, &head_ch, &have_head_ch))
    return FALSE;
  DlModelConfig *c = dl_config_resolver_get_config (r);
  int per_level[DL_MODEL_MAX_LEVELS];
  if (have_heads && heads > 0)
    {
      for (int k = 0; k < DL_MODEL_MAX_LEVELS; k++)
        per_level[k] = heads;
      dl_config_resolver_set_levels (r, "unet.attention_heads", per_level, c->unet.n_levels, src);
      dl_config_resolver_set_int (r, "unet.mid_attention_heads", heads, src);
    }
  else if (have_head_ch && head_ch > 0)
    {
      for (int k = 0; k < c->unet.n_levels; k++)
        {
          if (c->unet.block_out_channels[k] % head_ch != 0)
            return bad (y, head_ch_key, "(%d) does not divide the UNet's %d channels", head_ch,
                        c->unet.block_out_channels[k]);
          per_level[k] = c->unet.block_out_channels[k] / head_ch;
        }
      dl_config_resolver_set_levels (r, "unet.attention_heads", per_level, c->unet.n_levels, src);
      if (c->unet.n_levels > 0)
        dl_config_resolver_set_int (r, "unet.mid_attention_heads", per_level[c->unet.n_levels - 1], src);
    }
  else if (have_heads || have_head_ch)
    return bad (y, heads_key, "and num_head_channels are both unset (-1)");
  /* last: a file that fails here has had its scheduler entries read (the
   * family's v-prediction test reads them before the levels are known) */
  int n_levels = c->unet.n_levels > 0 ? c->unet.n_levels : unet_levels;
  return apply_depth (r, y, UNET, n_levels) && apply_time_embed (r, y);
}

gboolean
dl_config_resolver_apply_ldm_yaml (DlConfigResolver *r, const char *path, GError **error)
{
  g_return_val_if_fail (r != NULL && path != NULL, FALSE);
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read model configuration “%s”: %s", path, local->message);
      return FALSE;
    }
  if (len > (1 << 20))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: larger than 1 MiB", path);
      return FALSE;
    }
  yaml_parser_t parser;
  if (!yaml_parser_initialize (&parser))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s”", path);
      return FALSE;
    }
  yaml_parser_set_input_string (&parser, (const unsigned char *)text, len);
  Yaml y = { .path = path, .error = error };
  if (!yaml_parser_load (&parser, &y.doc))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: YAML error at line %zu: %s",
                   path, parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
      yaml_parser_delete (&parser);
      return FALSE;
    }
  gboolean ok;
  if (!at (&y, "model.params"))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "Bad model configuration “%s”: not an LDM config (no model.params mapping)", path);
      ok = FALSE;
    }
  else
    ok = apply (r, &y);
  yaml_document_delete (&y.doc);
  yaml_parser_delete (&parser);
  return ok;
}
