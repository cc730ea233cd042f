#include "sparse-writer.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
key_free (SwKey *k)
{
  g_free (k->name);
  g_free (k);
}

GPtrArray *
sw_keys_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify)key_free);
}

SwKey *
sw_keys_add (GPtrArray *keys, const char *name, DlStDType dtype, int ndim, const int64_t *shape)
{
  g_assert (ndim >= 0 && ndim <= DL_ST_MAX_DIMS);
  SwKey *k = g_new0 (SwKey, 1);
  k->name = g_strdup (name);
  k->dtype = dtype;
  k->ndim = ndim;
  for (int i = 0; i < ndim; i++)
    k->shape[i] = shape[i];
  g_ptr_array_add (keys, k);
  return k;
}

GPtrArray *
sw_keys_from_safetensors (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  GPtrArray *keys = sw_keys_new ();
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      sw_keys_add (keys, t->name, t->dtype, t->ndim, t->shape);
    }
  return keys;
}

GPtrArray *
sw_keys_from_json_object (gpointer json_object)
{
  JsonObject *o = json_object;
  GPtrArray *keys = sw_keys_new ();
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      JsonObject *e = json_object_get_object_member (o, l->data);
      JsonArray *shape = json_object_get_array_member (e, "shape");
      DlStDType dt;
      g_assert_true (dl_st_dtype_from_name (json_object_get_string_member (e, "dtype"), &dt));
      int64_t s[DL_ST_MAX_DIMS];
      int nd = (int)json_array_get_length (shape);
      for (int i = 0; i < nd; i++)
        s[i] = json_array_get_int_element (shape, (guint)i);
      sw_keys_add (keys, l->data, dt, nd, s);
    }
  return keys;
}

SwKey *
sw_keys_find (GPtrArray *keys, const char *name)
{
  for (guint i = 0; i < keys->len; i++)
    if (strcmp (((SwKey *)keys->pdata[i])->name, name) == 0)
      return keys->pdata[i];
  return NULL;
}

gboolean
sw_keys_remove (GPtrArray *keys, const char *name)
{
  SwKey *k = sw_keys_find (keys, name);
  return k && g_ptr_array_remove (keys, k);
}

int64_t
sw_key_numel (const SwKey *k)
{
  int64_t n = 1;
  for (int i = 0; i < k->ndim; i++)
    n *= k->shape[i];
  return n;
}

static void
append_json_string (GString *s, const char *text)
{
  g_string_append_c (s, '"');
  for (const char *p = text; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_c (s, '\\');
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

void
sw_write_sparse (const char *path, GPtrArray *keys, const char *const *metadata)
{
  g_autoptr (GString) json = g_string_new ("{");
  gboolean first = TRUE;
  if (metadata)
    {
      g_string_append (json, "\"__metadata__\":{");
      for (guint i = 0; metadata[i]; i += 2)
        {
          if (i)
            g_string_append_c (json, ',');
          append_json_string (json, metadata[i]);
          g_string_append_c (json, ':');
          append_json_string (json, metadata[i + 1]);
        }
      g_string_append_c (json, '}');
      first = FALSE;
    }
  guint64 offset = 0;
  for (guint i = 0; i < keys->len; i++)
    {
      const SwKey *k = keys->pdata[i];
      guint64 nbytes = (guint64)sw_key_numel (k) * dl_st_dtype_size (k->dtype);
      if (!first)
        g_string_append_c (json, ',');
      first = FALSE;
      append_json_string (json, k->name);
      g_string_append_printf (json, ":{\"dtype\":\"%s\",\"shape\":[", dl_st_dtype_name (k->dtype));
      for (int d = 0; d < k->ndim; d++)
        g_string_append_printf (json, "%s%" G_GINT64_FORMAT, d ? "," : "", k->shape[d]);
      g_string_append_printf (json, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", offset,
                              offset + nbytes);
      offset += nbytes;
    }
  g_string_append_c (json, '}');
  while (json->len % 8 != 0)
    g_string_append_c (json, ' ');

  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint (fd, >=, 0);
  guint8 n[8];
  for (int i = 0; i < 8; i++)
    n[i] = (guint8)((guint64)json->len >> (8 * i));
  g_assert_cmpint (write (fd, n, 8), ==, 8);
  g_assert_cmpint (write (fd, json->str, json->len), ==, (gssize)json->len);
  g_assert_cmpint (ftruncate (fd, (off_t)(8 + json->len + offset)), ==, 0);
  g_assert_cmpint (close (fd), ==, 0);
}

guint64
sw_disk_usage (const char *path)
{
  struct stat s;
  g_assert_cmpint (stat (path, &s), ==, 0);
  return (guint64)s.st_blocks * 512;
}
