/* dl-lora-export.c: see dl-lora-export.h. */
#include "train/dl-lora-export.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "dl-half.h"

/* kohya's precalculate_safetensors_hashes / addnet_hash_legacy: 64 KiB at 1 MiB. */
#define LEGACY_OFFSET 0x100000
#define LEGACY_LENGTH 0x10000

static const char *const kohya_prefixes[] = { "lora_unet_", "lora_te_", "lora_te1_", "lora_te2_" };

static gboolean
check_name (const char *path, const char *name, GError **error)
{
  gboolean prefixed = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (kohya_prefixes); i++)
    if (g_str_has_prefix (name, kohya_prefixes[i]) && name[strlen (kohya_prefixes[i])] != '\0')
      prefixed = TRUE;
  if (!prefixed || strchr (name, '.') || !g_utf8_validate (name, -1, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: LoRA module name “%s” is not a kohya name (lora_unet_… or lora_te_…, no dots)", path,
                   g_utf8_validate (name, -1, NULL) ? name : "(invalid UTF-8)");
      return FALSE;
    }
  return TRUE;
}

static gint64
numel (int ndim, const int64_t *shape)
{
  gint64 n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

static gboolean
check_shapes (const char *path, const DlLoraExportModule *m, GError **error)
{
  gboolean ok = (m->down_ndim == 2 || m->down_ndim == 4) && m->up_ndim == m->down_ndim && m->down && m->up;
  for (int i = 0; ok && i < m->down_ndim; i++)
    ok = m->down_shape[i] > 0 && m->down_shape[i] <= G_MAXINT32 && m->up_shape[i] > 0 && m->up_shape[i] <= G_MAXINT32;
  ok = ok && m->up_shape[1] == m->down_shape[0];
  if (ok && m->up_ndim == 4)
    ok = m->up_shape[2] == 1 && m->up_shape[3] == 1;
  if (!ok)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: LoRA module “%s”: down and up shapes do not fit (down [r, in] and up [out, r], or down "
                   "[r, in, kh, kw] and up [out, r, 1, 1])",
                   path, m->name);
      return FALSE;
    }
  return TRUE;
}

/* Every value finite, and still finite once stored as `dtype`. */
static gboolean
representable (float v, DlStDType dtype)
{
  if (!isfinite (v))
    return FALSE;
  if (dtype == DL_ST_F16)
    return isfinite (dl_f16_to_f32 (dl_f32_to_f16 (v)));
  if (dtype == DL_ST_BF16)
    return isfinite (dl_bf16_to_f32 (dl_f32_to_bf16 (v)));
  return TRUE;
}

static gboolean
check_values (const char *path, const char *module, const char *what, const float *v, gint64 n, DlStDType dtype,
              GError **error)
{
  for (gint64 i = 0; i < n; i++)
    if (!representable (v[i], dtype))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                     "%s: LoRA module “%s”: %s holds %g, which %s stored as %s", path, module, what, v[i],
                     isfinite (v[i]) ? "overflows when" : "cannot be", dl_st_dtype_name (dtype));
        return FALSE;
      }
  return TRUE;
}

void
dl_lora_export_hashes (DlSafetensorsWriter *w, GHashTable *metadata, char **model_hash, char **legacy_hash)
{
  g_return_if_fail (w != NULL && model_hash != NULL && legacy_hash != NULL);
  *model_hash = dl_safetensors_writer_data_sha256 (w);
  /* Only the training keys take part, "so that user metadata does not change the
   * hash"; Python hands the serializer a dict, an empty one included. */
  g_autoptr (GHashTable) ss = g_hash_table_new (g_str_hash, g_str_equal);
  if (metadata)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        if (g_str_has_prefix (k, "ss_"))
          g_hash_table_insert (ss, k, v);
    }
  g_autofree char *full = dl_safetensors_writer_range_sha256 (w, ss, LEGACY_OFFSET, LEGACY_LENGTH);
  *legacy_hash = g_strndup (full, 8);
}

gboolean
dl_lora_export_write (const char *path, const DlLoraExportModule *modules, guint n, DlStDType dtype,
                      GHashTable *metadata, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (modules != NULL || n == 0, FALSE);
  g_return_val_if_fail (dtype == DL_ST_F16 || dtype == DL_ST_F32 || dtype == DL_ST_BF16, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: a LoRA needs at least one module", path);
      return FALSE;
    }
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      const DlLoraExportModule *m = &modules[i];
      g_return_val_if_fail (m->name != NULL, FALSE);
      if (!check_name (path, m->name, error) || !check_shapes (path, m, error))
        return FALSE;
      if (!g_hash_table_add (seen, (gpointer)m->name))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: LoRA module “%s” is given twice", path,
                       m->name);
          return FALSE;
        }
      if (!(m->alpha > 0) || !representable (m->alpha, dtype))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "%s: LoRA module “%s”: alpha %g is not a positive number %s can hold", path, m->name, m->alpha,
                       dl_st_dtype_name (dtype));
          return FALSE;
        }
      if (!check_values (path, m->name, "lora_down", m->down, numel (m->down_ndim, m->down_shape), dtype, error) ||
          !check_values (path, m->name, "lora_up", m->up, numel (m->up_ndim, m->up_shape), dtype, error))
        return FALSE;
      g_autofree char *down = g_strconcat (m->name, ".lora_down.weight", NULL);
      g_autofree char *up = g_strconcat (m->name, ".lora_up.weight", NULL);
      g_autofree char *alpha = g_strconcat (m->name, ".alpha", NULL);
      g_autoptr (GError) local = NULL;
      if (!dl_safetensors_writer_add_f32 (w, down, dtype, m->down_ndim, m->down_shape, m->down, &local) ||
          !dl_safetensors_writer_add_f32 (w, up, dtype, m->up_ndim, m->up_shape, m->up, &local) ||
          !dl_safetensors_writer_add_f32 (w, alpha, dtype, 0, NULL, &m->alpha, &local))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: LoRA module “%s”: %s", path, m->name,
                       local->message);
          return FALSE;
        }
    }

  if (metadata)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        {
          if (!k || !v || !g_utf8_validate (k, -1, NULL) || !g_utf8_validate (v, -1, NULL))
            {
              g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "%s: metadata entry “%s” is not a pair of UTF-8 strings", path,
                           k && g_utf8_validate (k, -1, NULL) ? (const char *)k : "(invalid)");
              return FALSE;
            }
          dl_safetensors_writer_set_metadata (w, k, v);
        }
    }
  g_autofree char *model_hash = NULL, *legacy_hash = NULL;
  dl_lora_export_hashes (w, metadata, &model_hash, &legacy_hash);
  dl_safetensors_writer_set_metadata (w, "sshs_model_hash", model_hash);
  dl_safetensors_writer_set_metadata (w, "sshs_legacy_hash", legacy_hash);
  return dl_safetensors_writer_write (w, path, error);
}

gboolean
dl_lora_export_convert (const char *source, const char *dest, DlStDType dtype, GError **error)
{
  g_return_val_if_fail (source != NULL && dest != NULL, FALSE);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (source, error);
  if (!st)
    return FALSE;
  g_autoptr (GArray) mods = g_array_new (FALSE, TRUE, sizeof (DlLoraExportModule));
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free); /* names and values */
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      if (!g_str_has_suffix (t->name, ".lora_down.weight"))
        continue;
      char *name = g_strndup (t->name, strlen (t->name) - strlen (".lora_down.weight"));
      g_ptr_array_add (keep, name);
      g_autofree char *up_name = g_strconcat (name, ".lora_up.weight", NULL);
      g_autofree char *alpha_name = g_strconcat (name, ".alpha", NULL);
      const DlStTensor *up = dl_safetensors_find (st, up_name);
      const DlStTensor *alpha = dl_safetensors_find (st, alpha_name);
      if (!up || !alpha || t->ndim > 4 || up->ndim > 4 || alpha->numel != 1)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "%s: “%s” is not a kohya LoRA module (down, up and alpha)", source, name);
          return FALSE;
        }
      DlLoraExportModule m = { .name = name, .down_ndim = t->ndim, .up_ndim = up->ndim };
      memcpy (m.down_shape, t->shape, sizeof (int64_t) * (gsize)t->ndim);
      memcpy (m.up_shape, up->shape, sizeof (int64_t) * (gsize)up->ndim);
      int64_t n;
      float *down = dl_safetensors_read_f32 (st, t->name, &n, error);
      float *upv = down ? dl_safetensors_read_f32 (st, up_name, &n, error) : NULL;
      float *a = upv ? dl_safetensors_read_f32 (st, alpha_name, &n, error) : NULL;
      g_ptr_array_add (keep, down);
      g_ptr_array_add (keep, upv);
      if (!a)
        return FALSE;
      m.down = down;
      m.up = upv;
      m.alpha = a[0];
      g_free (a);
      g_array_append_val (mods, m);
    }
  if (mods->len == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: not a kohya LoRA (no lora_down weights)", source);
      return FALSE;
    }
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
  for (guint i = 0; keys && i < keys->len; i++)
    if (!g_str_has_prefix (keys->pdata[i], "sshs_"))
      g_hash_table_insert (meta, keys->pdata[i], (gpointer)dl_safetensors_get_metadata (st, keys->pdata[i]));
  return dl_lora_export_write (dest, (const DlLoraExportModule *)mods->data, mods->len, dtype, meta, error);
}
