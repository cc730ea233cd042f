#include "dl-op-util.h"

#include <stdarg.h>

/* Hold the tensor that owns the memory, not the view: a view carved from an arena
 * (dl-arena.h) may go away and its range be reused later in the same recording —
 * the recorder's hazard tracking orders those accesses — while the memory itself
 * must outlive the recorded work. */
static void
hold_storage (DlRecorder *rec, DlTensor *t)
{
  dl_recorder_hold (rec, dl_tensor_ref (dl_tensor_get_storage (t)), (GDestroyNotify)dl_tensor_unref);
}

DlBinding
dl_op_bind (DlRecorder *rec, DlTensor *t, gboolean write)
{
  hold_storage (rec, t);
  return dl_tensor_binding (t, write);
}

DlBinding
dl_op_bind_range (DlRecorder *rec, DlTensor *t, int64_t start, int64_t count, gboolean write)
{
  hold_storage (rec, t);
  return dl_tensor_binding_range (t, start, count, write);
}

DlPipeline *
dl_op_pipeline (DlRecorder *rec, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return dl_device_get_pipeline (dl_recorder_get_device (rec), name, NULL, 0, error);
}

guint32
dl_op_groups (DlRecorder *rec, int64_t n, guint wg)
{
  const DlDeviceInfo *info = dl_device_get_info (dl_recorder_get_device (rec));
  int64_t g = (n + wg - 1) / wg;
  return (guint32)CLAMP (g, 1, (int64_t)info->max_elementwise_workgroups);
}

int64_t
dl_op_max_binding_elems (DlRecorder *rec, DlDType dtype)
{
  /* leave room for the descriptor's alignment slack */
  guint64 bytes = dl_recorder_get_max_binding_range (rec) - DL_BINDING_ALIGN;
  bytes -= bytes % DL_BINDING_ALIGN;
  return (int64_t)(bytes / dl_dtype_size (dtype));
}

gboolean
dl_op_range_fits_binding (DlRecorder *rec, DlTensor *t, int64_t start, int64_t count)
{
  gsize es = dl_dtype_size (t->dtype);
  DlBinding b = dl_tensor_binding_range (t, start, count, FALSE);
  guint64 slack = b.offset % DL_BINDING_ALIGN;
  return slack + (guint64)count * es <= dl_recorder_get_max_binding_range (rec);
}

/* elements per slice along shape[0] */
static int64_t
row_elems (DlTensor *t)
{
  int64_t row = 1;
  for (int i = 1; i < t->ndim; i++)
    row *= t->shape[i];
  return row;
}

int64_t
dl_op_max_binding_rows (DlRecorder *rec, DlTensor *t)
{
  return dl_op_max_binding_elems (rec, t->dtype) / MAX (row_elems (t), 1);
}

DlBinding
dl_op_bind_rows (DlRecorder *rec, DlTensor *t, int64_t first, int64_t count, gboolean write)
{
  int64_t row = row_elems (t);
  return dl_op_bind_range (rec, t, first * row, count * row, write);
}

gboolean
dl_op_check_same_numel (const char *op, DlTensor *a, DlTensor *b, GError **error)
{
  if (dl_tensor_numel (a) == dl_tensor_numel (b))
    return TRUE;
  g_autofree char *da = dl_tensor_describe (a);
  g_autofree char *db = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s and %s differ in element count", op, da, db);
  return FALSE;
}

gboolean
dl_op_check_same_shape (const char *op, DlTensor *a, DlTensor *b, GError **error)
{
  if (dl_tensor_same_shape (a, b))
    return TRUE;
  g_autofree char *da = dl_tensor_describe (a);
  g_autofree char *db = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: shapes differ: %s vs %s", op, da, db);
  return FALSE;
}

gboolean
dl_op_check_dtype (const char *op, DlTensor *t, guint allowed_mask, GError **error)
{
  if (allowed_mask & DL_DT_BIT (t->dtype))
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: dtype %s of %s is not supported", op,
               dl_dtype_name (t->dtype), d);
  return FALSE;
}

gboolean
dl_op_check_fits_u32 (const char *op, DlTensor *t, GError **error)
{
  if (dl_tensor_numel (t) <= (int64_t)G_MAXUINT32)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s has more than 2^32 elements", op, d);
  return FALSE;
}
