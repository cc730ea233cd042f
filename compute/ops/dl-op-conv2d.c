/* Host side of the conv2d shaders (shaders/conv/): shape checks, tile and split
 * choice, and cutting the batch into dispatches whose bindings fit the device. */
#include "dl-op-conv2d.h"

#include "dl-op-bias-grad.h"
#include "dl-op-eltwise.h"
#include "dl-op-gemm-tile.h"
#include "dl-op-util.h"

#include <stdarg.h>

#define MAX_KERNEL 7
#define MAX_PADDING 255
/* split-K partials of the weight gradient stay below this many floats (64 MiB) */
#define MAX_PARTIAL_ELEMS (16 * 1024 * 1024)
/* index arithmetic in the shaders is 32-bit, divisions by fastdiv need < 2^31 */
#define MAX_INDEX ((int64_t)G_MAXINT32 - 4096)

typedef DlGemmTile ConvTile;

/* All keep 128 or 256 threads, a multiple of BN and BK, as conv_gemm.glsl's load
 * mappings need.  "t" (tall) suits few pixels and many channels (the 8x8 level),
 * "n" (narrow) few output channels (conv_out). */
static const ConvTile tile_table[] = {
  { 128, 128, 8, 8, 8, "l", 1.0 }, { 128, 64, 8, 8, 4, "t", 0.9 },  { 64, 64, 16, 4, 4, "m", 0.6 },
  { 32, 32, 16, 4, 2, "s", 0.45 }, { 16, 128, 16, 2, 8, "n", 0.4 },
};

typedef struct
{
  int64_t N, Cin, H, W, Cout, KH, KW, S, P, PE, Ho, Wo;
} Geom;

/* The geometry every pass's push constants start with. */
typedef struct
{
  uint32_t N, Cin, H, W, Cout, Ho, Wo, KH, KW, stride, pad;
} GeomPush;

/* A divisor as fastdiv() in conv_gemm.glsl takes it. */
typedef struct
{
  uint32_t mp, l;
} FastDiv;

typedef struct
{
  GeomPush g;
  uint32_t off_x, off_w, off_y, off_b, flags;
  FastDiv khw, kw;
} FwdPush;

typedef struct
{
  GeomPush g;
  uint32_t nka, nkb;
  uint32_t off_dy, off_w, off_dx;
  FastDiv nkab, nkb_div;
} DgradPush;

typedef struct
{
  GeomPush g;
  uint32_t off_dy, off_x, off_d, kchunk, slice, flags;
  FastDiv howo, wo, khw, kw;
} WgradPush;

typedef struct
{
  uint32_t n, splits, slice, off_p, off_d, flags;
} ReducePush;

int64_t
dl_conv2d_out_size (int64_t in, int64_t k, const DlConv2dParams *params)
{
  g_return_val_if_fail (params != NULL && params->stride > 0, 0);
  int64_t span = in + 2 * (int64_t)params->padding + params->padding_end - k;
  return span < 0 ? 0 : span / params->stride + 1;
}

static gboolean
tile_supported (DlDevice *dev, const ConvTile *t)
{
  const DlDeviceInfo *info = dl_device_get_info (dev);
  guint threads = dl_gemm_tile_threads (t);
  guint shared = (t->bk * (t->bm + 1) + t->bk * (t->bn + 1)) * 4;
  return shared <= info->max_shared_memory && threads <= info->max_workgroup_invocations &&
         threads <= info->max_workgroup_size[0] && threads % t->bn == 0 && threads % t->bk == 0 &&
         (t->bm * t->bk) % threads == 0 && (t->bn * t->bk) % threads == 0;
}

/* The tile for an M x N product over `batch` grid layers: the device's
 * tuning.conv_tile ($DREAMLOOM_CONV_TILE: l|t|m|s|n) when set, else
 * dl_gemm_tile_pick's. */
static const ConvTile *
pick_tile (DlDevice *dev, int64_t M, int64_t N, int64_t batch, GError **error)
{
  const char *forced = dl_device_get_tuning (dev)->conv_tile;
  if (*forced)
    {
      for (guint i = 0; i < G_N_ELEMENTS (tile_table); i++)
        if (g_ascii_strcasecmp (forced, tile_table[i].name) == 0)
          {
            if (tile_supported (dev, &tile_table[i]))
              return &tile_table[i];
            g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "conv2d: tile %s does not fit %s's limits",
                         tile_table[i].name, dl_device_get_info (dev)->name);
            return NULL;
          }
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "conv2d: DREAMLOOM_CONV_TILE=%s is not one of l, t, m, s, n", forced);
      return NULL;
    }
  const ConvTile *best = dl_gemm_tile_pick (dev, tile_table, G_N_ELEMENTS (tile_table), tile_supported, M, N, batch);
  if (!best)
    g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "conv2d: no tile fits %s's limits",
                 dl_device_get_info (dev)->name);
  return best;
}

/* One pipeline per pass, storage types and tile: the kernel geometry travels in
 * push constants, so no kernel size or stride needs a pipeline of its own. */
static DlPipeline *
conv_pipeline (DlDevice *dev, const char *pass, DlDType a, DlDType b, DlDType d, const ConvTile *t, GError **error)
{
  uint32_t spec[6] = { dl_gemm_tile_threads (t), t->bm, t->bn, t->bk, t->tm, t->tn };
  g_autofree char *name =
    g_strdup_printf ("conv2d_%s_%s_%s_%s", pass, dl_dtype_name (a), dl_dtype_name (b), dl_dtype_name (d));
  return dl_device_get_pipeline (dev, name, spec, G_N_ELEMENTS (spec), error);
}

/* (mp, l) such that n / d == (mulhi (n, mp) + n) >> l for every n < 2^31
 * (1 <= d < 2^31). */
static FastDiv
fastdiv (int64_t d)
{
  uint32_t L = 0;
  while (L < 31 && ((int64_t)1 << L) < d)
    L++;
  uint64_t mp = ((((uint64_t)1) << 32) * ((((uint64_t)1) << L) - (uint64_t)d)) / (uint64_t)d + 1;
  return (FastDiv){ .mp = (uint32_t)mp, .l = L };
}

static GeomPush
geom_push (const Geom *g, int64_t images)
{
  return (GeomPush){
    .N = (uint32_t)images,
    .Cin = (uint32_t)g->Cin,
    .H = (uint32_t)g->H,
    .W = (uint32_t)g->W,
    .Cout = (uint32_t)g->Cout,
    .Ho = (uint32_t)g->Ho,
    .Wo = (uint32_t)g->Wo,
    .KH = (uint32_t)g->KH,
    .KW = (uint32_t)g->KW,
    .stride = (uint32_t)g->S,
    .pad = (uint32_t)g->P,
  };
}

/* ---- argument checks ---- */

static gboolean fail (GError **error, const char *op, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s", op, msg);
  return FALSE;
}

static gboolean
check_float (const char *op, DlTensor *t, GError **error)
{
  return dl_op_check_dtype (op, t, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error);
}

static gboolean
check_4d (const char *op, DlTensor *t, const char *role, GError **error)
{
  if (t->ndim == 4)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  return fail (error, op, "%s %s must have 4 dimensions", role, d);
}

static gboolean
check_shape (const char *op, DlTensor *t, const char *role, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
             GError **error)
{
  if (t->shape[0] == d0 && t->shape[1] == d1 && t->shape[2] == d2 && t->shape[3] == d3)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  return fail (error, op,
               "%s %s should be [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
               "]",
               role, d, d0, d1, d2, d3);
}

static gboolean
check_params (const char *op, const DlConv2dParams *params, GError **error)
{
  if (params->stride != 1 && params->stride != 2)
    return fail (error, op, "stride %d is not 1 or 2", params->stride);
  if (params->padding < 0 || params->padding > MAX_PADDING)
    return fail (error, op, "padding %d is not in 0..%d", params->padding, MAX_PADDING);
  if (params->padding_end < 0 || params->padding_end > MAX_PADDING)
    return fail (error, op, "end padding %d is not in 0..%d", params->padding_end, MAX_PADDING);
  return TRUE;
}

/* Kernel size from a weight (or weight gradient) [Cout, Cin, KH, KW]. */
static gboolean
check_kernel (const char *op, DlTensor *w, const char *role, GError **error)
{
  if (!check_4d (op, w, role, error))
    return FALSE;
  if (w->shape[2] < 1 || w->shape[2] > MAX_KERNEL || w->shape[3] < 1 || w->shape[3] > MAX_KERNEL)
    {
      g_autofree char *d = dl_tensor_describe (w);
      return fail (error, op, "kernel of %s must be 1x1 to %dx%d", d, MAX_KERNEL, MAX_KERNEL);
    }
  return TRUE;
}

/* Output size; fails when the (padded) input is smaller than the kernel. */
static gboolean
geom_finish (const char *op, Geom *g, GError **error)
{
  if (g->Cin < 1 || g->H < 1 || g->W < 1)
    return fail (error, op,
                 "the input has %" G_GINT64_FORMAT " channels of %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " pixels (at least 1 of each needed)",
                 g->Cin, g->H, g->W);
  if (g->H + 2 * g->P + g->PE < g->KH || g->W + 2 * g->P + g->PE < g->KW)
    return fail (error, op,
                 "input %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " with padding %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT
                 " more at the end) is smaller than the %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " kernel",
                 g->H, g->W, g->P, g->PE, g->KH, g->KW);
  /* the end padding only adds output rows and columns: the shaders read
   * outside the input as zeros */
  g->Ho = (g->H + 2 * g->P + g->PE - g->KH) / g->S + 1;
  g->Wo = (g->W + 2 * g->P + g->PE - g->KW) / g->S + 1;
  return TRUE;
}

static gboolean
check_bias (const char *op, DlTensor *bias, const char *role, int64_t Cout, GError **error)
{
  if (!check_float (op, bias, error))
    return FALSE;
  if (dl_tensor_numel (bias) == Cout)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (bias);
  return fail (error, op, "%s %s must hold %" G_GINT64_FORMAT " elements (one per output channel)", role, d, Cout);
}

/* ---- batch chunks ---- */

/* Images of `t` (img elements each) per binding; where one image is more
 * than the worst-case count allows, 1 if every one of its n images can still
 * be bound alone (an image starting aligned may take the device's whole
 * binding range: SDXL's f32 VAE at 512x512 has 128 MiB images, lavapipe's
 * exact limit), else 0. */
static int64_t
binding_images (DlRecorder *rec, DlTensor *t, int64_t img, int64_t n)
{
  int64_t nb = dl_op_max_binding_elems (rec, t->dtype) / MAX (img, 1);
  if (nb >= 1)
    return nb;
  for (int64_t i = 0; i < n; i++)
    if (!dl_op_range_fits_binding (rec, t, i * img, img))
      return 0;
  return 1;
}

/* Images per dispatch such that the per-image ranges of `a` and `b` (a_img and
 * b_img elements per image) fit one binding each and 32-bit indices, and, when bn
 * is not 0, the grid's x count (cols_img columns per image in tiles of bn) stays
 * <= 65535.  0 when a single image is already too large.
 * tuning.conv_images_per_dispatch ($DREAMLOOM_CONV_IMAGES_PER_DISPATCH) lowers it (tests cut small batches). */
static int64_t
images_per_dispatch (DlRecorder *rec, DlTensor *a, int64_t a_img, DlTensor *b, int64_t b_img, int64_t cols_img,
                     guint bn)
{
  int64_t nb = G_MAXINT64;
  nb = MIN (nb, binding_images (rec, a, a_img, dl_tensor_numel (a) / MAX (a_img, 1)));
  nb = MIN (nb, binding_images (rec, b, b_img, dl_tensor_numel (b) / MAX (b_img, 1)));
  nb = MIN (nb, MAX_INDEX / MAX (MAX (a_img, b_img), 1));
  nb = MIN (nb, MAX_INDEX / MAX (cols_img, 1));
  if (bn)
    nb = MIN (nb, (int64_t)65535 * bn / MAX (cols_img, 1));
  gint64 forced = dl_device_get_tuning (dl_recorder_get_device (rec))->conv_images_per_dispatch;
  if (forced > 0)
    nb = MIN (nb, forced);
  return nb;
}

static gboolean
too_many_pixels (GError **error, const char *op, int64_t H, int64_t W)
{
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
               "%s: a %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " map needs more than 65535 workgroups in one dispatch",
               op, H, W);
  return FALSE;
}

static gboolean
too_large (GError **error, const char *op, DlTensor *t)
{
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: one image of %s is larger than this device can bind at once",
               op, d);
  return FALSE;
}

/* ---- forward ---- */

gboolean
dl_op_conv2d (DlRecorder *rec, DlTensor *y, DlTensor *x, DlTensor *w, DlTensor *bias, const DlConv2dParams *params,
              GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL && w != NULL && params != NULL, FALSE);
  const char *op = "conv2d";
  DlDevice *dev = dl_recorder_get_device (rec);
  if (!check_params (op, params, error) || !check_float (op, x, error) || !check_float (op, w, error) ||
      !check_float (op, y, error) || !check_4d (op, x, "input", error) || !check_kernel (op, w, "weight", error) ||
      !check_4d (op, y, "output", error))
    return FALSE;
  Geom g = { .N = x->shape[0],
             .Cin = x->shape[1],
             .H = x->shape[2],
             .W = x->shape[3],
             .Cout = w->shape[0],
             .KH = w->shape[2],
             .KW = w->shape[3],
             .S = params->stride,
             .P = params->padding,
             .PE = params->padding_end };
  if (w->shape[1] != g.Cin)
    {
      g_autofree char *dx = dl_tensor_describe (x);
      g_autofree char *dw = dl_tensor_describe (w);
      return fail (error, op, "input %s has %" G_GINT64_FORMAT " channels but weight %s expects %" G_GINT64_FORMAT, dx,
                   g.Cin, dw, w->shape[1]);
    }
  if (!geom_finish (op, &g, error) || !check_shape (op, y, "output", g.N, g.Cout, g.Ho, g.Wo, error))
    return FALSE;
  if (bias)
    {
      if (!check_bias (op, bias, "bias", g.Cout, error))
        return FALSE;
      if (bias->dtype != w->dtype)
        return fail (error, op, "the bias must have the weight's dtype (%s)", dl_dtype_name (w->dtype));
    }
  if (dl_tensor_numel (w) > MAX_INDEX)
    return too_large (error, op, w);
  if (g.N == 0 || g.Cout == 0)
    return TRUE;

  int64_t x_img = g.Cin * g.H * g.W, y_img = g.Cout * g.Ho * g.Wo, HoWo = g.Ho * g.Wo;
  int64_t nb = images_per_dispatch (rec, x, x_img, y, y_img, HoWo, 0);
  if (nb < 1)
    return too_large (error, op, x_img * dl_dtype_size (x->dtype) > y_img * dl_dtype_size (y->dtype) ? x : y);
  nb = MIN (nb, g.N);
  const ConvTile *t = pick_tile (dev, g.Cout, nb * HoWo, 1, error);
  if (!t)
    return FALSE;
  nb = MIN (nb, images_per_dispatch (rec, x, x_img, y, y_img, HoWo, t->bn));
  if (nb < 1)
    return too_many_pixels (error, op, g.Ho, g.Wo);
  DlPipeline *p = conv_pipeline (dev, "fwd", x->dtype, w->dtype, y->dtype, t, error);
  if (!p)
    return FALSE;

  for (int64_t n0 = 0; n0 < g.N; n0 += nb)
    {
      int64_t nc = MIN (nb, g.N - n0);
      DlBinding b[4] = {
        dl_op_bind_range (rec, x, n0 * x_img, nc * x_img, FALSE),
        dl_op_bind (rec, w, FALSE),
        dl_op_bind_range (rec, y, n0 * y_img, nc * y_img, TRUE),
        dl_op_bind (rec, bias ? bias : w, FALSE),
      };
      FwdPush pc = {
        .g = geom_push (&g, nc),
        .off_x = dl_binding_shader_offset (&b[0], dl_dtype_size (x->dtype)),
        .off_w = dl_binding_shader_offset (&b[1], dl_dtype_size (w->dtype)),
        .off_y = dl_binding_shader_offset (&b[2], dl_dtype_size (y->dtype)),
        .off_b = dl_binding_shader_offset (&b[3], dl_dtype_size (w->dtype)),
        .flags = bias ? 1u : 0u,
        .khw = fastdiv (g.KH * g.KW),
        .kw = fastdiv (g.KW),
      };
      if (!dl_recorder_dispatch (rec, p, b, 4, &pc, sizeof pc, (uint32_t)((nc * HoWo + t->bn - 1) / t->bn),
                                 (uint32_t)((g.Cout + t->bm - 1) / t->bm), 1, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- backward ---- */

static gboolean
record_dgrad (DlRecorder *rec, DlTensor *dx, DlTensor *w, DlTensor *dy, const Geom *g, GError **error)
{
  const char *op = "conv2d_backward";
  DlDevice *dev = dl_recorder_get_device (rec);
  int64_t x_img = g->Cin * g->H * g->W, y_img = g->Cout * g->Ho * g->Wo;
  /* pixels of the largest phase (ih ≡ 0, iw ≡ 0 mod stride) */
  int64_t phase_img = ((g->H + g->S - 1) / g->S) * ((g->W + g->S - 1) / g->S);
  int64_t nb = images_per_dispatch (rec, dx, x_img, dy, y_img, phase_img, 0);
  if (nb < 1)
    return too_large (error, op, dx);
  nb = MIN (nb, g->N);
  const ConvTile *t = pick_tile (dev, g->Cin, nb * phase_img, g->S * g->S, error);
  if (!t)
    return FALSE;
  nb = MIN (nb, images_per_dispatch (rec, dx, x_img, dy, y_img, phase_img, t->bn));
  if (nb < 1)
    return too_many_pixels (error, op, g->H, g->W);
  DlPipeline *p = conv_pipeline (dev, "dgrad", dy->dtype, w->dtype, dx->dtype, t, error);
  int64_t nka = (g->KH + g->S - 1) / g->S, nkb = (g->KW + g->S - 1) / g->S;
  if (!p)
    return FALSE;
  for (int64_t n0 = 0; n0 < g->N; n0 += nb)
    {
      int64_t nc = MIN (nb, g->N - n0);
      DlBinding b[3] = {
        dl_op_bind_range (rec, dy, n0 * y_img, nc * y_img, FALSE),
        dl_op_bind (rec, w, FALSE),
        dl_op_bind_range (rec, dx, n0 * x_img, nc * x_img, TRUE),
      };
      DgradPush pc = {
        .g = geom_push (g, nc),
        .nka = (uint32_t)nka,
        .nkb = (uint32_t)nkb,
        .off_dy = dl_binding_shader_offset (&b[0], dl_dtype_size (dy->dtype)),
        .off_w = dl_binding_shader_offset (&b[1], dl_dtype_size (w->dtype)),
        .off_dx = dl_binding_shader_offset (&b[2], dl_dtype_size (dx->dtype)),
        .nkab = fastdiv (nka * nkb),
        .nkb_div = fastdiv (nkb),
      };
      if (!dl_recorder_dispatch (rec, p, b, 3, &pc, sizeof pc, (uint32_t)((nc * phase_img + t->bn - 1) / t->bn),
                                 (uint32_t)((g->Cin + t->bm - 1) / t->bm), (uint32_t)(g->S * g->S), error))
        return FALSE;
    }
  return TRUE;
}

/* K splits for a weight gradient with `tiles_mn` output tiles reducing over K
 * pixels: tuning.conv_splitk ($DREAMLOOM_CONV_SPLITK) when set, else enough to keep the device busy
 * while each split still walks at least 8 K steps. */
static int64_t
pick_splits (DlDevice *dev, int64_t tiles_mn, int64_t K, const ConvTile *t, int64_t out_elems)
{
  gint64 forced = dl_device_get_tuning (dev)->conv_splitk;
  int64_t s;
  if (forced > 0)
    s = forced;
  else
    {
      int64_t want = dl_device_get_info (dev)->busy_workgroups;
      s = (want + tiles_mn - 1) / tiles_mn;
      s = MIN (s, K / (8 * (int64_t)t->bk));
    }
  s = MIN (s, MAX_PARTIAL_ELEMS / MAX (out_elems, 1));
  s = MIN (s, (K + t->bk - 1) / t->bk); /* at least one K step each */
  return CLAMP (s, 1, 65535);
}

static gboolean
record_wgrad (DlRecorder *rec, DlTensor *dw, DlTensor *x, DlTensor *dy, const Geom *g, gboolean accumulate,
              GError **error)
{
  const char *op = "conv2d_backward";
  DlDevice *dev = dl_recorder_get_device (rec);
  int64_t x_img = g->Cin * g->H * g->W, y_img = g->Cout * g->Ho * g->Wo, HoWo = g->Ho * g->Wo;
  int64_t CRS = g->Cin * g->KH * g->KW, out_elems = g->Cout * CRS;
  if (out_elems > MAX_INDEX)
    return too_large (error, op, dw);
  int64_t nb = images_per_dispatch (rec, x, x_img, dy, y_img, HoWo, 0);
  if (nb < 1)
    return too_large (error, op, x);
  nb = MIN (nb, g->N);
  /* K splits make up for few output tiles (up to one per 8 K steps of 16) */
  const ConvTile *t = pick_tile (dev, g->Cout, CRS, MAX (1, nb * HoWo / 128), error);
  if (!t)
    return FALSE;
  if ((CRS + t->bn - 1) / t->bn > 65535)
    return too_large (error, op, dw);
  int64_t tiles_mn = ((g->Cout + t->bm - 1) / t->bm) * ((CRS + t->bn - 1) / t->bn);
  int64_t max_splits = pick_splits (dev, tiles_mn, nb * HoWo, t, out_elems);

  g_autoptr (DlTensor) partial = NULL;
  if (max_splits > 1)
    {
      int64_t shape[2] = { max_splits, out_elems };
      partial = dl_tensor_new (dev, "conv2d weight-gradient partials", DL_DTYPE_F32, 2, shape, error);
      if (!partial)
        return FALSE;
    }
  DlPipeline *direct = conv_pipeline (dev, "wgrad", dy->dtype, x->dtype, dw->dtype, t, error);
  if (!direct)
    return FALSE;

  for (int64_t n0 = 0; n0 < g->N; n0 += nb)
    {
      int64_t nc = MIN (nb, g->N - n0), K = nc * HoWo;
      gboolean add = accumulate || n0 > 0; /* later chunks add into the first */
      int64_t splits = MIN (max_splits, pick_splits (dev, tiles_mn, K, t, out_elems));
      int64_t kchunk = (K + splits - 1) / splits;
      kchunk = (kchunk + t->bk - 1) / t->bk * t->bk;
      splits = (K + kchunk - 1) / kchunk;
      DlTensor *dst = splits > 1 ? partial : dw;
      DlPipeline *p = direct;
      if (splits > 1 && !(p = conv_pipeline (dev, "wgrad", dy->dtype, x->dtype, DL_DTYPE_F32, t, error)))
        return FALSE;
      DlBinding b[3] = {
        dl_op_bind_range (rec, dy, n0 * y_img, nc * y_img, FALSE),
        dl_op_bind_range (rec, x, n0 * x_img, nc * x_img, FALSE),
        splits > 1 ? dl_op_bind_range (rec, partial, 0, splits * out_elems, TRUE) : dl_op_bind (rec, dw, TRUE),
      };
      WgradPush pc = {
        .g = geom_push (g, nc),
        .off_dy = dl_binding_shader_offset (&b[0], dl_dtype_size (dy->dtype)),
        .off_x = dl_binding_shader_offset (&b[1], dl_dtype_size (x->dtype)),
        .off_d = dl_binding_shader_offset (&b[2], dl_dtype_size (dst->dtype)),
        .kchunk = (uint32_t)kchunk,
        .slice = splits > 1 ? (uint32_t)out_elems : 0u,
        .flags = splits == 1 && add ? 1u : 0u,
        .howo = fastdiv (HoWo),
        .wo = fastdiv (g->Wo),
        .khw = fastdiv (g->KH * g->KW),
        .kw = fastdiv (g->KW),
      };
      if (!dl_recorder_dispatch (rec, p, b, 3, &pc, sizeof pc, (uint32_t)((CRS + t->bn - 1) / t->bn),
                                 (uint32_t)((g->Cout + t->bm - 1) / t->bm), (uint32_t)splits, error))
        return FALSE;
      if (splits == 1)
        continue;

      DlPipeline *rp = dl_op_pipeline (rec, error, "conv2d_wgrad_reduce_%s", dl_dtype_name (dw->dtype));
      if (!rp)
        return FALSE;
      DlBinding rb[2] = {
        dl_op_bind_range (rec, partial, 0, splits * out_elems, FALSE),
        dl_op_bind (rec, dw, TRUE),
      };
      ReducePush rpc = {
        .n = (uint32_t)out_elems,
        .splits = (uint32_t)splits,
        .slice = (uint32_t)out_elems,
        .off_p = dl_binding_shader_offset (&rb[0], 4),
        .off_d = dl_binding_shader_offset (&rb[1], dl_dtype_size (dw->dtype)),
        .flags = add ? 1u : 0u,
      };
      if (!dl_recorder_dispatch (rec, rp, rb, 2, &rpc, sizeof rpc, dl_op_groups (rec, out_elems, 256), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
record_bias_grad (DlRecorder *rec, DlTensor *dbias, DlTensor *dy, const Geom *g, gboolean accumulate, GError **error)
{
  int64_t y_img = g->Cout * g->Ho * g->Wo;
  int64_t nb = images_per_dispatch (rec, dy, y_img, dy, y_img, 0, 0);
  if (nb < 1)
    return too_large (error, "conv2d_backward", dy);
  for (int64_t n0 = 0; n0 < g->N; n0 += nb)
    {
      int64_t nc = MIN (nb, g->N - n0);
      if (!dl_op_bias_grad (rec, dbias, dy, n0 * y_img, nc, g->Cout, g->Ho * g->Wo, accumulate || n0 > 0, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_conv2d_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dw, DlTensor *dbias, DlTensor *x, DlTensor *w,
                       DlTensor *dy, const DlConv2dParams *params, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && dy != NULL && params != NULL, FALSE);
  const char *op = "conv2d_backward";
  if (!check_params (op, params, error) || !check_float (op, dy, error) || !check_4d (op, dy, "dy", error))
    return FALSE;
  if (dx && !w)
    return fail (error, op, "the input gradient needs the weight");
  if (dw && !x)
    return fail (error, op, "the weight gradient needs the input");

  Geom g = { .N = dy->shape[0],
             .Cout = dy->shape[1],
             .S = params->stride,
             .P = params->padding,
             .PE = params->padding_end,
             .Ho = dy->shape[2],
             .Wo = dy->shape[3] };
  DlTensor *wk = w ? w : dw; /* kernel geometry */
  DlTensor *xs = x ? x : dx; /* input geometry */
  if (dx || dw)
    {
      if (!check_kernel (op, wk, w ? "weight" : "weight gradient", error) ||
          !check_4d (op, xs, x ? "input" : "input gradient", error))
        return FALSE;
      g.Cin = xs->shape[1];
      g.H = xs->shape[2];
      g.W = xs->shape[3];
      g.KH = wk->shape[2];
      g.KW = wk->shape[3];
      if (!geom_finish (op, &g, error))
        return FALSE;
      DlTensor *all[4] = { x, dx, w, dw };
      for (guint i = 0; i < 4; i++)
        if (all[i] && !check_float (op, all[i], error))
          return FALSE;
      if ((x && !check_shape (op, x, "input", g.N, g.Cin, g.H, g.W, error)) ||
          (dx && !check_shape (op, dx, "input gradient", g.N, g.Cin, g.H, g.W, error)) ||
          (w && !check_shape (op, w, "weight", g.Cout, g.Cin, g.KH, g.KW, error)) ||
          (dw && !check_shape (op, dw, "weight gradient", g.Cout, g.Cin, g.KH, g.KW, error)) ||
          !check_shape (op, dy, "dy", g.N, g.Cout, g.Ho, g.Wo, error))
        return FALSE;
      if (dl_tensor_numel (wk) > MAX_INDEX)
        return too_large (error, op, wk);
    }
  if (dbias && !check_bias (op, dbias, "bias gradient", g.Cout, error))
    return FALSE;

  if (g.N == 0 || g.Cout == 0)
    {
      /* nothing flows back: dx is zero, dw and dbias are zero sums */
      if (dx && !dl_op_fill (rec, dx, 0.0, error))
        return FALSE;
      if (dw && !accumulate && !dl_op_fill (rec, dw, 0.0, error))
        return FALSE;
      if (dbias && !accumulate && !dl_op_fill (rec, dbias, 0.0, error))
        return FALSE;
      return TRUE;
    }
  if (dx && !record_dgrad (rec, dx, w, dy, &g, error))
    return FALSE;
  if (dw && !record_wgrad (rec, dw, x, dy, &g, accumulate, error))
    return FALSE;
  if (dbias && !record_bias_grad (rec, dbias, dy, &g, accumulate, error))
    return FALSE;
  return TRUE;
}
