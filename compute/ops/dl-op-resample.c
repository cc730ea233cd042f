/* Host side of shaders/resample: upsample2x.comp and chan_slice.comp. */
#include "dl-op-resample.h"

#include "dl-op-util.h"

#define WG 256

typedef struct
{
  uint32_t n, H, W, off_s, off_d;
} UpsamplePush;

typedef struct
{
  uint32_t n, slice, row, start, off_s, off_d;
} SlicePush;

#define FLOAT_MASK (DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16))

static gboolean
fail_shapes (const char *op, const char *rule, DlTensor *a, DlTensor *b, GError **error)
{
  g_autofree char *da = dl_tensor_describe (a);
  g_autofree char *db = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s and %s: %s", op, da, db, rule);
  return FALSE;
}

static gboolean
check_dtypes (const char *op, DlTensor *a, DlTensor *b, GError **error)
{
  if (!dl_op_check_dtype (op, a, FLOAT_MASK, error))
    return FALSE;
  if (a->dtype == b->dtype)
    return TRUE;
  g_autofree char *da = dl_tensor_describe (a);
  g_autofree char *db = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s and %s must share a dtype", op, da, db);
  return FALSE;
}

/* small [N, C, H, W] against big [N, C, 2H, 2W] */
static gboolean
check_upsample (const char *op, DlTensor *small, DlTensor *big, GError **error)
{
  if (!check_dtypes (op, small, big, error) || !dl_op_check_fits_u32 (op, big, error))
    return FALSE;
  if (small->ndim != 4 || big->ndim != 4 || small->shape[0] != big->shape[0] || small->shape[1] != big->shape[1] ||
      big->shape[2] != 2 * small->shape[2] || big->shape[3] != 2 * small->shape[3])
    return fail_shapes (op, "need [N, C, H, W] and [N, C, 2H, 2W]", small, big, error);
  return TRUE;
}

static gboolean
run_upsample (DlRecorder *rec, const char *shader, DlTensor *dst, DlTensor *src, DlTensor *small, GError **error)
{
  int64_t n = dl_tensor_numel (dst);
  if (n == 0)
    return TRUE;
  DlPipeline *p = dl_op_pipeline (rec, error, "%s_%s", shader, dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  gsize es = dl_dtype_size (dst->dtype);
  DlBinding b[2] = { dl_op_bind (rec, src, FALSE), dl_op_bind (rec, dst, TRUE) };
  UpsamplePush pc = {
    .n = (uint32_t)n,
    .H = (uint32_t)small->shape[2],
    .W = (uint32_t)small->shape[3],
    .off_s = dl_binding_shader_offset (&b[0], es),
    .off_d = dl_binding_shader_offset (&b[1], es),
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error);
}

gboolean
dl_op_upsample_nearest2x (DlRecorder *rec, DlTensor *y, DlTensor *x, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  if (!check_upsample ("upsample_nearest2x", x, y, error))
    return FALSE;
  return run_upsample (rec, "upsample2x", y, x, x, error);
}

gboolean
dl_op_upsample_nearest2x_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dy, GError **error)
{
  g_return_val_if_fail (rec != NULL && dx != NULL && dy != NULL, FALSE);
  if (!check_upsample ("upsample_nearest2x_backward", dx, dy, error))
    return FALSE;
  return run_upsample (rec, "upsample2x_bwd", dx, dy, dx, error);
}

/* Is t [N, Ct, ...] a channel slice candidate of y (same rank, same dims but axis 1)? */
static gboolean
check_slice (const char *op, DlTensor *y, DlTensor *t, GError **error)
{
  if (!check_dtypes (op, y, t, error) || !dl_op_check_fits_u32 (op, y, error))
    return FALSE;
  gboolean ok = y->ndim >= 2 && t->ndim == y->ndim;
  for (int i = 0; ok && i < y->ndim; i++)
    ok = i == 1 || t->shape[i] == y->shape[i];
  if (!ok)
    return fail_shapes (op, "need [N, C, ...] shapes that differ only in C", y, t, error);
  return TRUE;
}

/* y[:, c0 : c0 + t.C] = t (scatter) or t = y[:, c0 : c0 + t.C] (gather). */
static gboolean
run_slice (DlRecorder *rec, DlTensor *y, DlTensor *t, int64_t c0, gboolean scatter, GError **error)
{
  int64_t n = dl_tensor_numel (t);
  if (n == 0)
    return TRUE;
  int64_t inner = 1;
  for (int i = 2; i < y->ndim; i++)
    inner *= y->shape[i];
  DlPipeline *p =
    dl_op_pipeline (rec, error, "chan_slice_%s_%s", scatter ? "scatter" : "gather", dl_dtype_name (y->dtype));
  if (!p)
    return FALSE;
  gsize es = dl_dtype_size (y->dtype);
  DlBinding b[2];
  DlTensor *src = scatter ? t : y, *dst = scatter ? y : t;
  b[0] = dl_op_bind (rec, src, FALSE);
  b[1] = dl_op_bind (rec, dst, TRUE);
  SlicePush pc = {
    .n = (uint32_t)n,
    .slice = (uint32_t)(t->shape[1] * inner),
    .row = (uint32_t)(y->shape[1] * inner),
    .start = (uint32_t)(c0 * inner),
    .off_s = dl_binding_shader_offset (&b[0], es),
    .off_d = dl_binding_shader_offset (&b[1], es),
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error);
}

gboolean
dl_op_concat_channels (DlRecorder *rec, DlTensor *y, DlTensor *a, DlTensor *b, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && a != NULL && b != NULL, FALSE);
  const char *op = "concat_channels";
  if (!check_slice (op, y, a, error) || !check_slice (op, y, b, error))
    return FALSE;
  if (a->shape[1] + b->shape[1] != y->shape[1])
    {
      g_autofree char *dy = dl_tensor_describe (y);
      g_autofree char *da = dl_tensor_describe (a);
      g_autofree char *db = dl_tensor_describe (b);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "concat_channels: %s cannot hold %s and %s", dy, da, db);
      return FALSE;
    }
  return run_slice (rec, y, a, 0, TRUE, error) && run_slice (rec, y, b, a->shape[1], TRUE, error);
}

gboolean
dl_op_split_channels (DlRecorder *rec, DlTensor *a, DlTensor *b, DlTensor *y, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL, FALSE);
  const char *op = "split_channels";
  if ((a && !check_slice (op, y, a, error)) || (b && !check_slice (op, y, b, error)))
    return FALSE;
  int64_t Ca = a ? a->shape[1] : b ? y->shape[1] - b->shape[1] : 0;
  int64_t Cb = b ? b->shape[1] : y->shape[1] - Ca;
  if (Ca < 0 || Cb < 0 || Ca + Cb != y->shape[1])
    {
      g_autofree char *dy = dl_tensor_describe (y);
      g_autofree char *da = a ? dl_tensor_describe (a) : g_strdup ("(none)");
      g_autofree char *db = b ? dl_tensor_describe (b) : g_strdup ("(none)");
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "split_channels: %s does not split into %s and %s", dy,
                   da, db);
      return FALSE;
    }
  return (!a || run_slice (rec, y, a, 0, FALSE, error)) && (!b || run_slice (rec, y, b, Ca, FALSE, error));
}
