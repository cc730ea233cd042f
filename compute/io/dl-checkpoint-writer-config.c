/* The config files of a diffusers folder (see dl-checkpoint-writer.h): every
 * key diffusers 0.27 save_pretrained writes for UNet2DConditionModel,
 * AutoencoderKL, PNDMScheduler and StableDiffusionPipeline (SD 1.x), or
 * EulerDiscreteScheduler and StableDiffusionXLPipeline (SDXL, the scheduler
 * config of stabilityai/stable-diffusion-xl-base-1.0 as the pipeline saves it
 * again), and transformers 4.40 for CLIPTextConfig, sorted as they sort them,
 * with our values. */
#include "dl-config.h"

#include "io/dl-checkpoint-writer.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-json-write.h"

#define DIFFUSERS_VERSION "0.27.2"
#define TRANSFORMERS_VERSION "4.40.0"

/* Members are added in key order: diffusers and transformers write their
 * configs with json.dumps(sort_keys=True). */

static void
put_null (JsonBuilder *b, const char *key)
{
  json_builder_set_member_name (b, key);
  json_builder_add_null_value (b);
}

static void
put_int (JsonBuilder *b, const char *key, gint64 v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, v);
}

static void
put_double (JsonBuilder *b, const char *key, double v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_double_value (b, v);
}

static void
put_bool (JsonBuilder *b, const char *key, gboolean v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_boolean_value (b, v);
}

static void
put_str (JsonBuilder *b, const char *key, const char *v)
{
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, v);
}

static void
put_ints (JsonBuilder *b, const char *key, const int *v, int n)
{
  json_builder_set_member_name (b, key);
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    json_builder_add_int_value (b, v[i]);
  json_builder_end_array (b);
}

/* the block type of each level: `yes` where `attn[i]`, else `no`; reversed
 * for the up blocks */
static void
put_block_types (JsonBuilder *b, const char *key, const gboolean *attn, int n, const char *yes, const char *no,
                 gboolean reversed)
{
  json_builder_set_member_name (b, key);
  json_builder_begin_array (b);
  for (int i = 0; i < n; i++)
    json_builder_add_string_value (b, attn[reversed ? n - 1 - i : i] ? yes : no);
  json_builder_end_array (b);
}

static void
put_pair (JsonBuilder *b, const char *key, const char *library, const char *class_name)
{
  json_builder_set_member_name (b, key);
  json_builder_begin_array (b);
  if (library)
    json_builder_add_string_value (b, library);
  else
    json_builder_add_null_value (b);
  if (class_name)
    json_builder_add_string_value (b, class_name);
  else
    json_builder_add_null_value (b);
  json_builder_end_array (b);
}

static gboolean
unet_config (JsonBuilder *b, const DlUNetConfig *u, GError **error)
{
  const int L = u->n_levels;
  /* diffusers derives these; a model where they differ cannot be described */
  if (u->time_proj_dim != u->block_out_channels[0])
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "The UNet's time projection width %d is not its first "
                   "block's width %d, which a diffusers config cannot express",
                   u->time_proj_dim, u->block_out_channels[0]);
      return FALSE;
    }
  if (u->mid_attention_heads != u->attention_heads[L - 1])
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "The UNet's mid block has %d attention heads and its last "
                   "level %d; a diffusers config cannot express that",
                   u->mid_attention_heads, u->attention_heads[L - 1]);
      return FALSE;
    }
  if (u->mid_transformer_depth != u->transformer_depth[L - 1])
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "The UNet's mid block has %d transformer layers and its last "
                   "level %d; a diffusers config cannot express that",
                   u->mid_transformer_depth, u->transformer_depth[L - 1]);
      return FALSE;
    }
  gboolean same_heads = TRUE;
  for (int i = 1; i < L; i++)
    same_heads = same_heads && u->attention_heads[i] == u->attention_heads[0];
  /* SDXL's added conditioning (diffusers addition_embed_type "text_time") */
  gboolean text_time = u->addition_time_embed_dim > 0;

  put_str (b, "_class_name", "UNet2DConditionModel");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_str (b, "act_fn", "silu");
  if (text_time)
    put_str (b, "addition_embed_type", "text_time");
  else
    put_null (b, "addition_embed_type");
  put_int (b, "addition_embed_type_num_heads", 64);
  if (text_time)
    put_int (b, "addition_time_embed_dim", u->addition_time_embed_dim);
  else
    put_null (b, "addition_time_embed_dim");
  /* SD 1.x configs hold the head count here (diffusers unet_2d_condition.py
   * UNet2DConditionModel: num_attention_heads = num_attention_heads or
   * attention_head_dim) */
  if (same_heads)
    put_int (b, "attention_head_dim", u->attention_heads[0]);
  else
    put_ints (b, "attention_head_dim", u->attention_heads, L);
  put_str (b, "attention_type", "default");
  put_ints (b, "block_out_channels", u->block_out_channels, L);
  put_bool (b, "center_input_sample", FALSE);
  put_null (b, "class_embed_type");
  put_bool (b, "class_embeddings_concat", FALSE);
  put_int (b, "conv_in_kernel", 3);
  put_int (b, "conv_out_kernel", 3);
  put_int (b, "cross_attention_dim", u->cross_attention_dim);
  put_null (b, "cross_attention_norm");
  put_block_types (b, "down_block_types", u->level_has_attention, L, "CrossAttnDownBlock2D", "DownBlock2D", FALSE);
  put_int (b, "downsample_padding", 1);
  put_double (b, "dropout", 0.0);
  put_bool (b, "dual_cross_attention", FALSE);
  put_null (b, "encoder_hid_dim");
  put_null (b, "encoder_hid_dim_type");
  put_bool (b, "flip_sin_to_cos", u->flip_sin_to_cos);
  if (u->freq_shift == floor (u->freq_shift) && fabs (u->freq_shift) < 1e9)
    put_int (b, "freq_shift", (gint64)u->freq_shift);
  else
    put_double (b, "freq_shift", u->freq_shift);
  put_int (b, "in_channels", u->in_channels);
  put_int (b, "layers_per_block", u->layers_per_block);
  put_null (b, "mid_block_only_cross_attention");
  put_int (b, "mid_block_scale_factor", 1);
  put_str (b, "mid_block_type", "UNetMidBlock2DCrossAttn");
  put_double (b, "norm_eps", u->norm_eps);
  put_int (b, "norm_num_groups", u->norm_num_groups);
  put_null (b, "num_attention_heads");
  put_null (b, "num_class_embeds");
  put_bool (b, "only_cross_attention", FALSE);
  put_int (b, "out_channels", u->out_channels);
  if (text_time)
    put_int (b, "projection_class_embeddings_input_dim", u->projection_class_embeddings_input_dim);
  else
    put_null (b, "projection_class_embeddings_input_dim");
  put_double (b, "resnet_out_scale_factor", 1.0);
  put_bool (b, "resnet_skip_time_act", FALSE);
  put_str (b, "resnet_time_scale_shift", "default");
  put_null (b, "reverse_transformer_layers_per_block");
  put_int (b, "sample_size", u->sample_size);
  put_null (b, "time_cond_proj_dim");
  put_null (b, "time_embedding_act_fn");
  /* diffusers: time_embedding_dim or 4 x block_out_channels[0] */
  if (u->time_embed_dim == 4 * u->block_out_channels[0])
    put_null (b, "time_embedding_dim");
  else
    put_int (b, "time_embedding_dim", u->time_embed_dim);
  put_str (b, "time_embedding_type", "positional");
  put_null (b, "timestep_post_act");
  gboolean same_depth = TRUE;
  for (int i = 1; i < L; i++)
    same_depth = same_depth && u->transformer_depth[i] == u->transformer_depth[0];
  if (same_depth)
    put_int (b, "transformer_layers_per_block", u->transformer_depth[0]);
  else
    put_ints (b, "transformer_layers_per_block", u->transformer_depth, L);
  put_block_types (b, "up_block_types", u->level_has_attention, L, "CrossAttnUpBlock2D", "UpBlock2D", TRUE);
  put_bool (b, "upcast_attention", u->upcast_attention);
  put_bool (b, "use_linear_projection", u->use_linear_projection);
  return TRUE;
}

static void
vae_config (JsonBuilder *b, const DlVaeConfig *v)
{
  gboolean none[DL_MODEL_MAX_LEVELS] = { 0 };
  put_str (b, "_class_name", "AutoencoderKL");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_str (b, "act_fn", "silu");
  put_ints (b, "block_out_channels", v->block_out_channels, v->n_levels);
  put_block_types (b, "down_block_types", none, v->n_levels, NULL, "DownEncoderBlock2D", FALSE);
  put_bool (b, "force_upcast", v->force_upcast);
  put_int (b, "in_channels", v->in_channels);
  put_int (b, "latent_channels", v->latent_channels);
  put_null (b, "latents_mean");
  put_null (b, "latents_std");
  put_int (b, "layers_per_block", v->layers_per_block);
  put_int (b, "norm_num_groups", v->norm_num_groups);
  put_int (b, "out_channels", v->out_channels);
  put_int (b, "sample_size", v->sample_size);
  put_double (b, "scaling_factor", v->scaling_factor);
  put_block_types (b, "up_block_types", none, v->n_levels, NULL, "UpDecoderBlock2D", FALSE);
}

static void
text_encoder_config (JsonBuilder *b, const DlTextEncoderConfig *t, DlStDType dtype)
{
  json_builder_set_member_name (b, "architectures");
  json_builder_begin_array (b);
  /* SDXL's second encoder: the pooled output through text_projection */
  json_builder_add_string_value (b, t->projection_dim > 0 ? "CLIPTextModelWithProjection" : "CLIPTextModel");
  json_builder_end_array (b);
  put_double (b, "attention_dropout", 0.0);
  /* openai's legacy ids, as SD 1.x's own config has them (copied from
   * openai/clip-vit-large-patch14's config.json): transformers then pools at
   * the argmax of the ids, the end token (modeling_clip.py
   * CLIPTextTransformer.forward, the eos_token_id == 2 branch) */
  put_int (b, "bos_token_id", 0);
  put_double (b, "dropout", 0.0);
  put_int (b, "eos_token_id", 2);
  put_str (b, "hidden_act", dl_hidden_act_name (t->hidden_act));
  put_int (b, "hidden_size", t->hidden_size);
  put_double (b, "initializer_factor", 1.0);
  put_double (b, "initializer_range", 0.02);
  put_int (b, "intermediate_size", t->intermediate_size);
  put_double (b, "layer_norm_eps", t->layer_norm_eps);
  put_int (b, "max_position_embeddings", t->max_positions);
  put_str (b, "model_type", "clip_text_model");
  put_int (b, "num_attention_heads", t->n_heads);
  put_int (b, "num_hidden_layers", t->n_layers);
  put_int (b, "pad_token_id", 1);
  put_int (b, "projection_dim", t->projection_dim > 0 ? t->projection_dim : t->hidden_size);
  put_str (b, "torch_dtype", dtype == DL_ST_F16 ? "float16" : dtype == DL_ST_BF16 ? "bfloat16" : "float32");
  put_str (b, "transformers_version", TRANSFORMERS_VERSION);
  put_int (b, "vocab_size", t->vocab_size);
}

static void
scheduler_config (JsonBuilder *b, const DlSchedulerConfig *s)
{
  put_str (b, "_class_name", "PNDMScheduler");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_double (b, "beta_end", s->beta_end);
  put_str (b, "beta_schedule", s->beta_schedule);
  put_double (b, "beta_start", s->beta_start);
  put_bool (b, "clip_sample", s->clip_sample);
  put_int (b, "num_train_timesteps", s->num_train_timesteps);
  put_str (b, "prediction_type", dl_prediction_type_name (s->prediction_type));
  put_bool (b, "set_alpha_to_one", s->set_alpha_to_one);
  put_bool (b, "skip_prk_steps", TRUE);
  put_int (b, "steps_offset", s->steps_offset);
  put_str (b, "timestep_spacing", s->timestep_spacing);
  put_null (b, "trained_betas");
}

/* SDXL: EulerDiscreteScheduler, which keeps the keys of the PNDM config it is
 * made from (clip_sample, set_alpha_to_one, skip_prk_steps) */
static void
euler_scheduler_config (JsonBuilder *b, const DlSchedulerConfig *s)
{
  put_str (b, "_class_name", "EulerDiscreteScheduler");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_double (b, "beta_end", s->beta_end);
  put_str (b, "beta_schedule", s->beta_schedule);
  put_double (b, "beta_start", s->beta_start);
  put_bool (b, "clip_sample", s->clip_sample);
  put_str (b, "interpolation_type", "linear");
  put_int (b, "num_train_timesteps", s->num_train_timesteps);
  put_str (b, "prediction_type", dl_prediction_type_name (s->prediction_type));
  put_bool (b, "rescale_betas_zero_snr", FALSE);
  put_double (b, "sample_max_value", 1.0);
  put_bool (b, "set_alpha_to_one", s->set_alpha_to_one);
  put_null (b, "sigma_max");
  put_null (b, "sigma_min");
  put_bool (b, "skip_prk_steps", TRUE);
  put_int (b, "steps_offset", s->steps_offset);
  put_str (b, "timestep_spacing", s->timestep_spacing);
  put_str (b, "timestep_type", "discrete");
  put_null (b, "trained_betas");
  put_bool (b, "use_karras_sigmas", FALSE);
}

/* StableDiffusionXLPipeline: no safety checker; force_zeros_for_empty_prompt
 * as SDXL base's model_index.json (and the pipeline's default) */
static void
model_index_xl (JsonBuilder *b)
{
  put_str (b, "_class_name", "StableDiffusionXLPipeline");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_pair (b, "feature_extractor", NULL, NULL);
  put_bool (b, "force_zeros_for_empty_prompt", TRUE);
  put_pair (b, "image_encoder", NULL, NULL);
  put_pair (b, "scheduler", "diffusers", "EulerDiscreteScheduler");
  put_pair (b, "text_encoder", "transformers", "CLIPTextModel");
  put_pair (b, "text_encoder_2", "transformers", "CLIPTextModelWithProjection");
  put_pair (b, "tokenizer", "transformers", "CLIPTokenizer");
  put_pair (b, "tokenizer_2", "transformers", "CLIPTokenizer");
  put_pair (b, "unet", "diffusers", "UNet2DConditionModel");
  put_pair (b, "vae", "diffusers", "AutoencoderKL");
}

static void
model_index (JsonBuilder *b)
{
  put_str (b, "_class_name", "StableDiffusionPipeline");
  put_str (b, "_diffusers_version", DIFFUSERS_VERSION);
  put_pair (b, "feature_extractor", NULL, NULL);
  put_pair (b, "image_encoder", NULL, NULL);
  put_bool (b, "requires_safety_checker", FALSE);
  put_pair (b, "safety_checker", NULL, NULL);
  put_pair (b, "scheduler", "diffusers", "PNDMScheduler");
  put_pair (b, "text_encoder", "transformers", "CLIPTextModel");
  put_pair (b, "tokenizer", "transformers", "CLIPTokenizer");
  put_pair (b, "unet", "diffusers", "UNet2DConditionModel");
  put_pair (b, "vae", "diffusers", "AutoencoderKL");
}

char *
dl_checkpoint_diffusers_config_json (const DlModelConfig *config, const char *file, DlStDType te_dtype, GError **error)
{
  g_return_val_if_fail (config != NULL && file != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  gboolean sdxl = dl_model_config_is_sdxl (config);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (strcmp (file, "unet/config.json") == 0)
    {
      if (!unet_config (b, &config->unet, error))
        return NULL;
    }
  else if (strcmp (file, "vae/config.json") == 0)
    vae_config (b, &config->vae);
  else if (strcmp (file, "text_encoder/config.json") == 0)
    text_encoder_config (b, &config->text_encoder, te_dtype);
  else if (strcmp (file, "text_encoder_2/config.json") == 0 && sdxl)
    text_encoder_config (b, &config->text_encoder_2, te_dtype);
  else if (strcmp (file, "scheduler/scheduler_config.json") == 0 && sdxl)
    euler_scheduler_config (b, &config->scheduler);
  else if (strcmp (file, "scheduler/scheduler_config.json") == 0)
    scheduler_config (b, &config->scheduler);
  else if (strcmp (file, "model_index.json") == 0 && sdxl)
    model_index_xl (b);
  else if (strcmp (file, "model_index.json") == 0)
    model_index (b);
  else
    g_return_val_if_reached (NULL);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  /* diffusers' and transformers' to_json_string: json.dumps(indent=2,
   * sort_keys=True) and one newline, which the pretty writer ends with */
  return dl_json_write (root, TRUE, NULL);
}
