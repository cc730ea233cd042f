#include "dl-model-config.h"

#include <stddef.h>
#include <string.h>

const char *
dl_model_family_name (DlModelFamily family)
{
  switch (family)
    {
    case DL_FAMILY_SD1:
      return "Stable Diffusion 1.x";
    case DL_FAMILY_SD1_INPAINT:
      return "Stable Diffusion 1.x inpainting";
    case DL_FAMILY_SD2:
      return "Stable Diffusion 2.x";
    case DL_FAMILY_SD2_V:
      return "Stable Diffusion 2.x (v-prediction)";
    case DL_FAMILY_SD2_INPAINT:
      return "Stable Diffusion 2.x inpainting";
    case DL_FAMILY_SDXL:
      return "Stable Diffusion XL";
    case DL_FAMILY_SDXL_INPAINT:
      return "Stable Diffusion XL inpainting";
    case DL_FAMILY_UNKNOWN:
    default:
      return "unknown";
    }
}

const char *
dl_prediction_type_name (DlPredictionType p)
{
  switch (p)
    {
    case DL_PREDICTION_TYPE_V:
      return "v_prediction";
    case DL_PREDICTION_TYPE_SAMPLE:
      return "sample";
    case DL_PREDICTION_TYPE_EPSILON:
    default:
      return "epsilon";
    }
}

const char *
dl_hidden_act_name (DlHiddenAct a)
{
  return a == DL_HIDDEN_ACT_GELU ? "gelu" : "quick_gelu";
}

void
dl_model_config_init_sd15 (DlModelConfig *config)
{
  /* SD 1.5's published configuration: CompVis
   * configs/stable-diffusion/v1-inference.yaml and the unet, vae, text_encoder
   * and scheduler configs of runwayml/stable-diffusion-v1-5 (docs/formats.md,
   * “SD 1.5 model numbers”) */
  memset (config, 0, sizeof *config);
  DlUNetConfig *u = &config->unet;
  u->in_channels = 4;
  u->out_channels = 4;
  u->n_levels = 4;
  const int unet_ch[4] = { 320, 640, 1280, 1280 };
  for (int i = 0; i < 4; i++)
    {
      u->block_out_channels[i] = unet_ch[i];
      u->level_has_attention[i] = i < 3;
      u->attention_heads[i] = 8;
      u->transformer_depth[i] = 1;
    }
  u->mid_attention_heads = 8;
  u->layers_per_block = 2;
  u->mid_transformer_depth = 1;
  u->cross_attention_dim = 768;
  u->norm_num_groups = 32;
  u->norm_eps = 1e-5;
  u->time_proj_dim = 320;
  u->time_embed_dim = 1280;
  u->flip_sin_to_cos = TRUE;
  u->freq_shift = 0;
  u->sample_size = 64;

  DlVaeConfig *v = &config->vae;
  v->in_channels = 3;
  v->out_channels = 3;
  v->latent_channels = 4;
  v->n_levels = 4;
  const int vae_ch[4] = { 128, 256, 512, 512 };
  memcpy (v->block_out_channels, vae_ch, sizeof vae_ch);
  v->layers_per_block = 2;
  v->norm_num_groups = 32;
  v->norm_eps = 1e-6;
  v->scaling_factor = 0.18215;
  v->sample_size = 512;
  v->force_upcast = TRUE; /* diffusers AutoencoderKL's default */

  DlTextEncoderConfig *t = &config->text_encoder;
  t->vocab_size = 49408;
  t->hidden_size = 768;
  t->n_layers = 12;
  t->n_heads = 12;
  t->intermediate_size = 3072;
  t->max_positions = 77;
  t->layer_norm_eps = 1e-5;
  t->hidden_act = DL_HIDDEN_ACT_QUICK_GELU;

  DlSchedulerConfig *s = &config->scheduler;
  s->num_train_timesteps = 1000;
  s->beta_start = 0.00085;
  s->beta_end = 0.012;
  g_strlcpy (s->beta_schedule, "scaled_linear", sizeof s->beta_schedule);
  s->prediction_type = DL_PREDICTION_TYPE_EPSILON;
  s->steps_offset = 1;
  s->clip_sample = FALSE;
  s->set_alpha_to_one = FALSE;
  g_strlcpy (s->timestep_spacing, "leading", sizeof s->timestep_spacing);
}

void
dl_model_config_init_sdxl (DlModelConfig *config)
{
  /* stabilityai/stable-diffusion-xl-base-1.0: unet/, vae/, text_encoder/,
   * text_encoder_2/ config.json (docs/formats.md, “SDXL”); the scheduler is
   * SD 1.5's */
  dl_model_config_init_sd15 (config);
  DlUNetConfig *u = &config->unet;
  u->n_levels = 3;
  const int ch[3] = { 320, 640, 1280 }, heads[3] = { 5, 10, 20 }, depth[3] = { 1, 2, 10 };
  for (int i = 0; i < DL_MODEL_MAX_LEVELS; i++)
    {
      u->block_out_channels[i] = i < 3 ? ch[i] : 0;
      u->level_has_attention[i] = i == 1 || i == 2;
      u->attention_heads[i] = i < 3 ? heads[i] : 0;
      u->transformer_depth[i] = i < 3 ? depth[i] : 0;
    }
  u->mid_attention_heads = 20;
  u->mid_transformer_depth = 10;
  u->cross_attention_dim = 2048;
  u->use_linear_projection = TRUE;
  u->sample_size = 128;
  u->addition_time_embed_dim = 256;
  u->projection_class_embeddings_input_dim = 2816;

  config->vae.scaling_factor = 0.13025;
  config->vae.sample_size = 1024;

  DlTextEncoderConfig *t = &config->text_encoder_2;
  *t = config->text_encoder;
  t->hidden_size = 1280;
  t->n_layers = 32;
  t->n_heads = 20;
  t->intermediate_size = 5120;
  t->hidden_act = DL_HIDDEN_ACT_GELU;
  t->projection_dim = 1280;
}

void
dl_model_config_init_family (DlModelConfig *config, DlModelFamily family)
{
  if (family == DL_FAMILY_SDXL || family == DL_FAMILY_SDXL_INPAINT)
    dl_model_config_init_sdxl (config);
  else
    dl_model_config_init_sd15 (config);
}

gboolean
dl_model_config_is_sdxl (const DlModelConfig *config)
{
  return config->text_encoder_2.n_layers > 0;
}

/* ---- fields by name ---- */

typedef struct
{
  const char *name;
  DlFieldType type;
  gsize offset;
  gsize size;        /* strings: buffer size */
  gsize levels_from; /* array fields: offset of the n_levels int */
} Field;

#define U(f) offsetof (DlModelConfig, unet.f)
#define V(f) offsetof (DlModelConfig, vae.f)
#define T(f) offsetof (DlModelConfig, text_encoder.f)
#define T2(f) offsetof (DlModelConfig, text_encoder_2.f)
#define S(f) offsetof (DlModelConfig, scheduler.f)

static const Field fields[] = {
  { "unet.in_channels", DL_FIELD_INT, U (in_channels), 0, 0 },
  { "unet.out_channels", DL_FIELD_INT, U (out_channels), 0, 0 },
  { "unet.n_levels", DL_FIELD_INT, U (n_levels), 0, 0 },
  { "unet.block_out_channels", DL_FIELD_INT_LEVELS, U (block_out_channels), 0, U (n_levels) },
  { "unet.level_has_attention", DL_FIELD_BOOL_LEVELS, U (level_has_attention), 0, U (n_levels) },
  { "unet.layers_per_block", DL_FIELD_INT, U (layers_per_block), 0, 0 },
  { "unet.attention_heads", DL_FIELD_INT_LEVELS, U (attention_heads), 0, U (n_levels) },
  { "unet.mid_attention_heads", DL_FIELD_INT, U (mid_attention_heads), 0, 0 },
  { "unet.transformer_depth", DL_FIELD_INT_LEVELS, U (transformer_depth), 0, U (n_levels) },
  { "unet.mid_transformer_depth", DL_FIELD_INT, U (mid_transformer_depth), 0, 0 },
  { "unet.cross_attention_dim", DL_FIELD_INT, U (cross_attention_dim), 0, 0 },
  { "unet.use_linear_projection", DL_FIELD_BOOL, U (use_linear_projection), 0, 0 },
  { "unet.upcast_attention", DL_FIELD_BOOL, U (upcast_attention), 0, 0 },
  { "unet.norm_num_groups", DL_FIELD_INT, U (norm_num_groups), 0, 0 },
  { "unet.norm_eps", DL_FIELD_DOUBLE, U (norm_eps), 0, 0 },
  { "unet.time_proj_dim", DL_FIELD_INT, U (time_proj_dim), 0, 0 },
  { "unet.time_embed_dim", DL_FIELD_INT, U (time_embed_dim), 0, 0 },
  { "unet.flip_sin_to_cos", DL_FIELD_BOOL, U (flip_sin_to_cos), 0, 0 },
  { "unet.freq_shift", DL_FIELD_DOUBLE, U (freq_shift), 0, 0 },
  { "unet.sample_size", DL_FIELD_INT, U (sample_size), 0, 0 },
  { "unet.addition_time_embed_dim", DL_FIELD_INT, U (addition_time_embed_dim), 0, 0 },
  { "unet.projection_class_embeddings_input_dim", DL_FIELD_INT, U (projection_class_embeddings_input_dim), 0, 0 },
  { "vae.in_channels", DL_FIELD_INT, V (in_channels), 0, 0 },
  { "vae.out_channels", DL_FIELD_INT, V (out_channels), 0, 0 },
  { "vae.latent_channels", DL_FIELD_INT, V (latent_channels), 0, 0 },
  { "vae.n_levels", DL_FIELD_INT, V (n_levels), 0, 0 },
  { "vae.block_out_channels", DL_FIELD_INT_LEVELS, V (block_out_channels), 0, V (n_levels) },
  { "vae.layers_per_block", DL_FIELD_INT, V (layers_per_block), 0, 0 },
  { "vae.norm_num_groups", DL_FIELD_INT, V (norm_num_groups), 0, 0 },
  { "vae.norm_eps", DL_FIELD_DOUBLE, V (norm_eps), 0, 0 },
  { "vae.scaling_factor", DL_FIELD_DOUBLE, V (scaling_factor), 0, 0 },
  { "vae.sample_size", DL_FIELD_INT, V (sample_size), 0, 0 },
  { "vae.force_upcast", DL_FIELD_BOOL, V (force_upcast), 0, 0 },
  { "text_encoder.vocab_size", DL_FIELD_INT, T (vocab_size), 0, 0 },
  { "text_encoder.hidden_size", DL_FIELD_INT, T (hidden_size), 0, 0 },
  { "text_encoder.n_layers", DL_FIELD_INT, T (n_layers), 0, 0 },
  { "text_encoder.n_heads", DL_FIELD_INT, T (n_heads), 0, 0 },
  { "text_encoder.intermediate_size", DL_FIELD_INT, T (intermediate_size), 0, 0 },
  { "text_encoder.max_positions", DL_FIELD_INT, T (max_positions), 0, 0 },
  { "text_encoder.layer_norm_eps", DL_FIELD_DOUBLE, T (layer_norm_eps), 0, 0 },
  { "text_encoder.hidden_act", DL_FIELD_ACTIVATION, T (hidden_act), 0, 0 },
  { "text_encoder.projection_dim", DL_FIELD_INT, T (projection_dim), 0, 0 },
  { "text_encoder_2.vocab_size", DL_FIELD_INT, T2 (vocab_size), 0, 0 },
  { "text_encoder_2.hidden_size", DL_FIELD_INT, T2 (hidden_size), 0, 0 },
  { "text_encoder_2.n_layers", DL_FIELD_INT, T2 (n_layers), 0, 0 },
  { "text_encoder_2.n_heads", DL_FIELD_INT, T2 (n_heads), 0, 0 },
  { "text_encoder_2.intermediate_size", DL_FIELD_INT, T2 (intermediate_size), 0, 0 },
  { "text_encoder_2.max_positions", DL_FIELD_INT, T2 (max_positions), 0, 0 },
  { "text_encoder_2.layer_norm_eps", DL_FIELD_DOUBLE, T2 (layer_norm_eps), 0, 0 },
  { "text_encoder_2.hidden_act", DL_FIELD_ACTIVATION, T2 (hidden_act), 0, 0 },
  { "text_encoder_2.projection_dim", DL_FIELD_INT, T2 (projection_dim), 0, 0 },
  { "scheduler.num_train_timesteps", DL_FIELD_INT, S (num_train_timesteps), 0, 0 },
  { "scheduler.beta_start", DL_FIELD_DOUBLE, S (beta_start), 0, 0 },
  { "scheduler.beta_end", DL_FIELD_DOUBLE, S (beta_end), 0, 0 },
  { "scheduler.beta_schedule", DL_FIELD_STRING, S (beta_schedule), sizeof (((DlSchedulerConfig *)0)->beta_schedule),
    0 },
  { "scheduler.prediction_type", DL_FIELD_PREDICTION, S (prediction_type), 0, 0 },
  { "scheduler.steps_offset", DL_FIELD_INT, S (steps_offset), 0, 0 },
  { "scheduler.clip_sample", DL_FIELD_BOOL, S (clip_sample), 0, 0 },
  { "scheduler.set_alpha_to_one", DL_FIELD_BOOL, S (set_alpha_to_one), 0, 0 },
  { "scheduler.timestep_spacing", DL_FIELD_STRING, S (timestep_spacing),
    sizeof (((DlSchedulerConfig *)0)->timestep_spacing), 0 },
};

guint
dl_model_config_n_fields (void)
{
  return G_N_ELEMENTS (fields);
}

const char *
dl_model_config_field_name (guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (fields), NULL);
  return fields[index].name;
}

DlFieldType
dl_model_config_field_type (guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (fields), DL_FIELD_INT);
  return fields[index].type;
}

int
dl_model_config_field_index (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (strcmp (fields[i].name, name) == 0)
      return (int)i;
  return -1;
}

gpointer
dl_model_config_field_ptr (DlModelConfig *config, guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (fields), NULL);
  return (guint8 *)config + fields[index].offset;
}

int
dl_model_config_field_levels (const DlModelConfig *config, guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (fields), 0);
  if (fields[index].type != DL_FIELD_INT_LEVELS && fields[index].type != DL_FIELD_BOOL_LEVELS)
    return 0;
  int n = *(const int *)((const guint8 *)config + fields[index].levels_from);
  return CLAMP (n, 0, DL_MODEL_MAX_LEVELS);
}

char *
dl_model_config_field_to_string (const DlModelConfig *config, guint index)
{
  g_return_val_if_fail (index < G_N_ELEMENTS (fields), NULL);
  const Field *f = &fields[index];
  const guint8 *p = (const guint8 *)config + f->offset;
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  switch (f->type)
    {
    case DL_FIELD_INT:
      return g_strdup_printf ("%d", *(const int *)p);
    case DL_FIELD_DOUBLE:
      return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.9g", *(const double *)p));
    case DL_FIELD_BOOL:
      return g_strdup (*(const gboolean *)p ? "true" : "false");
    case DL_FIELD_STRING:
      return g_strdup ((const char *)p);
    case DL_FIELD_PREDICTION:
      return g_strdup (dl_prediction_type_name (*(const DlPredictionType *)p));
    case DL_FIELD_ACTIVATION:
      return g_strdup (dl_hidden_act_name (*(const DlHiddenAct *)p));
    case DL_FIELD_INT_LEVELS:
    case DL_FIELD_BOOL_LEVELS:
      {
        GString *s = g_string_new ("[");
        int n = dl_model_config_field_levels (config, index);
        for (int i = 0; i < n; i++)
          {
            if (f->type == DL_FIELD_INT_LEVELS)
              g_string_append_printf (s, "%s%d", i ? ", " : "", ((const int *)p)[i]);
            else
              g_string_append_printf (s, "%s%s", i ? ", " : "", ((const gboolean *)p)[i] ? "true" : "false");
          }
        g_string_append_c (s, ']');
        return g_string_free (s, FALSE);
      }
    default:
      return g_strdup ("?");
    }
}
