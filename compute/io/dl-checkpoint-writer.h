/* dl-checkpoint-writer.h: write a whole SD 1.x model — new UNet and text
 * encoder values, the rest copied from the model they were trained from — as
 *  - one .safetensors file with the original LDM names (`model.diffusion_model.*`,
 *    `first_stage_model.*`, `cond_stage_model.transformer.*`), the layout
 *    A1111 and ComfyUI load, with modelspec.* metadata; or
 *  - a diffusers folder: model_index.json, unet/, vae/, text_encoder/ (weights
 *    and config.json), scheduler/scheduler_config.json, and tokenizer/ copied
 *    from the base model when it has one.
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
  DL_CHECKPOINT_WRITE_SINGLE_FILE, /* one .safetensors, original LDM names */
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
} DlCheckpointWriteOptions;

/* The defaults above, single-file layout. */
void dl_checkpoint_write_options_init (DlCheckpointWriteOptions *options);

/* One tensor of the output. */
typedef struct
{
  char *name;       /* internal name */
  char *file;       /* diffusers: "unet/diffusion_pytorch_model.safetensors", ...; NULL in a single file */
  char *key;        /* the name inside that file */
  DlStDType dtype;  /* as it will be stored */
  int ndim;         /* the file's shape (LDM VAE attention projections are */
  int64_t shape[4]; /* [C, C, 1, 1] there, [C, C] in diffusers files) */
  int64_t numel;
  gboolean from_source; /* FALSE: copied (or converted) from the base */
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

/* The configuration files of a diffusers folder, as written: "unet/config.json",
 * "vae/config.json", "text_encoder/config.json",
 * "scheduler/scheduler_config.json" and "model_index.json" (diffusers 0.27 /
 * transformers 4.40 key sets).  `te_dtype` is the text encoder's stored dtype
 * (its config's torch_dtype).  NULL with *error set for a configuration a
 * diffusers config cannot express. */
char *dl_checkpoint_diffusers_config_json (const DlModelConfig *config, const char *file, DlStDType te_dtype,
                                           GError **error);

G_END_DECLS
