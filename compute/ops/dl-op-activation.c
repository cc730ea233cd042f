/* Host side of shaders/act: act.comp and geglu.comp. */
#include "dl-op-activation.h"

#include "dl-op-util.h"

#define WG 256

/* act.comp and geglu.comp share this layout: `param` is the activation or F */
typedef struct {
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
  if ((int) act >= (int) DL_ACT_SILU && (int) act <= (int) DL_ACT_QUICK_GELU)
    return TRUE;
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: unknown activation %d", op, (int) act);
  return FALSE;
}

/* One thread per output element over n of them: out = f(x) or, with dy, the
 * backward f'(x)·dy. */
static gboolean
run_pointwise (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, int64_t n,
               uint32_t param, GError **error)
{
  if (n == 0)
    return TRUE;
  DlPipeline *p = dl_op_pipeline (rec, error, "%s_%s", shader, dl_dtype_name (x->dtype));
  if (!p)
    return FALSE;
  gsize es = dl_dtype_size (x->dtype);
  DlBinding b[3];
  guint nb = 0;
  PointwisePush pc = { .n = (uint32_t) n, .param = param };
  b[nb] = dl_op_bind (rec, x, FALSE);
  pc.off_x = dl_binding_shader_offset (&b[nb++], es);
  if (dy)
    {
      b[nb] = dl_op_bind (rec, dy, FALSE);
      pc.off_g = dl_binding_shader_offset (&b[nb++], es);
    }
  b[nb] = dl_op_bind (rec, out, TRUE);
  pc.off_d = dl_binding_shader_offset (&b[nb++], es);
  return dl_recorder_dispatch (rec, p, b, nb, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error);
}

static gboolean
run_act (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, DlActivation act,
         GError **error)
{
  return run_pointwise (rec, shader, out, x, dy, dl_tensor_numel (x), (uint32_t) act, error);
}

gboolean
dl_op_activation (DlRecorder *rec, DlTensor *y, DlTensor *x, DlActivation act, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  const char *op = "activation";
  if (!check_act (op, act, error) || !dl_op_check_dtype (op, x, FLOAT_MASK, error) ||
      !check_same (op, x, y, error) || !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  return run_act (rec, "act", y, x, NULL, act, error);
}

gboolean
dl_op_activation_backward (DlRecorder *rec, DlTensor *dx, DlTensor *x, DlTensor *dy, DlActivation act,
                           GError **error)
{
  g_return_val_if_fail (rec != NULL && dx != NULL && x != NULL && dy != NULL, FALSE);
  const char *op = "activation_backward";
  if (!check_act (op, act, error) || !dl_op_check_dtype (op, x, FLOAT_MASK, error) ||
      !check_same (op, x, dy, error) || !check_same (op, x, dx, error) || !dl_op_check_fits_u32 (op, x, error))
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

/* n = rows * F outputs (half of x) */
static gboolean
run_geglu (DlRecorder *rec, const char *shader, DlTensor *out, DlTensor *x, DlTensor *dy, int64_t F, GError **error)
{
  return run_pointwise (rec, shader, out, x, dy, dl_tensor_numel (x) / 2, (uint32_t) F, error);
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
