/* Host side of bias_grad.comp (and its split second pass). */
#include "dl-op-bias-grad.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

typedef struct
{
  uint32_t outer, C, inner, cb, chunk, off_dy, off_d, flags;
} BiasGradPush;

typedef struct
{
  uint32_t n, splits, slice, off_p, off_d, flags;
} ReducePush;

/* Below this many contiguous elements per (row, channel), lanes go across
 * channels instead of along the row (see bias_grad.comp). */
#define LONG_INNER 16
/* a split gives each thread at least this many elements */
#define MIN_PER_THREAD 64

static gboolean
pass (DlRecorder *rec, DlTensor *dst, DlTensor *dy, int64_t dy_start, int64_t outer, int64_t C, int64_t inner,
      uint32_t cb, int64_t chunk, int64_t splits, gboolean accumulate, GError **error)
{
  DlPipeline *p = dl_op_pipeline (rec, error, "bias_grad_%s_%s", dl_dtype_name (dy->dtype), dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  DlBinding b[2] = {
    dl_op_bind_range (rec, dy, dy_start, outer * C * inner, FALSE),
    dl_op_bind_range (rec, dst, 0, splits * C, TRUE),
  };
  BiasGradPush pc = {
    .outer = (uint32_t)outer,
    .C = (uint32_t)C,
    .inner = (uint32_t)inner,
    .cb = cb,
    .chunk = (uint32_t)chunk,
    .off_dy = dl_binding_shader_offset (&b[0], dl_dtype_size (dy->dtype)),
    .off_d = dl_binding_shader_offset (&b[1], dl_dtype_size (dst->dtype)),
    .flags = accumulate ? 1u : 0u,
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, (uint32_t)((C + cb - 1) / cb), (uint32_t)splits, 1, error);
}

gboolean
dl_op_bias_grad (DlRecorder *rec, DlTensor *dbias, DlTensor *dy, int64_t dy_start, int64_t outer, int64_t C,
                 int64_t inner, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && dbias != NULL && dy != NULL, FALSE);
  int64_t n = outer * C * inner, total = outer * inner;
  g_return_val_if_fail (dy_start >= 0 && dy_start + n <= dl_tensor_numel (dy), FALSE);
  g_return_val_if_fail (dl_tensor_numel (dbias) == C, FALSE);
  if (C == 0)
    return TRUE;
  if (n == 0) /* a sum over nothing */
    return accumulate ? TRUE : dl_op_fill (rec, dbias, 0.0, error);
  if (n > G_MAXUINT32)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "bias gradient: %" G_GINT64_FORMAT " elements at once", n);
      return FALSE;
    }
  uint32_t cb = inner >= LONG_INNER ? 1 : 32, lanes = 256 / cb;
  int64_t groups = (C + cb - 1) / cb;
  if (groups > 65535)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "bias gradient: %" G_GINT64_FORMAT " channels", C);
      return FALSE;
    }

  /* few channels over many rows: split the rows too, then add the splits up */
  DlDevice *dev = dl_recorder_get_device (rec);
  int64_t want = dl_device_get_info (dev)->busy_workgroups;
  int64_t splits = MIN ((want + groups - 1) / groups, total / ((int64_t)MIN_PER_THREAD * lanes));
  splits = CLAMP (splits, 1, 65535);
  int64_t chunk = (total + splits - 1) / splits;
  splits = (total + chunk - 1) / chunk;
  if (splits == 1)
    return pass (rec, dbias, dy, dy_start, outer, C, inner, cb, chunk, 1, accumulate, error);

  g_autoptr (DlTensor) partial = dl_tensor_new_2d (dev, "bias gradient partials", DL_DTYPE_F32, splits, C, error);
  if (!partial || !pass (rec, partial, dy, dy_start, outer, C, inner, cb, chunk, splits, FALSE, error))
    return FALSE;
  DlPipeline *p = dl_op_pipeline (rec, error, "conv2d_wgrad_reduce_%s", dl_dtype_name (dbias->dtype));
  if (!p)
    return FALSE;
  DlBinding b[2] = { dl_op_bind (rec, partial, FALSE), dl_op_bind (rec, dbias, TRUE) };
  ReducePush pc = {
    .n = (uint32_t)C,
    .splits = (uint32_t)splits,
    .slice = (uint32_t)C,
    .off_p = dl_binding_shader_offset (&b[0], 4),
    .off_d = dl_binding_shader_offset (&b[1], dl_dtype_size (dbias->dtype)),
    .flags = accumulate ? 1u : 0u,
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, C, 256), 1, 1, error);
}
