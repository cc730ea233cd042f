/* torch.nn.Linear on top of dl_op_matmul: the leading dimensions are flattened
 * into rows, and rows are cut into blocks whose bindings fit the device. */
#include "dl-op-linear.h"

#include "dl-op-bias-grad.h"
#include "dl-op-eltwise.h"
#include "dl-op-matmul.h"
#include "dl-op-util.h"

typedef struct
{
  int64_t R, K, N;
} LinearShape;

static gboolean
fail (GError **error, const char *op, const char *what, DlTensor *t, DlTensor *u)
{
  g_autofree char *dt = dl_tensor_describe (t);
  g_autofree char *du = u ? dl_tensor_describe (u) : NULL;
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s%s%s: %s", op, dt, du ? " and " : "", du ? du : "",
               what);
  return FALSE;
}

static int64_t
rows_of (const DlTensor *t)
{
  int64_t r = 1;
  for (int i = 0; i < t->ndim - 1; i++)
    r *= t->shape[i];
  return r;
}

static int64_t
last_dim (const DlTensor *t)
{
  return t->ndim > 0 ? t->shape[t->ndim - 1] : 1;
}

static gboolean
check_float (const char *op, DlTensor *t, GError **error)
{
  return !t || dl_op_check_dtype (op, t, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error);
}

/* Rows per block so that a block of each [rows, cols] operand fits one binding
 * (tuning.linear_rows_per_block, $DREAMLOOM_LINEAR_ROWS_PER_BLOCK, lowers it: tests cut small tensors). */
static int64_t
rows_per_block (DlRecorder *rec, DlTensor *a, int64_t a_cols, DlTensor *b, int64_t b_cols)
{
  int64_t r = G_MAXINT64;
  gint64 forced = dl_device_get_tuning (dl_recorder_get_device (rec))->linear_rows_per_block;
  if (forced > 0)
    r = forced;
  if (a)
    r = MIN (r, dl_op_max_binding_elems (rec, a->dtype) / MAX (a_cols, 1));
  if (b)
    r = MIN (r, dl_op_max_binding_elems (rec, b->dtype) / MAX (b_cols, 1));
  return r;
}

/* Rows [r0, r0 + n) of t seen as a [rows, cols] matrix. */
static DlTensor *
row_block (DlTensor *t, int64_t cols, int64_t r0, int64_t n, GError **error)
{
  int64_t shape[2] = { n, cols };
  return dl_tensor_view (t, t->name, r0 * cols, 2, shape, error);
}

gboolean
dl_op_linear (DlRecorder *rec, DlTensor *y, DlTensor *x, DlTensor *w, DlTensor *bias, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL && w != NULL, FALSE);
  const char *op = "linear";
  if (!check_float (op, x, error) || !check_float (op, w, error) || !check_float (op, y, error) ||
      !check_float (op, bias, error))
    return FALSE;
  if (w->ndim != 2)
    return fail (error, op, "the weight must be [out_features, in_features]", w, NULL);
  LinearShape s = { rows_of (x), w->shape[1], w->shape[0] };
  if (last_dim (x) != s.K)
    return fail (error, op, "the input's last dimension must be in_features", x, w);
  if (last_dim (y) != s.N || rows_of (y) != s.R)
    return fail (error, op, "the output must be [..., out_features] with the input's rows", y, x);
  if (bias && (dl_tensor_numel (bias) != s.N || bias->dtype != w->dtype))
    return fail (error, op, "the bias must hold out_features elements of the weight's dtype", bias, w);
  if (s.R == 0 || s.N == 0)
    return TRUE;

  int64_t step = rows_per_block (rec, x, s.K, y, s.N);
  if (step < 1)
    return fail (error, op, "one row is larger than this device can bind", x, y);
  for (int64_t r0 = 0; r0 < s.R; r0 += step)
    {
      int64_t n = MIN (step, s.R - r0);
      g_autoptr (DlTensor) xb = row_block (x, s.K, r0, n, error);
      g_autoptr (DlTensor) yb = xb ? row_block (y, s.N, r0, n, error) : NULL;
      if (!yb || !dl_op_matmul (rec, yb, xb, FALSE, w, TRUE, bias, NULL, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_linear_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dw, DlTensor *dbias, DlTensor *x, DlTensor *w,
                       DlTensor *dy, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && dy != NULL, FALSE);
  const char *op = "linear_backward";
  if (!check_float (op, dx, error) || !check_float (op, dw, error) || !check_float (op, dbias, error) ||
      !check_float (op, x, error) || !check_float (op, w, error) || !check_float (op, dy, error))
    return FALSE;
  if (dx && !w)
    return fail (error, op, "the input gradient needs the weight", dx, NULL);
  if (dw && !x)
    return fail (error, op, "the weight gradient needs the input", dw, NULL);
  LinearShape s = { rows_of (dy), 0, last_dim (dy) };
  DlTensor *wk = w ? w : dw;
  if (wk)
    {
      if (wk->ndim != 2 || wk->shape[0] != s.N)
        return fail (error, op, "the weight must be [out_features, in_features] with dy's out_features", wk, dy);
      s.K = wk->shape[1];
      if (w && dw && !dl_tensor_same_shape (w, dw))
        return fail (error, op, "the weight and its gradient differ in shape", w, dw);
    }
  DlTensor *in[2] = { x, dx };
  for (guint i = 0; i < 2; i++)
    if (wk && in[i] && (last_dim (in[i]) != s.K || rows_of (in[i]) != s.R))
      return fail (error, op, "must be [..., in_features] with dy's rows", in[i], dy);
  if (dbias && dl_tensor_numel (dbias) != s.N)
    return fail (error, op, "the bias gradient must hold out_features elements", dbias, dy);

  if (s.R == 0 || s.N == 0)
    {
      /* no rows (or no outputs): dx is zero, dw and dbias are empty sums */
      if (dx && !dl_op_fill (rec, dx, 0.0, error))
        return FALSE;
      if (dw && !accumulate && !dl_op_fill (rec, dw, 0.0, error))
        return FALSE;
      return !dbias || accumulate || dl_op_fill (rec, dbias, 0.0, error);
    }

  int64_t step = rows_per_block (rec, dy, s.N, dx ? dx : x, s.K);
  if (dx && x)
    step = MIN (step, rows_per_block (rec, x, s.K, NULL, 0));
  if (step < 1)
    return fail (error, op, "one row is larger than this device can bind", dy, NULL);
  for (int64_t r0 = 0; r0 < s.R; r0 += step)
    {
      int64_t n = MIN (step, s.R - r0);
      gboolean add = accumulate || r0 > 0; /* later blocks add into the first */
      g_autoptr (DlTensor) dyb = row_block (dy, s.N, r0, n, error);
      if (!dyb)
        return FALSE;
      if (dx)
        {
          g_autoptr (DlTensor) dxb = row_block (dx, s.K, r0, n, error);
          if (!dxb || !dl_op_matmul (rec, dxb, dyb, FALSE, w, FALSE, NULL, NULL, error))
            return FALSE;
        }
      if (dw)
        {
          g_autoptr (DlTensor) xb = row_block (x, s.K, r0, n, error);
          DlMatmulParams prm = DL_MATMUL_PARAMS_DEFAULT;
          prm.beta = add ? 1.0f : 0.0f;
          if (!xb || !dl_op_matmul (rec, dw, dyb, TRUE, xb, FALSE, NULL, &prm, error))
            return FALSE;
        }
      if (dbias && !dl_op_bias_grad (rec, dbias, dy, r0 * s.N, n, s.N, 1, add, error))
        return FALSE;
    }
  return TRUE;
}
