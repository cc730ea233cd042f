/* bench ops: conv2d (forward, input gradient, weight gradient) at the SD 1.5
 * UNet's shapes for 512² images, and linear (forward and backward) at its
 * projection shapes.  Storage is f16 for activations and frozen weights, f32 for
 * weight gradients (the mixed-precision training layout). */
#include "dl-bench-ops.h"

typedef struct
{
  DlTensor *x, *w, *b, *y, *dx, *dw, *dy;
  DlConv2dParams prm;
} Conv;

static void
conv_clear (Conv *c)
{
  DlTensor **all[] = { &c->x, &c->w, &c->b, &c->y, &c->dx, &c->dw, &c->dy };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
}

static gboolean
rec_conv_fwd (DlRecorder *rec, gpointer data, GError **error)
{
  Conv *c = data;
  return dl_op_conv2d (rec, c->y, c->x, c->w, c->b, &c->prm, error);
}

static gboolean
rec_conv_dgrad (DlRecorder *rec, gpointer data, GError **error)
{
  Conv *c = data;
  return dl_op_conv2d_backward (rec, c->dx, NULL, NULL, NULL, c->w, c->dy, &c->prm, FALSE, error);
}

static gboolean
rec_conv_wgrad (DlRecorder *rec, gpointer data, GError **error)
{
  Conv *c = data;
  return dl_op_conv2d_backward (rec, NULL, c->dw, NULL, c->x, NULL, c->dy, &c->prm, TRUE, error);
}

static gboolean
bench_conv (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  /* batch 2 at 512²: the 64x64 level's 3x3 conv, the 32x32 and 8x8 levels',
   * conv_in (4 -> 320), a stride-2 downsample and a 1x1 skip.  On a CPU device:
   * batch 1 and half the map size (8x8 stays). */
  static const struct
  {
    int64_t cin, cout, hw, k, stride;
    const char *what;
  } shapes[] = {
    { 320, 320, 64, 3, 1, "" },      { 640, 640, 32, 3, 1, "" },           { 1280, 1280, 8, 3, 1, "" },
    { 4, 320, 64, 3, 1, "conv_in" }, { 320, 320, 64, 3, 2, "downsample" }, { 640, 1280, 8, 1, 1, "1x1" },
  };
  static const struct
  {
    const char *op;
    DlBenchRecordFunc func;
  } passes[] = {
    { "conv2d fwd", rec_conv_fwd },
    { "conv2d dgrad", rec_conv_dgrad },
    { "conv2d wgrad", rec_conv_wgrad },
  };
  if (!dl_bench_ops_wants (b, "conv2d fwd") && !dl_bench_ops_wants (b, "conv2d dgrad") &&
      !dl_bench_ops_wants (b, "conv2d wgrad"))
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      int64_t N = small ? 1 : 2, Cin = shapes[i].cin, Cout = shapes[i].cout, K = shapes[i].k;
      int64_t H = small && shapes[i].hw > 8 ? shapes[i].hw / 2 : shapes[i].hw;
      Conv c = { .prm = DL_CONV2D_PARAMS ((int)shapes[i].stride, (int)(K / 2)) };
      int64_t Ho = dl_conv2d_out_size (H, K, &c.prm);
      int64_t xs[4] = { N, Cin, H, H }, ws[4] = { Cout, Cin, K, K }, ys[4] = { N, Cout, Ho, Ho };
      gboolean ok = (c.x = dl_bench_ops_tensor (b, "x", DL_DTYPE_F16, 4, xs, error)) &&
                    (c.w = dl_bench_ops_tensor (b, "w", DL_DTYPE_F16, 4, ws, error)) &&
                    (c.b = dl_bench_ops_tensor (b, "bias", DL_DTYPE_F16, 1, &Cout, error)) &&
                    (c.y = dl_bench_ops_tensor (b, "y", DL_DTYPE_F16, 4, ys, error)) &&
                    (c.dx = dl_bench_ops_tensor (b, "dx", DL_DTYPE_F16, 4, xs, error)) &&
                    (c.dw = dl_bench_ops_tensor (b, "dw", DL_DTYPE_F32, 4, ws, error)) &&
                    (c.dy = dl_bench_ops_tensor (b, "dy", DL_DTYPE_F16, 4, ys, error));
      /* every pass is one GEMM of Cout x (N Ho Wo) x (Cin K K) multiply-adds
       * (dgrad skips the stride's zero taps, which this does not count) */
      double flops = 2.0 * Cout * N * Ho * Ho * Cin * K * K;
      double bx = 2.0 * N * Cin * H * H, by = 2.0 * N * Cout * Ho * Ho, bw = 2.0 * Cout * Cin * K * K;
      double bytes[3] = { bx + bw + by, by + bw + bx, by + bx + 2 * bw * 2 };
      for (guint p = 0; ok && p < G_N_ELEMENTS (passes); p++)
        {
          g_autofree char *shape =
            g_strdup_printf ("%" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                             " s%d %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " b%" G_GINT64_FORMAT "%s%s",
                             Cin, Cout, K, K, c.prm.stride, H, H, N, *shapes[i].what ? " " : "", shapes[i].what);
          ok = dl_bench_ops_case (b, passes[p].op, shape, flops, bytes[p], passes[p].func, &c, error);
        }
      conv_clear (&c);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ---- linear ---- */

typedef struct
{
  DlTensor *x, *w, *b, *y, *dx, *dw, *db, *dy;
} Linear;

static void
linear_clear (Linear *l)
{
  DlTensor **all[] = { &l->x, &l->w, &l->b, &l->y, &l->dx, &l->dw, &l->db, &l->dy };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
}

static gboolean
rec_linear_fwd (DlRecorder *rec, gpointer data, GError **error)
{
  Linear *l = data;
  return dl_op_linear (rec, l->y, l->x, l->w, l->b, error);
}

static gboolean
rec_linear_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Linear *l = data;
  return dl_op_linear_backward (rec, l->dx, l->dw, l->db, l->x, l->w, l->dy, TRUE, error);
}

static gboolean
bench_linear (DlBenchOps *b, GError **error)
{
  if (!dl_bench_ops_wants (b, "linear fwd") && !dl_bench_ops_wants (b, "linear bwd"))
    return TRUE;
  gboolean small = dl_bench_ops_is_small (b);
  /* the 64x64 level's attention projection (320 -> 320) and GEGLU input
   * (320 -> 2560) over batch 2 x 4096 tokens (a quarter on a CPU device) */
  static const int64_t shapes[][2] = { { 320, 320 }, { 320, 2560 } };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      int64_t R = small ? 1024 : 8192, K = shapes[i][0], N = shapes[i][1];
      int64_t xs[2] = { R, K }, ws[2] = { N, K }, ys[2] = { R, N };
      Linear l = { 0 };
      gboolean ok = (l.x = dl_bench_ops_tensor (b, "x", DL_DTYPE_F16, 2, xs, error)) &&
                    (l.w = dl_bench_ops_tensor (b, "w", DL_DTYPE_F16, 2, ws, error)) &&
                    (l.b = dl_bench_ops_tensor (b, "bias", DL_DTYPE_F16, 1, &N, error)) &&
                    (l.y = dl_bench_ops_tensor (b, "y", DL_DTYPE_F16, 2, ys, error)) &&
                    (l.dx = dl_bench_ops_tensor (b, "dx", DL_DTYPE_F16, 2, xs, error)) &&
                    (l.dw = dl_bench_ops_tensor (b, "dw", DL_DTYPE_F32, 2, ws, error)) &&
                    (l.db = dl_bench_ops_tensor (b, "dbias", DL_DTYPE_F32, 1, &N, error)) &&
                    (l.dy = dl_bench_ops_tensor (b, "dy", DL_DTYPE_F16, 2, ys, error));
      g_autofree char *shape = g_strdup_printf (
        "[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]x[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]ᵀ f16", R, K, N, K);
      double flops = 2.0 * R * K * N, bx = 2.0 * R * K, by = 2.0 * R * N, bw = 2.0 * N * K;
      ok =
        ok && dl_bench_ops_case (b, "linear fwd", shape, flops, bx + bw + by, rec_linear_fwd, &l, error) &&
        dl_bench_ops_case (b, "linear bwd", shape, 2 * flops, 2 * by + 2 * bx + bw + 4 * bw, rec_linear_bwd, &l, error);
      linear_clear (&l);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_bench_ops_conv (DlBenchOps *b, GError **error)
{
  return bench_conv (b, error) && bench_linear (b, error);
}
