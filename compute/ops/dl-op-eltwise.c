/* Host side of fill.comp, copy.comp, binary.comp and scale.comp. */
#include "dl-op-eltwise.h"

#include "dl-op-util.h"

#include <string.h>

#define WG 256

typedef struct
{
  uint32_t n, off_d, value_bits;
} FillPush;

typedef struct
{
  uint32_t ne[4];
  uint32_t st_a[4];
  uint32_t n, off_a, off_d, contig;
} CopyPush;

/* Are these the row-major strides of shape ne (size-1 dimensions excepted)? */
static gboolean
strides_contiguous (const uint32_t ne[4], const uint32_t st[4])
{
  uint64_t acc = 1;
  for (int i = 3; i >= 0; i--)
    {
      if (ne[i] != 1 && st[i] != acc)
        return FALSE;
      acc *= ne[i];
    }
  return TRUE;
}

typedef struct
{
  uint32_t ne[4];
  uint32_t st_a[4];
  uint32_t st_b[4];
  uint32_t n, off_a, off_b, off_d, op, contig;
} BinaryPush;

typedef struct
{
  uint32_t n, off_a, off_d;
  float alpha, beta;
} ScalePush;

gboolean
dl_op_fill (DlRecorder *rec, DlTensor *dst, double value, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL, FALSE);
  DlPipeline *p = dl_op_pipeline (rec, error, "fill_%s", dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  uint32_t bits;
  if (dst->dtype == DL_DTYPE_I32)
    bits = (uint32_t)(int32_t)value;
  else
    {
      float f = (float)value;
      memcpy (&bits, &f, 4);
    }
  int64_t total = dl_tensor_numel (dst), step = dl_op_max_binding_elems (rec, dst->dtype);
  for (int64_t start = 0; start < total; start += step)
    {
      int64_t n = MIN (step, total - start);
      DlBinding b = dl_op_bind_range (rec, dst, start, n, TRUE);
      FillPush pc = { (uint32_t)n, dl_binding_shader_offset (&b, dl_dtype_size (dst->dtype)), bits };
      if (!dl_recorder_dispatch (rec, p, &b, 1, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

static DlPipeline *
copy_pipeline (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error)
{
  gboolean ok = (dl_dtype_is_float (src->dtype) && dl_dtype_is_float (dst->dtype)) ||
                (src->dtype == DL_DTYPE_I32 && (dst->dtype == DL_DTYPE_I32 || dst->dtype == DL_DTYPE_F32));
  if (!ok)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "copy: no conversion from %s to %s",
                   dl_dtype_name (src->dtype), dl_dtype_name (dst->dtype));
      return NULL;
    }
  return dl_op_pipeline (rec, error, "copy_%s_%s", dl_dtype_name (src->dtype), dl_dtype_name (dst->dtype));
}

gboolean
dl_op_copy (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL, FALSE);
  if (!dl_op_check_same_numel ("copy", dst, src, error))
    return FALSE;
  DlPipeline *p = copy_pipeline (rec, dst, src, error);
  if (!p)
    return FALSE;
  int64_t total = dl_tensor_numel (dst);
  int64_t step = MIN (dl_op_max_binding_elems (rec, dst->dtype), dl_op_max_binding_elems (rec, src->dtype));
  for (int64_t start = 0; start < total; start += step)
    {
      int64_t n = MIN (step, total - start);
      DlBinding b[2] = {
        dl_op_bind_range (rec, src, start, n, FALSE),
        dl_op_bind_range (rec, dst, start, n, TRUE),
      };
      CopyPush pc = {
        .ne = { 1, 1, 1, (uint32_t)n },
        .st_a = { 0, 0, 0, 1 },
        .n = (uint32_t)n,
        .off_a = dl_binding_shader_offset (&b[0], dl_dtype_size (src->dtype)),
        .off_d = dl_binding_shader_offset (&b[1], dl_dtype_size (dst->dtype)),
        .contig = 1,
      };
      if (!dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_copy_strided (DlRecorder *rec, DlTensor *dst, DlTensor *src, int64_t src_offset, const int64_t *src_strides,
                    GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL && src_strides != NULL, FALSE);
  if (!dl_op_check_fits_u32 ("copy_strided", dst, error) || !dl_op_check_fits_u32 ("copy_strided", src, error))
    return FALSE;
  /* the furthest element read must lie inside src */
  int64_t last = src_offset;
  for (int i = 0; i < dst->ndim; i++)
    {
      if (src_strides[i] < 0)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "copy_strided: negative stride");
          return FALSE;
        }
      if (dst->shape[i] > 0)
        last += (dst->shape[i] - 1) * src_strides[i];
    }
  if (dl_tensor_numel (dst) > 0 && (src_offset < 0 || last >= dl_tensor_numel (src)))
    {
      g_autofree char *d = dl_tensor_describe (src);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "copy_strided: reads element %" G_GINT64_FORMAT " of %s",
                   last, d);
      return FALSE;
    }
  DlPipeline *p = copy_pipeline (rec, dst, src, error);
  if (!p)
    return FALSE;
  CopyPush pc = { .ne = { 1, 1, 1, 1 } };
  int pad = 4 - dst->ndim;
  for (int i = 0; i < dst->ndim; i++)
    {
      pc.ne[pad + i] = (uint32_t)dst->shape[i];
      pc.st_a[pad + i] = (uint32_t)src_strides[i];
    }
  int64_t n = dl_tensor_numel (dst);
  DlBinding b[2] = { dl_op_bind (rec, src, FALSE), dl_op_bind (rec, dst, TRUE) };
  pc.n = (uint32_t)n;
  pc.off_a = dl_binding_shader_offset (&b[0], dl_dtype_size (src->dtype)) + (uint32_t)src_offset;
  pc.off_d = dl_binding_shader_offset (&b[1], dl_dtype_size (dst->dtype));
  pc.contig = strides_contiguous (pc.ne, pc.st_a);
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error);
}

gboolean
dl_op_permute (DlRecorder *rec, DlTensor *dst, DlTensor *src, const int *perm, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL && perm != NULL, FALSE);
  gboolean seen[DL_MAX_DIMS] = { FALSE };
  gboolean ok = dst->ndim == src->ndim;
  for (int i = 0; ok && i < dst->ndim; i++)
    {
      ok = perm[i] >= 0 && perm[i] < src->ndim && !seen[perm[i]] && dst->shape[i] == src->shape[perm[i]];
      if (ok)
        seen[perm[i]] = TRUE;
    }
  if (!ok)
    {
      g_autofree char *d = dl_tensor_describe (dst);
      g_autofree char *s = dl_tensor_describe (src);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "permute: %s is not a permutation of %s", d, s);
      return FALSE;
    }
  int64_t contig[DL_MAX_DIMS], strides[DL_MAX_DIMS];
  int64_t acc = 1;
  for (int i = src->ndim - 1; i >= 0; i--)
    {
      contig[i] = acc;
      acc *= src->shape[i];
    }
  for (int i = 0; i < dst->ndim; i++)
    strides[i] = contig[perm[i]];
  return dl_op_copy_strided (rec, dst, src, 0, strides, error);
}

/* Strides of `t` seen through a 4-D broadcast to `out`, or FALSE if incompatible. */
static gboolean
broadcast_strides (const DlTensor *t, const DlTensor *out, uint32_t st[4])
{
  if (t->ndim > out->ndim)
    return FALSE;
  int64_t acc = 1;
  for (int i = 3; i >= 0; i--)
    {
      int ti = t->ndim - (4 - i);
      int oi = out->ndim - (4 - i);
      int64_t td = ti >= 0 ? t->shape[ti] : 1;
      int64_t od = oi >= 0 ? out->shape[oi] : 1;
      if (td == od)
        st[i] = td == 1 ? 0 : (uint32_t)acc;
      else if (td == 1)
        st[i] = 0;
      else
        return FALSE;
      acc *= td;
    }
  return TRUE;
}

gboolean
dl_op_binary (DlRecorder *rec, DlBinaryOp op, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && a != NULL && b != NULL, FALSE);
  static const char *names[] = { "add", "sub", "mul", "div" };
  g_return_val_if_fail (op <= DL_BINARY_DIV, FALSE);
  if (a->dtype != dst->dtype || b->dtype != dst->dtype)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: operands must share one dtype (%s, %s -> %s)", names[op],
                   dl_dtype_name (a->dtype), dl_dtype_name (b->dtype), dl_dtype_name (dst->dtype));
      return FALSE;
    }
  if (!dl_op_check_dtype (names[op], dst, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_fits_u32 (names[op], dst, error))
    return FALSE;
  BinaryPush pc = { .ne = { 1, 1, 1, 1 }, .op = op };
  for (int i = 0; i < dst->ndim; i++)
    pc.ne[4 - dst->ndim + i] = (uint32_t)dst->shape[i];
  if (!broadcast_strides (a, dst, pc.st_a) || !broadcast_strides (b, dst, pc.st_b))
    {
      g_autofree char *da = dl_tensor_describe (a);
      g_autofree char *db = dl_tensor_describe (b);
      g_autofree char *dd = dl_tensor_describe (dst);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: cannot broadcast %s and %s to %s", names[op], da,
                   db, dd);
      return FALSE;
    }
  DlPipeline *p = dl_op_pipeline (rec, error, "binary_%s", dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  int64_t n = dl_tensor_numel (dst);
  DlBinding bd[3] = { dl_op_bind (rec, a, FALSE), dl_op_bind (rec, b, FALSE), dl_op_bind (rec, dst, TRUE) };
  gsize es = dl_dtype_size (dst->dtype);
  pc.n = (uint32_t)n;
  pc.off_a = dl_binding_shader_offset (&bd[0], es);
  pc.off_b = dl_binding_shader_offset (&bd[1], es);
  pc.off_d = dl_binding_shader_offset (&bd[2], es);
  pc.contig = (strides_contiguous (pc.ne, pc.st_a) ? 1u : 0u) | (strides_contiguous (pc.ne, pc.st_b) ? 2u : 0u);
  return dl_recorder_dispatch (rec, p, bd, 3, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error);
}

gboolean
dl_op_add (DlRecorder *rec, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error)
{
  return dl_op_binary (rec, DL_BINARY_ADD, dst, a, b, error);
}

gboolean
dl_op_mul (DlRecorder *rec, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error)
{
  return dl_op_binary (rec, DL_BINARY_MUL, dst, a, b, error);
}

gboolean
dl_op_axpby (DlRecorder *rec, DlTensor *dst, DlTensor *src, float alpha, float beta, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL, FALSE);
  if (!dl_op_check_same_numel ("scale", dst, src, error))
    return FALSE;
  if (src->dtype != dst->dtype)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "scale: %s -> %s (use copy to convert)",
                   dl_dtype_name (src->dtype), dl_dtype_name (dst->dtype));
      return FALSE;
    }
  if (!dl_op_check_dtype ("scale", dst, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error))
    return FALSE;
  DlPipeline *p = dl_op_pipeline (rec, error, "scale_%s", dl_dtype_name (dst->dtype));
  if (!p)
    return FALSE;
  gsize es = dl_dtype_size (dst->dtype);
  int64_t total = dl_tensor_numel (dst), step = dl_op_max_binding_elems (rec, dst->dtype);
  for (int64_t start = 0; start < total; start += step)
    {
      int64_t n = MIN (step, total - start);
      DlBinding b[2] = { dl_op_bind_range (rec, src, start, n, FALSE), dl_op_bind_range (rec, dst, start, n, TRUE) };
      ScalePush pc = { (uint32_t)n, dl_binding_shader_offset (&b[0], es), dl_binding_shader_offset (&b[1], es), alpha,
                       beta };
      if (!dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_scale (DlRecorder *rec, DlTensor *dst, DlTensor *src, float alpha, GError **error)
{
  return dl_op_axpby (rec, dst, src, alpha, 0.0f, error);
}
