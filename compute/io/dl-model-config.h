/* dl-model-config.h: what the model code needs to know about an SD 1.x or SDXL
 * model, besides its weights (the fields of diffusers' UNet2DConditionModel and
 * AutoencoderKL configs, transformers' CLIPTextConfig and the scheduler config;
 * docs/formats.md, “SD 1.5 model numbers” and “SDXL”).  Filled by dl-checkpoint from, in
 * this order: the tensor shapes, a diffusers-style --config folder, a sidecar
 * LDM .yaml, the family's published defaults. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DL_MODEL_MAX_LEVELS 8

typedef enum
{
  DL_FAMILY_UNKNOWN,
  DL_FAMILY_SD1,
  DL_FAMILY_SD1_INPAINT,
  DL_FAMILY_SD2,
  DL_FAMILY_SD2_V,
  DL_FAMILY_SD2_INPAINT,
  DL_FAMILY_SDXL,
  DL_FAMILY_SDXL_INPAINT,
} DlModelFamily;

/* "Stable Diffusion 1.x", "Stable Diffusion 2.x (v-prediction)", ... */
const char *dl_model_family_name (DlModelFamily family);

typedef enum
{
  DL_PREDICTION_TYPE_EPSILON,
  DL_PREDICTION_TYPE_V,
  DL_PREDICTION_TYPE_SAMPLE,
} DlPredictionType;

/* "epsilon", "v_prediction", "sample" (diffusers' spelling) */
const char *dl_prediction_type_name (DlPredictionType p);

typedef enum
{
  DL_HIDDEN_ACT_QUICK_GELU,
  DL_HIDDEN_ACT_GELU,
} DlHiddenAct;

const char *dl_hidden_act_name (DlHiddenAct a);

/* UNet2DConditionModel.  Level i is down block i (the up blocks run the levels in
 * reverse); per-level arrays are in down-block order. */
typedef struct
{
  int in_channels;
  int out_channels;
  int n_levels;
  int block_out_channels[DL_MODEL_MAX_LEVELS];
  gboolean level_has_attention[DL_MODEL_MAX_LEVELS]; /* CrossAttnDownBlock2D (and its mirror up block) */
  int layers_per_block;                              /* resnets per down block; up blocks have one more */
  int attention_heads[DL_MODEL_MAX_LEVELS];          /* head count of the transformers at that level */
  int mid_attention_heads;                           /* diffusers: the last level's count */
  int transformer_depth[DL_MODEL_MAX_LEVELS];        /* BasicTransformerBlocks per Transformer2DModel at that level
                                                      * (diffusers transformer_layers_per_block; SDXL [0, 2, 10]) */
  int mid_transformer_depth;                         /* diffusers: the last level's depth */
  int cross_attention_dim;                           /* text context width */
  gboolean use_linear_projection;                    /* proj_in/out Linear (SD2) rather than 1x1 conv */
  gboolean upcast_attention;
  int norm_num_groups;
  double norm_eps;          /* ResBlock and output GroupNorms; transformer GroupNorm is always 1e-6 */
  int time_proj_dim;        /* sinusoidal embedding width = block_out_channels[0] */
  int time_embed_dim;       /* time MLP width = 4 * block_out_channels[0] */
  gboolean flip_sin_to_cos; /* TRUE: [cos | sin] */
  double freq_shift;
  int sample_size; /* latent size the model was trained at */
  /* SDXL's added conditioning (diffusers addition_embed_type "text_time"):
   * each of the 6 time ids through a sinusoidal embedding of this width, after
   * the pooled text embedding, into add_embedding.  0: none (SD 1.x). */
  int addition_time_embed_dim;
  int projection_class_embeddings_input_dim; /* add_embedding's input: pooled width + 6 * the above */
} DlUNetConfig;

/* AutoencoderKL */
typedef struct
{
  int in_channels;
  int out_channels;
  int latent_channels;
  int n_levels;
  int block_out_channels[DL_MODEL_MAX_LEVELS];
  int layers_per_block; /* encoder resnets per level; the decoder has one more */
  int norm_num_groups;
  double norm_eps; /* 1e-6 in every SD VAE */
  double scaling_factor;
  int sample_size;
  /* diffusers: decode and encode in f32 when the weights are f16 (SDXL's VAE
   * overflows in f16).  A VAE made f16-safe says FALSE in its config.json
   * (madebyollin/sdxl-vae-fp16-fix): SDXL then keeps it in f16 too. */
  gboolean force_upcast;
} DlVaeConfig;

/* transformers CLIPTextModel (CLIPTextModelWithProjection when projection_dim > 0) */
typedef struct
{
  int vocab_size;
  int hidden_size;
  int n_layers;
  int n_heads;
  int intermediate_size;
  int max_positions;
  double layer_norm_eps;
  DlHiddenAct hidden_act;
  int projection_dim; /* bias-free text_projection of the pooled output (SDXL's second encoder); 0: none */
} DlTextEncoderConfig;

/* the training/inference noise schedule (diffusers scheduler_config.json) */
typedef struct
{
  int num_train_timesteps;
  double beta_start;
  double beta_end;
  char beta_schedule[32]; /* "scaled_linear" (SD), "linear", "squaredcos_cap_v2" */
  DlPredictionType prediction_type;
  int steps_offset;
  gboolean clip_sample;
  gboolean set_alpha_to_one;
  char timestep_spacing[16]; /* "leading", "trailing", "linspace" */
} DlSchedulerConfig;

typedef struct
{
  DlUNetConfig unet;
  DlVaeConfig vae;
  DlTextEncoderConfig text_encoder;
  DlTextEncoderConfig text_encoder_2; /* SDXL's OpenCLIP bigG; n_layers 0 when the model has none */
  DlSchedulerConfig scheduler;
} DlModelConfig;

/* The published SD 1.5 values for everything (the last fallback). */
void dl_model_config_init_sd15 (DlModelConfig *config);
/* The published SDXL base 1.0 values (stabilityai/stable-diffusion-xl-base-1.0's
 * config.json files). */
void dl_model_config_init_sdxl (DlModelConfig *config);
/* The published values of a family (SD 1.5's for anything but SDXL). */
void dl_model_config_init_family (DlModelConfig *config, DlModelFamily family);
/* TRUE for a model with two text encoders and added time conditioning. */
gboolean dl_model_config_is_sdxl (const DlModelConfig *config);

/* ---- the fields by name ("unet.norm_num_groups", "scheduler.beta_end", ...),
 * for the configuration loaders and for printing ---- */

typedef enum
{
  DL_FIELD_INT,
  DL_FIELD_DOUBLE,
  DL_FIELD_BOOL,
  DL_FIELD_STRING,
  DL_FIELD_INT_LEVELS,  /* int[DL_MODEL_MAX_LEVELS], length = the component's n_levels */
  DL_FIELD_BOOL_LEVELS, /* gboolean[...] */
  DL_FIELD_PREDICTION,
  DL_FIELD_ACTIVATION,
} DlFieldType;

guint dl_model_config_n_fields (void);
const char *dl_model_config_field_name (guint index);
DlFieldType dl_model_config_field_type (guint index);
/* -1 when there is no such field */
int dl_model_config_field_index (const char *name);
/* Where the field lives inside `config` (cast to the field's C type). */
gpointer dl_model_config_field_ptr (DlModelConfig *config, guint index);
/* The number of levels an array field has in `config`. */
int dl_model_config_field_levels (const DlModelConfig *config, guint index);
/* The value as text: "8", "[320, 640, 1280, 1280]", "epsilon", "1e-05". */
char *dl_model_config_field_to_string (const DlModelConfig *config, guint index);

G_END_DECLS
