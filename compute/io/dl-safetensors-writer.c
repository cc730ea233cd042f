/* The safetensors writer: the reference writer's layout (safetensors
 * src/tensor.rs prepare: tensors by dtype descending, then by name; the header
 * padded with spaces to a multiple of 8), so that a sha256 of our byte buffer
 * equals what kohya's tools precompute (sd-scripts library/train_util.py
 * precalculate_safetensors_hashes). */
#include "dl-safetensors.h"

#include <string.h>

#include "dl-error.h"
#include "dl-half.h"
#include "io/dl-atomic-file.h"

typedef struct
{
  char *name;
  DlStDType dtype;
  int ndim;
  int64_t shape[DL_ST_MAX_DIMS];
  guint64 nbytes;
  GBytes *data;      /* NULL for a deferred tensor: */
  DlStFillFunc fill; /* called for the bytes each time they are needed */
  gpointer fill_data;
  GDestroyNotify fill_destroy;
} Entry;

struct _DlSafetensorsWriter
{
  GPtrArray *entries; /* Entry* */
  GHashTable *names;  /* borrowed from entries */
  GHashTable *metadata;
};

static void
entry_free (Entry *e)
{
  g_free (e->name);
  g_clear_pointer (&e->data, g_bytes_unref);
  if (e->fill_destroy)
    e->fill_destroy (e->fill_data);
  g_free (e);
}

DlSafetensorsWriter *
dl_safetensors_writer_new (void)
{
  DlSafetensorsWriter *w = g_new0 (DlSafetensorsWriter, 1);
  w->entries = g_ptr_array_new_with_free_func ((GDestroyNotify)entry_free);
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  w->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return w;
}

void
dl_safetensors_writer_free (DlSafetensorsWriter *w)
{
  if (!w)
    return;
  g_hash_table_unref (w->names);
  g_ptr_array_unref (w->entries);
  g_hash_table_unref (w->metadata);
  g_free (w);
}

/* A new entry for a valid name and shape whose size is nbytes (G_MAXUINT64:
 * whatever the shape needs), or NULL with *error set. */
static Entry *
new_entry (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim, const int64_t *shape, guint64 nbytes,
           GError **error)
{
  if (!g_utf8_validate (name, -1, NULL) || strcmp (name, "__metadata__") == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Cannot store a tensor named “%s” in safetensors",
                   g_utf8_validate (name, -1, NULL) ? name : "(invalid UTF-8)");
      return NULL;
    }
  if (g_hash_table_contains (w->names, name))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s” is added twice", name);
      return NULL;
    }
  if (ndim < 0 || ndim > DL_ST_MAX_DIMS)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: %d dimensions (0 to %d allowed)", name,
                   ndim, DL_ST_MAX_DIMS);
      return NULL;
    }
  guint64 numel = 1, bits;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow (numel, (guint64)shape[i], &numel))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: invalid shape", name);
        return NULL;
      }
  if (__builtin_mul_overflow (numel, (guint64)dl_st_dtype_bits (dtype), &bits) || bits % 8 != 0 ||
      bits / 8 > G_MAXSIZE || (nbytes != G_MAXUINT64 && bits / 8 != nbytes))
    {
      if (nbytes == G_MAXUINT64)
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                     "Tensor “%s”: %" G_GUINT64_FORMAT " elements of %s do not fill whole bytes", name, numel,
                     dl_st_dtype_name (dtype));
      else
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                     "Tensor “%s”: %" G_GUINT64_FORMAT " bytes given for %" G_GUINT64_FORMAT " elements of %s", name,
                     nbytes, numel, dl_st_dtype_name (dtype));
      return NULL;
    }
  Entry *e = g_new0 (Entry, 1);
  e->name = g_strdup (name);
  e->dtype = dtype;
  e->ndim = ndim;
  if (ndim > 0)
    memcpy (e->shape, shape, sizeof (int64_t) * ndim);
  e->nbytes = bits / 8;
  return e;
}

static void
add_entry (DlSafetensorsWriter *w, Entry *e)
{
  g_ptr_array_add (w->entries, e);
  g_hash_table_add (w->names, e->name);
}

gboolean
dl_safetensors_writer_add_bytes (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                 const int64_t *shape, GBytes *data, GError **error)
{
  g_return_val_if_fail (w != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (dtype < DL_ST_N_DTYPES, FALSE);
  g_return_val_if_fail (ndim == 0 || shape != NULL, FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  Entry *e = new_entry (w, name, dtype, ndim, shape, g_bytes_get_size (data), error);
  if (!e)
    return FALSE;
  e->data = g_bytes_ref (data);
  add_entry (w, e);
  return TRUE;
}

gboolean
dl_safetensors_writer_add_deferred (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                    const int64_t *shape, DlStFillFunc fill, gpointer user_data, GDestroyNotify destroy,
                                    GError **error)
{
  g_return_val_if_fail (w != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (dtype < DL_ST_N_DTYPES, FALSE);
  g_return_val_if_fail (ndim == 0 || shape != NULL, FALSE);
  g_return_val_if_fail (fill != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  Entry *e = new_entry (w, name, dtype, ndim, shape, G_MAXUINT64, error);
  if (!e)
    {
      if (destroy)
        destroy (user_data);
      return FALSE;
    }
  e->fill = fill;
  e->fill_data = user_data;
  e->fill_destroy = destroy;
  add_entry (w, e);
  return TRUE;
}

/* The bytes of an entry: its GBytes, or what its fill function puts into
 * *scratch (grown as needed; g_free it).  NULL with *error set when the fill
 * function fails or the buffer cannot be had. */
static const guint8 *
entry_bytes (const Entry *e, guint8 **scratch, gsize *scratch_len, GError **error)
{
  if (e->nbytes == 0)
    return (const guint8 *)""; /* (an empty GBytes may have no data pointer) */
  if (e->data)
    return g_bytes_get_data (e->data, NULL);
  if (*scratch_len < e->nbytes)
    {
      g_free (*scratch);
      *scratch_len = 0;
      *scratch = g_try_malloc ((gsize)e->nbytes);
      if (!*scratch)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY,
                       "Out of memory for tensor “%s” (%" G_GUINT64_FORMAT " bytes)", e->name, e->nbytes);
          return NULL;
        }
      *scratch_len = (gsize)e->nbytes;
    }
  g_autoptr (GError) local = NULL;
  if (!e->fill (*scratch, (gsize)e->nbytes, e->fill_data, &local))
    {
      if (local)
        g_propagate_error (error, g_steal_pointer (&local));
      else
        g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "Tensor “%s”: no data", e->name);
      return NULL;
    }
  return *scratch;
}

gboolean
dl_safetensors_writer_add (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim, const int64_t *shape,
                           const void *data, gsize nbytes, GError **error)
{
  g_return_val_if_fail (data != NULL || nbytes == 0, FALSE);
  g_autoptr (GBytes) bytes = g_bytes_new (data, nbytes);
  return dl_safetensors_writer_add_bytes (w, name, dtype, ndim, shape, bytes, error);
}

gboolean
dl_safetensors_writer_add_f32 (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                               const int64_t *shape, const float *data, GError **error)
{
  g_return_val_if_fail (dtype == DL_ST_F32 || dtype == DL_ST_F16 || dtype == DL_ST_BF16, FALSE);
  g_return_val_if_fail (ndim >= 0 && ndim <= DL_ST_MAX_DIMS, FALSE);
  guint64 numel = 1;
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0 || __builtin_mul_overflow (numel, (guint64)shape[i], &numel) || numel > G_MAXSIZE / 4)
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: invalid shape", name);
        return FALSE;
      }
  g_return_val_if_fail (data != NULL || numel == 0, FALSE);
  DlDType dt;
  dl_st_dtype_to_dl (dtype, &dt);
  gsize nbytes = (gsize)numel * dl_dtype_size (dt);
  void *buf = g_malloc (MAX (nbytes, 1));
  if (numel > 0)
    dl_convert (buf, dt, data, DL_DTYPE_F32, (gsize)numel);
  g_autoptr (GBytes) bytes = g_bytes_new_take (buf, nbytes);
  return dl_safetensors_writer_add_bytes (w, name, dtype, ndim, shape, bytes, error);
}

void
dl_safetensors_writer_set_metadata (DlSafetensorsWriter *w, const char *key, const char *value)
{
  g_return_if_fail (w != NULL);
  g_return_if_fail (key != NULL && g_utf8_validate (key, -1, NULL));
  g_return_if_fail (value != NULL && g_utf8_validate (value, -1, NULL));
  g_hash_table_insert (w->metadata, g_strdup (key), g_strdup (value));
}

/* JSON string as serde_json writes it: escape quote, backslash and controls. */
static void
append_json_string (GString *s, const char *str)
{
  g_string_append_c (s, '"');
  for (const guchar *p = (const guchar *)str; *p; p++)
    switch (*p)
      {
      case '"':
        g_string_append (s, "\\\"");
        break;
      case '\\':
        g_string_append (s, "\\\\");
        break;
      case '\n':
        g_string_append (s, "\\n");
        break;
      case '\r':
        g_string_append (s, "\\r");
        break;
      case '\t':
        g_string_append (s, "\\t");
        break;
      case '\b':
        g_string_append (s, "\\b");
        break;
      case '\f':
        g_string_append (s, "\\f");
        break;
      default:
        if (*p < 0x20)
          g_string_append_printf (s, "\\u%04x", *p);
        else
          g_string_append_c (s, (char)*p);
      }
  g_string_append_c (s, '"');
}

static int
layout_order (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  if (x->dtype != y->dtype)
    return x->dtype > y->dtype ? -1 : 1; /* larger alignment first */
  return strcmp (x->name, y->name);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* The header JSON with `metadata`, padded; the entries are sorted into layout
 * order.  The __metadata__ table is written when it has keys, when there are no
 * tensors, or with `force_table`. */
static GString *
build_header (DlSafetensorsWriter *w, GHashTable *metadata, gboolean force_table)
{
  g_ptr_array_sort (w->entries, layout_order);
  GString *s = g_string_new ("{");
  gboolean first = TRUE;
  if (g_hash_table_size (metadata) > 0 || w->entries->len == 0 || force_table)
    {
      /* Never "{}": A1111 refuses a header that does not start with {". */
      g_string_append (s, "\"__metadata__\":{");
      g_autoptr (GPtrArray) keys = g_ptr_array_new ();
      GHashTableIter it;
      gpointer k;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, NULL))
        g_ptr_array_add (keys, k);
      g_ptr_array_sort (keys, compare_strings);
      for (guint i = 0; i < keys->len; i++)
        {
          if (i)
            g_string_append_c (s, ',');
          append_json_string (s, keys->pdata[i]);
          g_string_append_c (s, ':');
          append_json_string (s, g_hash_table_lookup (metadata, keys->pdata[i]));
        }
      g_string_append_c (s, '}');
      first = FALSE;
    }
  guint64 offset = 0;
  for (guint i = 0; i < w->entries->len; i++)
    {
      Entry *e = w->entries->pdata[i];
      if (!first)
        g_string_append_c (s, ',');
      first = FALSE;
      append_json_string (s, e->name);
      g_string_append_printf (s, ":{\"dtype\":\"%s\",\"shape\":[", dl_st_dtype_name (e->dtype));
      for (int d = 0; d < e->ndim; d++)
        g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : "", e->shape[d]);
      guint64 end = offset + e->nbytes;
      g_string_append_printf (s, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", offset, end);
      offset = end;
    }
  g_string_append_c (s, '}');
  while (s->len % 8 != 0)
    g_string_append_c (s, ' ');
  return s;
}

gboolean
dl_safetensors_writer_write (DlSafetensorsWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (w != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_autoptr (GString) header = build_header (w, w->metadata, FALSE);
  guint64 n = GUINT64_TO_LE ((guint64)header->len);
  g_autoptr (DlAtomicFile) f = dl_atomic_file_begin (path, error);
  if (!f)
    return FALSE;
  if (!dl_atomic_file_write (f, &n, 8, error) || !dl_atomic_file_write (f, header->str, header->len, error))
    return FALSE;
  g_autofree guint8 *scratch = NULL;
  gsize scratch_len = 0;
  for (guint i = 0; i < w->entries->len; i++)
    {
      Entry *e = w->entries->pdata[i];
      const guint8 *data = entry_bytes (e, &scratch, &scratch_len, error);
      if (!data || (e->nbytes > 0 && !dl_atomic_file_write (f, data, (gsize)e->nbytes, error)))
        return FALSE;
    }
  return dl_atomic_file_commit (g_steal_pointer (&f), error);
}

char *
dl_safetensors_writer_data_sha256 (DlSafetensorsWriter *w)
{
  g_return_val_if_fail (w != NULL, NULL);
  g_ptr_array_sort (w->entries, layout_order);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *scratch = NULL;
  gsize scratch_len = 0;
  for (guint i = 0; i < w->entries->len; i++)
    {
      Entry *e = w->entries->pdata[i];
      const guint8 *data = entry_bytes (e, &scratch, &scratch_len, NULL);
      if (!data)
        return NULL;
      if (e->nbytes > 0)
        g_checksum_update (sum, data, (gssize)e->nbytes);
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* Feed the part of [start, start + len) that lies in [lo, hi) to `sum`. */
static void
checksum_clipped (GChecksum *sum, const guchar *data, guint64 start, guint64 len, guint64 lo, guint64 hi)
{
  guint64 a = MAX (start, lo), b = MIN (start + len, hi);
  if (a < b)
    g_checksum_update (sum, data + (a - start), (gssize)(b - a));
}

char *
dl_safetensors_writer_range_sha256 (DlSafetensorsWriter *w, GHashTable *metadata, guint64 offset, guint64 length)
{
  g_return_val_if_fail (w != NULL, NULL);
  g_autoptr (GString) header = build_header (w, metadata ? metadata : w->metadata, metadata != NULL);
  guint64 hi = length > G_MAXUINT64 - offset ? G_MAXUINT64 : offset + length;
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint64 n = GUINT64_TO_LE ((guint64)header->len);
  checksum_clipped (sum, (const guchar *)&n, 0, 8, offset, hi);
  checksum_clipped (sum, (const guchar *)header->str, 8, header->len, offset, hi);
  guint64 pos = 8 + header->len;
  g_autofree guint8 *scratch = NULL;
  gsize scratch_len = 0;
  for (guint i = 0; i < w->entries->len && pos < hi; i++)
    {
      Entry *e = w->entries->pdata[i];
      if (pos + e->nbytes > offset)
        {
          const guint8 *data = entry_bytes (e, &scratch, &scratch_len, NULL);
          if (!data)
            return NULL;
          checksum_clipped (sum, data, pos, e->nbytes, offset, hi);
        }
      pos += e->nbytes;
    }
  return g_strdup (g_checksum_get_string (sum));
}
