/* dl-train-export.c: see dl-train-export.h. */
#include "dl-config.h"

#include "dl-train-export.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "dl-error.h"
#include "io/dl-file-util.h"
#include "nn/dl-embedding-file.h"
#include "train/dl-lora-export.h"

static gboolean
copy_atomically (const char *source, const char *dest, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (dest);
  g_autofree char *base = g_path_get_basename (dest);
  g_autofree char *tmp_name = g_strdup_printf (".%s.partial-%u", base, g_random_int ());
  g_autofree char *tmp = g_build_filename (dir, tmp_name, NULL);
  g_autoptr (GFile) from = g_file_new_for_path (source);
  g_autoptr (GFile) to = g_file_new_for_path (tmp);
  g_autoptr (GError) local = NULL;
  if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &local)) {
    g_unlink (tmp);
    g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot write “%s”: %s", dest, local->message);
    return FALSE;
  }
  if (g_rename (tmp, dest) != 0) {
    int e = errno;
    g_unlink (tmp);
    g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot write “%s”: %s", dest, g_strerror (e));
    return FALSE;
  }
  return TRUE;
}

gboolean
dl_train_export_file (const DlTrainSettings *s, const char *source, const char *dest, DlStDType dtype,
                      GError **error)
{
  g_return_val_if_fail (s != NULL && source != NULL && dest != NULL, FALSE);
  if (!g_file_test (source, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s” is gone: nothing to export", source);
    return FALSE;
  }
  g_autofree char *src_lower = g_ascii_strdown (source, -1);
  g_autofree char *dst_lower = g_ascii_strdown (dest, -1);
  gboolean diffusers = g_str_has_suffix (dst_lower, "learned_embeds.safetensors");
  gboolean same_form = (g_str_has_suffix (src_lower, ".pt") == g_str_has_suffix (dst_lower, ".pt")) && !diffusers;
  if (s->method == DL_TRAIN_LORA && dtype != s->save_dtype)
    return dl_lora_export_convert (source, dest, dtype, error);
  if (s->method != DL_TRAIN_TEXTUAL_INVERSION || same_form)
    return copy_atomically (source, dest, error);

  /* an embedding in another form */
  g_autoptr (DlEmbedding) e = dl_embedding_read (source, 0, error);
  if (!e)
    return FALSE;
  if (diffusers)
    return dl_embedding_write_diffusers (dest, s->placeholder ? s->placeholder : e->name, e->vectors,
                                         e->n_vectors, e->dim, error);
  if (g_str_has_suffix (dst_lower, ".pt")) {
    /* A1111 names an embedding by its file: the new file's stem */
    g_autofree char *name = dl_file_stem (dest);
    return dl_embedding_write_a1111 (dest, name, e->vectors, e->n_vectors, e->dim, e->step, e->sd_checkpoint,
                                     e->sd_checkpoint_name, error);
  }
  return dl_embedding_write_emb_params (dest, e->vectors, e->n_vectors, e->dim, NULL, dtype, error);
}
