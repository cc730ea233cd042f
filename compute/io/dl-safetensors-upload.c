/* Safetensors tensors onto the device.  Kept apart from the reader so that the
 * reader builds (and fuzzes) without Vulkan. */
#include "dl-safetensors.h"

#include <string.h>

#include "dl-error.h"
#include "dl-half.h"

/* Integer sources going to an i32 tensor are converted by value (through float
 * they would lose everything above 2^24). */
static gboolean
int_to_i32 (const DlStTensor *t, gint32 *out, const char *path, GError **error)
{
  for (int64_t i = 0; i < t->numel; i++)
    {
      gint64 v;
      switch (t->dtype)
        {
        case DL_ST_BOOL:
        case DL_ST_U8:
          v = t->data[i];
          break;
        case DL_ST_I8:
          v = (gint8)t->data[i];
          break;
        case DL_ST_I16:
          {
            gint16 x;
            memcpy (&x, t->data + 2 * i, 2);
            v = x;
          }
          break;
        case DL_ST_U16:
          {
            guint16 x;
            memcpy (&x, t->data + 2 * i, 2);
            v = x;
          }
          break;
        case DL_ST_I32:
          {
            gint32 x;
            memcpy (&x, t->data + 4 * i, 4);
            v = x;
          }
          break;
        case DL_ST_U32:
          {
            guint32 x;
            memcpy (&x, t->data + 4 * i, 4);
            v = x;
          }
          break;
        case DL_ST_I64:
          memcpy (&v, t->data + 8 * i, 8);
          break;
        case DL_ST_U64:
          {
            guint64 x;
            memcpy (&x, t->data + 8 * i, 8);
            v = x > G_MAXINT64 ? G_MAXINT64 : (gint64)x;
          }
          break;
        default:
          g_assert_not_reached ();
        }
      if (v < G_MININT32 || v > G_MAXINT32)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: tensor “%s”: element %" G_GINT64_FORMAT " = %" G_GINT64_FORMAT " does not fit in i32",
                       path, t->name, i, v);
          return FALSE;
        }
      out[i] = (gint32)v;
    }
  return TRUE;
}

static gboolean
is_integer (DlStDType d)
{
  switch (d)
    {
    case DL_ST_BOOL:
    case DL_ST_U8:
    case DL_ST_I8:
    case DL_ST_I16:
    case DL_ST_U16:
    case DL_ST_I32:
    case DL_ST_U32:
    case DL_ST_I64:
    case DL_ST_U64:
      return TRUE;
    default:
      return FALSE;
    }
}

DlTensor *
dl_st_tensor_upload (const DlStTensor *t, const char *path, const char *tensor_name, int ndim, const int64_t *shape,
                     DlDevice *device, DlDType dtype, GError **error)
{
  if (ndim > DL_MAX_DIMS)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s”: tensor “%s” has %d dimensions; the engine "
                   "takes at most %d",
                   path, t->name, ndim, DL_MAX_DIMS);
      return NULL;
    }
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++)
    numel *= shape[i];
  if (numel != t->numel)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "“%s”: tensor “%s”: cannot view %" G_GINT64_FORMAT " elements as a shape of %" G_GINT64_FORMAT, path,
                   t->name, t->numel, numel);
      return NULL;
    }
  g_autoptr (DlTensor) out = dl_tensor_new (device, tensor_name, dtype, ndim, shape, error);
  if (!out)
    return NULL;
  if (t->numel == 0)
    return g_steal_pointer (&out);

  DlDType src;
  gsize es = dl_st_dtype_size (t->dtype);
  gboolean aligned = es != 0 && ((guintptr)t->data % es) == 0;
  gboolean ok;
  if (dl_st_dtype_to_dl (t->dtype, &src) && aligned)
    ok = dl_tensor_upload (out, t->data, src, error); /* converts on the way as needed */
  else if (dl_st_dtype_to_dl (t->dtype, &src))
    {
      /* an unaligned span (legal in the format, never produced by the reference
       * writer): copy it to aligned memory first */
      g_autofree void *tmp = g_try_malloc (t->nbytes);
      if (!tmp)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s” from “%s”", t->name,
                       path);
          return NULL;
        }
      memcpy (tmp, t->data, t->nbytes);
      ok = dl_tensor_upload (out, tmp, src, error);
    }
  else if (dtype == DL_DTYPE_I32 && is_integer (t->dtype))
    {
      g_autofree gint32 *tmp = g_try_new (gint32, t->numel);
      if (!tmp)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s” from “%s”", t->name,
                       path);
          return NULL;
        }
      ok = int_to_i32 (t, tmp, path, error) && dl_tensor_upload (out, tmp, DL_DTYPE_I32, error);
    }
  else
    {
      g_autofree float *tmp = g_try_new (float, t->numel);
      if (!tmp)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s” from “%s”", t->name,
                       path);
          return NULL;
        }
      ok = dl_st_convert_to_f32 (t, tmp, path, error) && dl_tensor_upload (out, tmp, DL_DTYPE_F32, error);
    }
  return ok ? g_steal_pointer (&out) : NULL;
}

DlTensor *
dl_safetensors_upload (DlSafetensors *st, const char *name, DlDevice *device, DlDType dtype, GError **error)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (device != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  const DlStTensor *t = dl_safetensors_find (st, name);
  if (!t)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s” has no tensor named “%s”",
                   dl_safetensors_get_path (st), name);
      return NULL;
    }
  return dl_st_tensor_upload (t, dl_safetensors_get_path (st), name, t->ndim, t->shape, device, dtype, error);
}
