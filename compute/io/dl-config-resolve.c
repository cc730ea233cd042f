#include "dl-config-resolve.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-json-strict.h"

struct _DlConfigResolver
{
  DlModelConfig config;
  DlModelFamily family; /* whose published values fill what no source gives */
  GHashTable *sources;  /* field name -> source (both owned) */
  GPtrArray *warnings;
};

DlConfigResolver *
dl_config_resolver_new (void)
{
  DlConfigResolver *r = g_new0 (DlConfigResolver, 1);
  r->sources = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  r->warnings = g_ptr_array_new_with_free_func (g_free);
  return r;
}

void
dl_config_resolver_free (DlConfigResolver *r)
{
  if (!r)
    return;
  g_hash_table_unref (r->sources);
  g_ptr_array_unref (r->warnings);
  g_free (r);
}

void
dl_config_resolver_set_family (DlConfigResolver *r, DlModelFamily family)
{
  r->family = family;
}

DlModelConfig *
dl_config_resolver_get_config (DlConfigResolver *r)
{
  return &r->config;
}

const char *
dl_config_resolver_get_source (DlConfigResolver *r, const char *field)
{
  return g_hash_table_lookup (r->sources, field);
}

gboolean
dl_config_resolver_is_set (DlConfigResolver *r, const char *field)
{
  return g_hash_table_contains (r->sources, field);
}

GPtrArray *
dl_config_resolver_get_warnings (DlConfigResolver *r)
{
  return r->warnings;
}

/* Store a candidate that `write` puts into a copy of the config: taken when the
 * field is unset, compared with the weights' value otherwise. */
static void
offer (DlConfigResolver *r, int idx, const char *source, void (*write) (gpointer field, gconstpointer value, int n),
       gconstpointer value, int n)
{
  g_return_if_fail (idx >= 0);
  const char *name = dl_model_config_field_name ((guint)idx);
  const char *had = g_hash_table_lookup (r->sources, name);
  if (had && strcmp (had, DL_CONFIG_SOURCE_WEIGHTS) != 0)
    return; /* an earlier config source already decided */
  DlModelConfig tmp = r->config;
  write (dl_model_config_field_ptr (&tmp, (guint)idx), value, n);
  if (had)
    {
      g_autofree char *a = dl_model_config_field_to_string (&r->config, (guint)idx);
      g_autofree char *b = dl_model_config_field_to_string (&tmp, (guint)idx);
      if (strcmp (a, b) != 0)
        g_ptr_array_add (r->warnings, g_strdup_printf ("%s gives %s = %s, but the weights have %s; using the weights",
                                                       source, name, b, a));
      return;
    }
  r->config = tmp;
  g_hash_table_insert (r->sources, g_strdup (name), g_strdup (source));
}

static void
write_int (gpointer f, gconstpointer v, int n)
{
  *(int *)f = *(const int *)v;
}

static void
write_double (gpointer f, gconstpointer v, int n)
{
  *(double *)f = *(const double *)v;
}

static void
write_levels (gpointer f, gconstpointer v, int n)
{
  memset (f, 0, sizeof (int) * DL_MODEL_MAX_LEVELS);
  memcpy (f, v, sizeof (int) * MIN (n, DL_MODEL_MAX_LEVELS));
}

typedef struct
{
  const char *text;
  gsize size;
} StringValue;

static void
write_string (gpointer f, gconstpointer v, int n)
{
  const StringValue *s = v;
  g_strlcpy (f, s->text, s->size);
}

void
dl_config_resolver_set_int (DlConfigResolver *r, const char *field, int value, const char *source)
{
  int idx = dl_model_config_field_index (field);
  g_return_if_fail (idx >= 0);
  if (dl_model_config_field_type ((guint)idx) == DL_FIELD_INT_LEVELS)
    {
      /* one value for every level */
      int v[DL_MODEL_MAX_LEVELS];
      for (int i = 0; i < DL_MODEL_MAX_LEVELS; i++)
        v[i] = value;
      offer (r, idx, source, write_levels, v, DL_MODEL_MAX_LEVELS);
      return;
    }
  /* gboolean and the enums are int-sized too */
  offer (r, idx, source, write_int, &value, 1);
}

void
dl_config_resolver_set_bool (DlConfigResolver *r, const char *field, gboolean value, const char *source)
{
  dl_config_resolver_set_int (r, field, value ? TRUE : FALSE, source);
}

void
dl_config_resolver_set_double (DlConfigResolver *r, const char *field, double value, const char *source)
{
  int idx = dl_model_config_field_index (field);
  g_return_if_fail (idx >= 0 && dl_model_config_field_type ((guint)idx) == DL_FIELD_DOUBLE);
  offer (r, idx, source, write_double, &value, 1);
}

void
dl_config_resolver_set_levels (DlConfigResolver *r, const char *field, const int *values, int n, const char *source)
{
  int idx = dl_model_config_field_index (field);
  g_return_if_fail (idx >= 0 && n >= 0 && n <= DL_MODEL_MAX_LEVELS);
  offer (r, idx, source, write_levels, values, n);
}

static void
set_string (DlConfigResolver *r, int idx, const char *text, gsize size, const char *source)
{
  StringValue s = { text, size };
  offer (r, idx, source, write_string, &s, 1);
}

gboolean
dl_config_resolver_set_string (DlConfigResolver *r, const char *field, const char *value, const char *source)
{
  int idx = dl_model_config_field_index (field);
  g_return_val_if_fail (idx >= 0 && dl_model_config_field_type ((guint)idx) == DL_FIELD_STRING, FALSE);
  gsize size = strcmp (field, "scheduler.beta_schedule") == 0 ? sizeof r->config.scheduler.beta_schedule
                                                              : sizeof r->config.scheduler.timestep_spacing;
  if (strlen (value) >= size)
    return FALSE;
  set_string (r, idx, value, size, source);
  return TRUE;
}

/* ---- errors ---- */

static gboolean G_GNUC_PRINTF (4, 5) bad (GError **error, const char *file, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: “%s” %s", file, key, msg);
  return FALSE;
}

/* ---- diffusers config.json ---- */

static gboolean
json_int (JsonNode *n, int *out)
{
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < G_MININT || v > G_MAXINT)
    return FALSE;
  *out = (int)v;
  return TRUE;
}

static int
levels_of (DlConfigResolver *r, const char *field)
{
  int idx = dl_model_config_field_index (field);
  return dl_model_config_field_levels (&r->config, (guint)idx);
}

/* A JSON value for a field of any type; JSON null means "not given". */
static gboolean
apply_json (DlConfigResolver *r, const char *field, JsonNode *n, const char *file, const char *key, GError **error)
{
  if (JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  int idx = dl_model_config_field_index (field);
  g_return_val_if_fail (idx >= 0, FALSE);
  switch (dl_model_config_field_type ((guint)idx))
    {
    case DL_FIELD_INT:
      {
        int v;
        if (!json_int (n, &v))
          return bad (error, file, key, "must be an integer");
        dl_config_resolver_set_int (r, field, v, file);
        return TRUE;
      }
    case DL_FIELD_DOUBLE:
      {
        GType t = JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;
        if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
          return bad (error, file, key, "must be a number");
        dl_config_resolver_set_double (r, field, json_node_get_double (n), file);
        return TRUE;
      }
    case DL_FIELD_BOOL:
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
        return bad (error, file, key, "must be true or false");
      dl_config_resolver_set_bool (r, field, json_node_get_boolean (n), file);
      return TRUE;
    case DL_FIELD_STRING:
    case DL_FIELD_PREDICTION:
    case DL_FIELD_ACTIVATION:
      {
        if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
          return bad (error, file, key, "must be a string");
        const char *s = json_node_get_string (n);
        if (dl_model_config_field_type ((guint)idx) == DL_FIELD_PREDICTION)
          {
            DlPredictionType p;
            if (strcmp (s, "epsilon") == 0)
              p = DL_PREDICTION_TYPE_EPSILON;
            else if (strcmp (s, "v_prediction") == 0)
              p = DL_PREDICTION_TYPE_V;
            else if (strcmp (s, "sample") == 0)
              p = DL_PREDICTION_TYPE_SAMPLE;
            else
              return bad (error, file, key, "is “%s”; expected epsilon, v_prediction or sample", s);
            dl_config_resolver_set_int (r, field, (int)p, file);
          }
        else if (dl_model_config_field_type ((guint)idx) == DL_FIELD_ACTIVATION)
          {
            if (strcmp (s, "quick_gelu") != 0 && strcmp (s, "gelu") != 0)
              return bad (error, file, key, "is “%s”; Dreamloom supports quick_gelu and gelu", s);
            dl_config_resolver_set_int (r, field,
                                        strcmp (s, "gelu") == 0 ? DL_HIDDEN_ACT_GELU : DL_HIDDEN_ACT_QUICK_GELU, file);
          }
        else
          {
            gsize size = strcmp (field, "scheduler.beta_schedule") == 0 ? sizeof r->config.scheduler.beta_schedule
                                                                        : sizeof r->config.scheduler.timestep_spacing;
            if (strlen (s) >= size)
              return bad (error, file, key, "is too long");
            set_string (r, idx, s, size, file);
          }
        return TRUE;
      }
    case DL_FIELD_INT_LEVELS:
      {
        int n_levels = levels_of (r, field);
        int v[DL_MODEL_MAX_LEVELS] = { 0 };
        int count;
        if (json_int (n, &v[0]))
          {
            for (int i = 1; i < n_levels; i++)
              v[i] = v[0];
            count = MAX (n_levels, 1);
          }
        else if (JSON_NODE_HOLDS_ARRAY (n))
          {
            JsonArray *a = json_node_get_array (n);
            count = (int)json_array_get_length (a);
            if (count < 1 || count > DL_MODEL_MAX_LEVELS)
              return bad (error, file, key, "must list 1 to %d values", DL_MODEL_MAX_LEVELS);
            for (int i = 0; i < count; i++)
              if (!json_int (json_array_get_element (a, (guint)i), &v[i]))
                return bad (error, file, key, "must be a list of integers");
          }
        else
          return bad (error, file, key, "must be an integer or a list of integers");
        if (count != n_levels &&
            (strcmp (field, "unet.attention_heads") == 0 || strcmp (field, "unet.transformer_depth") == 0))
          return bad (error, file, key, "lists %d values but the UNet has %d levels", count, n_levels);
        dl_config_resolver_set_levels (r, field, v, count, file);
        return TRUE;
      }
    default:
      g_return_val_if_reached (FALSE);
    }
}

typedef struct
{
  const char *key;
  const char *field; /* NULL: handled specially */
} KeyMap;

static const KeyMap unet_keys[] = {
  { "in_channels", "unet.in_channels" },
  { "out_channels", "unet.out_channels" },
  { "block_out_channels", "unet.block_out_channels" },
  { "layers_per_block", "unet.layers_per_block" },
  { "cross_attention_dim", "unet.cross_attention_dim" },
  { "use_linear_projection", "unet.use_linear_projection" },
  { "upcast_attention", "unet.upcast_attention" },
  { "norm_num_groups", "unet.norm_num_groups" },
  { "norm_eps", "unet.norm_eps" },
  { "flip_sin_to_cos", "unet.flip_sin_to_cos" },
  { "freq_shift", "unet.freq_shift" },
  { "sample_size", "unet.sample_size" },
  { "time_embedding_dim", "unet.time_embed_dim" },
  { "addition_time_embed_dim", "unet.addition_time_embed_dim" },
  { "projection_class_embeddings_input_dim", "unet.projection_class_embeddings_input_dim" },
};

static const KeyMap vae_keys[] = {
  { "in_channels", "vae.in_channels" },           { "out_channels", "vae.out_channels" },
  { "latent_channels", "vae.latent_channels" },   { "block_out_channels", "vae.block_out_channels" },
  { "layers_per_block", "vae.layers_per_block" }, { "norm_num_groups", "vae.norm_num_groups" },
  { "scaling_factor", "vae.scaling_factor" },     { "sample_size", "vae.sample_size" },
  { "force_upcast", "vae.force_upcast" },
};

static const KeyMap text_keys[] = {
  { "vocab_size", "text_encoder.vocab_size" },
  { "hidden_size", "text_encoder.hidden_size" },
  { "num_hidden_layers", "text_encoder.n_layers" },
  { "num_attention_heads", "text_encoder.n_heads" },
  { "intermediate_size", "text_encoder.intermediate_size" },
  { "max_position_embeddings", "text_encoder.max_positions" },
  { "layer_norm_eps", "text_encoder.layer_norm_eps" },
  { "hidden_act", "text_encoder.hidden_act" },
};

/* text_encoder_2/config.json (CLIPTextModelWithProjection); text_encoder's
 * projection_dim is not read: CLIPTextModel has no projection whatever its
 * config says */
static const KeyMap text2_keys[] = {
  { "vocab_size", "text_encoder_2.vocab_size" },
  { "hidden_size", "text_encoder_2.hidden_size" },
  { "num_hidden_layers", "text_encoder_2.n_layers" },
  { "num_attention_heads", "text_encoder_2.n_heads" },
  { "intermediate_size", "text_encoder_2.intermediate_size" },
  { "max_position_embeddings", "text_encoder_2.max_positions" },
  { "layer_norm_eps", "text_encoder_2.layer_norm_eps" },
  { "hidden_act", "text_encoder_2.hidden_act" },
  { "projection_dim", "text_encoder_2.projection_dim" },
};

static const KeyMap scheduler_keys[] = {
  { "num_train_timesteps", "scheduler.num_train_timesteps" },
  { "beta_start", "scheduler.beta_start" },
  { "beta_end", "scheduler.beta_end" },
  { "beta_schedule", "scheduler.beta_schedule" },
  { "prediction_type", "scheduler.prediction_type" },
  { "steps_offset", "scheduler.steps_offset" },
  { "clip_sample", "scheduler.clip_sample" },
  { "set_alpha_to_one", "scheduler.set_alpha_to_one" },
  { "timestep_spacing", "scheduler.timestep_spacing" },
};

/* The UNet keys whose meaning is not a plain value. */
static gboolean
apply_unet_special (DlConfigResolver *r, JsonObject *o, const char *file, GError **error)
{
  /* diffusers: num_attention_heads = num_attention_heads or attention_head_dim
   * (attention_head_dim holds the head count in SD 1.x/2.x configs) */
  const char *heads_key = "num_attention_heads";
  JsonNode *heads = json_object_get_member (o, heads_key);
  if (!heads || JSON_NODE_HOLDS_NULL (heads))
    heads = json_object_get_member (o, heads_key = "attention_head_dim");
  if (heads && !JSON_NODE_HOLDS_NULL (heads))
    {
      if (!apply_json (r, "unet.attention_heads", heads, file, heads_key, error))
        return FALSE;
      /* the mid block takes the last level's count */
      int mid;
      if (json_int (heads, &mid))
        dl_config_resolver_set_int (r, "unet.mid_attention_heads", mid, file);
      else if (JSON_NODE_HOLDS_ARRAY (heads))
        {
          JsonArray *a = json_node_get_array (heads);
          if (json_int (json_array_get_element (a, json_array_get_length (a) - 1), &mid))
            dl_config_resolver_set_int (r, "unet.mid_attention_heads", mid, file);
        }
    }

  JsonNode *types = json_object_get_member (o, "down_block_types");
  if (types && !JSON_NODE_HOLDS_NULL (types))
    {
      if (!JSON_NODE_HOLDS_ARRAY (types))
        return bad (error, file, "down_block_types", "must be a list of block names");
      JsonArray *a = json_node_get_array (types);
      guint count = json_array_get_length (a);
      if (count < 1 || count > DL_MODEL_MAX_LEVELS)
        return bad (error, file, "down_block_types", "must list 1 to %d blocks", DL_MODEL_MAX_LEVELS);
      int attn[DL_MODEL_MAX_LEVELS] = { 0 };
      for (guint i = 0; i < count; i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          const char *s = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_STRING
                            ? json_node_get_string (e)
                            : NULL;
          if (g_strcmp0 (s, "CrossAttnDownBlock2D") == 0)
            attn[i] = TRUE;
          else if (g_strcmp0 (s, "DownBlock2D") != 0)
            return bad (error, file, "down_block_types", "has “%s”; SD 1.x uses CrossAttnDownBlock2D and DownBlock2D",
                        s ? s : "(not a string)");
        }
      dl_config_resolver_set_levels (r, "unet.level_has_attention", attn, (int)count, file);
    }

  /* diffusers: an int or one entry per level; the mid block takes the last
   * level's (UNet2DConditionModel.__init__) */
  JsonNode *depth = json_object_get_member (o, "transformer_layers_per_block");
  if (depth && !JSON_NODE_HOLDS_NULL (depth))
    {
      if (!apply_json (r, "unet.transformer_depth", depth, file, "transformer_layers_per_block", error))
        return FALSE;
      int mid;
      if (json_int (depth, &mid))
        dl_config_resolver_set_int (r, "unet.mid_transformer_depth", mid, file);
      else if (JSON_NODE_HOLDS_ARRAY (depth))
        {
          JsonArray *a = json_node_get_array (depth);
          if (json_int (json_array_get_element (a, json_array_get_length (a) - 1), &mid))
            dl_config_resolver_set_int (r, "unet.mid_transformer_depth", mid, file);
        }
    }
  JsonNode *add = json_object_get_member (o, "addition_embed_type");
  if (add && !JSON_NODE_HOLDS_NULL (add) &&
      (!JSON_NODE_HOLDS_VALUE (add) || json_node_get_value_type (add) != G_TYPE_STRING ||
       strcmp (json_node_get_string (add), "text_time") != 0))
    return bad (error, file, "addition_embed_type", "is not null or “text_time” (SDXL)");

  JsonNode *mid = json_object_get_member (o, "mid_block_type");
  if (mid && !JSON_NODE_HOLDS_NULL (mid) &&
      (!JSON_NODE_HOLDS_VALUE (mid) || json_node_get_value_type (mid) != G_TYPE_STRING ||
       strcmp (json_node_get_string (mid), "UNetMidBlock2DCrossAttn") != 0))
    return bad (error, file, "mid_block_type", "is not UNetMidBlock2DCrossAttn, the SD 1.x mid block");
  JsonNode *temb = json_object_get_member (o, "time_embedding_type");
  if (temb && !JSON_NODE_HOLDS_NULL (temb) &&
      (!JSON_NODE_HOLDS_VALUE (temb) || json_node_get_value_type (temb) != G_TYPE_STRING ||
       strcmp (json_node_get_string (temb), "positional") != 0))
    return bad (error, file, "time_embedding_type", "is not “positional”, the SD 1.x time embedding");
  return TRUE;
}

static JsonParser *
load_json_object (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read model configuration “%s”: %s", path, local->message);
      return NULL;
    }
  g_autofree char *problem = NULL;
  g_autoptr (JsonParser) parser = len > (1 << 20) ? NULL : dl_json_parse_strict (text, len, 32, &problem);
  if (!parser)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: %s", path,
                   problem ? problem : "larger than 1 MiB");
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration “%s”: not a JSON object", path);
      return NULL;
    }
  return g_steal_pointer (&parser);
}

static gboolean
apply_json_file (DlConfigResolver *r, const char *path, const KeyMap *map, guint n_map, gboolean unet, GError **error)
{
  g_autoptr (JsonParser) parser = load_json_object (path, error);
  if (!parser)
    return FALSE;
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  for (guint i = 0; i < n_map; i++)
    {
      JsonNode *n = json_object_get_member (o, map[i].key);
      if (n && !apply_json (r, map[i].field, n, path, map[i].key, error))
        return FALSE;
    }
  if (unet && !apply_unet_special (r, o, path, error))
    return FALSE;
  if (!unet && json_object_has_member (o, "trained_betas") && !json_object_get_null_member (o, "trained_betas"))
    return bad (error, path, "trained_betas", "is set; Dreamloom computes betas from beta_start/beta_end only");
  return TRUE;
}

gboolean
dl_config_resolver_apply_diffusers_dir (DlConfigResolver *r, const char *dir, GError **error)
{
  g_return_val_if_fail (r != NULL && dir != NULL, FALSE);
  static const struct
  {
    const char *file;
    const KeyMap *map;
    guint n;
  } files[] = {
    { "unet/config.json", unet_keys, G_N_ELEMENTS (unet_keys) },
    { "vae/config.json", vae_keys, G_N_ELEMENTS (vae_keys) },
    { "text_encoder/config.json", text_keys, G_N_ELEMENTS (text_keys) },
    { "text_encoder_2/config.json", text2_keys, G_N_ELEMENTS (text2_keys) },
    { "scheduler/scheduler_config.json", scheduler_keys, G_N_ELEMENTS (scheduler_keys) },
  };
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Model configuration folder “%s” does not exist", dir);
      return FALSE;
    }
  guint found = 0;
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (dir, files[i].file, NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      found++;
      if (!apply_json_file (r, path, files[i].map, files[i].n, i == 0, error))
        return FALSE;
    }
  if (found == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a diffusers configuration folder: it has none of unet/config.json, "
                   "vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json",
                   dir);
      return FALSE;
    }
  return TRUE;
}

/* ---- defaults and checks ---- */

static void
default_field (DlConfigResolver *r, const DlModelConfig *def, guint idx)
{
  const char *name = dl_model_config_field_name (idx);
  if (g_hash_table_contains (r->sources, name))
    return;
  DlFieldType t = dl_model_config_field_type (idx);
  gsize size = t == DL_FIELD_DOUBLE ? sizeof (double)
               : t == DL_FIELD_STRING
                 ? (strcmp (name, "scheduler.beta_schedule") == 0 ? sizeof def->scheduler.beta_schedule
                                                                  : sizeof def->scheduler.timestep_spacing)
               : (t == DL_FIELD_INT_LEVELS || t == DL_FIELD_BOOL_LEVELS) ? sizeof (int) * DL_MODEL_MAX_LEVELS
                                                                         : sizeof (int);
  memcpy (dl_model_config_field_ptr (&r->config, idx), dl_model_config_field_ptr ((DlModelConfig *)def, idx), size);
  gboolean sdxl = r->family == DL_FAMILY_SDXL || r->family == DL_FAMILY_SDXL_INPAINT;
  g_hash_table_insert (r->sources, g_strdup (name),
                       g_strdup (sdxl ? DL_CONFIG_SOURCE_DEFAULT_SDXL : DL_CONFIG_SOURCE_DEFAULT));
}

static gboolean G_GNUC_PRINTF (4, 5)
  invalid (DlConfigResolver *r, GError **error, const char *field, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  int idx = dl_model_config_field_index (field);
  g_autofree char *value = dl_model_config_field_to_string (&r->config, (guint)idx);
  const char *src = dl_config_resolver_get_source (r, field);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad model configuration: %s = %s (from %s) %s", field, value,
               src ? src : "nowhere", msg);
  return FALSE;
}

gboolean
dl_config_resolver_finish (DlConfigResolver *r, GError **error)
{
  g_return_val_if_fail (r != NULL, FALSE);
  DlModelConfig def;
  gboolean sdxl = r->family == DL_FAMILY_SDXL || r->family == DL_FAMILY_SDXL_INPAINT;
  dl_model_config_init_family (&def, r->family);
  DlUNetConfig *u = &r->config.unet;
  DlVaeConfig *v = &r->config.vae;
  DlTextEncoderConfig *t = &r->config.text_encoder;
  DlTextEncoderConfig *t2 = &r->config.text_encoder_2;
  DlSchedulerConfig *s = &r->config.scheduler;

  /* defaults that depend on the shapes: SD 1.x has 8 heads per transformer,
   * SDXL heads of width 64 (its [5, 10, 20] for [320, 640, 1280] channels) */
  for (int i = 0; i < DL_MODEL_MAX_LEVELS; i++)
    def.unet.attention_heads[i] = sdxl ? MAX (u->block_out_channels[i] / 64, 1) : 8;
  if (sdxl && u->n_levels > 0)
    def.unet.mid_attention_heads = def.unet.attention_heads[u->n_levels - 1];
  const char *heads_src = dl_config_resolver_get_source (r, "unet.attention_heads");
  if (heads_src && u->n_levels > 0)
    dl_config_resolver_set_int (r, "unet.mid_attention_heads", u->attention_heads[u->n_levels - 1], heads_src);
  const char *depth_src = dl_config_resolver_get_source (r, "unet.transformer_depth");
  if (depth_src && u->n_levels > 0)
    dl_config_resolver_set_int (r, "unet.mid_transformer_depth", u->transformer_depth[u->n_levels - 1], depth_src);
  /* CLIP's head width is 64; a width that is not a multiple has no default */
  if (dl_config_resolver_is_set (r, "text_encoder.hidden_size") &&
      !dl_config_resolver_is_set (r, "text_encoder.n_heads"))
    def.text_encoder.n_heads = t->hidden_size % 64 == 0 ? t->hidden_size / 64 : 0;
  if (dl_config_resolver_is_set (r, "text_encoder_2.hidden_size") &&
      !dl_config_resolver_is_set (r, "text_encoder_2.n_heads"))
    def.text_encoder_2.n_heads = t2->hidden_size % 64 == 0 ? t2->hidden_size / 64 : 0;
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    default_field (r, &def, i);

  /* checks */
  if (u->n_levels < 1 || u->n_levels > DL_MODEL_MAX_LEVELS)
    return invalid (r, error, "unet.n_levels", "is not between 1 and %d", DL_MODEL_MAX_LEVELS);
  if (v->n_levels < 1 || v->n_levels > DL_MODEL_MAX_LEVELS)
    return invalid (r, error, "vae.n_levels", "is not between 1 and %d", DL_MODEL_MAX_LEVELS);
  if (u->norm_num_groups < 1)
    return invalid (r, error, "unet.norm_num_groups", "must be at least 1");
  if (v->norm_num_groups < 1)
    return invalid (r, error, "vae.norm_num_groups", "must be at least 1");
  for (int i = 0; i < u->n_levels; i++)
    {
      int c = u->block_out_channels[i];
      if (c < 1 || c % u->norm_num_groups != 0)
        return invalid (r, error, "unet.norm_num_groups", "does not divide the UNet's %d channels at level %d", c, i);
      if (u->level_has_attention[i] && (u->attention_heads[i] < 1 || c % u->attention_heads[i] != 0))
        return invalid (r, error, "unet.attention_heads", "does not divide the UNet's %d channels at level %d", c, i);
    }
  int cm = u->block_out_channels[u->n_levels - 1];
  if (u->mid_attention_heads < 1 || cm % u->mid_attention_heads != 0)
    return invalid (r, error, "unet.mid_attention_heads", "does not divide the mid block's %d channels", cm);
  for (int i = 0; i < v->n_levels; i++)
    if (v->block_out_channels[i] < 1 || v->block_out_channels[i] % v->norm_num_groups != 0)
      return invalid (r, error, "vae.norm_num_groups", "does not divide the VAE's %d channels at level %d",
                      v->block_out_channels[i], i);
  if (!(u->norm_eps > 0 && u->norm_eps < 1))
    return invalid (r, error, "unet.norm_eps", "must be between 0 and 1");
  if (!(v->scaling_factor > 0 && isfinite (v->scaling_factor)))
    return invalid (r, error, "vae.scaling_factor", "must be a positive number");
  if (t->n_heads < 1 || t->hidden_size % t->n_heads != 0)
    return invalid (r, error, "text_encoder.n_heads",
                    "does not divide the text encoder's width %d (without a configuration the head width is "
                    "CLIP's 64; give --config DIR)",
                    t->hidden_size);
  if (!(t->layer_norm_eps > 0 && t->layer_norm_eps < 1))
    return invalid (r, error, "text_encoder.layer_norm_eps", "must be between 0 and 1");
  if (t2->n_layers > 0 && (t2->n_heads < 1 || t2->hidden_size % t2->n_heads != 0))
    return invalid (r, error, "text_encoder_2.n_heads",
                    "does not divide the second text encoder's width %d (give --config DIR)", t2->hidden_size);
  if (t2->n_layers > 0 && !(t2->layer_norm_eps > 0 && t2->layer_norm_eps < 1))
    return invalid (r, error, "text_encoder_2.layer_norm_eps", "must be between 0 and 1");
  if (u->addition_time_embed_dim < 0 || u->addition_time_embed_dim % 2 != 0)
    return invalid (r, error, "unet.addition_time_embed_dim", "must be an even number");
  if (u->addition_time_embed_dim > 0 &&
      u->projection_class_embeddings_input_dim != t2->projection_dim + 6 * u->addition_time_embed_dim)
    return invalid (r, error, "unet.projection_class_embeddings_input_dim",
                    "is not the pooled text width %d plus 6 time ids of width %d", t2->projection_dim,
                    u->addition_time_embed_dim);
  if (s->num_train_timesteps < 2 || s->num_train_timesteps > 100000)
    return invalid (r, error, "scheduler.num_train_timesteps", "must be between 2 and 100000");
  if (!(s->beta_start > 0 && s->beta_start < s->beta_end && s->beta_end < 1))
    return invalid (r, error, "scheduler.beta_start",
                    "with beta_end = %g is not a valid schedule (need 0 < "
                    "beta_start < beta_end < 1)",
                    s->beta_end);
  if (strcmp (s->beta_schedule, "scaled_linear") != 0 && strcmp (s->beta_schedule, "linear") != 0 &&
      strcmp (s->beta_schedule, "squaredcos_cap_v2") != 0)
    return invalid (r, error, "scheduler.beta_schedule", "is not one of scaled_linear, linear, squaredcos_cap_v2");
  if (strcmp (s->timestep_spacing, "leading") != 0 && strcmp (s->timestep_spacing, "trailing") != 0 &&
      strcmp (s->timestep_spacing, "linspace") != 0)
    return invalid (r, error, "scheduler.timestep_spacing", "is not one of leading, trailing, linspace");
  if (s->steps_offset < 0 || s->steps_offset >= s->num_train_timesteps)
    return invalid (r, error, "scheduler.steps_offset", "is out of range");
  return TRUE;
}
