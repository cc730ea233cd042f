/* Host side of reduce_sum.comp: picks ROW or COL mode and, when the outputs alone
 * would leave most of the GPU idle, splits the reduced axis into chunks reduced in
 * a further pass. */
#include "dl-op-reduce.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>

#define WG 256
#define ROW_CHUNK 4096 /* elements per workgroup in ROW mode */
#define COL_CHUNK 64   /* rows per thread in COL mode */
#define TARGET_THREADS 16384

typedef struct
{
  uint32_t outer, R, inner, chunk, nchunks, off_a, off_d;
  float scale;
  uint32_t col_mode;
} ReducePush;

static gboolean
reduce_pass (DlRecorder *rec, DlTensor *dst, DlTensor *src, int64_t outer, int64_t R, int64_t inner, int64_t chunk,
             int64_t nchunks, float scale, GError **error)
{
  DlPipeline *p =
    dl_op_pipeline (rec, error, "reduce_sum_%s_%s", dl_dtype_name (src->dtype), dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  DlBinding b[2] = { dl_op_bind (rec, src, FALSE), dl_op_bind (rec, dst, TRUE) };
  ReducePush pc = {
    .outer = (uint32_t)outer,
    .R = (uint32_t)R,
    .inner = (uint32_t)inner,
    .chunk = (uint32_t)chunk,
    .nchunks = (uint32_t)nchunks,
    .off_a = dl_binding_shader_offset (&b[0], dl_dtype_size (src->dtype)),
    .off_d = dl_binding_shader_offset (&b[1], dl_dtype_size (dst->dtype)),
    .scale = scale,
    .col_mode = inner > 1,
  };
  guint32 groups =
    inner > 1 ? dl_op_groups (rec, outer * nchunks * inner, WG) : (guint32)MIN (outer * nchunks, (int64_t)65535);
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, MAX (groups, 1), 1, 1, error);
}

/* dst[o, i] = scale * sum_r src[o, r, i] */
static gboolean
reduce (DlRecorder *rec, DlTensor *dst, DlTensor *src, int64_t outer, int64_t R, int64_t inner, float scale,
        GError **error)
{
  int64_t outputs = outer * inner;
  int64_t chunk = R;
  if (inner == 1 && outer < 512 && R > ROW_CHUNK)
    chunk = ROW_CHUNK;
  else if (inner > 1 && outputs < TARGET_THREADS && R > COL_CHUNK)
    chunk = MAX (COL_CHUNK, (R * outputs + TARGET_THREADS - 1) / TARGET_THREADS);
  int64_t nchunks = (R + chunk - 1) / chunk;
  if (nchunks <= 1)
    return reduce_pass (rec, dst, src, outer, R, inner, R, 1, scale, error);

  int64_t shape[3] = { outer, nchunks, inner };
  g_autoptr (DlTensor) partial =
    dl_tensor_new (dl_recorder_get_device (rec), "reduce partial sums", DL_DTYPE_F32, 3, shape, error);
  if (!partial)
    return FALSE;
  if (!reduce_pass (rec, partial, src, outer, R, inner, chunk, nchunks, 1.0f, error))
    return FALSE;
  return reduce (rec, dst, partial, outer, nchunks, inner, scale, error);
}

static gboolean
check (const char *op, DlTensor *dst, DlTensor *src, int64_t expected, GError **error)
{
  guint mask = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  if (!dl_op_check_dtype (op, src, mask, error) || !dl_op_check_dtype (op, dst, mask, error) ||
      !dl_op_check_fits_u32 (op, src, error))
    return FALSE;
  if (dl_tensor_numel (dst) != expected)
    {
      g_autofree char *d = dl_tensor_describe (dst);
      g_autofree char *s = dl_tensor_describe (src);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: %s cannot hold the result for %s (%" G_GINT64_FORMAT " elements)", op, d, s, expected);
      return FALSE;
    }
  return TRUE;
}

static gboolean
reduce_axis (const char *op, DlRecorder *rec, DlTensor *dst, DlTensor *src, int axis, gboolean mean, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL, FALSE);
  int ax = axis < 0 ? axis + src->ndim : axis;
  if (ax < 0 || ax >= src->ndim)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: axis %d out of range for %d dimensions", op, axis,
                   src->ndim);
      return FALSE;
    }
  int64_t outer = 1, inner = 1, R = src->shape[ax];
  for (int i = 0; i < ax; i++)
    outer *= src->shape[i];
  for (int i = ax + 1; i < src->ndim; i++)
    inner *= src->shape[i];
  if (!check (op, dst, src, outer * inner, error))
    return FALSE;
  if (outer * inner == 0)
    return TRUE;
  if (R == 0)
    return dl_op_fill (rec, dst, mean ? NAN : 0.0, error);
  return reduce (rec, dst, src, outer, R, inner, mean ? (float)(1.0 / (double)R) : 1.0f, error);
}

gboolean
dl_op_sum (DlRecorder *rec, DlTensor *dst, DlTensor *src, int axis, GError **error)
{
  return reduce_axis ("sum", rec, dst, src, axis, FALSE, error);
}

gboolean
dl_op_mean (DlRecorder *rec, DlTensor *dst, DlTensor *src, int axis, GError **error)
{
  return reduce_axis ("mean", rec, dst, src, axis, TRUE, error);
}

static gboolean
reduce_all (const char *op, DlRecorder *rec, DlTensor *dst, DlTensor *src, gboolean mean, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL, FALSE);
  if (!check (op, dst, src, 1, error))
    return FALSE;
  int64_t n = dl_tensor_numel (src);
  if (n == 0)
    return dl_op_fill (rec, dst, mean ? NAN : 0.0, error);
  return reduce (rec, dst, src, 1, n, 1, mean ? (float)(1.0 / (double)n) : 1.0f, error);
}

gboolean
dl_op_sum_all (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error)
{
  return reduce_all ("sum_all", rec, dst, src, FALSE, error);
}

gboolean
dl_op_mean_all (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error)
{
  return reduce_all ("mean_all", rec, dst, src, TRUE, error);
}
