/* dl-train-settings.c: see dl-train-settings.h. */
#include "dl-config.h"

#include "train/dl-train-settings.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "dl-error.h"
#include "dl-float-repr.h"
#include "io/dl-json-write.h"
#include "nn/dl-hypernetwork.h"
#include "sched/dl-sampler.h"

static const char *const method_names[DL_TRAIN_N_METHODS + 1] = {
  [DL_TRAIN_LORA] = "lora",
  [DL_TRAIN_TEXTUAL_INVERSION] = "textual-inversion",
  [DL_TRAIN_DREAMBOOTH] = "dreambooth",
  [DL_TRAIN_HYPERNETWORK] = "hypernetwork",
};

const char *
dl_train_method_name (DlTrainMethod method)
{
  return method < DL_TRAIN_N_METHODS ? method_names[method] : "unknown";
}

gboolean
dl_train_method_from_name (const char *name, DlTrainMethod *out)
{
  for (int m = 0; m < DL_TRAIN_N_METHODS; m++)
    if (g_strcmp0 (name, method_names[m]) == 0)
      {
        *out = (DlTrainMethod)m;
        return TRUE;
      }
  return FALSE;
}

typedef enum
{
  F_INT,
  F_INT64,
  F_DOUBLE,
  F_BOOL,
  F_STRING,
  F_STRV,
  F_METHOD,
  F_SCHEDULE,
  F_SAVE_DTYPE,
  F_OPTIMIZER,
  F_SAMPLER, /* an int: the index into dl_sampler_names () */
} FieldType;

/* methods an option applies to */
#define M_LORA (1u << DL_TRAIN_LORA)
#define M_TI (1u << DL_TRAIN_TEXTUAL_INVERSION)
#define M_DB (1u << DL_TRAIN_DREAMBOOTH)
#define M_HN (1u << DL_TRAIN_HYPERNETWORK)
#define M_ALL (M_LORA | M_TI | M_DB | M_HN)

typedef struct
{
  const char *name; /* the option, without "--" */
  FieldType type;
  gsize offset;
  guint methods;
  double min, max; /* numeric range (inclusive) */
  const char *arg; /* placeholder in --help */
  const char *help;
} Field;

#define OFF(f) offsetof (DlTrainSettings, f)
#define BIG 1e18

static const Field fields[] = {
  { "method", F_METHOD, OFF (method), M_ALL, 0, 0, "M",
    "lora | textual-inversion | dreambooth | hypernetwork (what is trained and written)" },
  { "model", F_STRING, OFF (model), M_ALL, 0, 0, "MODEL", "Base model: checkpoint file or diffusers folder" },
  { "config", F_STRING, OFF (config), M_ALL, 0, 0, "DIR", "diffusers-style config folder for a single file" },
  { "images", F_STRING, OFF (images), M_ALL, 0, 0, "DIR", "Folder of training images (captions in <stem>.txt)" },
  { "out", F_STRING, OFF (out), M_ALL, 0, 0, "FILE",
    "The trained file: LoRA .safetensors; embedding .pt (A1111) or .safetensors (emb_params)" },
  { "out-diffusers", F_STRING, OFF (out_diffusers), M_TI, 0, 0, "FILE",
    "Textual Inversion: also write diffusers' learned_embeds.safetensors form" },
  { "run-dir", F_STRING, OFF (run_dir), M_ALL, 0, 0, "DIR",
    "Checkpoints, previews and the state to resume from (default <out without extension>.run)" },
  { "replay", F_STRING, OFF (replay), M_ALL, 0, 0, "FILE",
    "Take every random draw from a reference run's replay file (the check against PyTorch)" },
  { "vocab", F_STRING, OFF (vocab), M_ALL, 0, 0, "FILE", "CLIP vocabulary, for a model without a tokenizer folder" },

  { "resolution", F_INT, OFF (resolution), M_ALL, 8, 4096, "PX",
    "Training size in pixels, a multiple of 8 (512: SD 1.5's own)" },
  { "batch", F_INT, OFF (batch), M_ALL, 1, 1024, "N", "Images per step (1, as A1111 and kohya's examples)" },
  { "steps", F_INT64, OFF (steps), M_ALL, 1, BIG, "N",
    "Optimizer steps (LoRA 1500: ~50-100 passes over 15-30 images; TI 3000: diffusers' README)" },
  { "seed", F_INT64, OFF (seed), M_ALL, 0, 9007199254740991.0, "N", "Seed of every random draw (42)" },
  { "buckets", F_BOOL, OFF (buckets), M_ALL, 0, 0, NULL,
    "Aspect-ratio buckets (kohya --enable_bucket: sides multiples of 64, 256-1024, area <= resolution^2)" },
  { "random-crop", F_BOOL, OFF (random_crop), M_ALL, 0, 0, NULL, "Crop at a random offset instead of the centre" },
  { "repeats", F_INT, OFF (repeats), M_ALL, 1, 10000, "N", "Times each image appears per pass (1)" },
  { "flip", F_BOOL, OFF (flip), M_ALL, 0, 0, NULL, "Mirror images left-right at random (kohya --flip_aug)" },
  { "caption-dropout", F_DOUBLE, OFF (caption_dropout), M_ALL, 0, 1, "P",
    "Probability of training a sample with an empty caption (0; kohya --caption_dropout_rate)" },
  { "shuffle-tags", F_BOOL, OFF (shuffle_tags), M_ALL, 0, 0, NULL,
    "Shuffle the comma-separated tags of captions (kohya --shuffle_caption)" },
  { "keep-tags", F_INT, OFF (keep_tags), M_ALL, 0, 1000, "N",
    "Tags at the start of a caption that shuffling keeps in place (0; kohya --keep_tokens)" },
  { "instance-prompt", F_STRING, OFF (instance_prompt), M_ALL, 0, 0, "TEXT",
    "Caption of images without a caption file (default: the file name, A1111's rule)" },

  { "lr", F_DOUBLE, OFF (lr), M_ALL, 0, 10, "LR",
    "Learning rate (LoRA 1e-4, kohya's README; TI 5e-3 and hypernetwork 1e-5, A1111's defaults; DreamBooth 5e-6, "
    "diffusers' example)" },
  { "text-encoder-lr", F_DOUBLE, OFF (text_encoder_lr), M_LORA | M_DB, 0, 10, "LR",
    "LoRA: learning rate of the text-encoder modules (5e-5: half the UNet's, kohya's usual)" },
  { "lr-scheduler", F_SCHEDULE, OFF (lr_scheduler), M_ALL, 0, 0, "NAME",
    "constant | constant_with_warmup | linear | cosine | cosine_with_restarts | polynomial (diffusers "
    "get_scheduler; LoRA cosine, TI constant)" },
  { "lr-warmup", F_INT64, OFF (lr_warmup), M_ALL, 0, BIG, "N", "Warm-up steps from lr 0 (0)" },
  { "lr-cycles", F_DOUBLE, OFF (lr_cycles), M_ALL, 0, 1e6, "N", "cosine_with_restarts: cycles (1)" },
  { "lr-power", F_DOUBLE, OFF (lr_power), M_ALL, 0, 1e6, "P", "polynomial: power (1)" },
  { "weight-decay", F_DOUBLE, OFF (weight_decay), M_ALL, 0, 10, "WD",
    "AdamW decoupled weight decay (LoRA 0.01, torch's default as kohya uses it; TI 0, A1111)" },
  { "adam-beta1", F_DOUBLE, OFF (adam_beta1), M_ALL, 0, 0.999999, "B", "AdamW beta1 (0.9, torch)" },
  { "adam-beta2", F_DOUBLE, OFF (adam_beta2), M_ALL, 0, 0.999999999, "B", "AdamW beta2 (0.999, torch)" },
  { "adam-eps", F_DOUBLE, OFF (adam_eps), M_ALL, 1e-30, 1, "E", "AdamW epsilon (1e-8, torch)" },
  { "max-grad-norm", F_DOUBLE, OFF (max_grad_norm), M_ALL, 0, 1e6, "N",
    "Clip the total gradient norm to this, 0 = off (LoRA 1.0, kohya's default; TI off, A1111)" },
  { "grad-accum", F_INT, OFF (grad_accum), M_ALL, 1, 4096, "N", "Micro-batches summed per step (1)" },

  { "min-snr-gamma", F_DOUBLE, OFF (min_snr_gamma), M_ALL, 0, 1e6, "G",
    "Min-SNR loss weighting, 0 = off (5 is the paper's choice; diffusers compute_snr)" },
  { "noise-offset", F_DOUBLE, OFF (noise_offset), M_ALL, 0, 1, "O", "Noise offset, 0 = off (0.05-0.1 typical)" },
  { "clip-skip", F_INT, OFF (clip_skip), M_ALL, 1, 12, "N", "Text-encoder layer from the end (1; A1111's Clip skip)" },

  { "fp16", F_BOOL, OFF (fp16), M_ALL, 0, 0, NULL,
    "Frozen weights and activations in f16 (trained tensors and AdamW stay f32): half the memory" },
  { "checkpointing", F_BOOL, OFF (checkpointing), M_ALL, 0, 0, NULL,
    "Gradient checkpointing: recompute blocks in backward (less memory, ~30% more time)" },
  { "fused-backward-pass", F_BOOL, OFF (fused_backward_pass), M_ALL, 0, 0, NULL,
    "Apply each tensor's step as soon as its gradient is complete: no gradient buffers (4 bytes less a trained "
    "parameter), clipping per tensor, no --grad-accum (kohya --fused_backward_pass)" },

  { "rank", F_INT, OFF (rank), M_LORA, 1, 4096, "R", "LoRA rank (16)" },
  { "alpha", F_DOUBLE, OFF (alpha), M_LORA, 0, 1e6, "A", "LoRA alpha; scale = alpha/rank (8: half the rank)" },
  { "conv-rank", F_INT, OFF (conv_rank), M_LORA, 0, 4096, "R", "LoCon: rank on the ResNet 3x3 convs, 0 = off" },
  { "conv-alpha", F_DOUBLE, OFF (conv_alpha), M_LORA, 0, 1e6, "A", "LoCon alpha (1, kohya's default)" },
  { "no-text-encoder", F_BOOL, OFF (no_text_encoder), M_LORA, 0, 0, NULL,
    "LoRA: train the UNet modules only (text-encoder outputs are then cached)" },
  { "init-from", F_STRING, OFF (init_from), M_LORA | M_HN, 0, 0, "FILE",
    "Continue from an existing kohya LoRA (its modules, ranks and alphas) or A1111 hypernetwork .pt" },
  { "save-dtype", F_SAVE_DTYPE, OFF (save_dtype), M_ALL, 0, 0, "f16|f32",
    "dtype of the written tensors (LoRA f16 as kohya; TI f32 as A1111)" },

  { "placeholder", F_STRING, OFF (placeholder), M_TI, 0, 0, "NAME",
    "TI: the word the embedding is used by in prompts (default: the out file's stem)" },
  { "init-text", F_STRING, OFF (init_text), M_TI, 0, 0, "TEXT",
    "TI: start the vectors from this text's token embeddings (\"*\", A1111's default)" },
  { "vectors", F_INT, OFF (vectors), M_TI, 1, 75, "N", "TI: vectors per token (1)" },
  { "template", F_STRING, OFF (template_file), M_TI | M_HN, 0, 0, "FILE",
    "TI, hypernetwork: \"object\" (the TI paper's list, default), \"style\", or a file: one template per line "
    "with [name] and [filewords]" },

  { "train-text-encoder", F_BOOL, OFF (train_text_encoder), M_DB, 0, 0, NULL,
    "DreamBooth: train the text encoder too (its own --text-encoder-lr; off, diffusers' default)" },
  { "class-prompt", F_STRING, OFF (class_prompt), M_DB, 0, 0, "TEXT",
    "DreamBooth: prior preservation with images of this class (\"a photo of dog\")" },
  { "class-images", F_STRING, OFF (class_images), M_DB, 0, 0, "DIR",
    "DreamBooth: the class images; missing ones are generated there by the base model (default <run>/class)" },
  { "num-class-images", F_INT, OFF (num_class_images), M_DB, 1, 100000, "N",
    "DreamBooth: class images to use (100, diffusers' default)" },
  { "prior-weight", F_DOUBLE, OFF (prior_weight), M_DB, 0, 1000, "W",
    "DreamBooth: weight of the prior-preservation loss (1.0, diffusers and kohya)" },
  { "optimizer", F_OPTIMIZER, OFF (adamw8bit), M_ALL, 0, 0, "adamw|adamw8bit",
    "AdamW (torch), or 8-bit AdamW (bitsandbytes' block-wise 8-bit moments: 10 instead of 16 bytes a parameter)" },
  { "hn-sizes", F_STRING, OFF (hn_sizes), M_HN, 0, 0, "LIST",
    "Hypernetwork: context widths it applies to (768,320,640,1280: A1111's default)" },
  { "hn-layers", F_STRING, OFF (hn_layers), M_HN, 0, 0, "LIST", "Hypernetwork: layer structure (1,2,1)" },
  { "hn-activation", F_STRING, OFF (hn_activation), M_HN, 0, 0, "NAME",
    "Hypernetwork: linear, relu, leakyrelu, elu, swish, tanh, sigmoid, gelu, mish, softsign, silu, hardswish "
    "(linear)" },
  { "hn-layer-norm", F_BOOL, OFF (hn_layer_norm), M_HN, 0, 0, NULL, "Hypernetwork: LayerNorm after each layer" },
  { "hn-dropout", F_STRING, OFF (hn_dropout), M_HN, 0, 0, "LIST", "Hypernetwork: dropout structure (0,0,0)" },
  { "hn-init", F_STRING, OFF (hn_init), M_HN, 0, 0, "NAME",
    "Hypernetwork: Normal, XavierUniform, XavierNormal, KaimingUniform, KaimingNormal (Normal)" },

  { "save-every", F_INT64, OFF (save_every), M_ALL, 0, BIG, "N",
    "Save a checkpoint every N steps, 0 = only at the end (250)" },
  { "keep", F_INT, OFF (keep), M_ALL, 1, 1000, "K", "Checkpoints kept besides the best (3)" },
  { "sample-every", F_INT64, OFF (sample_every), M_ALL, 0, BIG, "N", "Preview images every N steps, 0 = off (250)" },
  { "sample-prompt", F_STRV, OFF (sample_prompts), M_ALL, 0, 0, "TEXT",
    "A preview prompt (repeatable; besides two template prompts)" },
  { "sample-steps", F_INT, OFF (sample_steps), M_ALL, 1, 1000, "N", "Sampler steps of a preview (20)" },
  { "sample-sampler", F_SAMPLER, OFF (sample_sampler), M_ALL, 0, 0, "NAME",
    "Sampler of the previews (dpmpp_2m_karras)" },
  { "sample-seed", F_INT64, OFF (sample_seed), M_ALL, 0, 4294967295.0, "N", "Seed of the previews (1234)" },
  { "sample-cfg", F_DOUBLE, OFF (sample_cfg), M_ALL, 1, 30, "S", "Guidance scale of the previews (7)" },
  { "sample-first", F_BOOL, OFF (sample_first), M_ALL, 0, 0, NULL,
    "Previews before the first step too: the base model's (kohya --sample_at_first)" },
  { "validate-every", F_INT64, OFF (validate_every), M_ALL, 0, BIG, "N",
    "Validation loss every N steps and at the end, 0 = only at the end (50)" },
};

static const Field *
find_field (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (g_strcmp0 (fields[i].name, name) == 0)
      return &fields[i];
  return NULL;
}

#define FIELD_PTR(s, f, T) ((T *)((char *)(s) + (f)->offset))

gint64
dl_train_settings_steps_for_dataset (DlTrainMethod method, guint n_images)
{
  g_autoptr (DlTrainSettings) d = dl_train_settings_new (method);
  if (n_images == 0)
    return d->steps;
  switch (method)
    {
    case DL_TRAIN_LORA:
      return CLAMP ((gint64)n_images * 100, 500, 3000);
    case DL_TRAIN_TEXTUAL_INVERSION:
      return CLAMP ((gint64)n_images * 200, 1000, 5000);
    case DL_TRAIN_DREAMBOOTH:
      return CLAMP ((gint64)n_images * 80, 400, 1600);
    default:
      return d->steps;
    }
}

DlTrainSettings *
dl_train_settings_new (DlTrainMethod method)
{
  DlTrainSettings *s = g_new0 (DlTrainSettings, 1);
  s->method = method;
  s->resolution = 512;
  s->batch = 1;
  s->seed = 42;
  s->repeats = 1;
  s->lr_scheduler = DL_LR_CONSTANT;
  s->lr_cycles = 1;
  s->lr_power = 1;
  s->adam_beta1 = 0.9;
  s->adam_beta2 = 0.999;
  s->adam_eps = 1e-8;
  s->grad_accum = 1;
  s->clip_skip = 1;
  s->rank = 16;
  s->alpha = 8;
  s->conv_alpha = 1;
  s->vectors = 1;
  s->save_every = 250;
  s->keep = 3;
  s->sample_every = 250;
  s->sample_steps = 20;
  s->sample_seed = 1234;
  s->sample_cfg = 7.0;
  dl_train_settings_set (s, "sample-sampler", "dpmpp_2m_karras", NULL); /* A1111's favourite, Dreamloom's previews */
  s->validate_every = 50;
  s->num_class_images = 100;
  s->prior_weight = 1.0;
  s->hn_sizes = g_strdup ("768,320,640,1280");
  s->hn_layers = g_strdup ("1,2,1");
  s->hn_activation = g_strdup ("linear");
  s->hn_dropout = g_strdup ("0,0,0");
  s->hn_init = g_strdup ("Normal");
  switch (method)
    {
    case DL_TRAIN_TEXTUAL_INVERSION:
      /* A1111's train tab: lr 0.005, no weight decay, no clipping; diffusers' README: 3000 steps */
      s->steps = 3000;
      s->lr = 5e-3;
      s->text_encoder_lr = 5e-3;
      s->weight_decay = 0;
      s->max_grad_norm = 0;
      s->save_dtype = DL_ST_F32;
      s->init_text = g_strdup ("*");
      break;
    case DL_TRAIN_DREAMBOOTH:
      /* diffusers examples/dreambooth/train_dreambooth.py: lr 5e-6, constant, weight decay
     * 1e-2, max_grad_norm 1.0; 800 steps with prior preservation (its README); saved in f16 */
      s->steps = 800;
      s->lr = 5e-6;
      s->text_encoder_lr = 5e-6;
      s->weight_decay = 1e-2;
      s->max_grad_norm = 1.0;
      s->save_dtype = DL_ST_F16;
      break;
    case DL_TRAIN_HYPERNETWORK:
      /* A1111's train tab: hypernetwork lr 1e-5, no clipping; AdamW (its default weight decay 0.01) */
      s->steps = 2000;
      s->lr = 1e-5;
      s->text_encoder_lr = 1e-5;
      s->weight_decay = 0.01;
      s->max_grad_norm = 0;
      s->save_dtype = DL_ST_F32;
      break;
    case DL_TRAIN_LORA:
    default:
      /* kohya sd-scripts' usual LoRA: lr 1e-4 (TE half of it), AdamW (weight decay
     * 0.01, torch's default), max_grad_norm 1.0, saved in f16 */
      s->steps = 1500;
      s->lr = 1e-4;
      s->text_encoder_lr = 5e-5;
      s->lr_scheduler = DL_LR_COSINE;
      s->weight_decay = 0.01;
      s->max_grad_norm = 1.0;
      s->save_dtype = DL_ST_F16;
      break;
    }
  return s;
}

void
dl_train_settings_free (DlTrainSettings *s)
{
  if (!s)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      if (fields[i].type == F_STRING)
        g_free (*FIELD_PTR (s, &fields[i], char *));
      else if (fields[i].type == F_STRV)
        g_strfreev (*FIELD_PTR (s, &fields[i], char **));
    }
  g_free (s);
}

DlTrainSettings *
dl_train_settings_copy (const DlTrainSettings *src)
{
  DlTrainSettings *s = g_memdup2 (src, sizeof *src);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      if (fields[i].type == F_STRING)
        {
          char **p = FIELD_PTR (s, &fields[i], char *);
          *p = g_strdup (*p);
        }
      else if (fields[i].type == F_STRV)
        {
          char ***p = FIELD_PTR (s, &fields[i], char **);
          *p = g_strdupv (*p);
        }
    }
  return s;
}

static gboolean
bad_value (GError **error, const char *name, const char *value, const char *why)
{
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--%s %s: %s", name, value ? value : "", why);
  return FALSE;
}

static gboolean
parse_number (const Field *f, const char *value, double *out, GError **error)
{
  if (!value || !*value)
    return bad_value (error, f->name, value, "a number is needed");
  char *end = NULL;
  errno = 0;
  double v = g_ascii_strtod (value, &end);
  if (errno || *end || !isfinite (v))
    return bad_value (error, f->name, value, "not a number");
  if (f->type == F_INT || f->type == F_INT64)
    {
      if (v != floor (v))
        return bad_value (error, f->name, value, "a whole number is needed");
    }
  if (v < f->min || v > f->max)
    {
      g_autofree char *why = g_strdup_printf ("out of range (%g to %g)", f->min, f->max);
      return bad_value (error, f->name, value, why);
    }
  *out = v;
  return TRUE;
}

gboolean
dl_train_settings_set (DlTrainSettings *s, const char *name, const char *value, GError **error)
{
  g_return_val_if_fail (s != NULL && name != NULL, FALSE);
  const Field *f = find_field (name);
  if (!f)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--%s: no such option", name);
      return FALSE;
    }
  double v = 0;
  switch (f->type)
    {
    case F_INT:
      if (!parse_number (f, value, &v, error))
        return FALSE;
      *FIELD_PTR (s, f, int) = (int)v;
      return TRUE;
    case F_INT64:
      if (!parse_number (f, value, &v, error))
        return FALSE;
      *FIELD_PTR (s, f, gint64) = (gint64)v;
      return TRUE;
    case F_DOUBLE:
      if (!parse_number (f, value, &v, error))
        return FALSE;
      *FIELD_PTR (s, f, double) = v;
      return TRUE;
    case F_BOOL:
      if (!value || g_str_equal (value, "true"))
        *FIELD_PTR (s, f, gboolean) = TRUE;
      else if (g_str_equal (value, "false"))
        *FIELD_PTR (s, f, gboolean) = FALSE;
      else
        return bad_value (error, f->name, value, "true or false");
      return TRUE;
    case F_STRING:
      if (!value)
        return bad_value (error, f->name, value, "a value is needed");
      if (!g_utf8_validate (value, -1, NULL))
        return bad_value (error, f->name, "", "not valid UTF-8");
      g_free (*FIELD_PTR (s, f, char *));
      *FIELD_PTR (s, f, char *) = g_strdup (value);
      return TRUE;
    case F_STRV:
      {
        if (!value || !g_utf8_validate (value, -1, NULL))
          return bad_value (error, f->name, "", "a UTF-8 text is needed");
        char ***p = FIELD_PTR (s, f, char **);
        guint n = *p ? g_strv_length (*p) : 0;
        *p = g_renew (char *, *p, n + 2);
        (*p)[n] = g_strdup (value);
        (*p)[n + 1] = NULL;
        return TRUE;
      }
    case F_METHOD:
      {
        DlTrainMethod m;
        if (!dl_train_method_from_name (value, &m))
          return bad_value (error, f->name, value, "one of lora, textual-inversion, dreambooth, hypernetwork");
        s->method = m;
        return TRUE;
      }
    case F_SCHEDULE:
      {
        DlLrScheduleKind k;
        if (!value || !dl_lr_schedule_kind_from_name (value, &k))
          return bad_value (error, f->name, value,
                            "one of constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial");
        s->lr_scheduler = k;
        return TRUE;
      }
    case F_SAMPLER:
      {
        const char *const *names = dl_sampler_names ();
        for (guint i = 0; names[i]; i++)
          if (g_strcmp0 (value, names[i]) == 0)
            {
              *FIELD_PTR (s, f, int) = (int)i;
              return TRUE;
            }
        g_autofree char *all = g_strjoinv (", ", (char **)names);
        g_autofree char *why = g_strdup_printf ("one of %s", all);
        return bad_value (error, f->name, value, why);
      }
    case F_OPTIMIZER:
      if (g_strcmp0 (value, "adamw") == 0)
        s->adamw8bit = FALSE;
      else if (g_strcmp0 (value, "adamw8bit") == 0)
        s->adamw8bit = TRUE;
      else
        return bad_value (error, f->name, value, "adamw or adamw8bit");
      return TRUE;
    case F_SAVE_DTYPE:
      if (g_strcmp0 (value, "f16") == 0 || g_strcmp0 (value, "fp16") == 0)
        s->save_dtype = DL_ST_F16;
      else if (g_strcmp0 (value, "f32") == 0 || g_strcmp0 (value, "fp32") == 0)
        s->save_dtype = DL_ST_F32;
      else
        return bad_value (error, f->name, value, "f16 or f32");
      return TRUE;
    }
  g_return_val_if_reached (FALSE);
}

static char *
format_double (double v)
{
  return dl_python_float_repr (v);
}

char *
dl_train_settings_get (const DlTrainSettings *s, const char *name)
{
  const Field *f = find_field (name);
  g_return_val_if_fail (f != NULL, NULL);
  switch (f->type)
    {
    case F_INT:
      return g_strdup_printf ("%d", *FIELD_PTR (s, f, int));
    case F_INT64:
      return g_strdup_printf ("%" G_GINT64_FORMAT, *FIELD_PTR (s, f, gint64));
    case F_DOUBLE:
      return format_double (*FIELD_PTR (s, f, double));
    case F_BOOL:
      return g_strdup (*FIELD_PTR (s, f, gboolean) ? "true" : "false");
    case F_STRING:
      return g_strdup (*FIELD_PTR (s, f, char *));
    case F_STRV:
      {
        char **v = *FIELD_PTR (s, f, char **);
        return v ? g_strjoinv (" | ", v) : NULL;
      }
    case F_METHOD:
      return g_strdup (dl_train_method_name (s->method));
    case F_SCHEDULE:
      return g_strdup (dl_lr_schedule_name (s->lr_scheduler));
    case F_SAVE_DTYPE:
      return g_strdup (s->save_dtype == DL_ST_F16 ? "f16" : "f32");
    case F_OPTIMIZER:
      return g_strdup (s->adamw8bit ? "adamw8bit" : "adamw");
    case F_SAMPLER:
      return g_strdup (dl_sampler_names ()[*FIELD_PTR (s, f, int)]);
    }
  return NULL;
}

gboolean
dl_train_settings_has_option (const char *name, gboolean *is_flag, gboolean *repeatable)
{
  const Field *f = find_field (name);
  if (is_flag)
    *is_flag = f && f->type == F_BOOL;
  if (repeatable)
    *repeatable = f && f->type == F_STRV;
  return f != NULL;
}

char *
dl_train_settings_describe_options (void)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      const Field *f = &fields[i];
      g_autofree char *left = f->arg ? g_strdup_printf ("--%s %s", f->name, f->arg) : g_strdup_printf ("--%s", f->name);
      g_string_append_printf (s, "  %-28s %s", left, f->help);
      if (f->type == F_SAMPLER)
        {
          /* the names from the one list of samplers */
          g_autofree char *names = dl_sampler_names_joined (", ");
          g_string_append_printf (s, ": %s", names);
        }
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

static gboolean
option_error (GError **error, const char *name, const char *why)
{
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--%s: %s", name, why);
  return FALSE;
}

static gboolean
is_default_for (const DlTrainSettings *s, const Field *f, const DlTrainSettings *defaults)
{
  g_autofree char *a = dl_train_settings_get (s, f->name);
  g_autofree char *b = dl_train_settings_get (defaults, f->name);
  return g_strcmp0 (a, b) == 0;
}

/* The entries of a comma-separated list of numbers >= 0 (at most `max`), or
 * -1 when it is not one. */
static int
number_list (const char *text, double *out, int max)
{
  g_auto (GStrv) parts = g_strsplit (text ? text : "", ",", -1);
  int n = 0;
  for (char **p = parts; *p; p++)
    {
      g_strstrip (*p);
      char *end = NULL;
      double v = g_ascii_strtod (*p, &end);
      if (!**p || *end || n >= max || !(v >= 0) || !isfinite (v))
        return -1;
      out[n++] = v;
    }
  return n;
}

/* A1111's hypernetwork structure (modules/hypernetworks/hypernetwork.py:
 * layer_structure starts and ends with 1, one dropout per layer), before any work */
static gboolean
validate_hypernetwork (const DlTrainSettings *s, GError **error)
{
  double v[DL_HYPERNETWORK_MAX_LAYERS + 1];
  int n_layers = number_list (s->hn_layers, v, DL_HYPERNETWORK_MAX_LAYERS);
  if (n_layers < 0)
    return bad_value (error, "hn-layers", s->hn_layers, "a comma-separated list of numbers is needed");
  if (n_layers < 2 || v[0] != 1 || v[n_layers - 1] != 1)
    return bad_value (error, "hn-layers", s->hn_layers, "the layer structure must start and end with 1 (A1111)");
  int n_drop = number_list (s->hn_dropout, v, DL_HYPERNETWORK_MAX_LAYERS);
  if (n_drop < 0)
    return bad_value (error, "hn-dropout", s->hn_dropout, "a comma-separated list of numbers is needed");
  if (n_drop != n_layers)
    {
      g_autofree char *why = g_strdup_printf ("%d numbers, one per layer of --hn-layers (%d)", n_drop, n_layers);
      return bad_value (error, "hn-dropout", s->hn_dropout, why);
    }
  double sizes[32];
  int n_sizes = number_list (s->hn_sizes, sizes, G_N_ELEMENTS (sizes));
  for (int i = 0; i < n_sizes; i++)
    if (sizes[i] < 1 || sizes[i] != floor (sizes[i]))
      n_sizes = -1;
  if (n_sizes < 1)
    return bad_value (error, "hn-sizes", s->hn_sizes, "a comma-separated list of widths is needed");
  if (!dl_hypernetwork_activation_supported (s->hn_activation))
    return bad_value (error, "hn-activation", s->hn_activation, "not one this engine runs");
  return TRUE;
}

gboolean
dl_train_settings_text_encoders_off_device (const DlTrainSettings *s)
{
  /* Textual Inversion trains the token table; hypernetworks draw templates */
  gboolean frozen =
    (s->method == DL_TRAIN_LORA && s->no_text_encoder) || (s->method == DL_TRAIN_DREAMBOOTH && !s->train_text_encoder);
  return frozen && !s->shuffle_tags;
}

gboolean
dl_train_settings_validate (const DlTrainSettings *s, GError **error)
{
  g_return_val_if_fail (s != NULL, FALSE);
  /* an option another method takes, changed from its default, is a mistake */
  g_autoptr (DlTrainSettings) defaults = dl_train_settings_new (s->method);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      const Field *f = &fields[i];
      if (!(f->methods & (1u << s->method)) && !is_default_for (s, f, defaults))
        {
          g_autofree char *why = g_strdup_printf ("not an option of --method %s", dl_train_method_name (s->method));
          return option_error (error, f->name, why);
        }
    }
  if (!s->model)
    return option_error (error, "model", "the base model is required");
  if (!s->images)
    return option_error (error, "images", "the folder of training images is required");
  if (!s->out)
    return option_error (error, "out", "where to write the result is required");
  if (s->resolution % 8)
    return option_error (error, "resolution", "must be a multiple of 8");
  if (s->fused_backward_pass && s->grad_accum > 1)
    return option_error (error, "grad-accum",
                         "not with --fused-backward-pass, which applies each gradient as soon as one micro-batch "
                         "has made it (kohya sd-scripts refuses the same)");
  if (s->buckets && s->resolution % 64)
    return option_error (error, "resolution", "must be a multiple of 64 with --buckets");
  if (s->keep_tags && !s->shuffle_tags)
    return option_error (error, "keep-tags", "only means something with --shuffle-tags");
  if (s->lr_warmup > s->steps && s->lr_scheduler != DL_LR_CONSTANT)
    return option_error (error, "lr-warmup", "is longer than --steps");
  DlLrSchedule sched = dl_lr_schedule_init (s->lr_scheduler, s->lr, s->lr_warmup, s->steps);
  sched.num_cycles = s->lr_scheduler == DL_LR_COSINE_WITH_RESTARTS ? s->lr_cycles : 0.5;
  sched.power = s->lr_power;
  g_autoptr (GError) sched_error = NULL;
  if (!dl_lr_schedule_validate (&sched, &sched_error))
    return option_error (error, "lr-scheduler", sched_error->message);
  if (s->method == DL_TRAIN_LORA)
    {
      if (s->out && !g_str_has_suffix (s->out, ".safetensors"))
        return option_error (error, "out", "a LoRA is written as .safetensors");
    }
  if (s->method == DL_TRAIN_DREAMBOOTH)
    {
      /* prior preservation takes a class prompt; its other options mean nothing without one */
      static const char *const prior_options[] = { "class-images", "num-class-images", "prior-weight" };
      if (!s->class_prompt)
        for (guint i = 0; i < G_N_ELEMENTS (prior_options); i++)
          if (!is_default_for (s, find_field (prior_options[i]), defaults))
            return option_error (error, prior_options[i], "prior preservation needs --class-prompt as well");
      if (s->class_prompt && !*s->class_prompt)
        return option_error (error, "class-prompt", "an empty class prompt");
      if (s->class_prompt && s->buckets)
        return option_error (error, "buckets", "not with prior preservation yet (class images are square)");
      if (s->out && !g_str_has_suffix (s->out, ".safetensors") && !g_str_has_suffix (s->out, "/") &&
          !g_file_test (s->out, G_FILE_TEST_IS_DIR))
        return option_error (error, "out",
                             "a model is written as one .safetensors file or, ending in /, a diffusers "
                             "folder");
    }
  if (s->method == DL_TRAIN_HYPERNETWORK)
    {
      if (s->out && !g_str_has_suffix (s->out, ".pt"))
        return option_error (error, "out", "a hypernetwork is written as A1111's .pt");
      if (s->init_from && !g_str_has_suffix (s->init_from, ".pt"))
        return option_error (error, "init-from", "an A1111 hypernetwork .pt");
      if (!s->init_from && !validate_hypernetwork (s, error))
        return FALSE;
    }
  if (s->method == DL_TRAIN_TEXTUAL_INVERSION)
    {
      if (s->out && !g_str_has_suffix (s->out, ".pt") && !g_str_has_suffix (s->out, ".safetensors"))
        return option_error (error, "out", "an embedding is written as .pt (A1111) or .safetensors");
      if (s->placeholder && (!*s->placeholder || strpbrk (s->placeholder, " \t\n[]")))
        return option_error (error, "placeholder", "must be one word without brackets");
      if (s->out_diffusers && !g_str_has_suffix (s->out_diffusers, ".safetensors"))
        return option_error (error, "out-diffusers", "diffusers' form is a .safetensors file");
    }
  return TRUE;
}

JsonNode *
dl_train_settings_to_json (const DlTrainSettings *s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      const Field *f = &fields[i];
      json_builder_set_member_name (b, f->name);
      switch (f->type)
        {
        case F_INT:
          json_builder_add_int_value (b, *FIELD_PTR (s, f, int));
          break;
        case F_INT64:
          json_builder_add_int_value (b, *FIELD_PTR (s, f, gint64));
          break;
        case F_DOUBLE:
          json_builder_add_double_value (b, *FIELD_PTR (s, f, double));
          break;
        case F_BOOL:
          json_builder_add_boolean_value (b, *FIELD_PTR (s, f, gboolean));
          break;
        case F_STRING:
          {
            const char *v = *FIELD_PTR (s, f, char *);
            if (v)
              json_builder_add_string_value (b, v);
            else
              json_builder_add_null_value (b);
            break;
          }
        case F_STRV:
          {
            char **v = *FIELD_PTR (s, f, char **);
            json_builder_begin_array (b);
            for (guint k = 0; v && v[k]; k++)
              json_builder_add_string_value (b, v[k]);
            json_builder_end_array (b);
            break;
          }
        case F_METHOD:
        case F_SCHEDULE:
        case F_SAVE_DTYPE:
        case F_OPTIMIZER:
        case F_SAMPLER:
          {
            g_autofree char *v = dl_train_settings_get (s, f->name);
            json_builder_add_string_value (b, v);
            break;
          }
        }
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

char *
dl_train_settings_to_json_string (const DlTrainSettings *s)
{
  g_autoptr (JsonNode) node = dl_train_settings_to_json (s);
  return dl_json_write (node, TRUE, NULL);
}

DlTrainSettings *
dl_train_settings_from_json (JsonNode *node, GError **error)
{
  if (!node || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_FILE, "training settings: not a JSON object");
      return NULL;
    }
  JsonObject *o = json_node_get_object (node);
  DlTrainMethod method = DL_TRAIN_LORA;
  const char *mname = json_object_has_member (o, "method") ? json_object_get_string_member (o, "method") : NULL;
  if (!dl_train_method_from_name (mname, &method))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "training settings: unknown method “%s”",
                   mname ? mname : "");
      return NULL;
    }
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (method);
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      const Field *f = find_field (name);
      if (!f)
        continue; /* written by a newer version; ignored */
      JsonNode *v = json_object_get_member (o, name);
      g_autoptr (GError) e = NULL;
      gboolean ok = TRUE;
      if (JSON_NODE_HOLDS_NULL (v))
        {
          if (f->type == F_STRING)
            g_clear_pointer (FIELD_PTR (s, f, char *), g_free);
          continue;
        }
      if (f->type == F_STRV)
        {
          if (!JSON_NODE_HOLDS_ARRAY (v))
            {
              ok = FALSE;
            }
          else
            {
              g_clear_pointer (FIELD_PTR (s, f, char **), g_strfreev);
              JsonArray *a = json_node_get_array (v);
              for (guint k = 0; ok && k < json_array_get_length (a); k++)
                {
                  JsonNode *item = json_array_get_element (a, k);
                  ok = JSON_NODE_HOLDS_VALUE (item) && json_node_get_value_type (item) == G_TYPE_STRING &&
                       dl_train_settings_set (s, name, json_node_get_string (item), &e);
                }
            }
        }
      else if (JSON_NODE_HOLDS_VALUE (v))
        {
          g_autofree char *text = NULL;
          GType t = json_node_get_value_type (v);
          if (t == G_TYPE_STRING)
            text = g_strdup (json_node_get_string (v));
          else if (t == G_TYPE_BOOLEAN)
            text = g_strdup (json_node_get_boolean (v) ? "true" : "false");
          else if (t == G_TYPE_INT64)
            text = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (v));
          else if (t == G_TYPE_DOUBLE)
            text = format_double (json_node_get_double (v));
          ok = text && dl_train_settings_set (s, name, text, &e);
        }
      else
        {
          ok = FALSE;
        }
      if (!ok)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "training settings: “%s”: %s", name,
                       e ? e->message : "a value of the wrong kind");
          return NULL;
        }
    }
  return g_steal_pointer (&s);
}

DlTrainSettings *
dl_train_settings_from_json_string (const char *text, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, error))
    return NULL;
  return dl_train_settings_from_json (json_parser_get_root (parser), error);
}

char *
dl_train_settings_diff (const DlTrainSettings *a, const DlTrainSettings *b, const char *const *names)
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      const Field *f = &fields[i];
      if (names && !g_strv_contains (names, f->name))
        continue;
      g_autofree char *va = dl_train_settings_get (a, f->name);
      g_autofree char *vb = dl_train_settings_get (b, f->name);
      if (g_strcmp0 (va, vb) != 0)
        return g_strdup_printf ("--%s: %s vs %s", f->name, va ? va : "(none)", vb ? vb : "(none)");
    }
  return NULL;
}

static const char *const side_options[] = {
  "checkpointing", "save-every", "keep",         "sample-every",   "sample-prompt", "sample-steps",  "sample-sampler",
  "sample-seed",   "sample-cfg", "sample-first", "validate-every", "run-dir",       "out-diffusers", NULL,
};

void
dl_train_settings_reset (DlTrainSettings *s, const char *name)
{
  const Field *f = find_field (name);
  g_return_if_fail (f != NULL);
  switch (f->type)
    {
    case F_STRING:
      g_clear_pointer (FIELD_PTR (s, f, char *), g_free);
      return;
    case F_STRV:
      g_clear_pointer (FIELD_PTR (s, f, char **), g_strfreev);
      return;
    default:
      {
        g_autoptr (DlTrainSettings) d = dl_train_settings_new (s->method);
        g_autofree char *v = dl_train_settings_get (d, name);
        if (v)
          dl_train_settings_set (s, name, v, NULL);
        return;
      }
    }
}

gboolean
dl_train_settings_option_info (guint i, DlTrainOptionInfo *info)
{
  static const char *const dtypes[] = { "f16", "f32", NULL };
  static const char *const optimizers[] = { "adamw", "adamw8bit", NULL };
  if (i >= G_N_ELEMENTS (fields))
    return FALSE;
  const Field *f = &fields[i];
  *info = (DlTrainOptionInfo){
    .name = f->name, .min = f->min, .max = f->max, .arg = f->arg, .help = f->help, .methods = f->methods
  };
  switch (f->type)
    {
    case F_INT:
    case F_INT64:
      info->kind = DL_TRAIN_OPTION_INT;
      break;
    case F_DOUBLE:
      info->kind = DL_TRAIN_OPTION_NUMBER;
      break;
    case F_BOOL:
      info->kind = DL_TRAIN_OPTION_FLAG;
      break;
    case F_STRING:
      info->kind = DL_TRAIN_OPTION_TEXT;
      break;
    case F_STRV:
      info->kind = DL_TRAIN_OPTION_TEXTS;
      break;
    case F_METHOD:
      info->kind = DL_TRAIN_OPTION_CHOICE;
      info->choices = method_names;
      break;
    case F_SCHEDULE:
      info->kind = DL_TRAIN_OPTION_CHOICE;
      info->choices = dl_lr_schedule_names ();
      break;
    case F_SAVE_DTYPE:
      info->kind = DL_TRAIN_OPTION_CHOICE;
      info->choices = dtypes;
      break;
    case F_OPTIMIZER:
      info->kind = DL_TRAIN_OPTION_CHOICE;
      info->choices = optimizers;
      break;
    case F_SAMPLER:
      info->kind = DL_TRAIN_OPTION_CHOICE;
      info->choices = dl_sampler_names ();
      break;
    }
  return TRUE;
}

gboolean
dl_train_settings_is_side_option (const char *name)
{
  return g_strv_contains (side_options, name);
}

char *
dl_train_settings_diff_results (const DlTrainSettings *a, const DlTrainSettings *b)
{
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (!dl_train_settings_is_side_option (fields[i].name))
      g_strv_builder_add (names, fields[i].name);
  g_auto (GStrv) v = g_strv_builder_end (names);
  return dl_train_settings_diff (a, b, (const char *const *)v);
}

char *
dl_train_settings_run_dir (const DlTrainSettings *s)
{
  if (s->run_dir)
    return g_strdup (s->run_dir);
  if (!s->out)
    return NULL;
  /* a folder (DreamBooth's --out DIR/): DIR.run beside it, not inside */
  g_autofree char *out = g_strdup (s->out);
  gsize n = strlen (out);
  while (n > 1 && out[n - 1] == '/')
    out[--n] = '\0';
  const char *dot = strrchr (out, '.');
  const char *slash = strrchr (out, '/');
  gsize len = dot && (!slash || dot > slash) ? (gsize)(dot - out) : n;
  g_autofree char *stem = g_strndup (out, len);
  return g_strconcat (stem, ".run", NULL);
}
