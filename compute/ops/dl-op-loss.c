/* Host side of mse.comp. */
#include "dl-op-loss.h"

#include "dl-op-util.h"

/* Elements per partial sum: fixed, so that the summation order is a function of
 * the shape alone. */
#define CHUNK 16384

typedef struct
{
  uint32_t B, M;
  uint32_t chunk, nchunks;
  uint32_t off_a, off_b, off_w, off_out, off_l;
  uint32_t has_w;
  float grad_scale;
} MsePush;

static gboolean
check (const char *op, DlTensor *pred, DlTensor *target, DlTensor *weights, int64_t *B, int64_t *M, GError **error)
{
  guint fl = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  if (!dl_op_check_dtype (op, pred, fl, error) || !dl_op_check_dtype (op, target, fl, error) ||
      !dl_op_check_same_shape (op, pred, target, error) || !dl_op_check_fits_u32 (op, pred, error))
    return FALSE;
  *B = pred->ndim > 0 ? pred->shape[0] : 1;
  *M = *B > 0 ? dl_tensor_numel (pred) / *B : 0;
  if (*B == 0 || *M == 0)
    {
      g_autofree char *d = dl_tensor_describe (pred);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s is empty: its mean is undefined", op, d);
      return FALSE;
    }
  if (*B > 65535)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: more than 65535 samples", op);
      return FALSE;
    }
  if (weights && (weights->dtype != DL_DTYPE_F32 || dl_tensor_numel (weights) != *B))
    {
      g_autofree char *d = dl_tensor_describe (weights);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: weights %s must be %" G_GINT64_FORMAT " f32 values, one per sample", op, d, *B);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_f32_count (const char *op, DlTensor *t, int64_t n, GError **error)
{
  if (t->dtype == DL_DTYPE_F32 && dl_tensor_numel (t) == n)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s must hold %" G_GINT64_FORMAT " f32 values", op, d,
               n);
  return FALSE;
}

gboolean
dl_op_mse_loss (DlRecorder *rec, DlTensor *loss, DlTensor *per_sample, DlTensor *pred, DlTensor *target,
                DlTensor *weights, GError **error)
{
  g_return_val_if_fail (rec != NULL && loss != NULL && pred != NULL && target != NULL, FALSE);
  const char *op = "mse_loss";
  int64_t B, M;
  if (!check (op, pred, target, weights, &B, &M, error) || !check_f32_count (op, loss, 1, error) ||
      (per_sample && !check_f32_count (op, per_sample, B, error)))
    return FALSE;
  DlDevice *dev = dl_recorder_get_device (rec);
  int64_t nchunks = (M + CHUNK - 1) / CHUNK;
  if (nchunks > 65535)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: samples of %" G_GINT64_FORMAT " elements are too large",
                   op, M);
      return FALSE;
    }
  int64_t pshape[2] = { B, nchunks };
  g_autoptr (DlTensor) partial = dl_tensor_new (dev, "mse partial sums", DL_DTYPE_F32, 2, pshape, error);
  g_autoptr (DlTensor) scratch = per_sample ? NULL : dl_tensor_new_1d (dev, "mse per-sample", DL_DTYPE_F32, B, error);
  if (!partial || (!per_sample && !scratch))
    return FALSE;
  DlTensor *ps = per_sample ? per_sample : scratch;
  MsePush pc = {
    .B = (uint32_t)B,
    .M = (uint32_t)M,
    .chunk = CHUNK,
    .nchunks = (uint32_t)nchunks,
    .has_w = weights != NULL,
  };
  DlPipeline *p1 =
    dl_op_pipeline (rec, error, "mse_partial_%s_%s", dl_dtype_name (pred->dtype), dl_dtype_name (target->dtype));
  DlPipeline *p2 = p1 ? dl_op_pipeline (rec, error, "mse_final") : NULL;
  if (!p2)
    return FALSE;
  DlBinding b1[3] = { dl_op_bind (rec, pred, FALSE), dl_op_bind (rec, target, FALSE), dl_op_bind (rec, partial, TRUE) };
  pc.off_a = dl_binding_shader_offset (&b1[0], dl_dtype_size (pred->dtype));
  pc.off_b = dl_binding_shader_offset (&b1[1], dl_dtype_size (target->dtype));
  pc.off_out = dl_binding_shader_offset (&b1[2], 4);
  if (!dl_recorder_dispatch (rec, p1, b1, 3, &pc, sizeof pc, (guint32)nchunks, (guint32)B, 1, error))
    return FALSE;
  DlBinding b2[4] = {
    dl_op_bind (rec, partial, FALSE),
    dl_op_bind (rec, weights ? weights : partial, FALSE),
    dl_op_bind (rec, ps, TRUE),
    dl_op_bind (rec, loss, TRUE),
  };
  MsePush pf = pc;
  pf.off_a = dl_binding_shader_offset (&b2[0], 4);
  pf.off_w = dl_binding_shader_offset (&b2[1], 4);
  pf.off_out = dl_binding_shader_offset (&b2[2], 4);
  pf.off_l = dl_binding_shader_offset (&b2[3], 4);
  return dl_recorder_dispatch (rec, p2, b2, 4, &pf, sizeof pf, 1, 1, 1, error);
}

gboolean
dl_op_mse_loss_backward (DlRecorder *rec, DlTensor *dpred, DlTensor *pred, DlTensor *target, DlTensor *weights,
                         float grad_scale, GError **error)
{
  g_return_val_if_fail (rec != NULL && dpred != NULL && pred != NULL && target != NULL, FALSE);
  const char *op = "mse_loss_backward";
  int64_t B, M;
  if (!check (op, pred, target, weights, &B, &M, error) ||
      !dl_op_check_dtype (op, dpred, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_same_shape (op, dpred, pred, error))
    return FALSE;
  DlPipeline *p = dl_op_pipeline (rec, error, "mse_bwd_%s_%s_%s", dl_dtype_name (pred->dtype),
                                  dl_dtype_name (target->dtype), dl_dtype_name (dpred->dtype));
  if (!p)
    return FALSE;
  DlBinding b[4] = {
    dl_op_bind (rec, pred, FALSE),
    dl_op_bind (rec, target, FALSE),
    dl_op_bind (rec, weights ? weights : target, FALSE),
    dl_op_bind (rec, dpred, TRUE),
  };
  MsePush pc = {
    .B = (uint32_t)B,
    .M = (uint32_t)M,
    .off_a = dl_binding_shader_offset (&b[0], dl_dtype_size (pred->dtype)),
    .off_b = dl_binding_shader_offset (&b[1], dl_dtype_size (target->dtype)),
    .off_w = weights ? dl_binding_shader_offset (&b[2], 4) : 0,
    .off_out = dl_binding_shader_offset (&b[3], dl_dtype_size (dpred->dtype)),
    .has_w = weights != NULL,
    .grad_scale = grad_scale,
  };
  int64_t n = B * M;
  return dl_recorder_dispatch (rec, p, b, 4, &pc, sizeof pc, dl_op_groups (rec, n, 256), 1, 1, error);
}
