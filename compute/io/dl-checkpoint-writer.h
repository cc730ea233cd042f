/* dl-checkpoint-writer.h: write a whole SD 1.x or SDXL model — new UNet and
 * text encoder values, the rest copied from the model they were trained from — as
 *  - one .safetensors file with the original names, the layout A1111, ComfyUI
 *    and kohya load, with modelspec.* metadata: for SD 1.x the LDM names
 *    (`model.diffusion_model.*`, `first_stage_model.*`,
 *    `cond_stage_model.transformer.*`); for SDXL Stability's generative-models
 *    (SGM) names as diffusers scripts/convert_diffusers_to_original_sdxl.py
 *    writes them (the UNet's add_embedding as `label_emb.0.0`/`label_emb.0.2`,
 *    `conditioner.embedders.0.transformer.*` for CLIP ViT-L and
 *    `conditioner.embedders.1.model.*` for OpenCLIP bigG, whose q/k/v are
 *    stacked into `attn.in_proj_weight`/`in_proj_bias` and whose
 *    `text_projection` is stored transposed, [in, out]); or
 *  - a diffusers folder: model_index.json, unet/, vae/, text_encoder/ (and for
 *    SDXL text_encoder_2/), weights and config.json, scheduler/scheduler_config.json,
 *    and tokenizer/ (SDXL: and tokenizer_2/) copied from the base model when it
 *    has them, as diffusers' StableDiffusionPipeline and
 *    StableDiffusionXLPipeline save_pretrained write them.
 *
 * New values come from a callback, one parameter at a time, as floats in the
 * internal shape (dl-checkpoint.h), and go to disk one tensor at a time: a
 * model of several GB is never held in memory.  Both layouts are written
 * atomically: a single file through a temporary file, a folder through a hidden
 * temporary sibling folder that replaces an existing model folder only once it
 * is complete.  On any failure, the callback's included, nothing at `path`
 * changes and nothing is left behind. */
#pragma once

#include <glib.h>

#include "io/dl-checkpoint.h"

G_BEGIN_DECLS

typedef enum
{
  DL_CHECKPOINT_WRITE_SINGLE_FILE, /* one .safetensors, original LDM (SDXL: SGM) names */
  DL_CHECKPOINT_WRITE_DIFFUSERS,   /* a diffusers folder */
} DlCheckpointWriteLayout;

/* Fill `out` with the `numel` values of parameter `name` (an internal name,
 * in the internal shape: dl_checkpoint_find's ndim/shape).  Called once per
 * parameter and write, in the order the file lays tensors out (not module
 * order).  FALSE, with *error set, stops the write. */
typedef gboolean (*DlCheckpointSourceFunc) (const char *name, float *out, int64_t numel, gpointer user_data,
                                            GError **error);

#define DL_CHECKPOINT_WRITE_COMPONENT(c) (1u << (c))

typedef struct
{
  DlCheckpointWriteLayout layout;
  /* how the source's values are stored: F16 (the default), F32 or BF16 */
  DlStDType dtype;
  /* DL_CHECKPOINT_WRITE_COMPONENT bits: the components whose values come from
   * the source (default: the UNet and the text encoder) */
  guint source_components;
  /* the other components: FALSE (the default) copies them as the base stores
   * them, bit for bit and in its dtype; TRUE stores them as `dtype` */
  gboolean convert_base;
  /* single file: __metadata__ entries (string -> string) added to, or
   * replacing, the modelspec.* the writer puts there; NULL for none */
  GHashTable *metadata;
  /* diffusers: the tokenizer folder to copy; NULL for the base's
   * (dl_checkpoint_get_tokenizer_dir; without one the folder has no tokenizer/) */
  const char *tokenizer_dir;
  /* diffusers, SDXL: the tokenizer_2 folder to copy; NULL for the one
   * dl_checkpoint_write_find_tokenizer_2 finds (without one the folder has no
   * tokenizer_2/) */
  const char *tokenizer_2_dir;
} DlCheckpointWriteOptions;

/* The defaults above, single-file layout. */
void dl_checkpoint_write_options_init (DlCheckpointWriteOptions *options);

/* One tensor of the output. */
typedef struct
{
  char *name;       /* internal name (SGM's stacked q/k/v: q's) */
  char *file;       /* diffusers: "unet/diffusion_pytorch_model.safetensors", ...; NULL in a single file */
  char *key;        /* the name inside that file */
  DlStDType dtype;  /* as it will be stored */
  int ndim;         /* the file's shape (LDM VAE attention projections are */
  int64_t shape[4]; /* [C, C, 1, 1] there, [C, C] in diffusers files) */
  int64_t numel;
  gboolean from_source; /* FALSE: copied (or converted) from the base */
  /* SGM's OpenCLIP attn.in_proj_weight/in_proj_bias: the internal names of the
   * q, k and v parameters whose rows it stacks, in that order; NULL elsewhere */
  char *stacked[3];
  /* SGM's OpenCLIP text_projection: the transpose of the parameter (shape is
   * the file's, [in, out]) */
  gboolean transposed;
} DlCheckpointWriteEntry;

/* What dl_checkpoint_write would write, in module order, without reading any
 * data (GPtrArray of DlCheckpointWriteEntry*, g_ptr_array_unref).  NULL with
 * *error set for bad options. */
GPtrArray *dl_checkpoint_write_plan (DlCheckpoint *base, const DlCheckpointWriteOptions *options, GError **error);

/* Write the model to `path` (a .safetensors file or a folder, by
 * options->layout; NULL options: the defaults).  An existing file is replaced;
 * an existing folder only when it is a diffusers model folder (it has
 * model_index.json) or empty.  Errors name the file and the problem. */
gboolean dl_checkpoint_write (DlCheckpoint *base, DlCheckpointSourceFunc source, gpointer user_data,
                              const DlCheckpointWriteOptions *options, const char *path, GError **error);

/* The tokenizer_2 folder a diffusers write of the SDXL model `base` copies:
 * options->tokenizer_2_dir, else the `tokenizer_2` folder beside the tokenizer
 * folder it copies (options->tokenizer_dir or the base's own) when that one is
 * named `tokenizer` and the sibling holds vocab.json and merges.txt (a diffusers
 * folder's, or --config's); NULL for an SD 1.x model, a single-file layout, or
 * when there is none (g_free).  `options` may be NULL: the base's own. */
char *dl_checkpoint_write_find_tokenizer_2 (DlCheckpoint *base, const DlCheckpointWriteOptions *options);

/* The configuration files of a diffusers folder, as written: "unet/config.json",
 * "vae/config.json", "text_encoder/config.json", "text_encoder_2/config.json"
 * (SDXL), "scheduler/scheduler_config.json" and "model_index.json" (diffusers
 * 0.27 / transformers 4.40 key sets; SDXL's: EulerDiscreteScheduler and
 * StableDiffusionXLPipeline).  `te_dtype` is that text encoder's stored dtype
 * (its config's torch_dtype).  NULL with *error set for a configuration a
 * diffusers config cannot express. */
char *dl_checkpoint_diffusers_config_json (const DlModelConfig *config, const char *file, DlStDType te_dtype,
                                           GError **error);

G_END_DECLS
