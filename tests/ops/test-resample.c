/* Nearest x2 upsampling and channel concat/split: the reference gradients against
 * finite differences, the shaders against the references in f32 and f16 over
 * awkward shapes (1x1, odd sizes, 1 and 129 channels, 2-D and 3-D tensors for the
 * channel ops), split with either output left out, and bad arguments. */
#include "dl-test-util.h"

#include "ref-resample.h"

#include <math.h>
#include <string.h>

/* ---- finite differences of the references ---- */

typedef struct
{
  float *a, *b, *r;
  int64_t P, H, W;          /* upsample: planes, H, W (b unused) */
  int64_t N, Ca, Cb, inner; /* concat when N > 0 */
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t n = c->N > 0 ? c->N * (c->Ca + c->Cb) * c->inner : c->P * 4 * c->H * c->W;
  g_autofree float *y = g_new (float, n);
  if (c->N > 0)
    ref_concat_channels (y, c->a, c->b, c->N, c->Ca, c->Cb, c->inner);
  else
    ref_upsample_nearest2x (y, c->a, c->P, c->H, c->W);
  double l = 0;
  for (int64_t i = 0; i < n; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  int64_t P = 3, H = 3, W = 5, n = P * H * W;
  g_autofree float *x = dl_test_random (n, 1, -1, 1);
  g_autofree float *r = dl_test_random (4 * n, 2, -1, 1);
  g_autofree float *dx = g_new (float, n);
  ref_upsample_nearest2x_backward (dx, r, P, H, W);
  FdCtx c = { .a = x, .r = r, .P = P, .H = H, .W = W };
  /* linear: central differences are exact up to rounding */
  dl_test_assert_fd ("upsample dx", x, n, dx, fd_loss, &c, 1e-2, 1e-5, 1e-5, n, FALSE);

  /* concat's gradient is the split of dy: a = r[:, :Ca], b = r[:, Ca:] */
  int64_t N = 2, Ca = 3, Cb = 2, inner = 4, Ct = Ca + Cb;
  g_autofree float *a = dl_test_random (N * Ca * inner, 3, -1, 1);
  g_autofree float *b = dl_test_random (N * Cb * inner, 4, -1, 1);
  g_autofree float *rc = dl_test_random (N * Ct * inner, 5, -1, 1);
  g_autofree float *da = g_new (float, N *Ca *inner);
  g_autofree float *db = g_new (float, N *Cb *inner);
  int64_t sa[2] = { N, Ca * inner }, sb[2] = { N, Cb * inner }, st[2] = { Ct * inner, 1 };
  ref_copy_strided (da, 2, sa, rc, 0, st);
  ref_copy_strided (db, 2, sb, rc, Ca * inner, st);
  FdCtx cc = { .a = a, .b = b, .r = rc, .N = N, .Ca = Ca, .Cb = Cb, .inner = inner };
  dl_test_assert_fd ("concat da", a, N * Ca * inner, da, fd_loss, &cc, 1e-2, 1e-5, 1e-5, 100, FALSE);
  dl_test_assert_fd ("concat db", b, N * Cb * inner, db, fd_loss, &cc, 1e-2, 1e-5, 1e-5, 100, FALSE);
}

/* ---- upsampling ---- */

static void
run_upsample (const int64_t *shape, DlDType dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t P = shape[0] * shape[1], H = shape[2], W = shape[3], n = P * H * W;
  int64_t big[4] = { shape[0], shape[1], 2 * H, 2 * W };
  guint32 seed = (guint32)(n * 3 + dt);
  g_autofree float *x = dl_test_random (n, seed, -1, 1);
  g_autofree float *dy = dl_test_random (4 * n, seed + 1, -1, 1);
  ref_round_to_dtype (x, n, dt);
  ref_round_to_dtype (dy, 4 * n, dt);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, 4, shape, x);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", dt, 4, big, NULL);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dy", dt, 4, big, dy);
  g_autoptr (DlTensor) tdx = dl_test_tensor ("dx", dt, 4, shape, NULL);
  g_assert_true (dl_op_upsample_nearest2x (rec, ty, tx, &error));
  g_assert_true (dl_op_upsample_nearest2x_backward (rec, tdx, tg, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  g_autofree float *dx = dl_test_download (tdx);
  g_autofree float *wy = g_new (float, 4 * n);
  g_autofree float *wdx = g_new (float, n);
  ref_upsample_nearest2x (wy, x, P, H, W);
  ref_upsample_nearest2x_backward (wdx, dy, P, H, W);
  ref_round_to_dtype (wdx, n, dt);
  g_autofree char *s = dl_shape_to_string (4, shape);
  g_autofree char *what = g_strdup_printf ("upsample %s %s", s, dl_dtype_name (dt));
  g_autofree char *bwhat = g_strconcat (what, " backward", NULL);
  /* the forward copies; the backward adds four values in f32 (one rounding of
   * |sum| <= 4 in f32, exact for f16 inputs, then the same f16 rounding) */
  dl_test_assert_close (what, y, wy, 4 * n, 0, 0);
  dl_test_assert_close (bwhat, dx, wdx, n, dt == DL_DTYPE_F16 ? 0 : 5e-7, dt == DL_DTYPE_F16 ? 0 : 1e-7);
}

static void
test_upsample (void)
{
  static const int64_t shapes[][4] = {
    { 1, 1, 1, 1 }, { 2, 7, 3, 5 }, { 1, 13, 8, 8 }, { 2, 3, 17, 1 }, { 1, 129, 2, 3 }, { 2, 32, 16, 16 },
  };
  for (int k = 0; k < 2; k++)
    for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
      run_upsample (shapes[i], k ? DL_DTYPE_F16 : DL_DTYPE_F32);
}

/* ---- concat / split ---- */

static void
run_concat (int ndim, const int64_t *sa, int64_t Cb, DlDType dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t sb[4], sy[4];
  memcpy (sb, sa, sizeof (int64_t) * ndim);
  memcpy (sy, sa, sizeof (int64_t) * ndim);
  sb[1] = Cb;
  sy[1] = sa[1] + Cb;
  int64_t N = sa[0], Ca = sa[1], inner = 1;
  for (int i = 2; i < ndim; i++)
    inner *= sa[i];
  int64_t na = N * Ca * inner, nb = N * Cb * inner, ny = na + nb;
  guint32 seed = (guint32)(ny + dt);
  g_autofree float *a = dl_test_random (na, seed, -1, 1);
  g_autofree float *b = dl_test_random (nb, seed + 1, -1, 1);
  ref_round_to_dtype (a, na, dt);
  ref_round_to_dtype (b, nb, dt);
  g_autoptr (DlTensor) ta = dl_test_tensor ("a", dt, ndim, sa, a);
  g_autoptr (DlTensor) tb = dl_test_tensor ("b", dt, ndim, sb, b);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", dt, ndim, sy, NULL);
  g_autoptr (DlTensor) ta2 = dl_test_tensor ("a2", dt, ndim, sa, NULL);
  g_autoptr (DlTensor) tb2 = dl_test_tensor ("b2", dt, ndim, sb, NULL);
  g_autoptr (DlTensor) ta3 = dl_test_tensor ("a3", dt, ndim, sa, NULL);
  g_autoptr (DlTensor) tb3 = dl_test_tensor ("b3", dt, ndim, sb, NULL);
  g_assert_true (dl_op_concat_channels (rec, ty, ta, tb, &error));
  g_assert_true (dl_op_split_channels (rec, ta2, tb2, ty, &error));
  /* either output alone; a's channel count then comes from y and b */
  g_assert_true (dl_op_split_channels (rec, ta3, NULL, ty, &error));
  g_assert_true (dl_op_split_channels (rec, NULL, tb3, ty, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  g_autofree float *wy = g_new (float, ny);
  ref_concat_channels (wy, a, b, N, Ca, Cb, inner);
  g_autofree char *s = dl_shape_to_string (ndim, sy);
  g_autofree char *what = g_strdup_printf ("concat %s (Ca %" G_GINT64_FORMAT ") %s", s, Ca, dl_dtype_name (dt));
  /* copies: exact */
  dl_test_assert_close (what, y, wy, ny, 0, 0);
  DlTensor *outs[4] = { ta2, tb2, ta3, tb3 };
  const float *wants[4] = { a, b, a, b };
  for (int k = 0; k < 4; k++)
    {
      g_autofree float *got = dl_test_download (outs[k]);
      g_autofree char *w = g_strdup_printf ("split %s -> %s", what, outs[k]->name);
      dl_test_assert_close (w, got, wants[k], k % 2 ? nb : na, 0, 0);
    }
}

static void
test_concat (void)
{
  static const int64_t s1[4] = { 2, 3, 4, 5 }, s2[4] = { 1, 1, 1, 1 }, s3[2] = { 3, 5 }, s4[3] = { 2, 4, 9 },
                       s5[4] = { 2, 32, 8, 8 }, s6[4] = { 1, 129, 3, 1 };
  for (int k = 0; k < 2; k++)
    {
      DlDType dt = k ? DL_DTYPE_F16 : DL_DTYPE_F32;
      run_concat (4, s1, 7, dt);
      run_concat (4, s2, 1, dt);
      run_concat (2, s3, 2, dt);
      run_concat (3, s4, 1, dt);
      run_concat (4, s5, 64, dt);
      run_concat (4, s6, 13, dt);
    }
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s[4] = { 1, 2, 3, 4 }, big[4] = { 1, 2, 6, 8 }, odd[4] = { 1, 2, 6, 7 }, s3[3] = { 1, 2, 12 };
  int64_t ya[4] = { 1, 5, 3, 4 }, yb[4] = { 1, 3, 3, 4 }, yw[4] = { 1, 5, 3, 5 }, y2[4] = { 2, 5, 3, 4 };
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, s, NULL);
  g_autoptr (DlTensor) xh = dl_test_tensor ("x-f16", DL_DTYPE_F16, 4, s, NULL);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", DL_DTYPE_F32, 4, big, NULL);
  g_autoptr (DlTensor) yo = dl_test_tensor ("y-odd", DL_DTYPE_F32, 4, odd, NULL);
  g_autoptr (DlTensor) x3 = dl_test_tensor ("x3", DL_DTYPE_F32, 3, s3, NULL);
  g_autoptr (DlTensor) cy = dl_test_tensor ("cat-y", DL_DTYPE_F32, 4, ya, NULL);
  g_autoptr (DlTensor) cb = dl_test_tensor ("cat-b", DL_DTYPE_F32, 4, yb, NULL);
  g_autoptr (DlTensor) cw = dl_test_tensor ("cat-wide", DL_DTYPE_F32, 4, yw, NULL);
  g_autoptr (DlTensor) c2 = dl_test_tensor ("cat-batch2", DL_DTYPE_F32, 4, y2, NULL);
  g_autoptr (DlTensor) xi = dl_test_tensor ("x-i32", DL_DTYPE_I32, 4, s, NULL);
  dl_test_expect_error (dl_op_upsample_nearest2x (rec, yo, x, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_upsample_nearest2x (rec, y, xh, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_upsample_nearest2x (rec, y, x3, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_upsample_nearest2x_backward (rec, x, yo, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_concat_channels (rec, cy, x, x, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* 2+2 != 5 */
  dl_test_expect_error (dl_op_concat_channels (rec, cw, x, cb, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_concat_channels (rec, c2, x, cb, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_concat_channels (rec, cy, xh, cb, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_concat_channels (rec, cy, x3, cb, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_concat_channels (rec, xi, xi, xi, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_split_channels (rec, x, x, cy, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_split_channels (rec, NULL, cw, cy, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_split_channels (rec, cy, NULL, x, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* 5 of 2 */
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/resample/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/resample/upsample", test_upsample);
  dl_test_add ("/ops/resample/concat-split", test_concat);
  dl_test_add ("/ops/resample/errors", test_errors);
  return dl_test_run ();
}
