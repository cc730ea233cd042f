/* GroupNorm (+ fused SiLU) and LayerNorm: the reference backward against finite
 * differences, then the shaders against the reference, forward (y, mean, rstd)
 * and backward (dx, dgamma, dbeta), in f32 and f16 storage with f32 or f16
 * parameters, over awkward shapes (1, 7, 13, 129 channels; groups 1, 3, 32;
 * 1x1 and odd spatial sizes; one large group cut into several chunks), a large
 * mean against a small spread (where E[x²] - E[x]² would fail), accumulation
 * into dgamma/dbeta, optional outputs left out, empty batches, and bad
 * arguments. */
#include "dl-test-util.h"

#include "ref-norm.h"

#include <math.h>

/* ---- finite differences of the references ---- */

typedef struct
{
  float *x, *gamma, *beta, *r;
  int64_t N, C, S, G;
  gboolean silu, layer;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t n = c->N * c->C * c->S;
  g_autofree float *y = g_new (float, n);
  if (c->layer)
    ref_layer_norm_forward (y, NULL, NULL, c->x, c->gamma, c->beta, c->N, c->C, 1e-5);
  else
    ref_group_norm_forward (y, NULL, NULL, c->x, c->gamma, c->beta, c->N, c->C, c->S, c->G, 1e-5, c->silu);
  double l = 0;
  for (int64_t i = 0; i < n; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
fd_case (int64_t N, int64_t C, int64_t S, int64_t G, gboolean silu, gboolean layer, gboolean affine)
{
  int64_t n = N * C * S, nst = layer ? N : N * G;
  guint32 seed = (guint32)(N * 1000 + C * 100 + S * 10 + G + silu);
  g_autofree float *x = dl_test_random (n, seed, -2, 2);
  g_autofree float *gamma = dl_test_random (C, seed + 1, 0.5f, 1.5f);
  g_autofree float *beta = dl_test_random (C, seed + 2, -0.5f, 0.5f);
  g_autofree float *r = dl_test_random (n, seed + 3, -1, 1);
  g_autofree float *y = g_new (float, n);
  g_autofree float *mean = g_new (float, nst);
  g_autofree float *rstd = g_new (float, nst);
  g_autofree float *dx = g_new (float, n);
  g_autofree float *dg = g_new (float, C);
  g_autofree float *db = g_new (float, C);
  float *gm = affine ? gamma : NULL, *bt = affine ? beta : NULL;
  if (layer)
    {
      ref_layer_norm_forward (y, mean, rstd, x, gm, bt, N, C, 1e-5);
      ref_layer_norm_backward (dx, dg, db, x, gm, mean, rstd, r, N, C);
    }
  else
    {
      ref_group_norm_forward (y, mean, rstd, x, gm, bt, N, C, S, G, 1e-5, silu);
      ref_group_norm_backward (dx, dg, db, x, gm, bt, mean, rstd, r, N, C, S, G, silu);
    }
  FdCtx c = { x, gm, bt, r, N, C, S, G, silu, layer };
  g_autofree char *what =
    g_strdup_printf ("%s N%" G_GINT64_FORMAT " C%" G_GINT64_FORMAT " S%" G_GINT64_FORMAT " G%" G_GINT64_FORMAT "%s%s",
                     layer ? "layer_norm" : "group_norm", N, C, S, G, silu ? " silu" : "", affine ? " affine" : "");
  g_autofree char *wx = g_strconcat (what, " dx", NULL);
  g_autofree char *wg = g_strconcat (what, " dgamma", NULL);
  g_autofree char *wb = g_strconcat (what, " dbeta", NULL);
  /* the reference rounds y to float: ~1e-7 noise in L over 2 eps = 0.02; the
   * 4-point formula leaves O(eps^4) of the curvature */
  dl_test_assert_fd (wx, x, n, dx, fd_loss, &c, 1e-2, 1e-4, 1e-3, 120, TRUE);
  if (affine)
    {
      dl_test_assert_fd (wg, gamma, C, dg, fd_loss, &c, 1e-2, 1e-4, 1e-3, 120, TRUE);
      dl_test_assert_fd (wb, beta, C, db, fd_loss, &c, 1e-2, 1e-4, 1e-3, 120, TRUE);
    }
}

static void
test_reference_gradient (void)
{
  for (int silu = 0; silu < 2; silu++)
    {
      fd_case (2, 6, 5, 3, silu, FALSE, TRUE);
      fd_case (1, 4, 3, 1, silu, FALSE, TRUE);
      fd_case (3, 4, 2, 2, silu, FALSE, FALSE);
      fd_case (2, 3, 7, 3, silu, FALSE, TRUE); /* one channel per group */
    }
  fd_case (3, 7, 1, 1, FALSE, TRUE, TRUE);
  fd_case (2, 33, 1, 1, FALSE, TRUE, FALSE);
  fd_case (1, 2, 1, 1, FALSE, TRUE, TRUE);
}

/* ---- shaders against the references ---- */

typedef struct
{
  DlDType xdt; /* x, y, dy, dx */
  DlDType pdt; /* gamma, beta */
  DlDType gdt; /* dgamma, dbeta */
  gboolean accumulate;
  int outputs; /* OUT_* bits: which optional outputs to ask for */
} Mode;

#define OUT_DX 1
#define OUT_DGAMMA 2
#define OUT_DBETA 4
#define OUT_ALL 7

static double
max_abs (const float *v, gsize n)
{
  double m = 0;
  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabs ((double)v[i]));
  return m;
}

static float *
rounded_copy (const float *v, gsize n, DlDType dt)
{
  float *r = g_memdup2 (v, MAX (n, 1) * sizeof (float));
  ref_round_to_dtype (r, n, dt);
  return r;
}

/* Tolerances.  f32: the shader's f32 statistics and sums against the double
 * reference; `cond` = max|x - shift| ... the rounding of x - mean is amplified by
 * rstd, so a large mean against a small spread (cond = max|x| * rstd) widens the
 * forward tolerance by a few ulp of that.  f16: one f16 rounding of the result
 * (2^-11 relative) on top, so 1.5 ulp relative plus an absolute floor at the
 * output's magnitude. */
static double
tol_atol (DlDType dt, double out_scale, double cond)
{
  if (dt == DL_DTYPE_F16)
    return 1e-3 * MAX (out_scale, 1.0) + 4e-7 * cond;
  return 2e-6 * MAX (out_scale, 1.0) + 4e-7 * cond;
}

static double
tol_rtol (DlDType dt)
{
  return dt == DL_DTYPE_F16 ? 1.5e-3 : 2e-5;
}

/* Downloads dgamma / dbeta after the backward and checks prior + want. */
static void
check_param_grad (const char *what, DlTensor *t, const float *prior, const float *want, int64_t C, DlDType gdt,
                  double terms)
{
  g_autofree float *got = dl_test_download (t);
  g_autofree float *exp = g_new (float, MAX (C, 1));
  for (int64_t c = 0; c < C; c++)
    exp[c] = (prior ? prior[c] : 0.0f) + want[c];
  ref_round_to_dtype (exp, C, gdt);
  /* a sum of `terms` products of size <= ~3: f32 error grows like sqrt(terms) ulp */
  double scale = max_abs (exp, C);
  double atol = (gdt == DL_DTYPE_F16 ? 1e-3 * MAX (scale, 1.0) : 0) + 2e-6 * sqrt (terms) * 3;
  dl_test_assert_close (what, got, exp, C, atol, gdt == DL_DTYPE_F16 ? 1.5e-3 : 2e-5);
}

typedef struct
{
  int ndim;
  int64_t shape[4];
  int G;
  gboolean gamma, beta, silu;
  float lo, hi; /* x range */
  float eps;
} GnCase;

static void
run_gn (const GnCase *c, const Mode *m)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t N = c->shape[0], C = c->shape[1], S = 1;
  for (int i = 2; i < c->ndim; i++)
    S *= c->shape[i];
  int64_t G = c->G, n = N * C * S, nst = N * G;
  guint32 seed = (guint32)(n * 7 + C * 3 + G + c->silu * 11 + m->xdt * 5 + m->pdt);
  g_autofree float *x = dl_test_random (n, seed, c->lo, c->hi);
  g_autofree float *gamma = dl_test_random (C, seed + 1, 0.5f, 1.5f);
  g_autofree float *beta = dl_test_random (C, seed + 2, -0.5f, 0.5f);
  g_autofree float *dy = dl_test_random (n, seed + 3, -1, 1);
  g_autofree float *prior_g = dl_test_random (C, seed + 4, -1, 1);
  g_autofree float *prior_b = dl_test_random (C, seed + 5, -1, 1);
  ref_round_to_dtype (x, n, m->xdt);
  ref_round_to_dtype (dy, n, m->xdt);
  ref_round_to_dtype (gamma, C, m->pdt);
  ref_round_to_dtype (beta, C, m->pdt);
  ref_round_to_dtype (prior_g, C, m->gdt);
  ref_round_to_dtype (prior_b, C, m->gdt);
  float *gm = c->gamma ? gamma : NULL, *bt = c->beta ? beta : NULL;

  int64_t sst[2] = { N, G };
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", m->xdt, c->ndim, c->shape, x);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", m->xdt, c->ndim, c->shape, NULL);
  g_autoptr (DlTensor) tgm = dl_test_tensor ("gamma", m->pdt, 1, &C, gamma);
  g_autoptr (DlTensor) tbt = dl_test_tensor ("beta", m->pdt, 1, &C, beta);
  g_autoptr (DlTensor) tmean = dl_test_tensor ("mean", DL_DTYPE_F32, 2, sst, NULL);
  g_autoptr (DlTensor) trstd = dl_test_tensor ("rstd", DL_DTYPE_F32, 2, sst, NULL);
  DlTensor *tg = c->gamma ? tgm : NULL, *tb = c->beta ? tbt : NULL;
  g_assert_true (dl_op_group_norm (rec, ty, tmean, trstd, tx, tg, tb, c->G, c->eps, c->silu, &error));
  g_assert_no_error (error);
  dl_test_finish ();

  g_autofree float *y = dl_test_download (ty);
  g_autofree float *mean = dl_test_download (tmean);
  g_autofree float *rstd = dl_test_download (trstd);
  g_autofree float *wy = g_new (float, n);
  g_autofree float *wmean = g_new (float, nst);
  g_autofree float *wrstd = g_new (float, nst);
  ref_group_norm_forward (wy, wmean, wrstd, x, gm, bt, N, C, S, G, c->eps, c->silu);
  g_autofree char *shape = dl_shape_to_string (c->ndim, c->shape);
  g_autofree char *what = g_strdup_printf (
    "group_norm %s G%d%s%s%s x %s params %s%s", shape, c->G, c->gamma ? " gamma" : "", c->beta ? " beta" : "",
    c->silu ? " silu" : "", dl_dtype_name (m->xdt), dl_dtype_name (m->pdt), m->accumulate ? " accumulate" : "");
  double xmax = MAX (fabs (c->lo), fabs (c->hi)), rmax = max_abs (wrstd, nst);
  double cond = xmax * rmax;
  g_autofree char *wm = g_strconcat (what, " mean", NULL);
  g_autofree char *wr = g_strconcat (what, " rstd", NULL);
  /* f32 statistics of at most ~10^5 values: a few ulp of max|x| for the mean,
   * relative 1e-5 for rstd (var carries the mean's error only to second order) */
  dl_test_assert_close (wm, mean, wmean, nst, 4e-7 * xmax, 1e-6);
  dl_test_assert_close (wr, rstd, wrstd, nst, 0, 2e-5 * (1 + 1e-6 * cond * cond));
  g_autofree float *wy_r = rounded_copy (wy, n, m->xdt);
  double ys = max_abs (wy_r, n);
  dl_test_assert_close (what, y, wy_r, n, tol_atol (m->xdt, ys, cond), tol_rtol (m->xdt));

  /* backward from the device's statistics (as training does) */
  g_autoptr (DlTensor) tdy = dl_test_tensor ("dy", m->xdt, c->ndim, c->shape, dy);
  g_autoptr (DlTensor) tdx = (m->outputs & OUT_DX) ? dl_test_tensor ("dx", m->xdt, c->ndim, c->shape, NULL) : NULL;
  g_autoptr (DlTensor) tdg =
    (m->outputs & OUT_DGAMMA) ? dl_test_tensor ("dgamma", m->gdt, 1, &C, m->accumulate ? prior_g : NULL) : NULL;
  g_autoptr (DlTensor) tdb =
    (m->outputs & OUT_DBETA) ? dl_test_tensor ("dbeta", m->gdt, 1, &C, m->accumulate ? prior_b : NULL) : NULL;
  g_assert_true (dl_op_group_norm_backward (rec, tdx, tdg, tdb, tx, tg, tb, tmean, trstd, tdy, c->G, c->silu,
                                            m->accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *wdx = g_new (float, n);
  g_autofree float *wdg = g_new (float, C);
  g_autofree float *wdb = g_new (float, C);
  ref_group_norm_backward (wdx, wdg, wdb, x, gm, bt, mean, rstd, dy, N, C, S, G, c->silu);
  if (tdx)
    {
      g_autofree float *dx = dl_test_download (tdx);
      ref_round_to_dtype (wdx, n, m->xdt);
      g_autofree char *wx = g_strconcat (what, " dx", NULL);
      /* dx = rstd * (...): the sums' f32 error is amplified by rstd */
      double s = max_abs (wdx, n);
      dl_test_assert_close (wx, dx, wdx, n, tol_atol (m->xdt, s, 0) + 1e-6 * rmax, tol_rtol (m->xdt) * 2);
    }
  g_autofree char *wgn = g_strconcat (what, " dgamma", NULL);
  g_autofree char *wbn = g_strconcat (what, " dbeta", NULL);
  if (tdg)
    check_param_grad (wgn, tdg, m->accumulate ? prior_g : NULL, wdg, C, m->gdt, (double)(N * S));
  if (tdb)
    check_param_grad (wbn, tdb, m->accumulate ? prior_b : NULL, wdb, C, m->gdt, (double)(N * S));
}

#define S4(a, b, c, d) \
  4,                   \
  {                    \
    a, b, c, d         \
  }
#define S3(a, b, c) \
  3,                \
  {                 \
    a, b, c, 0      \
  }
#define S2(a, b) \
  2,             \
  {              \
    a, b, 0, 0   \
  }

static const GnCase gn_cases[] = {
  { S4 (1, 1, 1, 1), 1, TRUE, TRUE, FALSE, -1, 1, 1e-5f }, /* one element: var 0 */
  { S4 (2, 7, 3, 5), 7, TRUE, TRUE, TRUE, -2, 2, 1e-5f },  /* one channel per group */
  { S4 (2, 7, 3, 5), 1, TRUE, FALSE, FALSE, -2, 2, 1e-6f },
  { S4 (2, 13, 1, 1), 13, TRUE, TRUE, TRUE, -1, 1, 1e-5f },  /* 1x1, groups of one element */
  { S4 (3, 129, 5, 3), 3, FALSE, TRUE, TRUE, -3, 1, 1e-5f }, /* beta only */
  { S4 (2, 96, 7, 9), 32, TRUE, TRUE, TRUE, -2, 2, 1e-6f },
  { S4 (1, 3, 70, 70), 1, TRUE, TRUE, TRUE, -2, 2, 1e-5f },   /* 8 uneven chunks */
  { S4 (1, 64, 64, 64), 32, TRUE, TRUE, TRUE, -2, 2, 1e-5f }, /* large groups, 4 chunks each */
  { S3 (2, 6, 11), 3, TRUE, TRUE, FALSE, -1, 1, 1e-5f },      /* [N, C, L] */
  { S2 (4, 32), 32, FALSE, FALSE, FALSE, -1, 1, 1e-5f },      /* [N, C]: groups of one */
  { S2 (5, 12), 3, TRUE, TRUE, TRUE, -1, 1, 1e-5f },
};

/* mean 1000 against a spread of 1 (f32) or 100 against 1 (f16 storage) */
static const GnCase gn_offset_cases[] = {
  { S4 (2, 64, 16, 16), 32, TRUE, TRUE, TRUE, 999, 1001, 1e-5f },
  { S4 (1, 3, 70, 70), 1, TRUE, TRUE, FALSE, 999, 1001, 1e-5f },
};
static const GnCase gn_offset_f16 = { S4 (2, 32, 9, 9), 8, TRUE, TRUE, TRUE, 99, 101, 1e-5f };

static void
test_gn_f32 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (gn_cases); i++)
    {
      Mode m = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, i % 2 == 1, OUT_ALL };
      run_gn (&gn_cases[i], &m);
    }
  for (guint i = 0; i < G_N_ELEMENTS (gn_offset_cases); i++)
    {
      Mode m = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, FALSE, OUT_ALL };
      run_gn (&gn_offset_cases[i], &m);
    }
}

static void
test_gn_f16 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (gn_cases); i++)
    {
      /* f16 activations with f32 parameters and gradients (mixed precision), and
       * every third case all-f16 */
      DlDType p = i % 3 == 2 ? DL_DTYPE_F16 : DL_DTYPE_F32;
      Mode m = { DL_DTYPE_F16, p, p, i % 2 == 0, OUT_ALL };
      run_gn (&gn_cases[i], &m);
    }
  Mode m = { DL_DTYPE_F16, DL_DTYPE_F32, DL_DTYPE_F32, FALSE, OUT_ALL };
  run_gn (&gn_offset_f16, &m);
  /* f32 activations with f16 parameters */
  Mode m2 = { DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_F32, TRUE, OUT_ALL };
  run_gn (&gn_cases[5], &m2);
}

static void
test_gn_optional (void)
{
  /* each output alone, and the parameter gradients without dx */
  static const int outs[] = { OUT_DX, OUT_DGAMMA, OUT_DBETA, OUT_DGAMMA | OUT_DBETA, OUT_DX | OUT_DBETA };
  for (guint i = 0; i < G_N_ELEMENTS (outs); i++)
    {
      Mode m = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, i % 2 == 0, outs[i] };
      run_gn (&gn_cases[i % 2 ? 5 : 4], &m);
    }

  /* the forward without mean/rstd gives the same y */
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t shape[4] = { 2, 96, 7, 9 }, n = 2 * 96 * 7 * 9, C = 96, sst[2] = { 2, 32 };
  g_autofree float *x = dl_test_random (n, 5, -2, 2);
  g_autofree float *gamma = dl_test_random (C, 6, 0.5f, 1.5f);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", DL_DTYPE_F32, 4, shape, x);
  g_autoptr (DlTensor) tg = dl_test_tensor ("gamma", DL_DTYPE_F32, 1, &C, gamma);
  g_autoptr (DlTensor) y1 = dl_test_tensor ("y1", DL_DTYPE_F32, 4, shape, NULL);
  g_autoptr (DlTensor) y2 = dl_test_tensor ("y2", DL_DTYPE_F32, 4, shape, NULL);
  g_autoptr (DlTensor) tm = dl_test_tensor ("mean", DL_DTYPE_F32, 2, sst, NULL);
  g_autoptr (DlTensor) tr = dl_test_tensor ("rstd", DL_DTYPE_F32, 2, sst, NULL);
  g_assert_true (dl_op_group_norm (rec, y1, tm, tr, tx, tg, NULL, 32, 1e-5f, TRUE, &error));
  g_assert_true (dl_op_group_norm (rec, y2, NULL, NULL, tx, tg, NULL, 32, 1e-5f, TRUE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *a = dl_test_download (y1);
  g_autofree float *b = dl_test_download (y2);
  dl_test_assert_close ("group_norm without statistics", b, a, n, 0, 0);
}

/* ---- LayerNorm ---- */

typedef struct
{
  int ndim;
  int64_t shape[4];
  gboolean gamma, beta;
  float lo, hi;
  float eps;
} LnCase;

static void
run_ln (const LnCase *c, const Mode *m)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t C = c->shape[c->ndim - 1], rows = 1;
  for (int i = 0; i < c->ndim - 1; i++)
    rows *= c->shape[i];
  int64_t n = rows * C;
  guint32 seed = (guint32)(n * 5 + C + m->xdt * 3 + m->pdt);
  g_autofree float *x = dl_test_random (n, seed, c->lo, c->hi);
  g_autofree float *gamma = dl_test_random (C, seed + 1, 0.5f, 1.5f);
  g_autofree float *beta = dl_test_random (C, seed + 2, -0.5f, 0.5f);
  g_autofree float *dy = dl_test_random (n, seed + 3, -1, 1);
  g_autofree float *prior_g = dl_test_random (C, seed + 4, -1, 1);
  g_autofree float *prior_b = dl_test_random (C, seed + 5, -1, 1);
  ref_round_to_dtype (x, n, m->xdt);
  ref_round_to_dtype (dy, n, m->xdt);
  ref_round_to_dtype (gamma, C, m->pdt);
  ref_round_to_dtype (beta, C, m->pdt);
  ref_round_to_dtype (prior_g, C, m->gdt);
  ref_round_to_dtype (prior_b, C, m->gdt);
  float *gm = c->gamma ? gamma : NULL, *bt = c->beta ? beta : NULL;

  /* statistics shaped like the leading dimensions */
  int sdim = MAX (c->ndim - 1, 1);
  int64_t sshape[4] = { rows, 0, 0, 0 };
  for (int i = 0; i < c->ndim - 1; i++)
    sshape[i] = c->shape[i];
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", m->xdt, c->ndim, c->shape, x);
  g_autoptr (DlTensor) ty = dl_test_tensor ("y", m->xdt, c->ndim, c->shape, NULL);
  g_autoptr (DlTensor) tgm = dl_test_tensor ("gamma", m->pdt, 1, &C, gamma);
  g_autoptr (DlTensor) tbt = dl_test_tensor ("beta", m->pdt, 1, &C, beta);
  g_autoptr (DlTensor) tmean = dl_test_tensor ("mean", DL_DTYPE_F32, sdim, sshape, NULL);
  g_autoptr (DlTensor) trstd = dl_test_tensor ("rstd", DL_DTYPE_F32, sdim, sshape, NULL);
  DlTensor *tg = c->gamma ? tgm : NULL, *tb = c->beta ? tbt : NULL;
  g_assert_true (dl_op_layer_norm (rec, ty, tmean, trstd, tx, tg, tb, c->eps, &error));
  g_assert_no_error (error);
  dl_test_finish ();

  g_autofree float *y = dl_test_download (ty);
  g_autofree float *mean = dl_test_download (tmean);
  g_autofree float *rstd = dl_test_download (trstd);
  g_autofree float *wy = g_new (float, n);
  g_autofree float *wmean = g_new (float, rows);
  g_autofree float *wrstd = g_new (float, rows);
  ref_layer_norm_forward (wy, wmean, wrstd, x, gm, bt, rows, C, c->eps);
  g_autofree char *shape = dl_shape_to_string (c->ndim, c->shape);
  g_autofree char *what =
    g_strdup_printf ("layer_norm %s%s%s x %s params %s%s", shape, c->gamma ? " gamma" : "", c->beta ? " beta" : "",
                     dl_dtype_name (m->xdt), dl_dtype_name (m->pdt), m->accumulate ? " accumulate" : "");
  double xmax = MAX (fabs (c->lo), fabs (c->hi)), rmax = max_abs (wrstd, rows);
  double cond = xmax * rmax;
  g_autofree char *wm = g_strconcat (what, " mean", NULL);
  g_autofree char *wr = g_strconcat (what, " rstd", NULL);
  dl_test_assert_close (wm, mean, wmean, rows, 4e-7 * xmax, 1e-6);
  dl_test_assert_close (wr, rstd, wrstd, rows, 0, 2e-5 * (1 + 1e-6 * cond * cond));
  g_autofree float *wy_r = rounded_copy (wy, n, m->xdt);
  double ys = max_abs (wy_r, n);
  dl_test_assert_close (what, y, wy_r, n, tol_atol (m->xdt, ys, cond), tol_rtol (m->xdt));

  g_autoptr (DlTensor) tdy = dl_test_tensor ("dy", m->xdt, c->ndim, c->shape, dy);
  g_autoptr (DlTensor) tdx = (m->outputs & OUT_DX) ? dl_test_tensor ("dx", m->xdt, c->ndim, c->shape, NULL) : NULL;
  g_autoptr (DlTensor) tdg =
    (m->outputs & OUT_DGAMMA) ? dl_test_tensor ("dgamma", m->gdt, 1, &C, m->accumulate ? prior_g : NULL) : NULL;
  g_autoptr (DlTensor) tdb =
    (m->outputs & OUT_DBETA) ? dl_test_tensor ("dbeta", m->gdt, 1, &C, m->accumulate ? prior_b : NULL) : NULL;
  g_assert_true (dl_op_layer_norm_backward (rec, tdx, tdg, tdb, tx, tg, tmean, trstd, tdy, m->accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *wdx = g_new (float, n);
  g_autofree float *wdg = g_new (float, C);
  g_autofree float *wdb = g_new (float, C);
  ref_layer_norm_backward (wdx, wdg, wdb, x, gm, mean, rstd, dy, rows, C);
  if (tdx)
    {
      g_autofree float *dx = dl_test_download (tdx);
      ref_round_to_dtype (wdx, n, m->xdt);
      g_autofree char *wx = g_strconcat (what, " dx", NULL);
      double s = max_abs (wdx, n);
      dl_test_assert_close (wx, dx, wdx, n, tol_atol (m->xdt, s, 0) + 1e-6 * rmax, tol_rtol (m->xdt) * 2);
    }
  g_autofree char *wgn = g_strconcat (what, " dgamma", NULL);
  g_autofree char *wbn = g_strconcat (what, " dbeta", NULL);
  if (tdg)
    check_param_grad (wgn, tdg, m->accumulate ? prior_g : NULL, wdg, C, m->gdt, (double)rows);
  if (tdb)
    check_param_grad (wbn, tdb, m->accumulate ? prior_b : NULL, wdb, C, m->gdt, (double)rows);
}

static const LnCase ln_cases[] = {
  { S2 (1, 1), TRUE, TRUE, -1, 1, 1e-5f }, /* var 0 */
  { S2 (5, 7), TRUE, TRUE, -2, 2, 1e-5f },        { S2 (3, 129), FALSE, TRUE, -2, 2, 1e-5f },
  { S2 (77, 768), TRUE, TRUE, -3, 3, 1e-5f },     /* CLIP */
  { S3 (2, 13, 320), TRUE, FALSE, -2, 2, 1e-5f }, /* [B, tokens, C] */
  { S2 (300, 33), TRUE, TRUE, -2, 2, 1e-5f },     /* many rows: several column chunks */
  { S2 (3, 5000), TRUE, TRUE, -2, 2, 1e-5f },     /* a row longer than the workgroup many times */
  { S2 (7, 1), FALSE, FALSE, -1, 1, 1e-5f },
};
static const LnCase ln_offset = { S2 (9, 640), TRUE, TRUE, 999, 1001, 1e-5f };

static void
test_ln_f32 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (ln_cases); i++)
    {
      Mode m = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, i % 2 == 1, OUT_ALL };
      run_ln (&ln_cases[i], &m);
    }
  Mode m = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, FALSE, OUT_ALL };
  run_ln (&ln_offset, &m);
  static const int outs[] = { OUT_DX, OUT_DGAMMA, OUT_DBETA | OUT_DGAMMA };
  for (guint i = 0; i < G_N_ELEMENTS (outs); i++)
    {
      Mode mo = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, TRUE, outs[i] };
      run_ln (&ln_cases[5], &mo);
    }
}

static void
test_ln_f16 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (ln_cases); i++)
    {
      DlDType p = i % 3 == 2 ? DL_DTYPE_F16 : DL_DTYPE_F32;
      Mode m = { DL_DTYPE_F16, p, p, i % 2 == 0, OUT_ALL };
      run_ln (&ln_cases[i], &m);
    }
}

/* LayerNorm with one or neither statistic asked for gives the same y; the one
 * asked for is right. */
static void
test_ln_optional (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t shape[2] = { 13, 320 }, rows = 13, n = 13 * 320;
  g_autofree float *x = dl_test_random (n, 9, -2, 2);
  g_autoptr (DlTensor) tx = dl_test_tensor ("x", DL_DTYPE_F32, 2, shape, x);
  g_autoptr (DlTensor) tm = dl_test_tensor ("mean", DL_DTYPE_F32, 1, &rows, NULL);
  g_autoptr (DlTensor) tr = dl_test_tensor ("rstd", DL_DTYPE_F32, 1, &rows, NULL);
  DlTensor *ys[3];
  for (int k = 0; k < 3; k++)
    {
      ys[k] = dl_test_tensor ("y", DL_DTYPE_F32, 2, shape, NULL);
      g_assert_true (
        dl_op_layer_norm (rec, ys[k], k == 1 ? tm : NULL, k == 2 ? tr : NULL, tx, NULL, NULL, 1e-5f, &error));
    }
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *wy = g_new (float, n);
  g_autofree float *wm = g_new (float, rows);
  g_autofree float *wr = g_new (float, rows);
  ref_layer_norm_forward (wy, wm, wr, x, NULL, NULL, rows, 320, 1e-5);
  g_autofree float *m = dl_test_download (tm);
  g_autofree float *r = dl_test_download (tr);
  dl_test_assert_close ("layer_norm mean alone", m, wm, rows, 1e-6, 1e-6);
  dl_test_assert_close ("layer_norm rstd alone", r, wr, rows, 0, 2e-5);
  for (int k = 0; k < 3; k++)
    {
      g_autofree float *y = dl_test_download (ys[k]);
      dl_test_assert_close ("layer_norm y with fewer statistics", y, wy, n, 2e-6, 2e-5);
      dl_tensor_unref (ys[k]);
    }
}

/* Empty batches: nothing to normalise; parameter gradients are sums over nothing
 * (zero unless accumulating); statistics of empty rows are NaN as in torch. */
static void
test_empty (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s0[4] = { 0, 6, 2, 2 }, C = 6, st0[2] = { 0, 3 };
  const float ones[6] = { 1, 1, 1, 1, 1, 1 };
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, s0, NULL);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", DL_DTYPE_F32, 4, s0, NULL);
  g_autoptr (DlTensor) st = dl_test_tensor ("stats", DL_DTYPE_F32, 2, st0, NULL);
  g_autoptr (DlTensor) dg = dl_test_tensor ("dgamma", DL_DTYPE_F32, 1, &C, ones);
  g_autoptr (DlTensor) db = dl_test_tensor ("dbeta", DL_DTYPE_F32, 1, &C, ones);
  g_assert_true (dl_op_group_norm (rec, dx, st, st, x, NULL, NULL, 3, 1e-5f, TRUE, &error));
  g_assert_true (dl_op_group_norm_backward (rec, dx, dg, NULL, x, NULL, NULL, st, st, x, 3, TRUE, FALSE, &error));
  g_assert_true (dl_op_group_norm_backward (rec, dx, NULL, db, x, NULL, NULL, st, st, x, 3, TRUE, TRUE, &error));
  int64_t l0[2] = { 4, 0 }, four = 4;
  g_autoptr (DlTensor) lx = dl_test_tensor ("ln-x", DL_DTYPE_F32, 2, l0, NULL);
  g_autoptr (DlTensor) lm = dl_test_tensor ("ln-mean", DL_DTYPE_F32, 1, &four, NULL);
  g_assert_true (dl_op_layer_norm (rec, lx, lm, NULL, lx, NULL, NULL, 1e-5f, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *g = dl_test_download (dg);
  g_autofree float *b = dl_test_download (db);
  g_autofree float *m = dl_test_download (lm);
  const float zeros[6] = { 0 };
  dl_test_assert_close ("empty dgamma", g, zeros, 6, 0, 0);
  dl_test_assert_close ("empty dbeta accumulated", b, ones, 6, 0, 0);
  for (int i = 0; i < 4; i++)
    g_assert_true (isnan (m[i]));
}

/* ---- bad arguments ---- */

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s4[4] = { 2, 6, 3, 3 }, s4b[4] = { 2, 6, 3, 4 }, s2[2] = { 2, 3 }, s1 = 6, s5 = 5, s23[2] = { 2, 3 };
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, s4, NULL);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", DL_DTYPE_F32, 4, s4, NULL);
  g_autoptr (DlTensor) yb = dl_test_tensor ("y-bad", DL_DTYPE_F32, 4, s4b, NULL);
  g_autoptr (DlTensor) yh = dl_test_tensor ("y-f16", DL_DTYPE_F16, 4, s4, NULL);
  g_autoptr (DlTensor) xi = dl_test_tensor ("x-i32", DL_DTYPE_I32, 4, s4, NULL);
  g_autoptr (DlTensor) g6 = dl_test_tensor ("gamma", DL_DTYPE_F32, 1, &s1, NULL);
  g_autoptr (DlTensor) g6h = dl_test_tensor ("beta-f16", DL_DTYPE_F16, 1, &s1, NULL);
  g_autoptr (DlTensor) g5 = dl_test_tensor ("gamma5", DL_DTYPE_F32, 1, &s5, NULL);
  g_autoptr (DlTensor) st = dl_test_tensor ("mean", DL_DTYPE_F32, 2, s23, NULL);
  g_autoptr (DlTensor) sth = dl_test_tensor ("mean-f16", DL_DTYPE_F16, 2, s23, NULL);
  g_autoptr (DlTensor) x2 = dl_test_tensor ("x2", DL_DTYPE_F32, 2, s2, NULL);
  g_autoptr (DlTensor) sc = dl_test_tensor ("scalar-ish", DL_DTYPE_F32, 1, &s1, NULL);

  dl_test_expect_error (dl_op_group_norm (rec, y, st, st, x, g6, g6, 4, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* 4 does not divide 6 */
  dl_test_expect_error (dl_op_group_norm (rec, y, st, st, x, g6, g6, 0, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, yb, NULL, NULL, x, NULL, NULL, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, yh, NULL, NULL, x, NULL, NULL, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_group_norm (rec, xi, NULL, NULL, xi, NULL, NULL, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_group_norm (rec, y, NULL, NULL, x, g5, NULL, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, y, NULL, NULL, x, g6, g6h, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_group_norm (rec, y, sth, st, x, NULL, NULL, 3, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, y, st, st, x, NULL, NULL, 2, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* [2, 3] statistics for 2 groups */
  dl_test_expect_error (dl_op_group_norm (rec, y, NULL, NULL, x, NULL, NULL, 3, -1.0f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, y, NULL, NULL, x, NULL, NULL, 3, NAN, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm (rec, sc, NULL, NULL, sc, NULL, NULL, 1, 1e-5f, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* no channel axis */
  dl_test_expect_error (
    dl_op_group_norm_backward (rec, yb, NULL, NULL, x, NULL, NULL, st, st, y, 3, FALSE, FALSE, &error), &error,
    DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_group_norm_backward (rec, y, g6, g6h, x, NULL, NULL, st, st, y, 3, FALSE, FALSE, &error),
                        &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_group_norm_backward (rec, y, g5, NULL, x, NULL, NULL, st, st, y, 3, FALSE, FALSE, &error),
                        &error, DL_ERROR_INVALID_ARGUMENT);

  int64_t two = 2;
  g_autoptr (DlTensor) lst = dl_test_tensor ("ln-mean", DL_DTYPE_F32, 1, &two, NULL);
  g_autoptr (DlTensor) lx = dl_test_tensor ("ln-x", DL_DTYPE_F32, 2, s2, NULL);
  g_autoptr (DlTensor) g3 = dl_test_tensor ("ln-gamma3", DL_DTYPE_F32, 1, &s5, NULL);
  dl_test_expect_error (dl_op_layer_norm (rec, x2, lst, lst, lx, g3, NULL, 1e-5f, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_layer_norm (rec, x2, st, st, lx, NULL, NULL, 1e-5f, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT); /* 6 statistics for 2 rows */
  dl_test_expect_error (dl_op_layer_norm (rec, x, NULL, NULL, lx, NULL, NULL, 1e-5f, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_layer_norm_backward (rec, x2, NULL, NULL, lx, NULL, lst, lst, x, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_layer_norm_backward (rec, x2, g3, NULL, lx, NULL, lst, lst, x2, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/norm/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/norm/group-norm-f32", test_gn_f32);
  dl_test_add ("/ops/norm/group-norm-f16", test_gn_f16);
  dl_test_add ("/ops/norm/group-norm-optional-outputs", test_gn_optional);
  dl_test_add ("/ops/norm/layer-norm-f32", test_ln_f32);
  dl_test_add ("/ops/norm/layer-norm-f16", test_ln_f16);
  dl_test_add ("/ops/norm/layer-norm-optional-outputs", test_ln_optional);
  dl_test_add ("/ops/norm/empty", test_empty);
  dl_test_add ("/ops/norm/errors", test_errors);
  return dl_test_run ();
}
