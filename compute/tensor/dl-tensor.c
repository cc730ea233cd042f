#include "dl-tensor.h"

#include "dl-error.h"
#include "dl-half.h"
#include "vk/dl-device-private.h"

#include <string.h>

char *
dl_shape_to_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
check_shape (const char *name, int ndim, const int64_t *shape, GError **error)
{
  if (ndim < 0 || ndim > DL_MAX_DIMS)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: %d dimensions (at most %d)",
                   name ? name : "(unnamed)", ndim, DL_MAX_DIMS);
      return FALSE;
    }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] < 0 || (shape[i] > 0 && n > G_MAXINT64 / 16 / shape[i]))
        {
          g_autofree char *s = dl_shape_to_string (ndim, shape);
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: invalid shape %s",
                       name ? name : "(unnamed)", s);
          return FALSE;
        }
      n *= shape[i];
    }
  return TRUE;
}

static int64_t
shape_numel (int ndim, const int64_t *shape)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  return n;
}

DlTensor *
dl_tensor_new (DlDevice *device, const char *name, DlDType dtype, int ndim, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (device != NULL, NULL);
  g_return_val_if_fail (dtype < DL_N_DTYPES, NULL);
  g_return_val_if_fail (ndim == 0 || shape != NULL, NULL);

  if (!check_shape (name, ndim, shape, error))
    return NULL;
  gsize bytes = (gsize)shape_numel (ndim, shape) * dl_dtype_size (dtype);
  DlAllocation *alloc = dl_memory_alloc (device, bytes, name, error);
  if (!alloc)
    return NULL;

  DlTensor *t = g_new0 (DlTensor, 1);
  t->ref_count = 1;
  t->device = device;
  t->name = g_strdup (name ? name : "(unnamed)");
  t->dtype = dtype;
  t->ndim = ndim;
  if (ndim > 0)
    memcpy (t->shape, shape, ndim * sizeof (int64_t));
  t->alloc = alloc;
  t->block = alloc->block;
  t->offset = alloc->offset;
  return t;
}

DlTensor *
dl_tensor_new_1d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, GError **error)
{
  int64_t s[1] = { d0 };
  return dl_tensor_new (device, name, dtype, 1, s, error);
}

DlTensor *
dl_tensor_new_2d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, int64_t d1, GError **error)
{
  int64_t s[2] = { d0, d1 };
  return dl_tensor_new (device, name, dtype, 2, s, error);
}

DlTensor *
dl_tensor_new_4d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  GError **error)
{
  int64_t s[4] = { d0, d1, d2, d3 };
  return dl_tensor_new (device, name, dtype, 4, s, error);
}

DlTensor *
dl_tensor_view_as (DlTensor *base, const char *name, guint64 byte_offset, DlDType dtype, int ndim, const int64_t *shape,
                   GError **error)
{
  g_return_val_if_fail (base != NULL, NULL);
  g_return_val_if_fail (dtype < DL_N_DTYPES, NULL);
  if (!check_shape (name, ndim, shape, error))
    return NULL;
  guint64 bytes = (guint64)shape_numel (ndim, shape) * dl_dtype_size (dtype);
  if (byte_offset % dl_dtype_size (dtype) != 0 || byte_offset + bytes > dl_tensor_nbytes (base))
    {
      g_autofree char *s = dl_shape_to_string (ndim, shape);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "View “%s” %s %s at byte %" G_GUINT64_FORMAT " does not fit inside “%s” (%zu bytes)",
                   name ? name : "(unnamed)", s, dl_dtype_name (dtype), byte_offset, base->name,
                   dl_tensor_nbytes (base));
      return NULL;
    }
  DlTensor *t = g_new0 (DlTensor, 1);
  t->ref_count = 1;
  t->device = base->device;
  t->name = g_strdup (name ? name : base->name);
  t->dtype = dtype;
  t->ndim = ndim;
  if (ndim > 0)
    memcpy (t->shape, shape, ndim * sizeof (int64_t));
  t->base = dl_tensor_ref (dl_tensor_get_storage (base));
  /* the bytes of an arena tensor go back to the arena when it dies, whatever
   * other views still point at them: hold the lender (or its own owner) */
  DlTensor *lender = base->release ? base : base->owner;
  t->owner = lender ? dl_tensor_ref (lender) : NULL;
  t->block = base->block;
  t->offset = base->offset + byte_offset;
  return t;
}

DlTensor *
dl_tensor_view (DlTensor *base, const char *name, int64_t elem_offset, int ndim, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (base != NULL, NULL);
  if (elem_offset < 0 ||
      (ndim >= 0 && ndim <= DL_MAX_DIMS && shape_numel (ndim, shape) + elem_offset > dl_tensor_numel (base)))
    {
      g_autofree char *s = ndim >= 0 && ndim <= DL_MAX_DIMS ? dl_shape_to_string (ndim, shape) : g_strdup ("?");
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "View “%s” %s at element %" G_GINT64_FORMAT " does not fit inside “%s” (%" G_GINT64_FORMAT
                   " elements)",
                   name ? name : "(unnamed)", s, elem_offset, base->name, dl_tensor_numel (base));
      return NULL;
    }
  return dl_tensor_view_as (base, name ? name : base->name, (guint64)elem_offset * dl_dtype_size (base->dtype),
                            base->dtype, ndim, shape, error);
}

DlTensor *
dl_tensor_get_storage (DlTensor *t)
{
  return t->base ? t->base : t;
}

DlTensor *
dl_tensor_reshape (DlTensor *t, int ndim, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (t != NULL, NULL);
  if (!check_shape (t->name, ndim, shape, error))
    return NULL;
  if (shape_numel (ndim, shape) != dl_tensor_numel (t))
    {
      g_autofree char *a = dl_shape_to_string (t->ndim, t->shape);
      g_autofree char *b = dl_shape_to_string (ndim, shape);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Cannot reshape “%s” from %s to %s", t->name, a, b);
      return NULL;
    }
  return dl_tensor_view (t, t->name, 0, ndim, shape, error);
}

DlTensor *
dl_tensor_ref (DlTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  g_atomic_int_inc (&t->ref_count);
  return t;
}

gboolean
dl_tensor_is_shared (const DlTensor *t)
{
  g_return_val_if_fail (t != NULL, FALSE);
  return g_atomic_int_get (&t->ref_count) > 1;
}

void
dl_tensor_unref (DlTensor *t)
{
  if (!t || !g_atomic_int_dec_and_test (&t->ref_count))
    return;
  if (t->release)
    t->release (t, t->release_data);
  if (t->owner)
    dl_tensor_unref (t->owner);
  if (t->base)
    dl_tensor_unref (t->base);
  else
    dl_memory_free (t->device, t->alloc);
  g_free (t->name);
  g_free (t);
}

int64_t
dl_tensor_numel (const DlTensor *t)
{
  return shape_numel (t->ndim, t->shape);
}

gsize
dl_tensor_nbytes (const DlTensor *t)
{
  return (gsize)dl_tensor_numel (t) * dl_dtype_size (t->dtype);
}

gboolean
dl_tensor_same_shape (const DlTensor *a, const DlTensor *b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i])
      return FALSE;
  return TRUE;
}

char *
dl_tensor_describe (const DlTensor *t)
{
  g_autofree char *s = dl_shape_to_string (t->ndim, t->shape);
  return g_strdup_printf ("%s %s %s", t->name, s, dl_dtype_name (t->dtype));
}

gboolean
dl_tensor_upload (DlTensor *t, const void *data, DlDType src_dtype, GError **error)
{
  g_return_val_if_fail (t != NULL, FALSE);
  g_return_val_if_fail (data != NULL || dl_tensor_numel (t) == 0, FALSE);
  gsize n = (gsize)dl_tensor_numel (t);
  if (n == 0)
    return TRUE;
  gboolean ok;
  if (src_dtype == t->dtype)
    ok = dl_memory_write (t->device, t->block, t->offset, data, dl_tensor_nbytes (t), error);
  else
    {
      g_autofree void *tmp = g_try_malloc (dl_tensor_nbytes (t));
      if (!tmp)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory converting “%s” for upload",
                       t->name);
          return FALSE;
        }
      dl_convert (tmp, t->dtype, data, src_dtype, n);
      ok = dl_memory_write (t->device, t->block, t->offset, tmp, dl_tensor_nbytes (t), error);
    }
  if (!ok)
    g_prefix_error (error, "Uploading “%s”: ", t->name);
  return ok;
}

gboolean
dl_tensor_download (DlTensor *t, void *data, DlDType dst_dtype, GError **error)
{
  g_return_val_if_fail (t != NULL, FALSE);
  gsize n = (gsize)dl_tensor_numel (t);
  if (n == 0)
    return TRUE;
  gboolean ok;
  if (dst_dtype == t->dtype)
    ok = dl_memory_read (t->device, t->block, t->offset, data, dl_tensor_nbytes (t), error);
  else
    {
      g_autofree void *tmp = g_try_malloc (dl_tensor_nbytes (t));
      if (!tmp)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory downloading “%s”", t->name);
          return FALSE;
        }
      ok = dl_memory_read (t->device, t->block, t->offset, tmp, dl_tensor_nbytes (t), error);
      if (ok)
        dl_convert (data, dst_dtype, tmp, t->dtype, n);
    }
  if (!ok)
    g_prefix_error (error, "Downloading “%s”: ", t->name);
  return ok;
}

gboolean
dl_tensor_upload_f32 (DlTensor *t, const float *data, GError **error)
{
  return dl_tensor_upload (t, data, DL_DTYPE_F32, error);
}

float *
dl_tensor_download_f32 (DlTensor *t, GError **error)
{
  g_return_val_if_fail (t != NULL, NULL);
  float *out = g_try_new (float, MAX (dl_tensor_numel (t), 1));
  if (!out)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory downloading “%s”", t->name);
      return NULL;
    }
  if (!dl_tensor_download (t, out, DL_DTYPE_F32, error))
    {
      g_free (out);
      return NULL;
    }
  return out;
}

DlBinding
dl_tensor_binding (DlTensor *t, gboolean write)
{
  return (DlBinding){ t->block, t->offset, dl_tensor_nbytes (t), write };
}

DlBinding
dl_tensor_binding_range (DlTensor *t, int64_t elem_start, int64_t elem_count, gboolean write)
{
  gsize es = dl_dtype_size (t->dtype);
  g_return_val_if_fail (elem_start >= 0 && elem_count >= 0 && elem_start + elem_count <= dl_tensor_numel (t),
                        dl_tensor_binding (t, write));
  return (DlBinding){ t->block, t->offset + (guint64)elem_start * es, (guint64)elem_count * es, write };
}

guint32
dl_tensor_shader_offset (const DlTensor *t)
{
  return (guint32)((t->offset % DL_BINDING_ALIGN) / dl_dtype_size (t->dtype));
}
