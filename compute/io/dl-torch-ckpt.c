#include "dl-torch-ckpt.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-zip.h"

struct _DlTorchCkpt
{
  char *path;
  GBytes *file;
  DlZip *zip;
  DlPickle *pickle;
  char *prefix;         /* the archive folder, "archive/" */
  GHashTable *storages; /* key -> GBytes of data/<key> */
  DlStTensor *tensors;
  guint n_tensors;
  GHashTable *by_name;
  GPtrArray *other_keys;
};

void
dl_torch_ckpt_free (DlTorchCkpt *ck)
{
  if (!ck)
    return;
  for (guint i = 0; i < ck->n_tensors; i++)
    g_free ((char *)ck->tensors[i].name);
  g_free (ck->tensors);
  g_clear_pointer (&ck->by_name, g_hash_table_unref);
  g_clear_pointer (&ck->other_keys, g_ptr_array_unref);
  g_clear_pointer (&ck->storages, g_hash_table_unref);
  g_clear_pointer (&ck->pickle, dl_pickle_free);
  g_clear_pointer (&ck->zip, dl_zip_free);
  g_clear_pointer (&ck->file, g_bytes_unref);
  g_free (ck->prefix);
  g_free (ck->path);
  g_free (ck);
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Invalid PyTorch file “%s”: %s", path, msg);
  return FALSE;
}

/* The single top-level folder all records live in ("archive/" or the file's
 * base name). */
static char *
archive_prefix (DlTorchCkpt *ck, GError **error)
{
  const DlZipEntry *first = dl_zip_get_entry (ck->zip, 0);
  const char *slash = first ? strchr (first->name, '/') : NULL;
  if (!slash || slash == first->name)
    {
      bad (error, ck->path, "its records are not inside one folder (not written by torch.save)");
      return NULL;
    }
  char *prefix = g_strndup (first->name, slash - first->name + 1);
  for (guint i = 0; i < dl_zip_get_n_entries (ck->zip); i++)
    if (!g_str_has_prefix (dl_zip_get_entry (ck->zip, i)->name, prefix))
      {
        bad (error, ck->path, "the record “%s” is outside the folder “%s”", dl_zip_get_entry (ck->zip, i)->name,
             prefix);
        g_free (prefix);
        return NULL;
      }
  return prefix;
}

static GBytes *
read_record (DlTorchCkpt *ck, const char *prefix, const char *name, gboolean required, GError **error)
{
  g_autofree char *full = g_strconcat (prefix, name, NULL);
  const DlZipEntry *e = dl_zip_find (ck->zip, full);
  if (!e)
    {
      if (required)
        bad (error, ck->path, "the record “%s” is missing", full);
      return NULL;
    }
  return dl_zip_read (ck->zip, e, error);
}

static gboolean
check_version (DlTorchCkpt *ck, const char *prefix, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GBytes) v = read_record (ck, prefix, "version", FALSE, &local);
  if (!v && !local)
    v = read_record (ck, prefix, ".data/version", FALSE, &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (!v)
    return bad (error, ck->path, "the record “%sversion” is missing", prefix);
  gsize n;
  const char *text = g_bytes_get_data (v, &n);
  g_autofree char *s = g_strstrip (g_strndup (text, MIN (n, 32)));
  guint64 version;
  /* torch writes 3; its readers take 1 and up (caffe2 versions.h) */
  if (!g_ascii_string_to_unsigned (s, 10, 1, 10, &version, NULL))
    return bad (error, ck->path, "unsupported format version “%s”", s);
  g_autoptr (GBytes) order = read_record (ck, prefix, "byteorder", FALSE, &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (order)
    {
      const char *o = g_bytes_get_data (order, &n);
      if (n != 6 || memcmp (o, "little", 6) != 0)
        return bad (error, ck->path, "big-endian data is not supported");
    }
  g_autofree char *constants = g_strconcat (prefix, "constants.pkl", NULL);
  if (dl_zip_find (ck->zip, constants))
    return bad (error, ck->path, "this is a TorchScript archive, not a torch.save file");
  return TRUE;
}

/* A tensor of the pickle as a DlStTensor into its storage record (loaded once
 * per key); `what` names it in errors.  t->name is left alone. */
static gboolean
resolve_tensor (DlTorchCkpt *ck, const char *prefix, const DlPickleValue *val, const char *what, DlStTensor *t,
                GError **error)
{
  const DlPickleValue *s = val->tensor.storage;
  gsize es = dl_st_dtype_size (s->storage.dtype);

  GBytes *data = g_hash_table_lookup (ck->storages, s->storage.key);
  if (!data)
    {
      g_autofree char *rec = g_strconcat ("data/", s->storage.key, NULL);
      data = read_record (ck, prefix, rec, TRUE, error);
      if (!data)
        {
          g_prefix_error (error, "tensor “%s”: ", what);
          return FALSE;
        }
      g_hash_table_insert (ck->storages, g_strdup (s->storage.key), data);
    }
  guint64 storage_bytes;
  if (__builtin_mul_overflow ((guint64)s->storage.numel, (guint64)es, &storage_bytes) ||
      storage_bytes != g_bytes_get_size (data))
    return bad (error, ck->path,
                "tensor “%s”: storage “%s” holds %" G_GSIZE_FORMAT " bytes, not %" G_GINT64_FORMAT " elements of %s",
                what, s->storage.key, g_bytes_get_size (data), s->storage.numel, dl_st_dtype_name (s->storage.dtype));

  t->dtype = s->storage.dtype;
  t->ndim = val->tensor.ndim;
  guint64 numel = 1;
  for (int i = 0; i < t->ndim; i++)
    {
      if (val->tensor.shape[i] < 0 || __builtin_mul_overflow (numel, (guint64)val->tensor.shape[i], &numel) ||
          numel > G_MAXINT64)
        return bad (error, ck->path, "tensor “%s” has an invalid size", what);
      t->shape[i] = val->tensor.shape[i];
    }
  /* row-major strides (dimensions of size 1 may carry any stride) */
  gint64 expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--)
    {
      if (t->shape[i] != 1 && val->tensor.stride[i] != expect && numel > 0)
        return bad (error, ck->path,
                    "tensor “%s” is not contiguous (a view with other strides); re-save it with "
                    ".contiguous()",
                    what);
      expect *= t->shape[i];
    }
  guint64 end;
  if (__builtin_add_overflow ((guint64)val->tensor.offset, numel, &end) || end > (guint64)s->storage.numel)
    return bad (error, ck->path,
                "tensor “%s” (offset %" G_GINT64_FORMAT ", %" G_GUINT64_FORMAT " elements) runs "
                "past the end of its storage of %" G_GINT64_FORMAT,
                what, val->tensor.offset, numel, s->storage.numel);
  t->numel = (int64_t)numel;
  t->nbytes = numel * es;
  t->data = (const guint8 *)g_bytes_get_data (data, NULL) + (guint64)val->tensor.offset * es;
  return TRUE;
}

static gboolean
add_tensor (DlTorchCkpt *ck, const char *prefix, const DlPickleValue *key, const DlPickleValue *val, GError **error)
{
  const char *name = key->str.data;
  if (strlen (name) != key->str.len)
    return bad (error, ck->path, "a state-dict key contains a NUL character");
  if (g_hash_table_contains (ck->by_name, name))
    return bad (error, ck->path, "the key “%s” appears twice in the state dict", name);
  DlStTensor *t = &ck->tensors[ck->n_tensors];
  if (!resolve_tensor (ck, prefix, val, name, t, error))
    return FALSE;
  t->name = g_strdup (name);
  g_hash_table_insert (ck->by_name, (gpointer)t->name, t);
  ck->n_tensors++;
  return TRUE;
}

static gboolean
load (DlTorchCkpt *ck, GError **error)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (ck->file, &len);
  if (len < 4 || memcmp (d, "PK\3\4", 4) != 0)
    {
      if (len >= 2 && d[0] == 0x80 && d[1] <= 5)
        return bad (error, ck->path,
                    "this is the legacy (before PyTorch 1.6) format, which is not supported; "
                    "convert it to safetensors");
      return bad (error, ck->path, "not a PyTorch zip file");
    }
  ck->zip = dl_zip_open_bytes (ck->file, ck->path, error);
  if (!ck->zip)
    return FALSE;
  ck->prefix = archive_prefix (ck, error);
  const char *prefix = ck->prefix;
  if (!prefix || !check_version (ck, prefix, error))
    return FALSE;
  g_autoptr (GBytes) pkl = read_record (ck, prefix, "data.pkl", TRUE, error);
  if (!pkl)
    return FALSE;
  g_autofree char *pkl_name = g_strdup_printf ("%s (%sdata.pkl)", ck->path, prefix);
  gsize pkl_len;
  const guint8 *pkl_data = g_bytes_get_data (pkl, &pkl_len);
  ck->pickle = dl_pickle_load (pkl_data, pkl_len, pkl_name, error);
  if (!ck->pickle)
    return FALSE;

  DlPickleValue *root = dl_pickle_get_root (ck->pickle);
  if (root->type != DL_PK_DICT)
    return bad (error, ck->path, "the pickled object is not a dict (no state dict)");
  DlPickleValue *sd = dl_pickle_dict_get (root, "state_dict");
  if (!sd)
    sd = root;
  else if (sd->type != DL_PK_DICT)
    return bad (error, ck->path, "“state_dict” is not a dict");

  ck->tensors = g_new0 (DlStTensor, MAX (sd->items->len / 2, 1));
  for (guint i = 0; i + 1 < sd->items->len; i += 2)
    {
      const DlPickleValue *k = sd->items->pdata[i], *v = sd->items->pdata[i + 1];
      if (k->type != DL_PK_STRING)
        {
          g_ptr_array_add (ck->other_keys, g_strdup ("(a key that is not a string)"));
          continue;
        }
      if (v->type != DL_PK_TENSOR)
        {
          g_ptr_array_add (ck->other_keys, g_strdup (k->str.data));
          continue;
        }
      if (!add_tensor (ck, prefix, k, v, error))
        return FALSE;
    }
  return TRUE;
}

DlTorchCkpt *
dl_torch_ckpt_open_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autoptr (DlTorchCkpt) ck = g_new0 (DlTorchCkpt, 1);
  ck->path = g_strdup (display_name ? display_name : "(memory)");
  ck->file = g_bytes_ref (bytes);
  ck->storages = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
  ck->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  ck->other_keys = g_ptr_array_new_with_free_func (g_free);
  if (!load (ck, error))
    return NULL;
  return g_steal_pointer (&ck);
}

DlTorchCkpt *
dl_torch_ckpt_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &local);
  if (!map)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot open PyTorch file “%s”: %s", path, local->message);
      return NULL;
    }
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
  return dl_torch_ckpt_open_bytes (bytes, path, error);
}

const char *
dl_torch_ckpt_get_path (DlTorchCkpt *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->path;
}

guint
dl_torch_ckpt_get_n_tensors (DlTorchCkpt *ck)
{
  g_return_val_if_fail (ck != NULL, 0);
  return ck->n_tensors;
}

const DlStTensor *
dl_torch_ckpt_get_tensor (DlTorchCkpt *ck, guint index)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return index < ck->n_tensors ? &ck->tensors[index] : NULL;
}

const DlStTensor *
dl_torch_ckpt_find (DlTorchCkpt *ck, const char *name)
{
  g_return_val_if_fail (ck != NULL && name != NULL, NULL);
  return g_hash_table_lookup (ck->by_name, name);
}

GPtrArray *
dl_torch_ckpt_get_other_keys (DlTorchCkpt *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->other_keys;
}

DlPickleValue *
dl_torch_ckpt_get_root (DlTorchCkpt *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return dl_pickle_get_root (ck->pickle);
}

gboolean
dl_torch_ckpt_resolve_tensor (DlTorchCkpt *ck, const DlPickleValue *tensor, const char *what, DlStTensor *out,
                              GError **error)
{
  g_return_val_if_fail (ck != NULL && tensor != NULL && out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (!what)
    what = "(unnamed)";
  if (tensor->type != DL_PK_TENSOR)
    {
      const char *type = dl_pickle_type_name (tensor->type);
      return bad (error, ck->path, "“%s” is %s %s, not a tensor", what, strchr ("aeiou", type[0]) ? "an" : "a", type);
    }
  DlStTensor t = { 0 };
  if (!resolve_tensor (ck, ck->prefix, tensor, what, &t, error))
    return FALSE;
  *out = t;
  return TRUE;
}
