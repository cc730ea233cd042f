/* dl-train-dreambooth.c: DreamBooth — full fine-tuning of the UNet (and of
 * the text encoder with --train-text-encoder; on SDXL both encoders, as kohya
 * sd-scripts' sdxl_train.py trains them), VAE frozen, as diffusers'
 * examples/dreambooth/train_dreambooth.py: every parameter trained in fp32
 * (f32 masters and an f16 copy for the forward with --fp16), two parameter
 * groups, prior preservation (dl-train-class.c), written as a single file
 * (SD 1.x: LDM names; SDXL: SGM names) or a diffusers folder
 * (compute/io/dl-checkpoint-writer.h).  Frozen text encoders are not run per
 * step: the trainer caches their output (SDXL: the context and the pooled
 * embedding). */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-checkpoint-writer.h"
#include "train/dl-tokenizer-folder.h"

typedef struct
{
  GHashTable *masters; /* internal name -> f32 tensor AdamW updates */
} DbRun;

static void
db_free (gpointer data)
{
  DbRun *r = data;
  g_hash_table_unref (r->masters);
  g_free (r);
}

static gboolean
db_setup (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  DlParams *p = dl_sd_model_get_params (t->model);
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  DlCheckpoint *ck = dl_sd_model_get_checkpoint (t->model);
  DbRun *r = g_new0 (DbRun, 1);
  r->masters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  t->method_data = r;
  g_autoptr (GPtrArray) names = dl_params_names (p);
  guint n = 0;
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      gboolean text = dl_component_is_text_encoder_param (name);
      if (!g_str_has_prefix (name, "unet.") && !(text && s->train_text_encoder))
        continue;
      DlTensor *w = dl_params_lookup (p, name);
      DlTensor *master = w;
      g_autoptr (DlTensor) own = NULL;
      if (w->dtype != DL_DTYPE_F32)
        {
          /* f16 weights (--fp16, or a table too large for one binding in f32): the
       * master starts from the file's values, not from their f16 rounding */
          int64_t numel = 0;
          g_autofree float *v =
            ck ? dl_checkpoint_read_f32 (ck, name, &numel, error) : dl_tensor_download_f32 (w, error);
          if (!v)
            return FALSE;
          own = dl_tensor_new (t->device, name, DL_DTYPE_F32, w->ndim, w->shape, error);
          if (!own || !dl_tensor_upload_f32 (own, v, error))
            return FALSE;
          master = own;
        }
      if (!dl_optimizer_add_with_copy (t->opt, rec, name, master, w, text ? 1 : 0, error))
        return FALSE;
      g_hash_table_insert (r->masters, g_strdup (name), dl_tensor_ref (master));
      n++;
      if (text)
        t->train_text = TRUE;
    }
  if (!n)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the model has no UNet parameters to train");
      return FALSE;
    }
  return TRUE;
}

static char *
db_prompt (DlTrainer *t, guint image, gint64 template_line, const char *caption)
{
  return g_strdup (caption);
}

static char *
db_trigger (DlTrainer *t)
{
  return NULL;
}

static gboolean
source_tensor (const char *name, float *out, int64_t numel, gpointer data, GError **error)
{
  DbRun *r = data;
  DlTensor *m = g_hash_table_lookup (r->masters, name);
  if (!m)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "no trained tensor %s", name);
      return FALSE;
    }
  g_return_val_if_fail (dl_tensor_numel (m) == numel, FALSE);
  return dl_tensor_download (m, out, DL_DTYPE_F32, error);
}

/* --out DIR/ (or an existing folder): a diffusers folder; otherwise one file */
static gboolean
is_folder_output (const char *path)
{
  return g_str_has_suffix (path, "/") || g_file_test (path, G_FILE_TEST_IS_DIR);
}

/* the layout of `path`: its own; a checkpoint's (named after --out, without
 * the slash) that of --out */
static gboolean
writes_folder (const DlTrainSettings *s, const char *path)
{
  return is_folder_output (path) || (!g_str_has_suffix (path, ".safetensors") && is_folder_output (s->out));
}

static gboolean
db_export (DlTrainer *t, const char *path, GError **error)
{
  const DlTrainSettings *s = t->settings;
  DlCheckpoint *ck = dl_sd_model_get_checkpoint (t->model);
  if (!ck)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "a model of random weights cannot be written");
      return FALSE;
    }
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.layout = writes_folder (s, path) ? DL_CHECKPOINT_WRITE_DIFFUSERS : DL_CHECKPOINT_WRITE_SINGLE_FILE;
  o.dtype = s->save_dtype;
  o.source_components = DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_UNET);
  if (s->train_text_encoder)
    {
      o.source_components |= DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER);
      if (dl_model_config_is_sdxl (dl_checkpoint_get_config (ck)))
        o.source_components |= DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER_2);
    }
  /* the writer's modelspec.* (architecture, title, resolution, date) */
  o.metadata = NULL;
  /* a base without a tokenizer folder (one file): the one the run used (SDXL:
   * and as tokenizer_2/ with diffusers' tokenizer_2 padding) */
  return dl_tokenizer_folder_write_checkpoint (ck, source_tensor, t->method_data, &o, t->tok, path, error);
}

const DlTrainMethodOps dl_train_method_dreambooth = {
  .name = "dreambooth",
  .setup = db_setup,
  .prompt = db_prompt,
  .export = db_export,
  .trigger = db_trigger,
  .free = db_free,
};
