/* dl-train-export.c: see dl-train-export.h. */
#include "dl-config.h"

#include "dl-train-export.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-checkpoint-writer.h"
#include "io/dl-file-util.h"
#include "nn/dl-embedding-file.h"
#include "train/dl-lora-export.h"
#include "train/dl-tokenizer-folder.h"

/* A DreamBooth model in the other layout (single file <-> diffusers folder),
 * every tensor copied as stored; the folder's tokenizer/ from the run's base
 * model when it has one. */
static gboolean
convert_model (const DlTrainSettings *s, const char *source, const char *dest, gboolean to_folder, GError **error)
{
  g_autoptr (DlCheckpoint) ck = dl_checkpoint_open (source, s->config, error);
  if (!ck)
    return FALSE;
  g_autoptr (DlCheckpoint) base = NULL;
  if (to_folder && !dl_checkpoint_get_tokenizer_dir (ck) && s->model)
    base = dl_checkpoint_open (s->model, s->config, NULL); /* only for its tokenizer: optional */
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.layout = to_folder ? DL_CHECKPOINT_WRITE_DIFFUSERS : DL_CHECKPOINT_WRITE_SINGLE_FILE;
  o.source_components = 0;
  /* neither has one (a single-file base): the tokenizer Dreamloom uses */
  o.tokenizer_dir = base ? dl_checkpoint_get_tokenizer_dir (base) : NULL;
  g_autofree char *path = g_strdup (dest);
  if (to_folder && g_str_has_suffix (path, "/") && strlen (path) > 1)
    path[strlen (path) - 1] = '\0';
  return dl_tokenizer_folder_write_checkpoint (ck, NULL, NULL, &o, NULL, path, error);
}

gboolean
dl_train_export_file (const DlTrainSettings *s, const char *source, const char *dest, DlStDType dtype, GError **error)
{
  g_return_val_if_fail (s != NULL && source != NULL && dest != NULL, FALSE);
  if (s->method == DL_TRAIN_DREAMBOOTH && g_file_test (source, G_FILE_TEST_IS_DIR))
    {
      if (g_str_has_suffix (dest, "/") || g_file_test (dest, G_FILE_TEST_IS_DIR))
        return convert_model (s, source, dest, TRUE, error); /* a fresh copy, folder to folder */
      return convert_model (s, source, dest, FALSE, error);
    }
  if (!g_file_test (source, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s” is gone: nothing to export", source);
      return FALSE;
    }
  g_autofree char *src_lower = g_ascii_strdown (source, -1);
  g_autofree char *dst_lower = g_ascii_strdown (dest, -1);
  gboolean diffusers = g_str_has_suffix (dst_lower, "learned_embeds.safetensors");
  gboolean same_form = (g_str_has_suffix (src_lower, ".pt") == g_str_has_suffix (dst_lower, ".pt")) && !diffusers;
  if (s->method == DL_TRAIN_LORA && dtype != s->save_dtype)
    return dl_lora_export_convert (source, dest, dtype, error);
  if (s->method == DL_TRAIN_DREAMBOOTH && (g_str_has_suffix (dest, "/") || g_file_test (dest, G_FILE_TEST_IS_DIR)))
    return convert_model (s, source, dest, TRUE, error);
  if (s->method != DL_TRAIN_TEXTUAL_INVERSION || same_form)
    return dl_file_copy_atomically (source, dest, error);

  /* an embedding in another form */
  g_autoptr (DlEmbedding) e = dl_embedding_read_as_stored (source, error);
  if (!e)
    return FALSE;
  if (e->vectors_2)
    {
      /* SDXL's: one set per text encoder, {clip_l, clip_g} in either
       * container (A1111 and ComfyUI read both); diffusers' learned_embeds
       * form holds one encoder's */
      if (diffusers)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "“%s” is an SDXL embedding (vectors for both text encoders): diffusers' "
                       "learned_embeds form holds one encoder's; export it as .safetensors or .pt",
                       source);
          return FALSE;
        }
      return dl_embedding_write_sdxl (dest, e->vectors, e->dim, e->vectors_2, e->dim_2, e->n_vectors, NULL, dtype,
                                      error);
    }
  if (diffusers)
    return dl_embedding_write_diffusers (dest, s->placeholder ? s->placeholder : e->name, e->vectors, e->n_vectors,
                                         e->dim, error);
  if (g_str_has_suffix (dst_lower, ".pt"))
    {
      /* A1111 names an embedding by its file: the new file's stem */
      g_autofree char *name = dl_file_stem (dest);
      return dl_embedding_write_a1111 (dest, name, e->vectors, e->n_vectors, e->dim, e->step, e->sd_checkpoint,
                                       e->sd_checkpoint_name, error);
    }
  return dl_embedding_write_emb_params (dest, e->vectors, e->n_vectors, e->dim, NULL, dtype, error);
}
