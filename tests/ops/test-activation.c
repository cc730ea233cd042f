/* SiLU, GELU (erf), GELU (tanh), quick_gelu, the A1111 hypernetwork activations
 * (ReLU, LeakyReLU, ELU, Hardswish, Tanh, Sigmoid, Mish, Softsign) and GEGLU: the reference derivatives
 * against finite differences, the shader's erf against libm's over a dense
 * sweep, then the shaders against the references in f32 and f16, in place, over
 * awkward sizes and extreme inputs (no NaN from exp overflow), and bad arguments. */
#include "dl-test-util.h"

#include "ref-act.h"

#include <math.h>
#include <string.h>

static const char *const act_names[] = { "silu", "gelu",      "gelu_tanh", "quick_gelu", "relu", "leakyrelu",
                                         "elu",  "hardswish", "tanh",      "sigmoid",    "mish", "softsign" };
G_STATIC_ASSERT (G_N_ELEMENTS (act_names) == REF_ACT_COUNT && REF_ACT_COUNT == DL_ACT_COUNT);

/* Finite differences do not hold across a kink: points near one move away. */
static void
avoid_kinks (float *x, gsize n, int act)
{
  static const float kinks[] = { 0.0f, -3.0f, 3.0f };
  guint n_kinks = act == REF_ACT_RELU || act == REF_ACT_LEAKY_RELU ? 1 : act == REF_ACT_HARDSWISH ? 3 : 0;
  for (gsize i = 0; i < n; i++)
    for (guint k = 0; k < n_kinks; k++)
      if (fabsf (x[i] - kinks[k]) < 0.05f)
        x[i] = kinks[k] + (x[i] < kinks[k] ? -0.1f : 0.1f);
}

/* ---- finite differences of the references ---- */

typedef struct
{
  float *x, *r;
  gsize n;
  int act;
  int64_t rows, F; /* GEGLU when F > 0 */
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  gsize ny = c->F > 0 ? (gsize)(c->rows * c->F) : c->n;
  g_autofree float *y = g_new (float, ny);
  if (c->F > 0)
    ref_geglu_forward (y, c->x, c->rows, c->F);
  else
    ref_activation_forward (y, c->x, c->n, c->act);
  double l = 0;
  for (gsize i = 0; i < ny; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  gsize n = 60;
  for (int act = 0; act < REF_ACT_COUNT; act++)
    {
      g_autofree float *x = dl_test_random (n, 40 + act, -5, 5);
      avoid_kinks (x, n, act);
      g_autofree float *r = dl_test_random (n, 50 + act, -1, 1);
      g_autofree float *dx = g_new (float, n);
      ref_activation_backward (dx, x, r, n, act);
      FdCtx c = { x, r, n, act, 0, 0 };
      /* one term per element: noise ~6e-8 / 2e-2 */
      dl_test_assert_fd (act_names[act], x, n, dx, fd_loss, &c, 1e-2, 1e-5, 1e-4, n, TRUE);
    }
  int64_t rows = 5, F = 7;
  g_autofree float *x = dl_test_random (rows * 2 * F, 60, -3, 3);
  g_autofree float *r = dl_test_random (rows * F, 61, -1, 1);
  g_autofree float *dx = g_new (float, rows * 2 * F);
  ref_geglu_backward (dx, x, r, rows, F);
  FdCtx c = { x, r, (gsize)(rows * 2 * F), 0, rows, F };
  dl_test_assert_fd ("geglu", x, rows * 2 * F, dx, fd_loss, &c, 1e-2, 1e-5, 1e-4, 200, TRUE);
}

/* ---- erf through the GELU shader ---- */

static void
test_erf_accuracy (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  /* [-9, 9] in steps of 2^-10, which lands on the |x/√2| = 1 seam of dl_erf's two
   * branches from both sides, plus a few tiny magnitudes */
  int64_t n = 2 * 9 * 1024 + 1 + 6;
  g_autofree float *x = g_new (float, n);
  for (int64_t i = 0; i <= 2 * 9 * 1024; i++)
    x[i] = (float)(i - 9 * 1024) / 1024.0f;
  const float tiny[6] = { 1e-30f, -1e-20f, 1e-7f, -3e-5f, 1.4142135f, -1.4142137f };
  for (int i = 0; i < 6; i++)
    x[2 * 9 * 1024 + 1 + i] = tiny[i];
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", DL_DTYPE_F32, 1, &n, x);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", DL_DTYPE_F32, 1, &n, NULL);
  g_assert_true (dl_op_activation (rec, ty, tx, DL_ACT_GELU, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  /* erf(x/√2) = 2 gelu(x)/x - 1; the f32 rounding of gelu contributes ~1.2e-7 */
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < n; i++)
    {
      if (x[i] == 0)
        continue;
      double implied = 2.0 * y[i] / x[i] - 1.0;
      double err = fabs (implied - erf ((double)x[i] * 0.70710678118654752440));
      if (err > worst)
        {
          worst = err;
          at = i;
        }
    }
  g_test_message ("worst implied erf error %.3g at x = %.9g", worst, (double)x[at]);
  if (worst > 1e-6)
    {
      g_test_message ("erf error %.3g > 1e-6 at x = %.9g", worst, (double)x[at]);
      g_test_fail ();
    }
}

/* ---- pointwise activations on the device ---- */

static void
run_act (int act, int64_t n, DlDType dt, gboolean in_place)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  guint32 seed = (guint32)(n * 4 + act + dt * 1000);
  g_autofree float *x = dl_test_random (n, seed, -10, 10);
  g_autofree float *dy = dl_test_random (n, seed + 1, -1, 1);
  /* extremes: exp(-x) overflows for x < -88, the tanh argument for |x| > ~20; the Hardswish kinks */
  const float special[] = {
    0.0f, 1e-8f, -1e-8f, 30.0f, -30.0f, 88.5f, -88.5f, 100.0f, -100.0f, 1e4f, -1e4f, -3.0f, 3.0f
  };
  for (guint i = 0; i < G_N_ELEMENTS (special) && (int64_t)(3 * i) < n; i++)
    x[3 * i] = special[i];
  ref_round_to_dtype (x, n, dt);
  ref_round_to_dtype (dy, n, dt);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, 1, &n, x);
  g_autoptr (DlTensor) ty = in_place ? dl_tensor_ref (tx) : dl_test_tensor ("y", dt, 1, &n, NULL);
  g_autoptr (DlTensor) tx2 = dl_test_tensor ("x (backward)", dt, 1, &n, x);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dy", dt, 1, &n, dy);
  g_autoptr (DlTensor) tdx = in_place ? dl_tensor_ref (tg) : dl_test_tensor ("dx", dt, 1, &n, NULL);
  g_assert_true (dl_op_activation (rec, ty, tx, (DlActivation)act, &error));
  g_assert_true (dl_op_activation_backward (rec, tdx, tx2, tg, (DlActivation)act, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  g_autofree float *dx = dl_test_download (tdx);
  g_autofree float *wy = g_new (float, n);
  g_autofree float *wdx = g_new (float, n);
  ref_activation_forward (wy, x, n, act);
  ref_activation_backward (wdx, x, dy, n, act);
  ref_round_to_dtype (wy, n, dt);
  ref_round_to_dtype (wdx, n, dt);
  g_autofree char *what = g_strdup_printf ("%s n=%" G_GINT64_FORMAT " %s%s", act_names[act], n, dl_dtype_name (dt),
                                           in_place ? " in place" : "");
  g_autofree char *bwhat = g_strconcat (what, " backward", NULL);
  /* f32: the shader's erfc/tanh/exp are good to a few ulp relative, also in the
   * tails (erfc, 1 + tanh and sigmoid are formed without cancellation); the
   * atol covers ~1e-7 of rounding where a result crosses zero.  f16: one f16
   * rounding (2^-11 relative), which the shader's f32 error can tip to the
   * neighbouring value, and subnormal outputs. */
  gboolean f16 = dt == DL_DTYPE_F16;
  dl_test_assert_close (what, y, wy, n, f16 ? 1e-6 : 5e-7, f16 ? 1.5e-3 : 4e-6);
  dl_test_assert_close (bwhat, dx, wdx, n, f16 ? 1e-6 : 3e-7, f16 ? 1.5e-3 : 4e-6);
}

static void
test_act_f32 (void)
{
  static const int64_t sizes[] = { 1, 7, 129, 10007 };
  for (int act = 0; act < DL_ACT_COUNT; act++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      run_act (act, sizes[s], DL_DTYPE_F32, s == 2);
}

static void
test_act_f16 (void)
{
  static const int64_t sizes[] = { 7, 129, 10007 };
  for (int act = 0; act < DL_ACT_COUNT; act++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      run_act (act, sizes[s], DL_DTYPE_F16, s == 0);
}

/* ---- GEGLU ---- */

static void
run_geglu (int ndim, const int64_t *shape, DlDType dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t F = shape[ndim - 1] / 2, rows = 1;
  for (int i = 0; i < ndim - 1; i++)
    rows *= shape[i];
  int64_t nx = rows * 2 * F, ny = rows * F;
  int64_t yshape[4];
  memcpy (yshape, shape, sizeof (int64_t) * ndim);
  yshape[ndim - 1] = F;
  guint32 seed = (guint32)(nx + dt * 77);
  g_autofree float *x = dl_test_random (nx, seed, -4, 4);
  g_autofree float *dy = dl_test_random (ny, seed + 1, -1, 1);
  ref_round_to_dtype (x, nx, dt);
  ref_round_to_dtype (dy, ny, dt);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, ndim, shape, x);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", dt, ndim, yshape, NULL);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dy", dt, ndim, yshape, dy);
  g_autoptr (DlTensor) tdx = dl_test_tensor ("dx", dt, ndim, shape, NULL);
  g_assert_true (dl_op_geglu (rec, ty, tx, &error));
  g_assert_true (dl_op_geglu_backward (rec, tdx, tx, tg, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *y = dl_test_download (ty);
  g_autofree float *dx = dl_test_download (tdx);
  g_autofree float *wy = g_new (float, ny);
  g_autofree float *wdx = g_new (float, nx);
  ref_geglu_forward (wy, x, rows, F);
  ref_geglu_backward (wdx, x, dy, rows, F);
  ref_round_to_dtype (wy, ny, dt);
  ref_round_to_dtype (wdx, nx, dt);
  g_autofree char *s = dl_shape_to_string (ndim, shape);
  g_autofree char *what = g_strdup_printf ("geglu %s %s", s, dl_dtype_name (dt));
  g_autofree char *bwhat = g_strconcat (what, " backward", NULL);
  /* as GELU above, times |hidden| <= 4 */
  gboolean f16 = dt == DL_DTYPE_F16;
  dl_test_assert_close (what, y, wy, ny, f16 ? 4e-6 : 1e-6, f16 ? 1.5e-3 : 4e-6);
  dl_test_assert_close (bwhat, dx, wdx, nx, f16 ? 4e-6 : 1e-6, f16 ? 1.5e-3 : 4e-6);
}

static void
test_geglu (void)
{
  static const int64_t s1[2] = { 1, 2 }, s2[2] = { 7, 26 }, s3[2] = { 129, 14 }, s4[2] = { 33, 2 * 640 },
                       s5[3] = { 2, 77, 2 * 40 };
  for (int k = 0; k < 2; k++)
    {
      DlDType dt = k ? DL_DTYPE_F16 : DL_DTYPE_F32;
      run_geglu (2, s1, dt);
      run_geglu (2, s2, dt);
      run_geglu (2, s3, dt);
      run_geglu (2, s4, dt);
      run_geglu (3, s5, dt);
    }
}

/* ---- tensors larger than one binding ---- */

/* On a recorder whose bindings may span only 768 bytes, the activations and
 * GEGLU run in ranges of rows: bit for bit the result of one dispatch. */
static void
run_split (DlDType dt)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlRecorder) split = dl_recorder_new (dl_test_device (), &error);
  g_assert_no_error (error);
  dl_recorder_set_max_binding_range (split, 768);
  DlRecorder *whole = dl_test_recorder ();
  int64_t n = 1001, xs[2] = { 37, 2 * 12 }, hs[2] = { 37, 12 }, nx = 37 * 24, nh = 37 * 12;
  /* enough values for the largest tensor made from them (n > nx) */
  g_autofree float *x = dl_test_random (MAX (n, nx), 5, -4, 4);
  g_autofree float *g = dl_test_random (MAX (n, nx), 6, -1, 1);
  g_autoptr (DlTensor) ta = dl_test_tensor ("a", dt, 1, &n, x);
  g_autoptr (DlTensor) tga = dl_test_tensor ("da", dt, 1, &n, g);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, 2, xs, x);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dy", dt, 2, hs, g);
  DlTensor *out[2][4];
  DlRecorder *recs[2] = { whole, split };
  for (int k = 0; k < 2; k++)
    {
      out[k][0] = dl_test_tensor ("y", dt, 1, &n, NULL);
      out[k][1] = dl_test_tensor ("dx", dt, 1, &n, NULL);
      out[k][2] = dl_test_tensor ("geglu y", dt, 2, hs, NULL);
      out[k][3] = dl_test_tensor ("geglu dx", dt, 2, xs, NULL);
      guint64 before = dl_recorder_get_dispatch_count (recs[k]);
      g_assert_true (dl_op_activation (recs[k], out[k][0], ta, DL_ACT_GELU, &error));
      g_assert_true (dl_op_activation_backward (recs[k], out[k][1], ta, tga, DL_ACT_SILU, &error));
      g_assert_true (dl_op_geglu (recs[k], out[k][2], tx, &error));
      g_assert_true (dl_op_geglu_backward (recs[k], out[k][3], tx, tg, &error));
      g_assert_no_error (error);
      g_assert_true (dl_recorder_finish (recs[k], &error));
      g_assert_no_error (error);
      guint64 dispatches = dl_recorder_get_dispatch_count (recs[k]) - before;
      /* 512 bytes of a binding's 768 after alignment slack: ranges of 128 f32 or
       * 256 f16 elements, i.e. of 5 or 10 GEGLU rows of 2 * 12 */
      int64_t elems = 512 / (int64_t)dl_dtype_size (dt), rows = elems / 24;
      int64_t ranges = 2 * ((n + elems - 1) / elems) + 2 * ((37 + rows - 1) / rows);
      g_assert_cmpuint (dispatches, ==, k ? (guint64)ranges : 4);
    }
  int64_t sizes[4] = { n, n, nh, nx };
  for (int i = 0; i < 4; i++)
    {
      g_autofree float *a = dl_test_download (out[0][i]);
      g_autofree float *b = dl_test_download (out[1][i]);
      g_assert_cmpmem (b, sizes[i] * sizeof (float), a, sizes[i] * sizeof (float));
      dl_tensor_unref (out[0][i]);
      dl_tensor_unref (out[1][i]);
    }
}

static void
test_split (void)
{
  run_split (DL_DTYPE_F32);
  run_split (DL_DTYPE_F16);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s6 = 6, s5 = 5, s3 = 3, s23[2] = { 2, 3 }, s26[2] = { 2, 6 }, s36[2] = { 3, 6 }, s27[2] = { 2, 7 };
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 1, &s6, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 1, &s5, NULL);
  g_autoptr (DlTensor) h = dl_test_tensor ("h", DL_DTYPE_F16, 1, &s6, NULL);
  g_autoptr (DlTensor) i = dl_test_tensor ("i", DL_DTYPE_I32, 1, &s6, NULL);
  g_autoptr (DlTensor) g3 = dl_test_tensor ("g3", DL_DTYPE_F32, 1, &s3, NULL);
  g_autoptr (DlTensor) x26 = dl_test_tensor ("x26", DL_DTYPE_F32, 2, s26, NULL);
  g_autoptr (DlTensor) y23 = dl_test_tensor ("y23", DL_DTYPE_F32, 2, s23, NULL);
  g_autoptr (DlTensor) x36 = dl_test_tensor ("x36", DL_DTYPE_F32, 2, s36, NULL);
  g_autoptr (DlTensor) x27 = dl_test_tensor ("x27", DL_DTYPE_F32, 2, s27, NULL);
  g_autoptr (DlTensor) h23 = dl_test_tensor ("h23", DL_DTYPE_F16, 2, s23, NULL);
  dl_test_expect_error (dl_op_activation (rec, b, a, DL_ACT_SILU, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_activation (rec, h, a, DL_ACT_GELU, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_activation (rec, i, i, DL_ACT_GELU, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_activation (rec, a, a, (DlActivation)17, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_activation_backward (rec, a, a, b, DL_ACT_SILU, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_activation_backward (rec, h, a, a, DL_ACT_SILU, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_geglu (rec, g3, b, &error), &error, DL_ERROR_INVALID_ARGUMENT); /* odd width */
  dl_test_expect_error (dl_op_geglu (rec, x36, x26, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_geglu (rec, y23, x36, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_geglu (rec, y23, x27, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_geglu (rec, h23, x26, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_geglu_backward (rec, x36, x26, y23, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_geglu_backward (rec, x26, x26, x26, &error), &error, DL_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/activation/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/activation/erf-accuracy", test_erf_accuracy);
  dl_test_add ("/ops/activation/f32", test_act_f32);
  dl_test_add ("/ops/activation/f16", test_act_f16);
  dl_test_add ("/ops/activation/geglu", test_geglu);
  dl_test_add ("/ops/activation/split", test_split);
  dl_test_add ("/ops/activation/errors", test_errors);
  return dl_test_run ();
}
