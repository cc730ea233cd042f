/* linear (torch.nn.Linear) against the double-precision reference: the reference
 * backward against finite differences, then forward and backward on the device
 * for awkward sizes (1, 7, 13, 129 rows / features), inputs with several leading
 * dimensions, f32 / f16 / mixed storage, no bias, accumulation, gradients
 * requested one at a time, and bad arguments. */
#include "dl-test-util.h"

#include "ref-conv.h"

#include <math.h>

typedef struct
{
  int64_t R, K, N;
} Size;

static const Size sizes[] = {
  { 1, 1, 1 },   { 7, 13, 5 },    { 13, 1, 7 },     { 129, 33, 65 },
  { 2, 129, 1 }, { 77, 40, 130 }, { 2048, 16, 40 }, /* few outputs, many rows: the bias gradient splits the rows */
};

/* ---- reference against finite differences ---- */

typedef struct
{
  Size s;
  float *x, *w, *b, *r;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t ny = c->s.R * c->s.N;
  g_autofree float *y = g_new (float, ny);
  ref_linear_forward (y, c->x, c->w, c->b, c->s.R, c->s.K, c->s.N);
  double l = 0;
  for (int64_t i = 0; i < ny; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  for (guint i = 0; i < 4; i++)
    {
      Size s = sizes[i];
      int64_t nx = s.R * s.K, nw = s.N * s.K, ny = s.R * s.N;
      g_autofree float *x = dl_test_random (nx, 1 + i, -1, 1);
      g_autofree float *w = dl_test_random (nw, 2 + i, -1, 1);
      g_autofree float *b = dl_test_random (s.N, 3 + i, -1, 1);
      g_autofree float *r = dl_test_random (ny, 4 + i, -1, 1);
      g_autofree float *dx = g_new (float, nx);
      g_autofree float *dw = g_new (float, nw);
      g_autofree float *db = g_new (float, s.N);
      ref_linear_backward (dx, dw, db, x, w, r, s.R, s.K, s.N, FALSE);
      FdCtx c = { s, x, w, b, r };
      /* linear in every input: exact but for y's float rounding over 2 eps = 0.5 */
      dl_test_assert_fd ("linear dx", x, nx, dx, fd_loss, &c, 0.25, 1e-5, 1e-5, 300, FALSE);
      dl_test_assert_fd ("linear dw", w, nw, dw, fd_loss, &c, 0.25, 1e-5, 1e-5, 300, FALSE);
      dl_test_assert_fd ("linear dbias", b, s.N, db, fd_loss, &c, 0.25, 1e-5, 1e-5, 300, FALSE);
      /* accumulation adds the same gradient to what was there */
      g_autofree float *dw2 = g_new0 (float, nw);
      g_autofree float *db2 = g_new0 (float, s.N);
      for (int64_t j = 0; j < nw; j++)
        dw2[j] = 1.0f;
      ref_linear_backward (NULL, dw2, db2, x, w, r, s.R, s.K, s.N, TRUE);
      for (int64_t j = 0; j < nw; j++)
        g_assert_cmpfloat_with_epsilon (dw2[j], dw[j] + 1.0f, 1e-5);
      for (int64_t j = 0; j < s.N; j++)
        g_assert_cmpfloat_with_epsilon (db2[j], db[j], 1e-6);
    }
}

/* ---- device against the reference ---- */

typedef struct
{
  DlDType dx, dw, dy, dgrad; /* x (and dx); w (and bias); y (and dy); dw and dbias */
  gboolean bias, accumulate;
  int lead; /* leading dimensions of x: 1 = [R, K], 2 = [2, R/2, K] when R is even */
} Case;

static void
shape_of (const Case *c, int64_t R, int64_t last, int *ndim, int64_t *shape)
{
  if (c->lead == 2 && R % 2 == 0)
    {
      *ndim = 3;
      shape[0] = 2;
      shape[1] = R / 2;
      shape[2] = last;
    }
  else
    {
      *ndim = 2;
      shape[0] = R;
      shape[1] = last;
    }
}

static void
tolerance (DlDType dt, int64_t terms, double *atol, double *rtol)
{
  /* fp32 sums of `terms` products in [-1, 1]; f16 storage adds half an ulp */
  *atol = 2e-6 * (1 + sqrt ((double)terms));
  *rtol = 1e-5;
  if (dt == DL_DTYPE_F16)
    {
      *atol += 1e-3;
      *rtol = 1e-3;
    }
}

static void
run_case (const Size *s, const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t R = s->R, K = s->K, N = s->N, nx = R * K, nw = N * K, ny = R * N;
  guint32 seed = (guint32)(R * 7919 + K * 31 + N);
  g_autofree float *hx = dl_test_random (nx, seed, -1, 1);
  g_autofree float *hw = dl_test_random (nw, seed + 1, -1, 1);
  g_autofree float *hb = dl_test_random (N, seed + 2, -1, 1);
  g_autofree float *hdy = dl_test_random (ny, seed + 3, -1, 1);
  g_autofree float *hdx = dl_test_random (nx, seed + 4, -1, 1);
  g_autofree float *hdw = dl_test_random (nw, seed + 5, -1, 1);
  g_autofree float *hdb = dl_test_random (N, seed + 6, -1, 1);
  ref_round_to_dtype (hx, nx, c->dx);
  ref_round_to_dtype (hw, nw, c->dw);
  ref_round_to_dtype (hb, N, c->dw);
  ref_round_to_dtype (hdy, ny, c->dy);
  ref_round_to_dtype (hdw, nw, c->dgrad);
  ref_round_to_dtype (hdb, N, c->dgrad);

  int xn, yn;
  int64_t xs[3], ys[3], ws[2] = { N, K };
  shape_of (c, R, K, &xn, xs);
  shape_of (c, R, N, &yn, ys);
  g_autoptr (DlTensor) x = dl_test_tensor ("x", c->dx, xn, xs, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", c->dw, 2, ws, hw);
  g_autoptr (DlTensor) b = c->bias ? dl_test_tensor ("bias", c->dw, 1, &N, hb) : NULL;
  g_autoptr (DlTensor) y = dl_test_tensor ("y", c->dy, yn, ys, NULL);
  g_autoptr (DlTensor) dy = dl_test_tensor ("dy", c->dy, yn, ys, hdy);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", c->dx, xn, xs, hdx);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", c->dgrad, 2, ws, hdw);
  g_autoptr (DlTensor) db = dl_test_tensor ("dbias", c->dgrad, 1, &N, hdb);
  g_assert_true (dl_op_linear (rec, y, x, w, b, &error));
  g_assert_true (dl_op_linear_backward (rec, dx, dw, c->bias ? db : NULL, x, w, dy, c->accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gy = dl_test_download (y);
  g_autofree float *gdx = dl_test_download (dx);
  g_autofree float *gdw = dl_test_download (dw);
  g_autofree float *gdb = dl_test_download (db);

  g_autofree float *ry = g_new (float, ny);
  ref_linear_forward (ry, hx, hw, c->bias ? hb : NULL, R, K, N);
  ref_linear_backward (hdx, hdw, c->bias ? hdb : NULL, hx, hw, hdy, R, K, N, c->accumulate);
  ref_round_to_dtype (ry, ny, c->dy);
  ref_round_to_dtype (hdx, nx, c->dx);
  ref_round_to_dtype (hdw, nw, c->dgrad);
  ref_round_to_dtype (hdb, N, c->dgrad);

  g_autofree char *what = g_strdup_printf (
    "linear R %" G_GINT64_FORMAT " K %" G_GINT64_FORMAT " N %" G_GINT64_FORMAT " x %s w %s y %s grads %s%s%s%s", R, K,
    N, dl_dtype_name (c->dx), dl_dtype_name (c->dw), dl_dtype_name (c->dy), dl_dtype_name (c->dgrad),
    c->bias ? " +bias" : "", c->accumulate ? " accumulate" : "", xn == 3 ? " 3-D" : "");
  g_autofree char *w0 = g_strdup_printf ("%s: y", what);
  g_autofree char *w1 = g_strdup_printf ("%s: dx", what);
  g_autofree char *w2 = g_strdup_printf ("%s: dw", what);
  g_autofree char *w3 = g_strdup_printf ("%s: dbias", what);
  double atol, rtol;
  tolerance (c->dy, K + 1, &atol, &rtol);
  dl_test_assert_close (w0, gy, ry, ny, atol, rtol);
  tolerance (c->dx, N, &atol, &rtol);
  dl_test_assert_close (w1, gdx, hdx, nx, atol, rtol);
  tolerance (c->dgrad, R + 1, &atol, &rtol);
  dl_test_assert_close (w2, gdw, hdw, nw, atol, rtol);
  /* without a bias, dbias must be untouched (it was not passed) */
  dl_test_assert_close (w3, gdb, hdb, N, atol, rtol);
}

static void
test_f32 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (int v = 0; v < 4; v++)
      {
        Case c = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, v & 1, v >> 1, 1 + (v & 1) };
        run_case (&sizes[i], &c);
      }
}

static void
test_f16_and_mixed (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      Case all16 = { DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16, TRUE, i % 2, 1 };
      run_case (&sizes[i], &all16);
      /* LoRA-style: f16 activations, f32 trainable weight and gradients */
      Case mixed = { DL_DTYPE_F16, DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_F32, TRUE, TRUE, 2 };
      run_case (&sizes[i], &mixed);
    }
}

/* Rows cut into blocks (as tensors past the device's binding limit are): later
 * blocks add their weight and bias gradients into the first's. */
static void
test_row_blocks (void)
{
  DlDeviceTuning t = *dl_device_get_tuning (dl_test_device ()), saved = t;
  t.linear_rows_per_block = 3; /* $DREAMLOOM_LINEAR_ROWS_PER_BLOCK=3 */
  dl_device_set_tuning (dl_test_device (), &t);
  for (guint i = 1; i < 4; i++)
    for (int v = 0; v < 2; v++)
      {
        Case c = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, TRUE, v, 1 + v };
        if (v)
          c.dx = c.dy = DL_DTYPE_F16;
        run_case (&sizes[i], &c);
      }
  dl_device_set_tuning (dl_test_device (), &saved);
}

static void
test_partial_gradients (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t R = 7, K = 13, N = 5;
  g_autofree float *hx = dl_test_random (R * K, 1, -1, 1);
  g_autofree float *hw = dl_test_random (N * K, 2, -1, 1);
  g_autofree float *hdy = dl_test_random (R * N, 3, -1, 1);
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 2, (int64_t[]){ R, K }, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", DL_DTYPE_F32, 2, (int64_t[]){ N, K }, hw);
  g_autoptr (DlTensor) dy = dl_test_tensor ("dy", DL_DTYPE_F32, 2, (int64_t[]){ R, N }, hdy);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", DL_DTYPE_F32, 2, (int64_t[]){ R, K }, NULL);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", DL_DTYPE_F32, 2, (int64_t[]){ N, K }, NULL);
  g_autoptr (DlTensor) db = dl_test_tensor ("dbias", DL_DTYPE_F32, 1, (int64_t[]){ N }, NULL);
  g_assert_true (dl_op_linear_backward (rec, dx, NULL, NULL, NULL, w, dy, FALSE, &error));
  g_assert_true (dl_op_linear_backward (rec, NULL, dw, NULL, x, NULL, dy, FALSE, &error));
  g_assert_true (dl_op_linear_backward (rec, NULL, NULL, db, NULL, NULL, dy, FALSE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gdx = dl_test_download (dx);
  g_autofree float *gdw = dl_test_download (dw);
  g_autofree float *gdb = dl_test_download (db);
  g_autofree float *rdx = g_new (float, R *K);
  g_autofree float *rdw = g_new (float, N *K);
  g_autofree float *rdb = g_new (float, N);
  ref_linear_backward (rdx, rdw, rdb, hx, hw, hdy, R, K, N, FALSE);
  dl_test_assert_close ("linear dx alone", gdx, rdx, R * K, 1e-5, 1e-5);
  dl_test_assert_close ("linear dw alone", gdw, rdw, N * K, 1e-5, 1e-5);
  dl_test_assert_close ("linear dbias alone", gdb, rdb, N, 1e-5, 1e-5);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 2, (int64_t[]){ 4, 6 }, NULL);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", DL_DTYPE_F32, 2, (int64_t[]){ 3, 6 }, NULL);
  g_autoptr (DlTensor) wt = dl_test_tensor ("w transposed", DL_DTYPE_F32, 2, (int64_t[]){ 6, 3 }, NULL);
  g_autoptr (DlTensor) w3 = dl_test_tensor ("w 3-D", DL_DTYPE_F32, 3, (int64_t[]){ 1, 3, 6 }, NULL);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", DL_DTYPE_F32, 2, (int64_t[]){ 4, 3 }, NULL);
  g_autoptr (DlTensor) y5 = dl_test_tensor ("y5", DL_DTYPE_F32, 2, (int64_t[]){ 5, 3 }, NULL);
  g_autoptr (DlTensor) b4 = dl_test_tensor ("bias4", DL_DTYPE_F32, 1, (int64_t[]){ 4 }, NULL);
  g_autoptr (DlTensor) b16 = dl_test_tensor ("bias16", DL_DTYPE_F16, 1, (int64_t[]){ 3 }, NULL);
  g_autoptr (DlTensor) xi = dl_test_tensor ("xi", DL_DTYPE_I32, 2, (int64_t[]){ 4, 6 }, NULL);
  dl_test_expect_error (dl_op_linear (rec, y, x, wt, NULL, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear (rec, y, x, w3, NULL, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear (rec, y5, x, w, NULL, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear (rec, y, x, w, b4, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear (rec, y, x, w, b16, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear (rec, y, xi, w, NULL, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_linear_backward (rec, x, NULL, NULL, NULL, NULL, y, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear_backward (rec, NULL, w, NULL, NULL, NULL, y, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear_backward (rec, x, NULL, NULL, NULL, w, y5, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear_backward (rec, NULL, wt, NULL, x, NULL, y, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_linear_backward (rec, NULL, NULL, b4, NULL, NULL, y, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_finish ();
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/linear/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/linear/f32", test_f32);
  dl_test_add ("/ops/linear/f16-and-mixed", test_f16_and_mixed);
  dl_test_add ("/ops/linear/row-blocks", test_row_blocks);
  dl_test_add ("/ops/linear/partial-gradients", test_partial_gradients);
  dl_test_add ("/ops/linear/errors", test_errors);
  return dl_test_run ();
}
