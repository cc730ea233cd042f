/* dl-train-metadata.h: the safetensors metadata a trained LoRA or Textual
 * Inversion embedding carries, key for key and spelled as kohya sd-scripts writes
 * it (train_network.py, train_textual_inversion.py, library/train_util.py,
 * library/sai_model_spec.py), so that AUTOMATIC1111 (alias, SD version, training
 * tags), civitai and metadata viewers read our files as theirs.
 *
 * Every value is a string; numbers, booleans and None are written as Python's
 * str() writes them ("True", "None", "0.0001", "1e-05", "(512, 512)"), nested
 * values as Python's json.dumps() writes them ({"a": 1}, ", " and ": ", non-ASCII
 * as \uXXXX). */
#pragma once

#include <glib.h>

#include "dl-float-repr.h"

G_BEGIN_DECLS

/* An integer fact that is unset (kohya: None) or unknown; see DlTrainFacts. */
#define DL_FACT_NONE G_MININT64

/* One image folder of the run (kohya: a DreamBooth-style subset). */
typedef struct
{
  const char *name; /* the folder's base name */
  gint64 n_repeats;
  gint64 img_count;            /* images in the folder (without repeats) */
  gboolean is_reg;             /* regularisation images: ss_reg_dataset_dirs */
  const char *const *captions; /* NULL-terminated, one per image, may be NULL: ss_tag_frequency */
} DlTrainFactsDir;

/* One aspect-ratio bucket that holds images. */
typedef struct
{
  gint64 index; /* its place in the sorted list of bucket resolutions */
  gint64 width, height;
  gint64 count; /* images in it, repeats included */
} DlTrainFactsBucket;

/* What a run knows about itself.  Start from dl_train_facts_init, which marks
 * everything unknown: strings NULL, integers DL_FACT_NONE, doubles NAN, booleans
 * FALSE.  An unknown fact leaves its key out, except for the keys kohya fills
 * with None when the option is unset (marked "None" below), which are written as
 * "None".  Strings are borrowed. */
typedef struct
{
  /* the run */
  gint64 session_id;            /* ss_session_id: random, 0 to 2^32 */
  double started_at;            /* ss_training_started_at, Unix seconds */
  double finished_at;           /* the save time: ss_training_finished_at, modelspec.date, the default title */
  const char *output_name;      /* ss_output_name (A1111's alias), modelspec.title by default */
  const char *training_comment; /* ss_training_comment; "None" */
  gint64 epoch, steps;          /* ss_epoch, ss_steps: reached at the save */
  gint64 num_epochs, max_train_steps, num_batches_per_epoch;
  gint64 num_train_images; /* images x repeats */
  gint64 num_reg_images;

  /* the base model */
  gboolean v2;
  gboolean v_parameterization;
  gboolean sdxl;
  const char *sd_model_name;     /* ss_sd_model_name: base name (dl-model-hash.h) */
  const char *sd_model_hash;     /* ss_sd_model_hash: A1111's old 8-digit hash */
  const char *new_sd_model_hash; /* ss_new_sd_model_hash: the file's sha256 */

  /* optimisation */
  double learning_rate;
  double unet_lr;             /* "None" */
  double text_encoder_lr;     /* "None" */
  const char *optimizer;      /* the optimizer class as "<module>.<name>", e.g. "torch.optim.adamw.AdamW" */
  const char *optimizer_args; /* "k=v,k=v" with Python reprs, e.g. "weight_decay=0.01"; NULL or "" for none */
  const char *lr_scheduler;   /* "constant", "cosine", ... (diffusers' names) */
  gint64 lr_warmup_steps;
  double max_grad_norm; /* 0.0: no clipping */
  gint64 gradient_accumulation_steps;
  gboolean gradient_checkpointing;
  const char *mixed_precision; /* "no", "fp16", "bf16" */
  gint64 seed;                 /* "None" */
  gint64 batch_size_per_device;

  /* the network (LoRA) */
  gint64 network_dim;
  double network_alpha;
  double network_dropout; /* "None" */
  gint64 conv_dim;        /* LoCon rank; DL_FACT_NONE: no conv modules */
  double conv_alpha;

  /* loss, noise, text */
  gint64 clip_skip;     /* "None"; also modelspec.encoder_layer */
  double noise_offset;  /* "None" */
  double min_snr_gamma; /* "None" */

  /* data */
  gboolean cache_latents;
  double caption_dropout_rate;
  gint64 caption_dropout_every_n_epochs;
  double caption_tag_dropout_rate;
  gboolean color_aug, flip_aug, random_crop, shuffle_caption;
  gint64 keep_tokens;
  gint64 resolution_width, resolution_height; /* ss_resolution "(W, H)", modelspec.resolution "WxH" */
  gboolean enable_bucket, bucket_no_upscale;
  gint64 min_bucket_reso, max_bucket_reso; /* written only with enable_bucket ("None" otherwise) */
  const DlTrainFactsBucket *buckets;
  guint n_buckets;
  double mean_img_ar_error; /* ss_bucket_info's "mean_img_ar_error" */
  const DlTrainFactsDir *dirs;
  guint n_dirs;

  /* modelspec.* extras (NULL: left out) */
  const char *title; /* NULL: output_name, else "LoRA@<finished_at>" / "TextualInversion@..." */
  const char *author, *description, *license, *tags, *trigger_phrase, *usage_hint;
  const char *implementation_version; /* e.g. "dreamloom/0.3.0" */
} DlTrainFacts;

void dl_train_facts_init (DlTrainFacts *facts);

/* ss_* (the minimum set of library/train_util.py SS_METADATA_MINIMUM_KEYS and
 * everything train_network.py writes that the facts hold) and modelspec.*
 * (architecture "…/lora", implementation "diffusers").  A new table, string ->
 * string, owning its strings.  dl_lora_export_write adds the sshs_* hashes. */
GHashTable *dl_train_metadata_lora (const DlTrainFacts *facts);

/* What train_textual_inversion.py writes: modelspec.* only (architecture
 * "…/textual-inversion", implementation Stability AI's generative-models). */
GHashTable *dl_train_metadata_textual_inversion (const DlTrainFacts *facts);

/* ---- Python spellings, exposed for tests and other writers ---- */

/* dl_python_float_repr: compute/dl-float-repr.h */

/* json.dumps() of a string, quotes included (ASCII only, \uXXXX escapes);
 * bytes that are not UTF-8 become U+FFFD. */
void dl_python_json_string (GString *out, const char *utf8);

/* Python's "caption".split(",") with each piece strip()ped and lower()ed, the
 * empty ones dropped: the tags kohya counts for ss_tag_frequency (bytes that
 * are not UTF-8 become U+FFFD).  A new NULL-terminated vector. */
char **dl_python_caption_tags (const char *caption);

G_END_DECLS
