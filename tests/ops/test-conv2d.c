/* conv2d (implicit GEMM) against the double-precision reference: the reference
 * backward against finite differences; then the shaders' forward, input, weight
 * and bias gradients over awkward shapes (sizes 1, 7, 13, channel counts that
 * are multiples of no tile, stride 2 on odd maps, padding 0/1/2/3, kernels 1x1 to
 * 7x7 and non-square, batch > 1), every tile configuration, forced K splits,
 * f32 / f16 / mixed storage, accumulation; then SD 1.5 shapes at 512² checked at
 * sampled points; then bad arguments. */
#include "dl-test-util.h"

#include "ref-conv.h"

#include <math.h>
#include <string.h>

typedef struct
{
  int64_t N, Cin, H, W, Cout, KH, KW, S, P;
} Shape;

static RefConv2dShape
ref_shape (const Shape *s)
{
  RefConv2dShape r = { s->N, s->Cin, s->H, s->W, s->Cout, s->KH, s->KW, s->S, s->P, 0, 0 };
  ref_conv2d_shape_init (&r);
  return r;
}

static char *
describe (const Shape *s)
{
  return g_strdup_printf ("x [%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                          "] w [%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                          "] stride %" G_GINT64_FORMAT " pad %" G_GINT64_FORMAT,
                          s->N, s->Cin, s->H, s->W, s->Cout, s->Cin, s->KH, s->KW, s->S, s->P);
}

/* Awkward shapes: nothing a multiple of a tile unless on purpose. */
static const Shape shapes[] = {
  { 1, 1, 1, 1, 1, 1, 1, 1, 0 },    /* everything 1 */
  { 2, 3, 7, 7, 5, 3, 3, 1, 1 },    /* 3x3 same, batch 2 */
  { 1, 4, 13, 13, 7, 3, 3, 2, 1 },  /* SD downsample geometry on an odd map */
  { 2, 5, 12, 11, 3, 3, 3, 2, 0 },  /* stride 2, no padding, mixed parity */
  { 2, 7, 9, 13, 13, 1, 1, 1, 0 },  /* 1x1 */
  { 2, 9, 5, 4, 17, 1, 1, 2, 0 },   /* 1x1 stride 2: odd pixels get no gradient */
  { 3, 2, 6, 5, 4, 5, 5, 1, 2 },    /* 5x5 */
  { 1, 3, 9, 8, 2, 7, 7, 2, 3 },    /* 7x7 stride 2 */
  { 1, 2, 4, 7, 3, 2, 3, 1, 0 },    /* non-square, even kernel */
  { 2, 3, 1, 7, 6, 3, 3, 1, 1 },    /* a map one row high */
  { 1, 2, 1, 5, 3, 3, 3, 2, 1 },    /* one row at stride 2: a phase with no pixels */
  { 1, 33, 10, 9, 65, 3, 3, 1, 1 }, /* channels past the 32 and 64 tiles */
  { 2, 20, 7, 7, 129, 1, 1, 1, 0 }, /* Cout past the 128 tile */
  { 1, 4, 3, 3, 3, 3, 3, 1, 2 },    /* padding wider than the map reaches */
};

/* ---- reference against finite differences ---- */

typedef struct
{
  RefConv2dShape s;
  float *x, *w, *b, *r;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t ny = c->s.N * c->s.Cout * c->s.Ho * c->s.Wo;
  g_autofree float *y = g_new (float, ny);
  ref_conv2d_forward (y, c->x, c->w, c->b, &c->s);
  double l = 0;
  for (int64_t i = 0; i < ny; i++)
    l += (double)y[i] * c->r[i];
  return l;
}

static void
fd_case (const Shape *sh, gboolean directional)
{
  RefConv2dShape s = ref_shape (sh);
  int64_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * s.Cin * s.KH * s.KW, ny = s.N * s.Cout * s.Ho * s.Wo;
  guint32 seed = (guint32)(nx * 31 + nw);
  g_autofree float *x = dl_test_random (nx, seed, -1, 1);
  g_autofree float *w = dl_test_random (nw, seed + 1, -1, 1);
  g_autofree float *b = dl_test_random (s.Cout, seed + 2, -1, 1);
  g_autofree float *r = dl_test_random (ny, seed + 3, -1, 1);
  g_autofree float *dx = g_new (float, nx);
  g_autofree float *dw = g_new (float, nw);
  g_autofree float *db = g_new (float, s.Cout);
  ref_conv2d_backward (dx, dw, db, x, w, r, &s, FALSE);
  FdCtx c = { s, x, w, b, r };
  g_autofree char *what = describe (sh);
  g_autofree char *wx = g_strdup_printf ("conv2d dx, %s", what);
  g_autofree char *ww = g_strdup_printf ("conv2d dw, %s", what);
  g_autofree char *wb = g_strdup_printf ("conv2d dbias, %s", what);
  if (directional)
    {
      g_assert_true (dl_test_fd_directional (wx, x, nx, dx, fd_loss, &c, 0.25, 1e-5, 31));
      g_assert_true (dl_test_fd_directional (ww, w, nw, dw, fd_loss, &c, 0.25, 1e-5, 32));
      g_assert_true (dl_test_fd_directional (wb, b, s.Cout, db, fd_loss, &c, 0.25, 1e-5, 33));
      return;
    }
  /* L is linear in every input, so central differences are exact but for the
   * float rounding of y (~1e-7 per element) divided by 2 eps = 0.5 */
  dl_test_assert_fd (wx, x, nx, dx, fd_loss, &c, 0.25, 1e-5, 1e-5, 400, FALSE);
  dl_test_assert_fd (ww, w, nw, dw, fd_loss, &c, 0.25, 1e-5, 1e-5, 400, FALSE);
  dl_test_assert_fd (wb, b, s.Cout, db, fd_loss, &c, 0.25, 1e-5, 1e-5, 400, FALSE);
}

static void
test_reference_gradient (void)
{
  /* element by element on the small shapes (every geometry of the table) */
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    if (shapes[i].Cin * shapes[i].Cout <= 200)
      fd_case (&shapes[i], FALSE);
  /* one direction per input on a bigger one */
  Shape big = { 2, 16, 15, 17, 24, 3, 3, 2, 1 };
  fd_case (&big, TRUE);
}

/* The reference must be a convolution, not just self-consistent: a hand-worked
 * case (PyTorch's definition, checked by hand). */
static void
test_reference_known_values (void)
{
  /* x = 1..9 on a 3x3 map, w = [[1, 0], [0, -1]], stride 1, padding 0:
   * y[i, j] = x[i, j] - x[i+1, j+1] = -4 everywhere; with stride 2, padding 1 and
   * bias 0.5: taps outside are zero, y = [[0.5 - 1, 0.5 - 3], [0.5 - 7, 0.5 + 5 - 9]] */
  float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, w[4] = { 1, 0, 0, -1 }, b = 0.5f, y[4];
  RefConv2dShape s = { 1, 1, 3, 3, 1, 2, 2, 1, 0, 0, 0 };
  ref_conv2d_shape_init (&s);
  g_assert_cmpint (s.Ho, ==, 2);
  ref_conv2d_forward (y, x, w, NULL, &s);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (y[i], ==, -4.0f);
  s.stride = 2;
  s.pad = 1;
  ref_conv2d_shape_init (&s);
  g_assert_cmpint (s.Ho, ==, 2);
  ref_conv2d_forward (y, x, w, &b, &s);
  const float want[4] = { -0.5f, -2.5f, -6.5f, -3.5f };
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (y[i], ==, want[i]);
}

/* ---- shaders against the reference ---- */

typedef struct
{
  DlDType dx, dw, dy; /* storage of x (and dx), w (and bias), y (and dy) */
  DlDType dgrad;      /* storage of dw and dbias */
  gboolean bias;
  gboolean accumulate;
  const char *tile; /* tuning.conv_tile, NULL for auto */
  int splits;       /* tuning.conv_splitk, 0 for auto */
  int chunk;        /* tuning.conv_images_per_dispatch, 0 for as many as fit */
} Case;

/* the device's tuning switches for one case (what $DREAMLOOM_CONV_TILE,
 * _SPLITK and _IMAGES_PER_DISPATCH set in a real run) */
static void
set_knobs (const Case *c)
{
  DlDeviceTuning t = *dl_device_get_tuning (dl_test_device ());
  g_strlcpy (t.conv_tile, c->tile ? c->tile : "", sizeof t.conv_tile);
  t.conv_splitk = c->splits;
  t.conv_images_per_dispatch = c->chunk;
  dl_device_set_tuning (dl_test_device (), &t);
}

static void
reset_knobs (void)
{
  static const Case none = { 0 };
  set_knobs (&none);
}

static char *
describe_case (const Shape *sh, const Case *c, const char *what)
{
  g_autofree char *s = describe (sh);
  return g_strdup_printf ("conv2d %s, %s, x %s w %s y %s grads %s%s%s, tile %s, splits %d, images per dispatch %d",
                          what, s, dl_dtype_name (c->dx), dl_dtype_name (c->dw), dl_dtype_name (c->dy),
                          dl_dtype_name (c->dgrad), c->bias ? ", bias" : "", c->accumulate ? ", accumulate" : "",
                          c->tile ? c->tile : "auto", c->splits, c->chunk);
}

/* Tolerance for fp32 sums of `terms` products of numbers in [-1, 1], stored in
 * `dt`: fp32 rounding grows like sqrt(terms); f16 storage adds half an ulp (2^-11
 * relative). */
static void
tolerance (DlDType dt, int64_t terms, double *atol, double *rtol)
{
  *atol = 2e-6 * (1 + sqrt ((double)terms));
  *rtol = 1e-5;
  if (dt == DL_DTYPE_F16)
    {
      *atol += 1e-3;
      *rtol = 1e-3;
    }
}

static void
run_forward (const Shape *sh, const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  RefConv2dShape s = ref_shape (sh);
  int64_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * s.Cin * s.KH * s.KW, ny = s.N * s.Cout * s.Ho * s.Wo;
  guint32 seed = (guint32)(nx * 7919 + nw * 31 + s.stride);
  g_autofree float *hx = dl_test_random (nx, seed, -1, 1);
  g_autofree float *hw = dl_test_random (nw, seed + 1, -1, 1);
  g_autofree float *hb = dl_test_random (s.Cout, seed + 2, -1, 1);
  g_autofree float *hy = dl_test_random (ny, seed + 3, -1, 1); /* overwritten */
  ref_round_to_dtype (hx, nx, c->dx);
  ref_round_to_dtype (hw, nw, c->dw);
  ref_round_to_dtype (hb, s.Cout, c->dw);

  g_autoptr (DlTensor) x = dl_test_tensor ("x", c->dx, 4, (int64_t[]){ s.N, s.Cin, s.H, s.W }, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", c->dw, 4, (int64_t[]){ s.Cout, s.Cin, s.KH, s.KW }, hw);
  g_autoptr (DlTensor) b = c->bias ? dl_test_tensor ("bias", c->dw, 1, &s.Cout, hb) : NULL;
  g_autoptr (DlTensor) y = dl_test_tensor ("y", c->dy, 4, (int64_t[]){ s.N, s.Cout, s.Ho, s.Wo }, hy);
  set_knobs (c);
  DlConv2dParams prm = DL_CONV2D_PARAMS ((int)s.stride, (int)s.pad);
  g_assert_true (dl_op_conv2d (rec, y, x, w, b, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (y);

  g_autofree float *want = g_new (float, ny);
  ref_conv2d_forward (want, hx, hw, c->bias ? hb : NULL, &s);
  ref_round_to_dtype (want, ny, c->dy);
  double atol, rtol;
  tolerance (c->dy, s.Cin * s.KH * s.KW + 1, &atol, &rtol);
  g_autofree char *what = describe_case (sh, c, "forward");
  dl_test_assert_close (what, got, want, ny, atol, rtol);
}

static void
run_backward (const Shape *sh, const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  RefConv2dShape s = ref_shape (sh);
  int64_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * s.Cin * s.KH * s.KW, ny = s.N * s.Cout * s.Ho * s.Wo;
  guint32 seed = (guint32)(nx * 7907 + nw * 37 + s.stride);
  g_autofree float *hx = dl_test_random (nx, seed, -1, 1);
  g_autofree float *hw = dl_test_random (nw, seed + 1, -1, 1);
  g_autofree float *hdy = dl_test_random (ny, seed + 2, -1, 1);
  g_autofree float *hdx = dl_test_random (nx, seed + 3, -1, 1); /* overwritten */
  g_autofree float *hdw = dl_test_random (nw, seed + 4, -1, 1); /* added into when accumulating */
  g_autofree float *hdb = dl_test_random (s.Cout, seed + 5, -1, 1);
  ref_round_to_dtype (hx, nx, c->dx);
  ref_round_to_dtype (hw, nw, c->dw);
  ref_round_to_dtype (hdy, ny, c->dy);
  ref_round_to_dtype (hdw, nw, c->dgrad);
  ref_round_to_dtype (hdb, s.Cout, c->dgrad);

  int64_t xs[4] = { s.N, s.Cin, s.H, s.W }, ws[4] = { s.Cout, s.Cin, s.KH, s.KW }, ys[4] = { s.N, s.Cout, s.Ho, s.Wo };
  g_autoptr (DlTensor) x = dl_test_tensor ("x", c->dx, 4, xs, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", c->dw, 4, ws, hw);
  g_autoptr (DlTensor) dy = dl_test_tensor ("dy", c->dy, 4, ys, hdy);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", c->dx, 4, xs, hdx);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", c->dgrad, 4, ws, hdw);
  g_autoptr (DlTensor) db = c->bias ? dl_test_tensor ("dbias", c->dgrad, 1, &s.Cout, hdb) : NULL;
  set_knobs (c);
  DlConv2dParams prm = DL_CONV2D_PARAMS ((int)s.stride, (int)s.pad);
  g_assert_true (dl_op_conv2d_backward (rec, dx, dw, db, x, w, dy, &prm, c->accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gdx = dl_test_download (dx);
  g_autofree float *gdw = dl_test_download (dw);
  g_autofree float *gdb = c->bias ? dl_test_download (db) : NULL;

  ref_conv2d_backward (hdx, hdw, hdb, hx, hw, hdy, &s, c->accumulate);
  ref_round_to_dtype (hdx, nx, c->dx);
  ref_round_to_dtype (hdw, nw, c->dgrad);
  ref_round_to_dtype (hdb, s.Cout, c->dgrad);
  double atol, rtol;
  int64_t taps = ((s.KH + s.stride - 1) / s.stride) * ((s.KW + s.stride - 1) / s.stride);
  tolerance (c->dx, s.Cout * taps, &atol, &rtol);
  g_autofree char *wx = describe_case (sh, c, "dx");
  dl_test_assert_close (wx, gdx, hdx, nx, atol, rtol);
  /* dw and dbias sum over every output pixel (+1 for the accumulated value) */
  tolerance (c->dgrad, s.N * s.Ho * s.Wo + 1, &atol, &rtol);
  g_autofree char *ww = describe_case (sh, c, "dw");
  dl_test_assert_close (ww, gdw, hdw, nw, atol, rtol);
  if (c->bias)
    {
      g_autofree char *wb = describe_case (sh, c, "dbias");
      dl_test_assert_close (wb, gdb, hdb, s.Cout, atol, rtol);
    }
}

static const Case f32_case = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, TRUE, FALSE, NULL, 0 };
static const Case f16_case = { DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16, TRUE, FALSE, NULL, 0 };
/* mixed precision training: f16 activations, their gradients and the weights,
 * f32 weight and bias gradients */
static const Case mixed_case = { DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F32, TRUE, FALSE, NULL, 0 };

static void
test_forward (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      run_forward (&shapes[i], &f32_case);
      run_forward (&shapes[i], &f16_case);
      Case c = mixed_case;
      c.bias = i % 2;
      run_forward (&shapes[i], &c);
    }
  Case c = { DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F32, TRUE, FALSE, NULL, 0 };
  run_forward (&shapes[2], &c);
}

static void
test_backward (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      run_backward (&shapes[i], &f32_case);
      run_backward (&shapes[i], &f16_case);
      Case c = mixed_case;
      c.accumulate = TRUE;
      c.bias = i % 2 == 0;
      run_backward (&shapes[i], &c);
    }
}

/* Every tile shape on the SD geometries (3x3 same, 3x3 stride 2, 1x1), with
 * sizes that leave partial tiles in every direction. */
static void
test_tiles (void)
{
  static const Shape ts[] = {
    { 2, 19, 11, 10, 37, 3, 3, 1, 1 },
    { 1, 21, 13, 11, 18, 3, 3, 2, 1 },
    { 2, 40, 9, 7, 130, 1, 1, 1, 0 },
  };
  static const char *names[] = { "l", "t", "m", "s", "n" };
  for (guint t = 0; t < G_N_ELEMENTS (names); t++)
    for (guint i = 0; i < G_N_ELEMENTS (ts); i++)
      {
        Case c = f32_case;
        c.tile = names[t];
        c.accumulate = i == 1;
        run_forward (&ts[i], &c);
        run_backward (&ts[i], &c);
      }
  set_knobs (&f32_case);
}

/* The weight gradient's K splits: one (direct write), a few, more than there are
 * K steps for (clamped), with and without accumulation and f16 storage. */
static void
test_split_k (void)
{
  static const Shape ks[] = {
    { 2, 4, 16, 16, 20, 3, 3, 1, 1 }, /* conv_in-like: few outputs, long reduction */
    { 3, 5, 9, 7, 6, 3, 3, 2, 1 },
    { 2, 1, 128, 128, 3, 3, 3, 1, 1 }, /* 3 channels over 32768 pixels: the bias gradient splits too */
  };
  static const int splits[] = { 1, 2, 3, 7, 1000 };
  for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
    for (guint k = 0; k < G_N_ELEMENTS (splits); k++)
      {
        Case c = k % 2 ? f16_case : mixed_case;
        c.splits = splits[k];
        c.accumulate = k >= 2;
        run_backward (&ks[i], &c);
      }
  set_knobs (&f32_case);
}

/* Batches cut into several dispatches (as tensors past the device's binding
 * limit are): offsets into the middle of x / y, and later dispatches adding their
 * weight and bias gradients into the first's. */
static void
test_batch_chunks (void)
{
  static const Shape cs[] = {
    { 5, 3, 7, 9, 6, 3, 3, 1, 1 },
    { 5, 4, 13, 11, 7, 3, 3, 2, 1 },
    { 3, 6, 5, 5, 5, 1, 1, 1, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cs); i++)
    for (int chunk = 1; chunk <= 2; chunk++)
      {
        Case c = chunk == 1 ? f32_case : mixed_case;
        c.chunk = chunk;
        c.accumulate = i == 1;
        c.splits = i == 2 ? 2 : 0;
        run_forward (&cs[i], &c);
        run_backward (&cs[i], &c);
      }
  set_knobs (&f32_case);
}

/* One image exactly as large as a binding may be (SDXL's f32 VAE at 512x512
 * has 128 MiB images, lavapipe's exact limit): the worst-case count of
 * dl_op_max_binding_elems says none fits, but each image starts aligned and
 * is bound alone. */
static void
test_image_at_binding_limit (void)
{
  static const Shape sh = { 3, 4, 8, 8, 4, 3, 3, 1, 1 }; /* 4 x 8 x 8 f32: 1 KiB per image, in and out */
  DlRecorder *rec = dl_test_recorder ();
  dl_recorder_set_max_binding_range (rec, 4 * 8 * 8 * 4);
  run_forward (&sh, &f32_case);
  run_backward (&sh, &f32_case);
  dl_recorder_set_max_binding_range (rec, 0);
}

/* End padding (the VAE encoder's downsampler: zero padding (0, 1, 0, 1),
 * then a stride-2 3x3 convolution): forward and every gradient against the
 * reference on the input padded by hand, odd and even maps, f32 and f16. */
static void
test_end_padding (void)
{
  static const Shape sizes[] = { { 2, 3, 8, 8, 5, 3, 3, 2, 0 }, { 1, 4, 7, 9, 6, 3, 3, 2, 0 } };
  DlRecorder *rec = dl_test_recorder ();
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    for (int half = 0; half < 2; half++)
      {
        g_autoptr (GError) error = NULL;
        const Shape *sh = &sizes[i];
        DlDType dt = half ? DL_DTYPE_F16 : DL_DTYPE_F32;
        /* the reference: the padded input, padding 0 */
        Shape padded = *sh;
        padded.H++;
        padded.W++;
        RefConv2dShape rp = ref_shape (&padded);
        int64_t nx = sh->N * sh->Cin * sh->H * sh->W, nxp = rp.N * rp.Cin * rp.H * rp.W;
        int64_t nw = sh->Cout * sh->Cin * sh->KH * sh->KW, ny = rp.N * rp.Cout * rp.Ho * rp.Wo;
        g_autofree float *hx = dl_test_random (nx, 11 + i, -1, 1);
        g_autofree float *hw = dl_test_random (nw, 12 + i, -1, 1);
        g_autofree float *hb = dl_test_random (sh->Cout, 13 + i, -1, 1);
        g_autofree float *hdy = dl_test_random (ny, 14 + i, -1, 1);
        ref_round_to_dtype (hx, nx, dt);
        ref_round_to_dtype (hw, nw, dt);
        ref_round_to_dtype (hb, sh->Cout, dt);
        ref_round_to_dtype (hdy, ny, dt);
        g_autofree float *hxp = g_new0 (float, nxp);
        for (int64_t nc = 0; nc < sh->N * sh->Cin; nc++)
          for (int64_t h = 0; h < sh->H; h++)
            memcpy (hxp + (nc * rp.H + h) * rp.W, hx + (nc * sh->H + h) * sh->W, sh->W * sizeof (float));

        int64_t xs[4] = { sh->N, sh->Cin, sh->H, sh->W }, ws[4] = { sh->Cout, sh->Cin, sh->KH, sh->KW };
        int64_t ys[4] = { rp.N, rp.Cout, rp.Ho, rp.Wo };
        DlConv2dParams prm = { .stride = 2, .padding = 0, .padding_end = 1 };
        g_assert_cmpint (dl_conv2d_out_size (sh->H, sh->KH, &prm), ==, rp.Ho);
        g_autoptr (DlTensor) x = dl_test_tensor ("x", dt, 4, xs, hx);
        g_autoptr (DlTensor) w = dl_test_tensor ("w", dt, 4, ws, hw);
        g_autoptr (DlTensor) b = dl_test_tensor ("bias", dt, 1, &sh->Cout, hb);
        g_autoptr (DlTensor) y = dl_tensor_new (dl_test_device (), "y", dt, 4, ys, &error);
        g_autoptr (DlTensor) dy = dl_test_tensor ("dy", dt, 4, ys, hdy);
        g_autoptr (DlTensor) dx = dl_tensor_new (dl_test_device (), "dx", dt, 4, xs, &error);
        g_autoptr (DlTensor) dw = dl_tensor_new (dl_test_device (), "dw", DL_DTYPE_F32, 4, ws, &error);
        g_autoptr (DlTensor) db = dl_tensor_new (dl_test_device (), "db", DL_DTYPE_F32, 1, &sh->Cout, &error);
        g_assert_true (dl_op_conv2d (rec, y, x, w, b, &prm, &error));
        g_assert_true (dl_op_conv2d_backward (rec, dx, dw, db, x, w, dy, &prm, FALSE, &error));
        g_assert_no_error (error);
        dl_test_finish ();

        g_autofree float *want_y = g_new (float, ny);
        ref_conv2d_forward (want_y, hxp, hw, hb, &rp);
        ref_round_to_dtype (want_y, ny, dt);
        g_autofree float *dxp = g_new0 (float, nxp);
        g_autofree float *want_dw = g_new0 (float, nw);
        g_autofree float *want_db = g_new0 (float, sh->Cout);
        ref_conv2d_backward (dxp, want_dw, want_db, hxp, hw, hdy, &rp, FALSE);
        g_autofree float *want_dx = g_new (float, nx);
        for (int64_t nc = 0; nc < sh->N * sh->Cin; nc++)
          for (int64_t h = 0; h < sh->H; h++)
            memcpy (want_dx + (nc * sh->H + h) * sh->W, dxp + (nc * rp.H + h) * rp.W, sh->W * sizeof (float));
        ref_round_to_dtype (want_dx, nx, dt);

        g_autofree float *got_y = dl_test_download (y);
        g_autofree float *got_dx = dl_test_download (dx);
        g_autofree float *got_dw = dl_test_download (dw);
        g_autofree float *got_db = dl_test_download (db);
        double atol, rtol;
        g_autofree char *shape = describe (sh);
        g_autofree char *what = g_strdup_printf ("end padding, %s, %s", shape, dl_dtype_name (dt));
        tolerance (dt, sh->Cin * 9 + 1, &atol, &rtol);
        dl_test_assert_close (what, got_y, want_y, ny, atol, rtol);
        tolerance (dt, sh->Cout * 4, &atol, &rtol);
        dl_test_assert_close (what, got_dx, want_dx, nx, atol, rtol);
        tolerance (dt, rp.N * rp.Ho * rp.Wo, &atol, &rtol);
        dl_test_assert_close (what, got_dw, want_dw, nw, atol, rtol);
        dl_test_assert_close (what, got_db, want_db, sh->Cout, atol, rtol);
      }
}

/* Only some gradients wanted; the others' tensors may be absent. */
static void
test_partial_gradients (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  RefConv2dShape s = ref_shape (&shapes[2]);
  int64_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * s.Cin * s.KH * s.KW, ny = s.N * s.Cout * s.Ho * s.Wo;
  g_autofree float *hx = dl_test_random (nx, 5, -1, 1);
  g_autofree float *hw = dl_test_random (nw, 6, -1, 1);
  g_autofree float *hdy = dl_test_random (ny, 7, -1, 1);
  int64_t xs[4] = { s.N, s.Cin, s.H, s.W }, ws[4] = { s.Cout, s.Cin, s.KH, s.KW }, ys[4] = { s.N, s.Cout, s.Ho, s.Wo };
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, xs, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", DL_DTYPE_F32, 4, ws, hw);
  g_autoptr (DlTensor) dy = dl_test_tensor ("dy", DL_DTYPE_F32, 4, ys, hdy);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", DL_DTYPE_F32, 4, xs, NULL);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", DL_DTYPE_F32, 4, ws, NULL);
  g_autoptr (DlTensor) db = dl_test_tensor ("dbias", DL_DTYPE_F32, 1, &s.Cout, NULL);
  DlConv2dParams prm = DL_CONV2D_PARAMS ((int)s.stride, (int)s.pad);
  reset_knobs ();
  /* dx alone (the frozen-layer case of LoRA training: no x needed) */
  g_assert_true (dl_op_conv2d_backward (rec, dx, NULL, NULL, NULL, w, dy, &prm, FALSE, &error));
  /* dw alone (no w needed), dbias alone (neither) */
  g_assert_true (dl_op_conv2d_backward (rec, NULL, dw, NULL, x, NULL, dy, &prm, FALSE, &error));
  g_assert_true (dl_op_conv2d_backward (rec, NULL, NULL, db, NULL, NULL, dy, &prm, FALSE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gdx = dl_test_download (dx);
  g_autofree float *gdw = dl_test_download (dw);
  g_autofree float *gdb = dl_test_download (db);
  g_autofree float *rdx = g_new (float, nx);
  g_autofree float *rdw = g_new (float, nw);
  g_autofree float *rdb = g_new (float, s.Cout);
  ref_conv2d_backward (rdx, rdw, rdb, hx, hw, hdy, &s, FALSE);
  dl_test_assert_close ("conv2d dx alone", gdx, rdx, nx, 1e-4, 1e-5);
  dl_test_assert_close ("conv2d dw alone", gdw, rdw, nw, 1e-4, 1e-5);
  dl_test_assert_close ("conv2d dbias alone", gdb, rdb, s.Cout, 1e-4, 1e-5);
}

/* ---- SD 1.5 at 512²: full size, compared at sampled points ---- */

static double
sample_y (const float *x, const float *w, const float *b, const RefConv2dShape *s, int64_t n, int64_t co, int64_t oh,
          int64_t ow)
{
  double acc = b[co];
  for (int64_t ci = 0; ci < s->Cin; ci++)
    for (int64_t kh = 0; kh < s->KH; kh++)
      for (int64_t kw = 0; kw < s->KW; kw++)
        {
          int64_t ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
          if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
            acc += (double)w[((co * s->Cin + ci) * s->KH + kh) * s->KW + kw] *
                   x[((n * s->Cin + ci) * s->H + ih) * s->W + iw];
        }
  return acc;
}

static double
sample_dx (const float *w, const float *dy, const RefConv2dShape *s, int64_t n, int64_t ci, int64_t ih, int64_t iw)
{
  double acc = 0;
  for (int64_t co = 0; co < s->Cout; co++)
    for (int64_t kh = 0; kh < s->KH; kh++)
      for (int64_t kw = 0; kw < s->KW; kw++)
        {
          int64_t th = ih + s->pad - kh, tw = iw + s->pad - kw;
          if (th < 0 || tw < 0 || th % s->stride || tw % s->stride)
            continue;
          int64_t oh = th / s->stride, ow = tw / s->stride;
          if (oh < s->Ho && ow < s->Wo)
            acc += (double)w[((co * s->Cin + ci) * s->KH + kh) * s->KW + kw] *
                   dy[((n * s->Cout + co) * s->Ho + oh) * s->Wo + ow];
        }
  return acc;
}

static double
sample_dw (const float *x, const float *dy, const RefConv2dShape *s, int64_t co, int64_t ci, int64_t kh, int64_t kw)
{
  double acc = 0;
  for (int64_t n = 0; n < s->N; n++)
    for (int64_t oh = 0; oh < s->Ho; oh++)
      for (int64_t ow = 0; ow < s->Wo; ow++)
        {
          int64_t ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
          if (ih >= 0 && ih < s->H && iw >= 0 && iw < s->W)
            acc += (double)dy[((n * s->Cout + co) * s->Ho + oh) * s->Wo + ow] *
                   x[((n * s->Cin + ci) * s->H + ih) * s->W + iw];
        }
  return acc;
}

/* Picks `count` indices of a 4-D shape, always including the first and last. */
static void
sample_index (const int64_t *shape, guint i, guint count, GRand *r, int64_t *idx)
{
  for (int d = 0; d < 4; d++)
    idx[d] = i == 0 ? 0 : i == count - 1 ? shape[d] - 1 : g_rand_int_range (r, 0, (gint32)shape[d]);
}

static void
run_sd_shape (const Shape *sh, DlDType dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  RefConv2dShape s = ref_shape (sh);
  int64_t xs[4] = { s.N, s.Cin, s.H, s.W }, ws[4] = { s.Cout, s.Cin, s.KH, s.KW }, ys[4] = { s.N, s.Cout, s.Ho, s.Wo };
  int64_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * s.Cin * s.KH * s.KW, ny = s.N * s.Cout * s.Ho * s.Wo;
  g_autofree float *hx = dl_test_random (nx, 101, -1, 1);
  g_autofree float *hw = dl_test_random (nw, 102, -0.05f, 0.05f);
  g_autofree float *hb = dl_test_random (s.Cout, 103, -1, 1);
  g_autofree float *hdy = dl_test_random (ny, 104, -1, 1);
  ref_round_to_dtype (hx, nx, dt);
  ref_round_to_dtype (hw, nw, dt);
  ref_round_to_dtype (hb, s.Cout, dt);
  ref_round_to_dtype (hdy, ny, dt);
  g_autoptr (DlTensor) x = dl_test_tensor ("x", dt, 4, xs, hx);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", dt, 4, ws, hw);
  g_autoptr (DlTensor) b = dl_test_tensor ("bias", dt, 1, &s.Cout, hb);
  g_autoptr (DlTensor) dy = dl_test_tensor ("dy", dt, 4, ys, hdy);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", dt, 4, ys, NULL);
  g_autoptr (DlTensor) dx = dl_test_tensor ("dx", dt, 4, xs, NULL);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", DL_DTYPE_F32, 4, ws, NULL);
  DlConv2dParams prm = DL_CONV2D_PARAMS ((int)s.stride, (int)s.pad);
  reset_knobs ();
  g_assert_true (dl_op_conv2d (rec, y, x, w, b, &prm, &error));
  g_assert_true (dl_op_conv2d_backward (rec, dx, dw, NULL, x, w, dy, &prm, FALSE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gy = dl_test_download (y);
  g_autofree float *gdx = dl_test_download (dx);
  g_autofree float *gdw = dl_test_download (dw);

  enum
  {
    SAMPLES = 48
  };
  float got[3][SAMPLES], want[3][SAMPLES];
  g_autoptr (GRand) r = g_rand_new_with_seed ((guint32)(nx + nw));
  for (guint i = 0; i < SAMPLES; i++)
    {
      int64_t iy[4], ix[4], iw[4];
      sample_index (ys, i, SAMPLES, r, iy);
      sample_index (xs, i, SAMPLES, r, ix);
      sample_index (ws, i, SAMPLES, r, iw);
      got[0][i] = gy[((iy[0] * s.Cout + iy[1]) * s.Ho + iy[2]) * s.Wo + iy[3]];
      want[0][i] = (float)sample_y (hx, hw, hb, &s, iy[0], iy[1], iy[2], iy[3]);
      got[1][i] = gdx[((ix[0] * s.Cin + ix[1]) * s.H + ix[2]) * s.W + ix[3]];
      want[1][i] = (float)sample_dx (hw, hdy, &s, ix[0], ix[1], ix[2], ix[3]);
      got[2][i] = gdw[((iw[0] * s.Cin + iw[1]) * s.KH + iw[2]) * s.KW + iw[3]];
      want[2][i] = (float)sample_dw (hx, hdy, &s, iw[0], iw[1], iw[2], iw[3]);
    }
  ref_round_to_dtype (want[0], SAMPLES, dt);
  ref_round_to_dtype (want[1], SAMPLES, dt);
  g_autofree char *d = describe (sh);
  g_autofree char *w0 = g_strdup_printf ("conv2d forward %s %s (sampled)", d, dl_dtype_name (dt));
  g_autofree char *w1 = g_strdup_printf ("conv2d dx %s %s (sampled)", d, dl_dtype_name (dt));
  g_autofree char *w2 = g_strdup_printf ("conv2d dw %s %s (sampled)", d, dl_dtype_name (dt));
  double atol, rtol;
  /* weights in ±0.05: the sums are of order 1; the same fp32 growth as above */
  tolerance (dt, s.Cin * s.KH * s.KW, &atol, &rtol);
  dl_test_assert_close (w0, got[0], want[0], SAMPLES, atol, rtol);
  tolerance (dt, s.Cout * s.KH * s.KW, &atol, &rtol);
  dl_test_assert_close (w1, got[1], want[1], SAMPLES, atol, rtol);
  /* dw sums N*Ho*Wo products of numbers in [-1, 1] into an f32 tensor */
  tolerance (DL_DTYPE_F32, s.N * s.Ho * s.Wo, &atol, &rtol);
  dl_test_assert_close (w2, got[2], want[2], SAMPLES, atol * 4, rtol);
}

static void
test_sd_shapes (void)
{
  /* conv_in (4 -> 320 on 64x64), a 1x1 skip at the 1280-channel 8x8 level, a
   * down block's stride-2 conv (320 on 64x64 -> 32x32), the 1280-channel 3x3 conv
   * at 8x8.  A CPU device (lavapipe in CI) runs at a few GFLOP/s: it gets the
   * first two at full size and the stride-2 geometry at the full map size with
   * fewer channels; a GPU runs them all. */
  static const Shape sd[] = {
    { 2, 4, 64, 64, 320, 3, 3, 1, 1 },
    { 2, 640, 8, 8, 1280, 1, 1, 1, 0 },
    { 1, 320, 64, 64, 320, 3, 3, 2, 1 },
    { 2, 1280, 8, 8, 1280, 3, 3, 1, 1 },
  };
  static const Shape cpu_down = { 2, 24, 64, 64, 40, 3, 3, 2, 1 };
  gboolean cpu = dl_device_get_info (dl_test_device ())->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  for (guint i = 0; i < G_N_ELEMENTS (sd); i++)
    {
      if (cpu && i >= 2)
        {
          g_autofree char *d = describe (&sd[i]);
          g_test_message ("CPU device: %s runs on a GPU only", d);
          continue;
        }
      /* on lavapipe, f32 only: its pipelines are compiled already (by the tiles
       * test), and compiling costs more than running here */
      run_sd_shape (&sd[i], i % 2 || cpu ? DL_DTYPE_F32 : DL_DTYPE_F16);
    }
  if (cpu)
    run_sd_shape (&cpu_down, DL_DTYPE_F32);
}

/* An empty batch: nothing to compute forward; backward, dx is empty and the
 * weight and bias gradients are sums over nothing (zero, or unchanged when
 * accumulating). */
static void
test_empty_batch (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t xs[4] = { 0, 3, 5, 5 }, ws[4] = { 4, 3, 3, 3 }, ys[4] = { 0, 4, 5, 5 }, C = 4;
  g_autofree float *ones = g_new (float, 4 * 3 * 3 * 3);
  for (int i = 0; i < 4 * 3 * 3 * 3; i++)
    ones[i] = 1.0f;
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, xs, NULL);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", DL_DTYPE_F32, 4, ws, ones);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", DL_DTYPE_F32, 4, ys, NULL);
  g_autoptr (DlTensor) dw = dl_test_tensor ("dw", DL_DTYPE_F32, 4, ws, ones);
  g_autoptr (DlTensor) db = dl_test_tensor ("dbias", DL_DTYPE_F32, 1, &C, ones);
  g_autoptr (DlTensor) dw2 = dl_test_tensor ("dw2", DL_DTYPE_F32, 4, ws, ones);
  g_autoptr (DlTensor) db2 = dl_test_tensor ("dbias2", DL_DTYPE_F32, 1, &C, ones);
  DlConv2dParams prm = DL_CONV2D_PARAMS (1, 1);
  g_assert_true (dl_op_conv2d (rec, y, x, w, NULL, &prm, &error));
  g_assert_true (dl_op_conv2d_backward (rec, x, dw, db, x, w, y, &prm, FALSE, &error));
  g_assert_true (dl_op_conv2d_backward (rec, NULL, dw2, db2, x, NULL, y, &prm, TRUE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gdw = dl_test_download (dw);
  g_autofree float *gdb = dl_test_download (db);
  g_autofree float *gdw2 = dl_test_download (dw2);
  g_autofree float *gdb2 = dl_test_download (db2);
  for (int i = 0; i < 4 * 3 * 3 * 3; i++)
    {
      g_assert_cmpfloat (gdw[i], ==, 0.0f);
      g_assert_cmpfloat (gdw2[i], ==, 1.0f);
    }
  for (int i = 0; i < C; i++)
    {
      g_assert_cmpfloat (gdb[i], ==, 0.0f);
      g_assert_cmpfloat (gdb2[i], ==, 1.0f);
    }
}

/* ---- bad arguments ---- */

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 4, (int64_t[]){ 1, 3, 8, 8 }, NULL);
  g_autoptr (DlTensor) w = dl_test_tensor ("w", DL_DTYPE_F32, 4, (int64_t[]){ 4, 3, 3, 3 }, NULL);
  g_autoptr (DlTensor) y = dl_test_tensor ("y", DL_DTYPE_F32, 4, (int64_t[]){ 1, 4, 8, 8 }, NULL);
  g_autoptr (DlTensor) w2 = dl_test_tensor ("w2", DL_DTYPE_F32, 4, (int64_t[]){ 4, 2, 3, 3 }, NULL);
  g_autoptr (DlTensor) w9 = dl_test_tensor ("w9", DL_DTYPE_F32, 4, (int64_t[]){ 4, 3, 9, 9 }, NULL);
  g_autoptr (DlTensor) w3d = dl_test_tensor ("w3d", DL_DTYPE_F32, 3, (int64_t[]){ 4, 3, 9 }, NULL);
  g_autoptr (DlTensor) bias5 = dl_test_tensor ("bias", DL_DTYPE_F32, 1, (int64_t[]){ 5 }, NULL);
  g_autoptr (DlTensor) bias16 = dl_test_tensor ("bias16", DL_DTYPE_F16, 1, (int64_t[]){ 4 }, NULL);
  g_autoptr (DlTensor) xi = dl_test_tensor ("xi", DL_DTYPE_I32, 4, (int64_t[]){ 1, 3, 8, 8 }, NULL);
  g_autoptr (DlTensor) tiny = dl_test_tensor ("tiny", DL_DTYPE_F32, 4, (int64_t[]){ 1, 3, 1, 1 }, NULL);
  g_autoptr (DlTensor) ys2 = dl_test_tensor ("y stride 2", DL_DTYPE_F32, 4, (int64_t[]){ 1, 4, 4, 4 }, NULL);
  g_autoptr (DlTensor) x0 = dl_test_tensor ("no channels", DL_DTYPE_F32, 4, (int64_t[]){ 1, 0, 8, 8 }, NULL);
  g_autoptr (DlTensor) w0 = dl_test_tensor ("w0", DL_DTYPE_F32, 4, (int64_t[]){ 4, 0, 3, 3 }, NULL);
  DlConv2dParams same = DL_CONV2D_PARAMS (1, 1), s2 = DL_CONV2D_PARAMS (2, 1), s3 = DL_CONV2D_PARAMS (3, 1),
                 neg = DL_CONV2D_PARAMS (1, -1), valid = DL_CONV2D_PARAMS (1, 0);

  reset_knobs ();
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w2, NULL, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w9, NULL, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w3d, NULL, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, bias5, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, bias16, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, xi, w, NULL, &same, &error), &error, DL_ERROR_UNSUPPORTED);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, NULL, &s2, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, NULL, &s3, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, NULL, &neg, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, NULL, &valid, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, tiny, w, NULL, &valid, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d (rec, y, x0, w0, NULL, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  g_assert_true (dl_op_conv2d (rec, ys2, x, w, NULL, &s2, &error));
  g_assert_no_error (error);

  /* backward: missing inputs, mismatched shapes */
  dl_test_expect_error (dl_op_conv2d_backward (rec, x, NULL, NULL, NULL, NULL, y, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, NULL, w, NULL, NULL, NULL, y, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, x, NULL, NULL, NULL, w, ys2, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, NULL, w2, NULL, x, NULL, y, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, NULL, NULL, bias5, NULL, NULL, y, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, tiny, NULL, NULL, NULL, w, y, &same, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);
  dl_test_expect_error (dl_op_conv2d_backward (rec, NULL, w, NULL, x, NULL, y, &s3, FALSE, &error), &error,
                        DL_ERROR_INVALID_ARGUMENT);

  /* a tile $DREAMLOOM_CONV_TILE asks for by a wrong name */
  static const Case wrong = { .tile = "xl" };
  set_knobs (&wrong);
  dl_test_expect_error (dl_op_conv2d (rec, y, x, w, NULL, &same, &error), &error, DL_ERROR_INVALID_ARGUMENT);
  reset_knobs ();
  dl_test_finish ();
  g_assert_cmpint (dl_conv2d_out_size (64, 3, &s2), ==, 32);
  g_assert_cmpint (dl_conv2d_out_size (13, 3, &s2), ==, 7);
  g_assert_cmpint (dl_conv2d_out_size (1, 3, &valid), ==, 0);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/conv2d/reference-known-values", test_reference_known_values);
  dl_test_add ("/ops/conv2d/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/conv2d/forward", test_forward);
  dl_test_add ("/ops/conv2d/backward", test_backward);
  dl_test_add ("/ops/conv2d/tiles", test_tiles);
  dl_test_add ("/ops/conv2d/split-k", test_split_k);
  dl_test_add ("/ops/conv2d/batch-chunks", test_batch_chunks);
  dl_test_add ("/ops/conv2d/image-at-binding-limit", test_image_at_binding_limit);
  dl_test_add ("/ops/conv2d/end-padding", test_end_padding);
  dl_test_add ("/ops/conv2d/partial-gradients", test_partial_gradients);
  dl_test_add ("/ops/conv2d/sd-shapes", test_sd_shapes);
  dl_test_add ("/ops/conv2d/empty-batch", test_empty_batch);
  dl_test_add ("/ops/conv2d/errors", test_errors);
  return dl_test_run ();
}
