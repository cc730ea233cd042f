/* Host side of shaders/act: act.comp and geglu.comp. */
#include "dl-op-activation.h"

#include "dl-op-util.h"

#define WG 256

/* act.comp and geglu.comp share this layout: `param` is the activation or F */
typedef struct
{
  uint32_t n, param, off_x, off_g, off_d;
} PointwisePush;

#define FLOAT_MASK (DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16))

static gboolean
check_same (const char *op, DlTensor *a, DlTensor *b, GError **error)
{
  if (!dl_op_check_same_shape (op, a, b, error))
    return FALSE;
  if (a->dtype != b->dtype)
    {
      g_autofree char *da = dl_tensor_describe (a);
      g_autofree char *db = dl_tensor_describe (b);
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s and %s must share a dtype", op, da, db);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_act (const char *op, DlActivation act, GError **error)
{
  if ((int)act >= (int)DL_ACT_SILU && (int)act < (int)DL_ACT_COUNT)
    return TRUE;
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: unknown activation %d", op, (int)act);
  return FALSE;
}

/* One thread per output element: out = f(x) or, with dy, the backward f'(x)·dy,
 * over `rows` rows of `per_row` outputs, each row x_row elements of x, o_row of
 * out and g_row of dy (1 for the elementwise activations; 2F, F or 2F, F for
 * GEGLU).  Tensors larger than one binding take one dispatch per range of rows. */
static gboolean
run_pointwise (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, int64_t rows,
               int64_t per_row, int64_t x_row, int64_t o_row, int64_t g_row, uint32_t param, GError **error)
{
  if (rows == 0 || per_row == 0)
    return TRUE;
  DlPipeline *p = dl_op_pipeline (rec, error, "%s_%s", shader, dl_dtype_name (x->dtype));
  if (!p)
    return FALSE;
  gsize es = dl_dtype_size (x->dtype);
  int64_t step = dl_op_max_binding_elems (rec, x->dtype) / MAX (MAX (x_row, o_row), MAX (g_row, 1));
  if (step < 1)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "%s: one row of %" G_GINT64_FORMAT " elements is larger than one binding", shader, x_row);
      return FALSE;
    }
  for (int64_t r0 = 0; r0 < rows; r0 += step)
    {
      int64_t nr = MIN (step, rows - r0);
      DlBinding b[3];
      guint nb = 0;
      PointwisePush pc = { .n = (uint32_t)(nr * per_row), .param = param };
      b[nb] = dl_op_bind_range (rec, x, r0 * x_row, nr * x_row, FALSE);
      pc.off_x = dl_binding_shader_offset (&b[nb++], es);
      if (dy)
        {
          b[nb] = dl_op_bind_range (rec, dy, r0 * g_row, nr * g_row, FALSE);
          pc.off_g = dl_binding_shader_offset (&b[nb++], es);
        }
      b[nb] = dl_op_bind_range (rec, out, r0 * o_row, nr * o_row, TRUE);
      pc.off_d = dl_binding_shader_offset (&b[nb++], es);
      if (!dl_recorder_dispatch (rec, p, b, nb, &pc, sizeof pc, dl_op_groups (rec, nr * per_row, WG), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
run_act (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, DlActivation act,
         GError **error)
{
  return run_pointwise (rec, shader, out, x, dy, dl_tensor_numel (x), 1, 1, 1, 1, (uint32_t)act, error);
}

gboolean
dl_op_activation (DlRecorder *rec, DlTensor *y, DlTensor *x, DlActivation act, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  const char *op = "activation";
  if (!check_act (op, act, error) || !dl_op_check_dtype (op, x, FLOAT_MASK, error) || !check_same (op, x, y, error) ||
      !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  return run_act (rec, "act", y, x, NULL, act, error);
}

gboolean
dl_op_activation_backward (DlRecorder *rec, DlTensor *dx, DlTensor *x, DlTensor *dy, DlActivation act, GError **error)
{
  g_return_val_if_fail (rec != NULL && dx != NULL && x != NULL && dy != NULL, FALSE);
  const char *op = "activation_backward";
  if (!check_act (op, act, error) || !dl_op_check_dtype (op, x, FLOAT_MASK, error) || !check_same (op, x, dy, error) ||
      !check_same (op, x, dx, error) || !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  return run_act (rec, "act_bwd", dx, x, dy, act, error);
}

/* x [..., 2F] against the half-width tensor h [..., F]. */
static gboolean
check_geglu (const char *op, DlTensor *x, DlTensor *h, int64_t *F, GError **error)
{
  if (!dl_op_check_dtype (op, x, FLOAT_MASK, error) || !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  gboolean ok = x->ndim >= 1 && h->ndim == x->ndim && x->shape[x->ndim - 1] % 2 == 0;
  for (int i = 0; ok && i < x->ndim - 1; i++)
    ok = x->shape[i] == h->shape[i];
  if (ok)
    ok = h->shape[h->ndim - 1] * 2 == x->shape[x->ndim - 1];
  if (!ok)
    {
      g_autofree char *dx = dl_tensor_describe (x);
      g_autofree char *dh = dl_tensor_describe (h);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: %s must be [..., 2F] and %s [..., F] with the same leading dimensions", op, dx, dh);
      return FALSE;
    }
  if (h->dtype != x->dtype)
    {
      g_autofree char *dx = dl_tensor_describe (x);
      g_autofree char *dh = dl_tensor_describe (h);
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s and %s must share a dtype", op, dx, dh);
      return FALSE;
    }
  *F = h->shape[h->ndim - 1];
  return TRUE;
}

/* rows of F outputs: x [rows, 2F], dy [rows, F], out [rows, F] (forward) or
 * [rows, 2F] (backward) */
static gboolean
run_geglu (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, int64_t F, GError **error)
{
  int64_t rows = F ? dl_tensor_numel (x) / (2 * F) : 0;
  return run_pointwise (rec, shader, out, x, dy, rows, F, 2 * F, dl_tensor_numel (out) / MAX (rows, 1), F, (uint32_t)F,
                        error);
}

gboolean
dl_op_geglu (DlRecorder *rec, DlTensor *y, DlTensor *x, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  int64_t F;
  if (!check_geglu ("geglu", x, y, &F, error))
    return FALSE;
  return run_geglu (rec, "geglu", y, x, NULL, F, error);
}

gboolean
dl_op_geglu_backward (DlRecorder *rec, DlTensor *dx, DlTensor *x, DlTensor *dy, GError **error)
{
  g_return_val_if_fail (rec != NULL && dx != NULL && x != NULL && dy != NULL, FALSE);
  const char *op = "geglu_backward";
  int64_t F;
  if (!check_geglu (op, x, dy, &F, error) || !check_same (op, x, dx, error))
    return FALSE;
  return run_geglu (rec, "geglu_bwd", dx, x, dy, F, error);
}
