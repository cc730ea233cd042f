/* dl-adamw8bit-io.c: see dl-adamw8bit-io.h. */
#include "dl-config.h"

#include "train/dl-adamw8bit-io.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"

gboolean
dl_adamw8bit_state_save (DlAdamW8bitState *s, DlSafetensorsWriter *w, const char *name, GError **error)
{
  g_return_val_if_fail (s != NULL && w != NULL && name != NULL, FALSE);
  int64_t n = s->numel, blocks = dl_adamw8bit_n_blocks (n);
  g_autofree guint8 *mc = g_try_malloc (MAX (n, 1));
  g_autofree guint8 *vc = g_try_malloc (MAX (n, 1));
  g_autofree float *ma = g_try_new (float, MAX (blocks, 1));
  g_autofree float *va = g_try_new (float, MAX (blocks, 1));
  if (!mc || !vc || !ma || !va)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory saving the 8-bit AdamW state of %s",
                   name);
      return FALSE;
    }
  if (!dl_adamw8bit_state_download (s, mc, vc, ma, va, error))
    return FALSE;
  g_autofree char *km = g_strconcat ("adam8_m.", name, NULL);
  g_autofree char *kv = g_strconcat ("adam8_v.", name, NULL);
  g_autofree char *kma = g_strconcat ("adam8_m_absmax.", name, NULL);
  g_autofree char *kva = g_strconcat ("adam8_v_absmax.", name, NULL);
  return dl_safetensors_writer_add (w, km, DL_ST_U8, 1, &n, mc, n, error) &&
         dl_safetensors_writer_add (w, kv, DL_ST_U8, 1, &n, vc, n, error) &&
         dl_safetensors_writer_add (w, kma, DL_ST_F32, 1, &blocks, ma, blocks * sizeof (float), error) &&
         dl_safetensors_writer_add (w, kva, DL_ST_F32, 1, &blocks, va, blocks * sizeof (float), error);
}

/* The tensor `prefix<name>` of dtype `dt` and `numel` elements, or an error. */
static const DlStTensor *
find_tensor (DlSafetensors *st, const char *prefix, const char *name, DlStDType dt, int64_t numel, GError **error)
{
  g_autofree char *key = g_strconcat (prefix, name, NULL);
  const DlStTensor *t = dl_safetensors_find (st, key);
  if (!t)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: no tensor %s", dl_safetensors_get_path (st), key);
      return NULL;
    }
  if (t->dtype != dt || t->numel != numel)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s”: %s is %s with %" G_GINT64_FORMAT " elements, expected %s with %" G_GINT64_FORMAT,
                   dl_safetensors_get_path (st), key, dl_st_dtype_name (t->dtype), t->numel, dl_st_dtype_name (dt),
                   numel);
      return NULL;
    }
  return t;
}

static float *
read_absmax (DlSafetensors *st, const char *prefix, const char *name, int64_t blocks, GError **error)
{
  const DlStTensor *t = find_tensor (st, prefix, name, DL_ST_F32, blocks, error);
  if (!t)
    return NULL;
  float *a = g_new (float, MAX (blocks, 1));
  memcpy (a, t->data, blocks * sizeof (float)); /* safetensors is little-endian, as is every Vulkan host */
  for (int64_t b = 0; b < blocks; b++)
    if (!(isfinite (a[b]) && a[b] >= 0))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: %s%s holds absmax %g in block %" G_GINT64_FORMAT,
                     dl_safetensors_get_path (st), prefix, name, a[b], b);
        g_free (a);
        return NULL;
      }
  return a;
}

gboolean
dl_adamw8bit_state_load (DlAdamW8bitState *s, DlSafetensors *st, const char *name, GError **error)
{
  g_return_val_if_fail (s != NULL && st != NULL && name != NULL, FALSE);
  int64_t n = s->numel, blocks = dl_adamw8bit_n_blocks (n);
  const DlStTensor *mc = find_tensor (st, "adam8_m.", name, DL_ST_U8, n, error);
  const DlStTensor *vc = mc ? find_tensor (st, "adam8_v.", name, DL_ST_U8, n, error) : NULL;
  if (!vc)
    return FALSE;
  g_autofree float *ma = read_absmax (st, "adam8_m_absmax.", name, blocks, error);
  g_autofree float *va = ma ? read_absmax (st, "adam8_v_absmax.", name, blocks, error) : NULL;
  if (!va)
    return FALSE;
  return dl_adamw8bit_state_upload (s, mc->data, vc->data, ma, va, error);
}
