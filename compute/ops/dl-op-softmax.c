/* Host side of softmax.comp. */
#include "dl-op-softmax.h"

#include "dl-op-util.h"

typedef struct
{
  uint32_t rows, n;
  uint32_t off_a, off_g, off_d;
  float scale;
} SoftmaxPush;

/* Threads per row: enough to cover short rows without idling most of them. */
static guint32
row_threads (int64_t n)
{
  return n <= 128 ? 32 : n <= 512 ? 64 : n <= 2048 ? 128 : 256;
}

static gboolean
check (const char *op, DlTensor *a, DlTensor *b, DlTensor *c, GError **error)
{
  guint fl = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  if (!dl_op_check_dtype (op, a, fl, error) || !dl_op_check_same_shape (op, a, b, error) ||
      (c && !dl_op_check_same_shape (op, a, c, error)) || !dl_op_check_fits_u32 (op, a, error))
    return FALSE;
  if (a->dtype != b->dtype || (c && c->dtype != a->dtype))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: all tensors must share one dtype", op);
      return FALSE;
    }
  if (a->ndim < 1)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: a scalar has no last dimension", op);
      return FALSE;
    }
  return TRUE;
}

static gboolean
run (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *a, DlTensor *g, float scale, GError **error)
{
  int64_t n = out->shape[out->ndim - 1];
  int64_t rows = n > 0 ? dl_tensor_numel (out) / n : 0;
  if (rows == 0)
    return TRUE;
  uint32_t wg = row_threads (n);
  DlPipeline *p = dl_device_get_pipeline (dl_recorder_get_device (rec), shader, &wg, 1, error);
  if (!p)
    return FALSE;
  DlBinding b[3];
  guint nb = 0;
  gsize es = dl_dtype_size (out->dtype);
  SoftmaxPush pc = { .rows = (uint32_t)rows, .n = (uint32_t)n, .scale = scale };
  b[nb] = dl_op_bind (rec, a, FALSE);
  pc.off_a = dl_binding_shader_offset (&b[nb++], es);
  if (g)
    {
      b[nb] = dl_op_bind (rec, g, FALSE);
      pc.off_g = dl_binding_shader_offset (&b[nb++], es);
    }
  b[nb] = dl_op_bind (rec, out, TRUE);
  pc.off_d = dl_binding_shader_offset (&b[nb++], es);
  guint32 groups = (guint32)MIN (rows, 65535);
  return dl_recorder_dispatch (rec, p, b, nb, &pc, sizeof pc, groups, 1, 1, error);
}

gboolean
dl_op_softmax (DlRecorder *rec, DlTensor *y, DlTensor *x, float scale, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  if (!check ("softmax", x, y, NULL, error))
    return FALSE;
  g_autofree char *name = g_strdup_printf ("softmax_%s", dl_dtype_name (x->dtype));
  return run (rec, name, y, x, NULL, scale, error);
}

gboolean
dl_op_softmax_backward (DlRecorder *rec, DlTensor *dx, DlTensor *y, DlTensor *dy, float scale, GError **error)
{
  g_return_val_if_fail (rec != NULL && dx != NULL && y != NULL && dy != NULL, FALSE);
  if (!check ("softmax_backward", y, dy, dx, error))
    return FALSE;
  g_autofree char *name = g_strdup_printf ("softmax_bwd_%s", dl_dtype_name (y->dtype));
  return run (rec, name, dx, y, dy, scale, error);
}
