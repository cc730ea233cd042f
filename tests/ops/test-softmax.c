/* softmax over the last dimension: the reference backward against finite
 * differences, then the shaders against the reference in f32 and f16 over
 * awkward row lengths, scales, large magnitudes and fully masked rows. */
#include "dl-test-util.h"

#include "ref-softmax.h"

#include <math.h>

typedef struct
{
  float *x, *r;
  int64_t rows, n;
  float scale;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  g_autofree float *y = g_new (float, c->rows * c->n);
  ref_softmax_forward (y, c->x, c->rows, c->n, c->scale);
  double l = 0;
  for (int64_t i = 0; i < c->rows * c->n; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  static const int64_t shapes[][2] = { { 1, 1 }, { 3, 7 }, { 2, 33 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int k = 0; k < 2; k++)
      {
        int64_t rows = shapes[s][0], n = shapes[s][1], tot = rows * n;
        float scale = k ? 0.125f : 1.0f;
        g_autofree float *x = dl_test_random (tot, 10 + s, -3, 3);
        g_autofree float *r = dl_test_random (tot, 20 + s, -1, 1);
        g_autofree float *y = g_new (float, tot);
        g_autofree float *dx = g_new (float, tot);
        ref_softmax_forward (y, x, rows, n, scale);
        ref_softmax_backward (dx, y, r, rows, n, scale);
        FdCtx c = { x, r, rows, n, scale };
        /* the reference stores y in float: ~1e-7 noise in L, over 2 eps = 0.1 */
        dl_test_assert_fd ("softmax dx", x, tot, dx, fd_loss, &c, 5e-2, 5e-6, 1e-4, 200, TRUE);
      }
}

typedef struct
{
  int64_t rows, n;
  float lo, hi, scale;
  gboolean masked; /* some rows entirely -inf, others partly */
} Case;

static void
run_case (const Case *c, DlDType dt, gboolean in_place)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t tot = c->rows * c->n;
  guint32 seed = (guint32)(c->rows * 131 + c->n);
  g_autofree float *x = dl_test_random (tot, seed, c->lo, c->hi);
  g_autofree float *dy = dl_test_random (tot, seed + 1, -1, 1);
  if (c->masked)
    for (int64_t r = 0; r < c->rows; r++)
      for (int64_t i = 0; i < c->n; i++)
        if (r % 3 == 0 || i > r) /* a causal-looking mask, plus whole rows */
          x[r * c->n + i] = -INFINITY;
  ref_round_to_dtype (x, tot, dt);
  ref_round_to_dtype (dy, tot, dt);
  int64_t shape[2] = { c->rows, c->n };
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, 2, shape, x);
  g_autoptr (DlTensor) ty = in_place ? dl_tensor_ref (tx) : dl_test_tensor ("y", dt, 2, shape, NULL);
  g_assert_true (dl_op_softmax (rec, ty, tx, c->scale, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  g_autofree float *want = g_new (float, tot);
  ref_softmax_forward (want, x, c->rows, c->n, c->scale);
  g_autofree float *want_r = g_memdup2 (want, tot * sizeof (float));
  ref_round_to_dtype (want_r, tot, dt);
  g_autofree char *what =
    g_strdup_printf ("softmax %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %s scale %g%s%s", c->rows, c->n,
                     dl_dtype_name (dt), c->scale, c->masked ? " masked" : "", in_place ? " in place" : "");
  /* f32: exp2 in the shader is a few ulp; f16: one rounding of a value <= 1 */
  gboolean f16 = dt == DL_DTYPE_F16;
  dl_test_assert_close (what, y, want_r, tot, f16 ? 1e-5 : 1e-7, f16 ? 1e-3 : 1e-5);

  /* backward from the device's own y (as training does), in place on dy when asked */
  g_autoptr (DlTensor) tg = dl_test_tensor ("dy", dt, 2, shape, dy);
  g_autoptr (DlTensor) tdx = in_place ? dl_tensor_ref (tg) : dl_test_tensor ("dx", dt, 2, shape, NULL);
  g_assert_true (dl_op_softmax_backward (rec, tdx, ty, tg, c->scale, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *dx = dl_test_download (tdx);
  g_autofree float *wdx = g_new (float, tot);
  ref_softmax_backward (wdx, y, dy, c->rows, c->n, c->scale);
  ref_round_to_dtype (wdx, tot, dt);
  g_autofree char *bwhat = g_strconcat (what, " backward", NULL);
  /* the row dot product is an f32 sum of n terms of magnitude <= max|dy| */
  double atol = (f16 ? 2e-4 : 2e-7) * c->scale * (1 + sqrt ((double)c->n) / 8);
  dl_test_assert_close (bwhat, dx, wdx, tot, atol, f16 ? 2e-3 : 2e-5);
}

static const Case cases[] = {
  { 1, 1, -1, 1, 1, FALSE },     { 7, 129, -4, 4, 1, FALSE },     { 5, 77, -4, 4, 0.125f, FALSE },
  { 3, 1000, -1, 1, 1, FALSE },  { 2, 4099, -8, 8, 0.5f, FALSE }, { 4, 33, -60, 60, 1, FALSE },
  { 9, 300, -30, 30, 3, FALSE }, { 12, 40, -2, 2, 1, TRUE },      { 6, 700, -2, 2, 0.125f, TRUE },
  { 65, 3, -1, 1, 1, FALSE },
};

static void
test_f32 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], DL_DTYPE_F32, FALSE);
  run_case (&cases[1], DL_DTYPE_F32, TRUE);
  run_case (&cases[7], DL_DTYPE_F32, TRUE);
}

static void
test_f16 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], DL_DTYPE_F16, FALSE);
  run_case (&cases[4], DL_DTYPE_F16, TRUE);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s1[2] = { 2, 3 }, s2[2] = { 3, 2 };
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 2, s1, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 2, s2, NULL);
  g_autoptr (DlTensor) h = dl_test_tensor ("h", DL_DTYPE_F16, 2, s1, NULL);
  g_autoptr (DlTensor) i = dl_test_tensor ("i", DL_DTYPE_I32, 2, s1, NULL);
  g_assert_false (dl_op_softmax (rec, b, a, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_softmax (rec, h, a, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (dl_op_softmax (rec, i, i, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (dl_op_softmax_backward (rec, a, a, b, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/softmax/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/softmax/f32", test_f32);
  dl_test_add ("/ops/softmax/f16", test_f16);
  dl_test_add ("/ops/softmax/errors", test_errors);
  return dl_test_run ();
}
