/* Host side of adamw.comp and sumsq.comp. */
#include "dl-op-adamw.h"

#include "dl-op-util.h"

#include <math.h>

/* elements per partial sum of squares (fixed: the sum order follows the sizes) */
#define SUMSQ_CHUNK 16384

typedef struct
{
  uint32_t n;
  uint32_t off_p, off_g, off_m, off_v, off_h, off_c, off_d;
  uint32_t has_clip;
} AdamwPush;

typedef struct
{
  uint32_t n, chunk, first;
  uint32_t off_a, off_out;
  float max_norm;
} SumsqPush;

void
dl_adamw_hyper_values (float out[DL_ADAMW_HYPER_LEN], const DlAdamWParams *prm, guint64 step)
{
  g_return_if_fail (out != NULL && prm != NULL);
  double t = (double)MAX (step, 1);
  double bc1 = 1.0 - pow (prm->beta1, t);
  double bc2 = 1.0 - pow (prm->beta2, t);
  out[DL_ADAMW_H_DECAY] = (float)(1.0 - prm->lr * prm->weight_decay);
  out[DL_ADAMW_H_BETA1] = (float)prm->beta1;
  out[DL_ADAMW_H_ONE_MINUS_BETA1] = (float)(1.0 - prm->beta1);
  out[DL_ADAMW_H_BETA2] = (float)prm->beta2;
  out[DL_ADAMW_H_ONE_MINUS_BETA2] = (float)(1.0 - prm->beta2);
  out[DL_ADAMW_H_STEP_SIZE] = (float)(prm->lr / bc1);
  out[DL_ADAMW_H_BC2_SQRT] = (float)sqrt (bc2);
  out[DL_ADAMW_H_EPS] = (float)prm->eps;
  out[DL_ADAMW_H_GRAD_SCALE] = (float)prm->grad_scale;
}

static gboolean
check_params (const DlAdamWParams *prm, GError **error)
{
  gboolean ok = isfinite (prm->lr) && prm->lr >= 0 && prm->beta1 >= 0 && prm->beta1 < 1 && prm->beta2 >= 0 &&
                prm->beta2 < 1 && prm->eps > 0 && isfinite (prm->eps) && isfinite (prm->weight_decay) &&
                isfinite (prm->grad_scale);
  if (!ok)
    g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                 "adamw: unusable hyperparameters (lr %g, betas %g %g, eps %g, weight decay %g, grad scale %g)",
                 prm->lr, prm->beta1, prm->beta2, prm->eps, prm->weight_decay, prm->grad_scale);
  return ok;
}

gboolean
dl_adamw_hyper_upload (DlTensor *hyper, const DlAdamWParams *params, guint64 step, GError **error)
{
  g_return_val_if_fail (hyper != NULL && params != NULL, FALSE);
  if (!check_params (params, error))
    return FALSE;
  if (hyper->dtype != DL_DTYPE_F32 || dl_tensor_numel (hyper) < DL_ADAMW_HYPER_LEN)
    {
      g_autofree char *d = dl_tensor_describe (hyper);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "adamw: hyper buffer %s needs %d f32 values", d,
                   DL_ADAMW_HYPER_LEN);
      return FALSE;
    }
  int64_t n = dl_tensor_numel (hyper);
  g_autofree float *vals = g_new0 (float, n);
  dl_adamw_hyper_values (vals, params, step);
  return dl_tensor_upload_f32 (hyper, vals, error);
}

static gboolean
f32_tensor (const char *what, DlTensor *t, int64_t min_numel, GError **error)
{
  if (t->dtype == DL_DTYPE_F32 && dl_tensor_numel (t) >= min_numel)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
               "adamw: %s %s must be f32 with at least %" G_GINT64_FORMAT " elements", what, d, min_numel);
  return FALSE;
}

gboolean
dl_op_adamw (DlRecorder *rec, DlTensor *param, DlTensor *grad, DlTensor *m, DlTensor *v, DlTensor *hyper,
             DlTensor *clip, DlTensor *model_copy, GError **error)
{
  g_return_val_if_fail (rec != NULL && param != NULL && grad != NULL && m != NULL && v != NULL && hyper != NULL, FALSE);
  const char *op = "adamw";
  int64_t n = dl_tensor_numel (param);
  if (!f32_tensor ("parameter", param, 0, error) || !f32_tensor ("first moment", m, 0, error) ||
      !f32_tensor ("second moment", v, 0, error) || !f32_tensor ("hyper buffer", hyper, DL_ADAMW_HYPER_LEN, error) ||
      (clip && !f32_tensor ("clip buffer", clip, 2, error)) ||
      !dl_op_check_dtype (op, grad, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_same_numel (op, param, grad, error) || !dl_op_check_same_numel (op, param, m, error) ||
      !dl_op_check_same_numel (op, param, v, error) ||
      (model_copy &&
       (!dl_op_check_dtype (op, model_copy, DL_DT_BIT (DL_DTYPE_F16) | DL_DT_BIT (DL_DTYPE_BF16), error) ||
        !dl_op_check_same_numel (op, param, model_copy, error))))
    return FALSE;
  if (n == 0)
    return TRUE;
  DlPipeline *p = model_copy ? dl_op_pipeline (rec, error, "adamw_%s_copy_%s", dl_dtype_name (grad->dtype),
                                               dl_dtype_name (model_copy->dtype))
                             : dl_op_pipeline (rec, error, "adamw_%s", dl_dtype_name (grad->dtype));
  if (!p)
    return FALSE;
  int64_t step = dl_op_max_binding_elems (rec, DL_DTYPE_F32);
  for (int64_t start = 0; start < n; start += step)
    {
      int64_t len = MIN (step, n - start);
      DlBinding b[7] = {
        dl_op_bind_range (rec, param, start, len, TRUE),
        dl_op_bind_range (rec, grad, start, len, FALSE),
        dl_op_bind_range (rec, m, start, len, TRUE),
        dl_op_bind_range (rec, v, start, len, TRUE),
        dl_op_bind (rec, hyper, FALSE),
        dl_op_bind (rec, clip ? clip : hyper, FALSE),
      };
      guint nb = 6;
      if (model_copy)
        b[nb++] = dl_op_bind_range (rec, model_copy, start, len, TRUE);
      AdamwPush pc = {
        .n = (uint32_t)len,
        .off_p = dl_binding_shader_offset (&b[0], 4),
        .off_g = dl_binding_shader_offset (&b[1], dl_dtype_size (grad->dtype)),
        .off_m = dl_binding_shader_offset (&b[2], 4),
        .off_v = dl_binding_shader_offset (&b[3], 4),
        .off_h = dl_binding_shader_offset (&b[4], 4),
        .off_c = dl_binding_shader_offset (&b[5], 4),
        .off_d = model_copy ? dl_binding_shader_offset (&b[6], dl_dtype_size (model_copy->dtype)) : 0,
        .has_clip = clip != NULL,
      };
      if (!dl_recorder_dispatch (rec, p, b, nb, &pc, sizeof pc, dl_op_groups (rec, len, 256), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_grad_norm (DlRecorder *rec, DlTensor *out, DlTensor *const *grads, guint n_grads, float max_norm, GError **error)
{
  g_return_val_if_fail (rec != NULL && out != NULL && (grads != NULL || n_grads == 0), FALSE);
  const char *op = "grad_norm";
  if (out->dtype != DL_DTYPE_F32 || dl_tensor_numel (out) < 2)
    {
      g_autofree char *d = dl_tensor_describe (out);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: output %s must be f32 with 2 elements", op, d);
      return FALSE;
    }
  if (isnan (max_norm))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: max norm is NaN", op);
      return FALSE;
    }
  /* every tensor, split at binding-sized ranges, is cut into fixed chunks */
  int64_t total = 0;
  for (guint i = 0; i < n_grads; i++)
    {
      if (!dl_op_check_dtype (op, grads[i], DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error))
        return FALSE;
      int64_t n = dl_tensor_numel (grads[i]), step = dl_op_max_binding_elems (rec, grads[i]->dtype);
      for (int64_t s = 0; s < n; s += step)
        total += (MIN (step, n - s) + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    }
  if (total > G_MAXUINT32 / 2)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: too many gradient elements", op);
      return FALSE;
    }
  g_autoptr (DlTensor) partial =
    dl_tensor_new_1d (dl_recorder_get_device (rec), "gradient norm partials", DL_DTYPE_F32, MAX (total, 1), error);
  if (!partial)
    return FALSE;
  int64_t first = 0;
  for (guint i = 0; i < n_grads; i++)
    {
      DlTensor *g = grads[i];
      int64_t n = dl_tensor_numel (g), step = dl_op_max_binding_elems (rec, g->dtype);
      if (n == 0)
        continue;
      DlPipeline *p = dl_op_pipeline (rec, error, "sumsq_partial_%s", dl_dtype_name (g->dtype));
      if (!p)
        return FALSE;
      for (int64_t s = 0; s < n; s += step)
        {
          int64_t len = MIN (step, n - s), chunks = (len + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
          DlBinding b[2] = { dl_op_bind_range (rec, g, s, len, FALSE), dl_op_bind (rec, partial, TRUE) };
          SumsqPush pc = {
            .n = (uint32_t)len,
            .chunk = SUMSQ_CHUNK,
            .first = (uint32_t)first,
            .off_a = dl_binding_shader_offset (&b[0], dl_dtype_size (g->dtype)),
            .off_out = dl_binding_shader_offset (&b[1], 4),
          };
          if (chunks > 65535)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                           "%s: a binding range of %" G_GINT64_FORMAT " elements is too large", op, len);
              return FALSE;
            }
          if (!dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, (guint32)chunks, 1, 1, error))
            return FALSE;
          first += chunks;
        }
    }
  DlPipeline *p = dl_op_pipeline (rec, error, "sumsq_final");
  if (!p)
    return FALSE;
  DlBinding b[2] = { dl_op_bind (rec, partial, FALSE), dl_op_bind (rec, out, TRUE) };
  SumsqPush pc = {
    .n = (uint32_t)total,
    .off_a = dl_binding_shader_offset (&b[0], 4),
    .off_out = dl_binding_shader_offset (&b[1], 4),
    .max_norm = max_norm,
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, 1, 1, 1, error);
}
