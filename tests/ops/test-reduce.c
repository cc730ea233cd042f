/* sum and mean over an axis or everything, against the double-precision reference. */
#include "dl-test-util.h"

#include <math.h>

typedef struct
{
  int ndim;
  int64_t shape[4];
} Shape;

static const Shape shapes[] = {
  { 1, { 1 } },
  { 1, { 7 } },
  { 1, { 129 } },
  { 1, { 1000 } },
  { 2, { 7, 129 } },
  { 3, { 3, 1000, 5 } },
  { 3, { 2, 9001, 1 } }, /* long rows: multi-pass in ROW mode */
  { 2, { 20000, 3 } },   /* long columns: multi-pass in COL mode */
  { 4, { 2, 33, 17, 5 } },
};

static void
check_axis (const Shape *s, int axis, DlDType in_dt, DlDType out_dt, gboolean mean)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 1, outer = 1, inner = 1;
  for (int i = 0; i < s->ndim; i++)
    n *= s->shape[i];
  for (int i = 0; i < axis; i++)
    outer *= s->shape[i];
  for (int i = axis + 1; i < s->ndim; i++)
    inner *= s->shape[i];
  int64_t R = s->shape[axis];
  g_autofree float *x = dl_test_random (n, (guint32)(n + axis), -1, 1);
  ref_round_to_dtype (x, n, in_dt);
  g_autoptr (DlTensor) src = dl_test_tensor ("src", in_dt, s->ndim, s->shape, x);
  int64_t out_n = outer * inner;
  g_autoptr (DlTensor) dst = dl_test_tensor ("dst", out_dt, 1, &out_n, NULL);
  g_assert_true ((mean ? dl_op_mean : dl_op_sum) (rec, dst, src, axis, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (dst);
  g_autofree float *want = g_new (float, out_n);
  ref_sum (want, x, outer, R, inner, mean ? 1.0 / R : 1.0);
  ref_round_to_dtype (want, out_n, out_dt);
  g_autofree char *ss = dl_shape_to_string (s->ndim, s->shape);
  g_autofree char *what = g_strdup_printf ("%s %s axis %d %s->%s", mean ? "mean" : "sum", ss, axis,
                                           dl_dtype_name (in_dt), dl_dtype_name (out_dt));
  /* fp32 accumulation of R terms of size <= 1: error grows like sqrt(R) ulps */
  double scale = mean ? 1.0 / R : 1.0;
  double atol = 1e-6 * (1 + sqrt ((double)R)) * scale * 8;
  dl_test_assert_close (what, got, want, out_n, atol, out_dt == DL_DTYPE_F16 ? 1e-3 : 1e-5);
}

static void
test_axes (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    for (int ax = 0; ax < shapes[i].ndim; ax++)
      {
        check_axis (&shapes[i], ax, DL_DTYPE_F32, DL_DTYPE_F32, FALSE);
        check_axis (&shapes[i], ax, DL_DTYPE_F32, DL_DTYPE_F32, TRUE);
      }
}

static void
test_f16 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i += 2)
    for (int ax = 0; ax < shapes[i].ndim; ax++)
      {
        check_axis (&shapes[i], ax, DL_DTYPE_F16, DL_DTYPE_F32, FALSE);
        check_axis (&shapes[i], ax, DL_DTYPE_F16, DL_DTYPE_F16, TRUE);
        check_axis (&shapes[i], ax, DL_DTYPE_F32, DL_DTYPE_F16, FALSE);
      }
}

static void
test_all (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  const int64_t sizes[] = { 1, 7, 4097, 1000000 };
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      int64_t n = sizes[i], one = 1;
      g_autofree float *x = dl_test_random (n, 99 + i, -1, 1);
      g_autoptr (DlTensor) src = dl_test_tensor ("src", DL_DTYPE_F32, 1, &n, x);
      g_autoptr (DlTensor) s = dl_test_tensor ("sum", DL_DTYPE_F32, 1, &one, NULL);
      g_autoptr (DlTensor) m = dl_test_tensor ("mean", DL_DTYPE_F32, 0, NULL, NULL);
      g_assert_true (dl_op_sum_all (rec, s, src, &error));
      g_assert_true (dl_op_mean_all (rec, m, src, &error));
      dl_test_finish ();
      g_autofree float *gs = dl_test_download (s);
      g_autofree float *gm = dl_test_download (m);
      float ws, wm;
      ref_sum (&ws, x, 1, n, 1, 1.0);
      ref_sum (&wm, x, 1, n, 1, 1.0 / n);
      double atol = 1e-6 * (1 + sqrt ((double)n)) * 8;
      dl_test_assert_close ("sum_all", gs, &ws, 1, atol, 1e-5);
      dl_test_assert_close ("mean_all", gm, &wm, 1, atol / n, 1e-5);
    }

  /* wrong destination size and out-of-range axis are errors */
  int64_t n = 10, two = 2;
  g_autoptr (DlTensor) src = dl_test_tensor ("src", DL_DTYPE_F32, 1, &n, NULL);
  g_autoptr (DlTensor) dst = dl_test_tensor ("dst", DL_DTYPE_F32, 1, &two, NULL);
  g_assert_false (dl_op_sum_all (rec, dst, src, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_sum (rec, dst, src, 3, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/reduce/axes", test_axes);
  dl_test_add ("/ops/reduce/f16", test_f16);
  dl_test_add ("/ops/reduce/all", test_all);
  return dl_test_run ();
}
