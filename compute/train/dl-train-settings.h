/* dl-train-settings.h: every setting of a training run, typed, with the
 * defaults of a good first run, the `dreamloom train` option of each, and a
 * JSON form that round-trips (the run's state file and the project file keep
 * it).
 *
 * One table (dl-train-settings.c) lists the fields: their option names, types,
 * defaults per method and help texts; parsing, JSON, comparison and --help are
 * all driven by it, so an option cannot exist in one place and not another. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "io/dl-safetensors.h"
#include "train/dl-lr-schedule.h"

G_BEGIN_DECLS

typedef enum
{
  DL_TRAIN_LORA,
  DL_TRAIN_TEXTUAL_INVERSION,
  DL_TRAIN_DREAMBOOTH,
  DL_TRAIN_HYPERNETWORK,
  DL_TRAIN_N_METHODS
} DlTrainMethod;

/* "lora", "textual-inversion", "dreambooth", "hypernetwork" */
const char *dl_train_method_name (DlTrainMethod method);
gboolean dl_train_method_from_name (const char *name, DlTrainMethod *out);

typedef struct
{
  DlTrainMethod method;

  /* files (paths as given; the run's own outputs) */
  char *model;         /* checkpoint file or diffusers folder */
  char *config;        /* --config DIR for a single file with another architecture */
  char *images;        /* folder of training images */
  char *out;           /* the export file */
  char *out_diffusers; /* TI: also diffusers' learned_embeds.safetensors */
  char *run_dir;       /* checkpoints and state; default <out without extension>.run */
  char *replay;        /* take every random draw from this file (docs/training.md, “Replay files”) */
  char *vocab;         /* the CLIP vocabulary, when the model has none */

  /* data */
  int resolution;
  int batch;
  gint64 steps;
  gint64 seed;
  gboolean buckets;
  gboolean random_crop;
  int repeats;
  gboolean flip;
  double caption_dropout;
  gboolean shuffle_tags;
  int keep_tags;
  char *instance_prompt; /* the caption of images without a caption file */

  /* optimizer and schedule */
  double lr;
  double text_encoder_lr;
  DlLrScheduleKind lr_scheduler;
  gint64 lr_warmup;
  double lr_cycles;
  double lr_power;
  double weight_decay;
  double adam_beta1, adam_beta2, adam_eps;
  double max_grad_norm; /* 0: off */
  int grad_accum;

  /* loss */
  double min_snr_gamma; /* 0: off */
  double noise_offset;  /* 0: off */
  int clip_skip;

  /* precision and memory */
  gboolean fp16;
  gboolean checkpointing;
  gboolean fused_backward_pass; /* each tensor's step during the backward (dl-optimizer.h) */

  /* LoRA */
  int rank;
  double alpha;
  int conv_rank; /* 0: no LoCon */
  double conv_alpha;
  gboolean no_text_encoder;
  char *init_from;
  DlStDType save_dtype; /* F16 or F32 */

  /* Textual Inversion */
  char *placeholder;
  char *init_text;
  int vectors;
  char *template_file;

  /* DreamBooth */
  gboolean train_text_encoder;
  char *class_prompt;
  char *class_images; /* folder of class images (missing ones are generated there) */
  int num_class_images;
  double prior_weight;
  gboolean adamw8bit; /* --optimizer adamw8bit */

  /* Hypernetwork */
  char *hn_sizes;  /* "768,320,640,1280" */
  char *hn_layers; /* "1,2,1" */
  char *hn_activation;
  gboolean hn_layer_norm;
  char *hn_dropout; /* "0,0,0" */
  char *hn_init;    /* Normal, XavierUniform, XavierNormal, KaimingUniform, KaimingNormal */

  /* checkpoints, previews, validation */
  gint64 save_every;
  int keep;
  gint64 sample_every;
  char **sample_prompts; /* NULL-terminated, may be NULL */
  int sample_steps;
  int sample_sampler; /* index into dl_sampler_names () */
  gint64 sample_seed;
  double sample_cfg;
  gboolean sample_first; /* previews at step 0: the base model's */
  gint64 validate_every;
} DlTrainSettings;

/* The defaults for `method` (a good first run for 10–30 images on SD 1.5). */
DlTrainSettings *dl_train_settings_new (DlTrainMethod method);
/* The steps of a good first run of `method` on `n_images` images (the defaults are for about 15):
 * LoRA 100 per image (kohya's usual 10 repeats x 10 epochs) within 500-3000; Textual Inversion 200 per
 * image within 1000-5000; DreamBooth 80 per image within 400-1600 (diffusers' DreamBooth README: 800
 * for 5-10 images, more overfits); Hypernetwork 2000 whatever the count.  0 images: the default. */
gint64 dl_train_settings_steps_for_dataset (DlTrainMethod method, guint n_images);
DlTrainSettings *dl_train_settings_copy (const DlTrainSettings *s);
void dl_train_settings_free (DlTrainSettings *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTrainSettings, dl_train_settings_free)

/* Set the field of option `name` (without "--") from its text form, checking the
 * value; flags take "true"/"false" (NULL: true).  Errors name the option. */
gboolean dl_train_settings_set (DlTrainSettings *s, const char *name, const char *value, GError **error);
/* Option `name` back to unset (texts) or the method's default. */
void dl_train_settings_reset (DlTrainSettings *s, const char *name);
/* The text form of option `name`'s value (NULL when unset). */
char *dl_train_settings_get (const DlTrainSettings *s, const char *name);
/* Whether `name` is a settings option; *is_flag tells whether it takes no value,
 * *repeatable whether it may be given several times. */
gboolean dl_train_settings_has_option (const char *name, gboolean *is_flag, gboolean *repeatable);
/* One option as a settings form shows it. */
typedef enum
{
  DL_TRAIN_OPTION_INT,    /* a whole number in [min, max] */
  DL_TRAIN_OPTION_NUMBER, /* a real number in [min, max] */
  DL_TRAIN_OPTION_FLAG,
  DL_TRAIN_OPTION_TEXT,   /* text or a path */
  DL_TRAIN_OPTION_TEXTS,  /* repeatable text */
  DL_TRAIN_OPTION_CHOICE, /* one of `choices` */
} DlTrainOptionKind;

typedef struct
{
  const char *name; /* without "--" */
  DlTrainOptionKind kind;
  double min, max;
  const char *arg;            /* placeholder, e.g. "LR" */
  const char *help;           /* one line, with the default and where it comes from */
  const char *const *choices; /* NULL-terminated, for DL_TRAIN_OPTION_CHOICE */
  guint methods;              /* bit (1 << method) for each method that takes it */
} DlTrainOptionInfo;

/* The options in the table's order: the i-th one, FALSE past the last. */
gboolean dl_train_settings_option_info (guint i, DlTrainOptionInfo *info);

/* "--name VALUE  help (default, source)" lines for --help. */
char *dl_train_settings_describe_options (void);

/* Consistency of the whole (ranges, combinations, options the method does not
 * take) before any work; the error names the option. */
gboolean dl_train_settings_validate (const DlTrainSettings *s, GError **error);

/* Whether nothing in the text encoders trains and every prompt of the run is
 * known before it starts (no tag shuffling, no templates): their outputs are
 * then computed once and the encoders wait in host memory while the UNet
 * trains (kohya sdxl_train.py moves them to the CPU with
 * --cache_text_encoder_outputs). */
gboolean dl_train_settings_text_encoders_off_device (const DlTrainSettings *s);

/* JSON object with one member per option (by option name). */
JsonNode *dl_train_settings_to_json (const DlTrainSettings *s);
char *dl_train_settings_to_json_string (const DlTrainSettings *s);
DlTrainSettings *dl_train_settings_from_json (JsonNode *node, GError **error);
DlTrainSettings *dl_train_settings_from_json_string (const char *text, GError **error);

/* NULL when equal, else "--name: A vs B" for the first option that differs
 * (`names`, if not NULL, limits the comparison to those options). */
char *dl_train_settings_diff (const DlTrainSettings *a, const DlTrainSettings *b, const char *const *names);

/* Whether option `name` only changes what a run writes besides the trained
 * tensors, or how much memory it takes, never their values (checkpoint and
 * preview intervals, gradient checkpointing...): a resumed run may change it. */
gboolean dl_train_settings_is_side_option (const char *name);
/* dl_train_settings_diff over the options that change the trained tensors. */
char *dl_train_settings_diff_results (const DlTrainSettings *a, const DlTrainSettings *b);

/* The run folder: run_dir, or `out` without its extension + ".run". */
char *dl_train_settings_run_dir (const DlTrainSettings *s);

G_END_DECLS
