#include "torch-writer.h"

#include <string.h>

#include "io/dl-torch-writer.h"
#include "io/dl-zip.h"

void
tw_pickle_init (TwPickle *p, gboolean use_memo)
{
  p->b = g_byte_array_new ();
  p->memo = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  p->use_memo = use_memo;
}

GBytes *
tw_pickle_finish (TwPickle *p)
{
  g_hash_table_unref (p->memo);
  return g_byte_array_free_to_bytes (p->b);
}

void
tw_op (TwPickle *p, guint8 op)
{
  g_byte_array_append (p->b, &op, 1);
}

void
tw_bytes (TwPickle *p, const void *data, gsize n)
{
  g_byte_array_append (p->b, data, n);
}

static void
le (TwPickle *p, guint64 v, int n)
{
  for (int i = 0; i < n; i++)
    {
      guint8 c = (v >> (8 * i)) & 0xff;
      g_byte_array_append (p->b, &c, 1);
    }
}

void
tw_str (TwPickle *p, const char *s)
{
  tw_op (p, 'X');
  le (p, strlen (s), 4);
  tw_bytes (p, s, strlen (s));
}

void
tw_int (TwPickle *p, gint64 v)
{
  if (v >= 0 && v < 256)
    {
      tw_op (p, 'K');
      le (p, (guint64)v, 1);
    }
  else if (v >= 0 && v < 65536)
    {
      tw_op (p, 'M');
      le (p, (guint64)v, 2);
    }
  else if (v >= G_MININT32 && v <= G_MAXINT32)
    {
      tw_op (p, 'J');
      le (p, (guint64)(guint32)(gint32)v, 4);
    }
  else
    {
      tw_op (p, 0x8a);
      le (p, 8, 1);
      le (p, (guint64)v, 8);
    }
}

void
tw_float (TwPickle *p, double v)
{
  guint64 bits;
  memcpy (&bits, &v, 8);
  tw_op (p, 'G');
  for (int i = 7; i >= 0; i--)
    {
      guint8 c = (bits >> (8 * i)) & 0xff;
      g_byte_array_append (p->b, &c, 1);
    }
}

void
tw_global (TwPickle *p, const char *module, const char *name)
{
  g_autofree char *key = g_strdup_printf ("%s\n%s", module, name);
  gpointer idx;
  if (p->use_memo && g_hash_table_lookup_extended (p->memo, key, NULL, &idx))
    {
      tw_op (p, 'h'); /* BINGET */
      le (p, GPOINTER_TO_UINT (idx), 1);
      return;
    }
  tw_op (p, 'c');
  tw_bytes (p, module, strlen (module));
  tw_bytes (p, "\n", 1);
  tw_bytes (p, name, strlen (name));
  tw_bytes (p, "\n", 1);
  if (p->use_memo && g_hash_table_size (p->memo) < 256)
    {
      guint n = g_hash_table_size (p->memo);
      tw_op (p, 'q'); /* BINPUT */
      le (p, n, 1);
      g_hash_table_insert (p->memo, g_strdup (key), GUINT_TO_POINTER (n));
    }
}

void
tw_int_tuple (TwPickle *p, int n, const gint64 *v)
{
  if (n == 0)
    {
      tw_op (p, ')');
      return;
    }
  if (n > 3)
    tw_op (p, '(');
  for (int i = 0; i < n; i++)
    tw_int (p, v[i]);
  tw_op (p, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

void
tw_tensor (TwPickle *p, const char *storage_class, const char *key, gint64 storage_numel, gint64 offset, int ndim,
           const gint64 *shape, const gint64 *stride)
{
  tw_global (p, "torch._utils", "_rebuild_tensor_v2");
  tw_op (p, '(');
  tw_op (p, '(');
  tw_str (p, "storage");
  tw_global (p, "torch", storage_class);
  tw_str (p, key);
  tw_str (p, "cpu");
  tw_int (p, storage_numel);
  tw_op (p, 't');
  tw_op (p, 'Q'); /* BINPERSID */
  tw_int (p, offset);
  tw_int_tuple (p, ndim, shape);
  tw_int_tuple (p, ndim, stride);
  tw_op (p, 0x89); /* NEWFALSE: requires_grad */
  tw_global (p, "collections", "OrderedDict");
  tw_op (p, ')');
  tw_op (p, 'R');
  tw_op (p, 't');
  tw_op (p, 'R');
}

static const char *
storage_class (DlStDType d)
{
  switch (d)
    {
    case DL_ST_F32:
      return "FloatStorage";
    case DL_ST_F16:
      return "HalfStorage";
    case DL_ST_BF16:
      return "BFloat16Storage";
    case DL_ST_F64:
      return "DoubleStorage";
    case DL_ST_I64:
      return "LongStorage";
    case DL_ST_I32:
      return "IntStorage";
    case DL_ST_U8:
      return "ByteStorage";
    default:
      g_assert_not_reached ();
    }
}

gboolean
tw_write_raw (const char *path, const char *prefix, GBytes *pickle, const char *version, gpointer *pairs,
              gboolean deflate, GError **error)
{
  g_autoptr (DlZipWriter) z = dl_zip_writer_new ();
  if (!prefix)
    prefix = "archive";
  g_autofree char *pkl = g_strdup_printf ("%s/data.pkl", prefix);
  dl_zip_writer_add (z, pkl, pickle);
  g_autofree char *order = g_strdup_printf ("%s/byteorder", prefix);
  g_autoptr (GBytes) little = g_bytes_new_static ("little", 6);
  dl_zip_writer_add (z, order, little);
  for (guint i = 0; pairs && pairs[i]; i += 2)
    {
      g_autofree char *name = g_strdup_printf ("%s/data/%s", prefix, (const char *)pairs[i]);
      if (deflate)
        dl_zip_writer_add_deflated (z, name, pairs[i + 1]);
      else
        dl_zip_writer_add (z, name, pairs[i + 1]);
    }
  g_autofree char *vname = g_strdup_printf ("%s/version", prefix);
  g_autoptr (GBytes) v = g_bytes_new (version ? version : "3\n", strlen (version ? version : "3\n"));
  dl_zip_writer_add (z, vname, v);
  return dl_zip_writer_write (z, path, error);
}

/* OrderedDict() filled with name -> tensor, storage key = the tensor's index */
static void
emit_state_dict (TwPickle *p, const TwTensor *tensors, guint n, gboolean parameters)
{
  tw_global (p, "collections", "OrderedDict");
  tw_op (p, ')');
  tw_op (p, 'R');
  tw_op (p, '(');
  for (guint i = 0; i < n; i++)
    {
      const TwTensor *t = &tensors[i];
      gint64 shape[DL_ST_MAX_DIMS], stride[DL_ST_MAX_DIMS], numel = 1;
      for (int d = t->ndim - 1; d >= 0; d--)
        {
          shape[d] = t->shape[d];
          stride[d] = numel;
          numel *= t->shape[d];
        }
      g_autofree char *key = g_strdup_printf ("%u", i);
      tw_str (p, t->name);
      if (parameters)
        {
          tw_global (p, "torch._utils", "_rebuild_parameter");
          tw_op (p, '(');
        }
      tw_tensor (p, storage_class (t->dtype), key, numel, 0, t->ndim, shape, stride);
      if (parameters)
        {
          tw_op (p, 0x88); /* requires_grad */
          tw_global (p, "collections", "OrderedDict");
          tw_op (p, ')');
          tw_op (p, 'R');
          tw_op (p, 't');
          tw_op (p, 'R');
        }
    }
  tw_op (p, 'u'); /* SETITEMS */
}

/* the same state dict through the engine's writer: an OrderedDict of tensors,
 * storages data/0, data/1, ... in order */
static gboolean
engine_state_dict (const char *path, const TwTensor *tensors, guint n, const TwOptions *opt, GError **error)
{
  g_autoptr (DlTorchValue) sd = dl_torch_ordered_dict ();
  for (guint i = 0; i < n; i++)
    dl_torch_dict_set (
      sd, tensors[i].name,
      dl_torch_tensor (tensors[i].dtype, tensors[i].ndim, tensors[i].shape, tensors[i].data, tensors[i].nbytes));
  if (!opt->prefix && !opt->deflate)
    return dl_torch_save (path, sd, error);
  g_autoptr (GPtrArray) storages = NULL;
  g_autoptr (GBytes) pickle = dl_torch_pickle (sd, &storages);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  g_autofree gpointer *pairs = g_new0 (gpointer, 2 * storages->len + 1);
  for (guint i = 0; i < storages->len; i++)
    {
      g_ptr_array_add (keys, g_strdup_printf ("%u", i));
      pairs[2 * i] = keys->pdata[i];
      pairs[2 * i + 1] = storages->pdata[i];
    }
  return tw_write_raw (path, opt->prefix, pickle, NULL, pairs, opt->deflate, error);
}

gboolean
tw_write_state_dict (const char *path, const TwTensor *tensors, guint n, const TwOptions *opt, GError **error)
{
  TwOptions none = { 0 };
  if (!opt)
    opt = &none;
  if (!opt->lightning && !opt->parameters && !opt->memo)
    return engine_state_dict (path, tensors, n, opt, error);
  TwPickle p;
  tw_pickle_init (&p, opt->memo);
  tw_op (&p, 0x80);
  tw_op (&p, 2);
  if (opt->lightning)
    {
      /* {"epoch": 6, "global_step": ..., "callbacks": {ModelCheckpoint: {...}},
       *  "state_dict": OrderedDict(...)} */
      tw_op (&p, '}');
      tw_op (&p, '(');
      tw_str (&p, "epoch");
      tw_int (&p, 6);
      tw_str (&p, "global_step");
      tw_int (&p, 470000);
      tw_str (&p, "pytorch-lightning_version");
      tw_str (&p, "1.4.2");
      tw_str (&p, "callbacks");
      tw_op (&p, '}');
      tw_global (&p, "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint");
      tw_op (&p, '}');
      tw_str (&p, "monitor");
      tw_op (&p, 'N');
      tw_op (&p, 's');
      tw_str (&p, "lr");
      tw_float (&p, 1e-4);
      tw_op (&p, 's');
      tw_op (&p, 's');
      tw_str (&p, "state_dict");
      emit_state_dict (&p, tensors, n, opt->parameters);
      tw_op (&p, 'u');
    }
  else
    emit_state_dict (&p, tensors, n, opt->parameters);
  tw_op (&p, '.');
  g_autoptr (GBytes) pickle = tw_pickle_finish (&p);

  g_autoptr (GPtrArray) pairs = g_ptr_array_new ();
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) keep_bytes = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  for (guint i = 0; i < n; i++)
    {
      char *key = g_strdup_printf ("%u", i);
      GBytes *b = g_bytes_new (tensors[i].data, tensors[i].nbytes);
      g_ptr_array_add (keep, key);
      g_ptr_array_add (keep_bytes, b);
      g_ptr_array_add (pairs, key);
      g_ptr_array_add (pairs, b);
    }
  g_ptr_array_add (pairs, NULL);
  return tw_write_raw (path, opt->prefix, pickle, NULL, pairs->pdata, opt->deflate, error);
}
