/* fill, copy/cast, strided copy and permute, broadcasting binary ops, scaling:
 * shader against the CPU reference on awkward shapes, in f32 and f16. */
#include "dl-test-util.h"

#include "dl-half.h"

#include <math.h>

static const DlDType float_types[] = { DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_BF16 };

static void
test_fill (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  const int64_t sizes[] = { 1, 7, 129, 1000, 70001 };
  for (int dt = 0; dt < DL_N_DTYPES; dt++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      {
        g_autoptr (DlTensor) t = dl_test_tensor ("fill", (DlDType)dt, 1, &sizes[s], NULL);
        double v = dt == DL_DTYPE_I32 ? -42 : 0.1;
        g_assert_true (dl_op_fill (rec, t, v, &error));
        dl_test_finish ();
        g_autofree float *got = dl_test_download (t);
        float want1 = (float)v;
        ref_round_to_dtype (&want1, 1, (DlDType)dt);
        for (int64_t i = 0; i < sizes[s]; i++)
          g_assert_cmpfloat (got[i], ==, want1);
      }
}

static void
test_copy_cast (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  const int64_t n = 1031;
  g_autofree float *x = dl_test_random (n, 3, -70000, 70000); /* past f16's range on purpose */
  for (int i = 0; i < 20; i++)
    x[i] = ldexpf (1.0f + i / 32.0f, -20 - i); /* f16 subnormals and below */
  for (guint s = 0; s < G_N_ELEMENTS (float_types); s++)
    for (guint d = 0; d < G_N_ELEMENTS (float_types); d++)
      {
        DlDType st = float_types[s], dt = float_types[d];
        g_autoptr (DlTensor) src = dl_test_tensor ("src", st, 1, &n, x);
        int64_t shape2[2] = { 1, n };
        g_autoptr (DlTensor) dst = dl_test_tensor ("dst", dt, 2, shape2, NULL);
        g_assert_true (dl_op_copy (rec, dst, src, &error));
        dl_test_finish ();
        g_autofree float *got = dl_test_download (dst);
        g_autofree float *want = g_memdup2 (x, n * sizeof (float));
        ref_round_to_dtype (want, n, st);
        ref_round_to_dtype (want, n, dt);
        g_autofree char *what = g_strdup_printf ("copy %s -> %s", dl_dtype_name (st), dl_dtype_name (dt));
        /* f16 subnormals may flush on devices without denorm preservation */
        double atol = (st == DL_DTYPE_F16 || dt == DL_DTYPE_F16) ? ldexp (1, -14) : 0;
        dl_test_assert_close (what, got, want, n, atol, 0);
      }

  /* integers: i32 -> i32 and i32 -> f32 */
  g_autofree float *xi = dl_test_random (n, 4, -1e6, 1e6);
  ref_round_to_dtype (xi, n, DL_DTYPE_I32);
  g_autoptr (DlTensor) si = dl_test_tensor ("ints", DL_DTYPE_I32, 1, &n, xi);
  g_autoptr (DlTensor) di = dl_test_tensor ("ints2", DL_DTYPE_I32, 1, &n, NULL);
  g_autoptr (DlTensor) df = dl_test_tensor ("floats", DL_DTYPE_F32, 1, &n, NULL);
  g_assert_true (dl_op_copy (rec, di, si, &error));
  g_assert_true (dl_op_copy (rec, df, si, &error));
  dl_test_finish ();
  g_autofree float *gi = dl_test_download (di);
  g_autofree float *gf = dl_test_download (df);
  dl_test_assert_close ("copy i32 -> i32", gi, xi, n, 0, 0);
  dl_test_assert_close ("copy i32 -> f32", gf, xi, n, 0, 0);

  g_autoptr (DlTensor) wrong = dl_test_tensor ("wrong", DL_DTYPE_F32, 1, (int64_t[]){ 5 }, NULL);
  g_assert_false (dl_op_copy (rec, wrong, df, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_copy (rec, si, df, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
}

static void
test_permute (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  /* NCHW <-> tokens and heads <-> channels, with odd sizes */
  const int64_t shape[4] = { 2, 7, 5, 3 };
  const int perms[][4] = { { 0, 2, 3, 1 }, { 0, 3, 1, 2 }, { 3, 2, 1, 0 }, { 1, 0, 2, 3 }, { 0, 1, 2, 3 } };
  const gsize n = 2 * 7 * 5 * 3;
  g_autofree float *x = dl_test_random (n, 5, -1, 1);
  for (guint pi = 0; pi < G_N_ELEMENTS (perms); pi++)
    for (guint t = 0; t < 2; t++)
      {
        DlDType dt = t ? DL_DTYPE_F16 : DL_DTYPE_F32;
        const int *perm = perms[pi];
        int64_t oshape[4], strides[4], contig[4] = { 7 * 5 * 3, 5 * 3, 3, 1 };
        for (int i = 0; i < 4; i++)
          {
            oshape[i] = shape[perm[i]];
            strides[i] = contig[perm[i]];
          }
        g_autoptr (DlTensor) src = dl_test_tensor ("src", dt, 4, shape, x);
        g_autoptr (DlTensor) dst = dl_test_tensor ("dst", dt, 4, oshape, NULL);
        g_assert_true (dl_op_permute (rec, dst, src, perm, &error));
        dl_test_finish ();
        g_autofree float *got = dl_test_download (dst);
        g_autofree float *xr = g_memdup2 (x, n * sizeof (float));
        ref_round_to_dtype (xr, n, dt);
        g_autofree float *want = g_new (float, n);
        ref_copy_strided (want, 4, oshape, xr, 0, strides);
        g_autofree char *what =
          g_strdup_printf ("permute %d%d%d%d %s", perm[0], perm[1], perm[2], perm[3], dl_dtype_name (dt));
        dl_test_assert_close (what, got, want, n, 0, 0);
      }

  /* a strided slice: every other column of rows 1..3 of a [5, 8] matrix, cast to f16 */
  g_autofree float *m = dl_test_random (40, 6, -1, 1);
  g_autoptr (DlTensor) src = dl_test_tensor ("m", DL_DTYPE_F32, 2, (int64_t[]){ 5, 8 }, m);
  int64_t sshape[2] = { 3, 4 }, sst[2] = { 8, 2 };
  g_autoptr (DlTensor) dst = dl_test_tensor ("slice", DL_DTYPE_F16, 2, sshape, NULL);
  g_assert_true (dl_op_copy_strided (rec, dst, src, 8, sst, &error));
  dl_test_finish ();
  g_autofree float *got = dl_test_download (dst);
  float want[12];
  ref_copy_strided (want, 2, sshape, m, 8, sst);
  ref_round_to_dtype (want, 12, DL_DTYPE_F16);
  dl_test_assert_close ("strided slice", got, want, 12, 0, 0);

  int64_t too_far[2] = { 8, 9 }; /* reaches element 8 + 2*8 + 3*9 = 51 of 40 */
  g_assert_false (dl_op_copy_strided (rec, dst, src, 8, too_far, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  int bad_perm[4] = { 0, 0, 1, 2 };
  g_autoptr (DlTensor) p4 = dl_test_tensor ("p4", DL_DTYPE_F32, 4, shape, NULL);
  g_assert_false (dl_op_permute (rec, p4, p4, bad_perm, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

typedef struct
{
  int nd, na, nb;
  int64_t d[4], a[4], b[4];
} BinCase;

static const BinCase bin_cases[] = {
  { 1, 1, 1, { 1 }, { 1 }, { 1 } },
  { 1, 1, 1, { 1000 }, { 1000 }, { 1000 } },
  { 2, 2, 1, { 7, 129 }, { 7, 129 }, { 129 } },                /* bias over rows */
  { 4, 4, 4, { 2, 5, 3, 3 }, { 2, 5, 3, 3 }, { 1, 5, 1, 1 } }, /* per-channel NCHW */
  { 4, 4, 2, { 2, 3, 7, 5 }, { 2, 1, 7, 5 }, { 7, 1 } },       /* both sides broadcast */
  { 3, 3, 3, { 4, 33, 17 }, { 4, 1, 17 }, { 1, 33, 1 } },      /* outer product shape */
  { 2, 0, 2, { 3, 7 }, { 0 }, { 3, 7 } },                      /* scalar a */
};

static void
test_binary (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  for (guint c = 0; c < G_N_ELEMENTS (bin_cases); c++)
    for (int op = DL_BINARY_ADD; op <= DL_BINARY_DIV; op++)
      for (int t = 0; t < 2; t++)
        {
          const BinCase *bc = &bin_cases[c];
          DlDType dt = t ? DL_DTYPE_F16 : DL_DTYPE_F32;
          int64_t nd = 1, na = 1, nb = 1;
          for (int i = 0; i < bc->nd; i++)
            nd *= bc->d[i];
          for (int i = 0; i < bc->na; i++)
            na *= bc->a[i];
          for (int i = 0; i < bc->nb; i++)
            nb *= bc->b[i];
          g_autofree float *xa = dl_test_random (na, 10 + c, -2, 2);
          g_autofree float *xb = dl_test_random (nb, 20 + c, 0.5, 2); /* away from 0 for div */
          ref_round_to_dtype (xa, na, dt);
          ref_round_to_dtype (xb, nb, dt);
          g_autoptr (DlTensor) a = dl_test_tensor ("a", dt, bc->na, bc->a, xa);
          g_autoptr (DlTensor) b = dl_test_tensor ("b", dt, bc->nb, bc->b, xb);
          g_autoptr (DlTensor) d = dl_test_tensor ("d", dt, bc->nd, bc->d, NULL);
          g_assert_true (dl_op_binary (rec, (DlBinaryOp)op, d, a, b, &error));
          g_assert_no_error (error);
          dl_test_finish ();
          g_autofree float *got = dl_test_download (d);
          g_autofree float *want = g_new (float, nd);
          ref_binary (op, want, bc->nd, bc->d, xa, bc->na, bc->a, xb, bc->nb, bc->b);
          ref_round_to_dtype (want, nd, dt);
          g_autofree char *what = g_strdup_printf ("binary op %d case %u %s", op, c, dl_dtype_name (dt));
          /* f32: correctly rounded ops; f16: one rounding of the f32 result may differ by an ulp */
          dl_test_assert_close (what, got, want, nd, 0, t ? 1e-3 : 4e-7); /* Vulkan allows 2.5 ulp for division */
        }

  /* in place: x = x + y */
  g_autofree float *xa = dl_test_random (100, 1, -1, 1);
  g_autofree float *xb = dl_test_random (100, 2, -1, 1);
  int64_t n = 100;
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 1, &n, xa);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 1, &n, xb);
  g_assert_true (dl_op_add (rec, a, a, b, &error));
  dl_test_finish ();
  g_autofree float *got = dl_test_download (a);
  for (int i = 0; i < 100; i++)
    g_assert_cmpfloat (got[i], ==, xa[i] + xb[i]);

  /* shapes that do not broadcast */
  g_autoptr (DlTensor) bad = dl_test_tensor ("bad", DL_DTYPE_F32, 1, (int64_t[]){ 7 }, NULL);
  g_assert_false (dl_op_add (rec, a, a, bad, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autoptr (DlTensor) h = dl_test_tensor ("h", DL_DTYPE_F16, 1, &n, NULL);
  g_assert_false (dl_op_add (rec, a, a, h, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
}

static void
test_scale (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  const int64_t sizes[] = { 1, 129, 100003 };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int t = 0; t < 2; t++)
      {
        DlDType dt = t ? DL_DTYPE_F16 : DL_DTYPE_F32;
        int64_t n = sizes[s];
        g_autofree float *x = dl_test_random (n, 30 + s, -3, 3);
        g_autofree float *y = dl_test_random (n, 40 + s, -3, 3);
        ref_round_to_dtype (x, n, dt);
        ref_round_to_dtype (y, n, dt);
        g_autoptr (DlTensor) tx = dl_test_tensor ("x", dt, 1, &n, x);
        g_autoptr (DlTensor) ty = dl_test_tensor ("y", dt, 1, &n, y);
        g_autoptr (DlTensor) tz = dl_test_tensor ("z", dt, 1, &n, NULL);
        g_assert_true (dl_op_scale (rec, tz, tx, -0.37f, &error));
        g_assert_true (dl_op_axpby (rec, ty, tx, 0.5f, 2.0f, &error));
        dl_test_finish ();
        g_autofree float *gz = dl_test_download (tz);
        g_autofree float *gy = dl_test_download (ty);
        g_autofree float *wz = g_new (float, n), *wy = g_new (float, n);
        for (int64_t i = 0; i < n; i++)
          {
            wz[i] = -0.37f * x[i];
            wy[i] = (float)(0.5 * x[i] + 2.0 * y[i]);
          }
        ref_round_to_dtype (wz, n, dt);
        ref_round_to_dtype (wy, n, dt);
        double rtol = t ? 1e-3 : 1e-6;
        dl_test_assert_close ("scale", gz, wz, n, 1e-7, rtol);
        dl_test_assert_close ("axpby", gy, wy, n, 1e-6, rtol);
      }
}

/* scale with beta = 0 must not read the destination: NaN there stays out */
static void
test_scale_ignores_garbage (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 64;
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 1, &n, NULL);
  g_autoptr (DlTensor) z = dl_test_tensor ("z", DL_DTYPE_F32, 1, &n, NULL);
  g_assert_true (dl_op_fill (rec, x, 1.0, &error));
  g_assert_true (dl_op_fill (rec, z, NAN, &error));
  g_assert_true (dl_op_scale (rec, z, x, 3.0f, &error));
  dl_test_finish ();
  g_autofree float *got = dl_test_download (z);
  for (int i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, 3.0f);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/fill", test_fill);
  dl_test_add ("/ops/copy-cast", test_copy_cast);
  dl_test_add ("/ops/permute", test_permute);
  dl_test_add ("/ops/binary", test_binary);
  dl_test_add ("/ops/scale", test_scale);
  dl_test_add ("/ops/scale-ignores-garbage", test_scale_ignores_garbage);
  return dl_test_run ();
}
