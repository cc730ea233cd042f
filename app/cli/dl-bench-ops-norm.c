/* bench ops: GroupNorm (+SiLU), LayerNorm, GEGLU, upsampling and channel concat
 * at SD 1.5's shapes (512², batch 2), f16 activations with f32 parameters as in
 * mixed-precision training.  Bytes are what must move at least once: the
 * activations read and written (the statistics pass's second read of x is not
 * counted, so the GB/s shown is the useful rate). */
#include "dl-bench-ops.h"

typedef struct
{
  DlTensor *x, *y, *dy, *dx, *gamma, *beta, *dgamma, *dbeta, *mean, *rstd, *b;
  int groups;
} Norm;

static void
norm_clear (Norm *n)
{
  DlTensor **all[] = { &n->x,      &n->y,     &n->dy,   &n->dx,   &n->gamma, &n->beta,
                       &n->dgamma, &n->dbeta, &n->mean, &n->rstd, &n->b };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
}

static gboolean
rec_gn (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_group_norm (rec, n->y, n->mean, n->rstd, n->x, n->gamma, n->beta, n->groups, 1e-5f, TRUE, error);
}

static gboolean
rec_gn_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_group_norm_backward (rec, n->dx, n->dgamma, n->dbeta, n->x, n->gamma, n->beta, n->mean, n->rstd, n->dy,
                                    n->groups, TRUE, TRUE, error);
}

static gboolean
rec_ln (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_layer_norm (rec, n->y, n->mean, n->rstd, n->x, n->gamma, n->beta, 1e-5f, error);
}

static gboolean
rec_ln_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_layer_norm_backward (rec, n->dx, n->dgamma, n->dbeta, n->x, n->gamma, n->mean, n->rstd, n->dy, TRUE,
                                    error);
}

static gboolean
rec_geglu (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_geglu (rec, n->y, n->x, error);
}

static gboolean
rec_geglu_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_geglu_backward (rec, n->dx, n->x, n->dy, error);
}

static gboolean
rec_up (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_upsample_nearest2x (rec, n->y, n->x, error);
}

static gboolean
rec_up_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_upsample_nearest2x_backward (rec, n->dx, n->dy, error);
}

static gboolean
rec_concat (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_concat_channels (rec, n->y, n->x, n->b, error);
}

static gboolean
rec_split (DlRecorder *rec, gpointer data, GError **error)
{
  Norm *n = data;
  return dl_op_split_channels (rec, n->x, n->b, n->y, error);
}

#define F16 DL_DTYPE_F16
#define F32 DL_DTYPE_F32

/* x, y, dy, dx of one shape in f16; gamma, beta, dgamma, dbeta [C] in f32 */
static gboolean
alloc_act (DlBenchOps *b, Norm *n, int ndim, const int64_t *shape, int64_t C, GError **error)
{
  return (n->x = dl_bench_ops_tensor (b, "x", F16, ndim, shape, error)) &&
         (n->y = dl_bench_ops_tensor (b, "y", F16, ndim, shape, error)) &&
         (n->dy = dl_bench_ops_tensor (b, "dy", F16, ndim, shape, error)) &&
         (n->dx = dl_bench_ops_tensor (b, "dx", F16, ndim, shape, error)) &&
         (n->gamma = dl_bench_ops_tensor (b, "gamma", F32, 1, &C, error)) &&
         (n->beta = dl_bench_ops_tensor (b, "beta", F32, 1, &C, error)) &&
         (n->dgamma = dl_bench_ops_tensor (b, "dgamma", F32, 1, &C, error)) &&
         (n->dbeta = dl_bench_ops_tensor (b, "dbeta", F32, 1, &C, error));
}

static gboolean
bench_group_norm (DlBenchOps *b, gboolean small, GError **error)
{
  /* ResBlock norms at the 64² level (320 channels) and the 8² level (1280) */
  int64_t shapes[2][4] = { { 2, 320, small ? 32 : 64, small ? 32 : 64 }, { 2, 1280, 8, 8 } };
  for (int i = 0; i < 2; i++)
    {
      Norm n = { .groups = 32 };
      int64_t st[2] = { shapes[i][0], 32 };
      double el = (double)shapes[i][0] * shapes[i][1] * shapes[i][2] * shapes[i][3];
      g_autofree char *s = dl_shape_to_string (4, shapes[i]);
      g_autofree char *shape = g_strdup_printf ("%s G32 f16", s);
      gboolean ok = alloc_act (b, &n, 4, shapes[i], shapes[i][1], error) &&
                    (n.mean = dl_bench_ops_tensor (b, "mean", F32, 2, st, error)) &&
                    (n.rstd = dl_bench_ops_tensor (b, "rstd", F32, 2, st, error)) &&
                    dl_bench_ops_case (b, "group_norm+silu fwd", shape, 0, 2 * 2 * el, rec_gn, &n, error) &&
                    dl_bench_ops_case (b, "group_norm+silu bwd", shape, 0, 3 * 2 * el, rec_gn_bwd, &n, error);
      norm_clear (&n);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
bench_layer_norm (DlBenchOps *b, gboolean small, GError **error)
{
  /* transformer norms at the 64² level (2 x 4096 tokens of 320) and CLIP's 77 x 768 */
  int64_t shapes[2][2] = { { 2 * (small ? 1024 : 4096), 320 }, { 77, 768 } };
  for (int i = 0; i < 2; i++)
    {
      Norm n = { 0 };
      double el = (double)shapes[i][0] * shapes[i][1];
      g_autofree char *s = dl_shape_to_string (2, shapes[i]);
      g_autofree char *shape = g_strdup_printf ("%s f16", s);
      gboolean ok = alloc_act (b, &n, 2, shapes[i], shapes[i][1], error) &&
                    (n.mean = dl_bench_ops_tensor (b, "mean", F32, 1, &shapes[i][0], error)) &&
                    (n.rstd = dl_bench_ops_tensor (b, "rstd", F32, 1, &shapes[i][0], error)) &&
                    dl_bench_ops_case (b, "layer_norm fwd", shape, 0, 2 * 2 * el, rec_ln, &n, error) &&
                    dl_bench_ops_case (b, "layer_norm bwd", shape, 0, 3 * 2 * el, rec_ln_bwd, &n, error);
      norm_clear (&n);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
bench_geglu (DlBenchOps *b, gboolean small, GError **error)
{
  /* the 64²-level feed-forward: 2 x 4096 tokens, 2 x 1280 wide */
  int64_t rows = 2 * (small ? 1024 : 4096), F = 1280;
  int64_t sx[2] = { rows, 2 * F }, sy[2] = { rows, F };
  Norm n = { 0 };
  g_autofree char *s = dl_shape_to_string (2, sx);
  g_autofree char *shape = g_strdup_printf ("%s f16", s);
  double el = (double)rows * F; /* outputs */
  gboolean ok = (n.x = dl_bench_ops_tensor (b, "x", F16, 2, sx, error)) &&
                (n.y = dl_bench_ops_tensor (b, "y", F16, 2, sy, error)) &&
                (n.dy = dl_bench_ops_tensor (b, "dy", F16, 2, sy, error)) &&
                (n.dx = dl_bench_ops_tensor (b, "dx", F16, 2, sx, error)) &&
                dl_bench_ops_case (b, "geglu fwd", shape, 0, 3 * 2 * el, rec_geglu, &n, error) &&
                dl_bench_ops_case (b, "geglu bwd", shape, 0, 5 * 2 * el, rec_geglu_bwd, &n, error);
  norm_clear (&n);
  return ok;
}

static gboolean
bench_resample (DlBenchOps *b, gboolean small, GError **error)
{
  /* the up path's 16² -> 32² upsampler (1280 channels) and the concatenation of
   * h and the skip at that level */
  int64_t side = small ? 8 : 16;
  int64_t sx[4] = { 2, 1280, side, side }, sy[4] = { 2, 1280, 2 * side, 2 * side };
  Norm n = { 0 };
  g_autofree char *s = dl_shape_to_string (4, sx);
  g_autofree char *shape = g_strdup_printf ("%s f16", s);
  double el = (double)2 * 1280 * side * side; /* inputs */
  gboolean ok = (n.x = dl_bench_ops_tensor (b, "x", F16, 4, sx, error)) &&
                (n.y = dl_bench_ops_tensor (b, "y", F16, 4, sy, error)) &&
                (n.dy = dl_bench_ops_tensor (b, "dy", F16, 4, sy, error)) &&
                (n.dx = dl_bench_ops_tensor (b, "dx", F16, 4, sx, error)) &&
                dl_bench_ops_case (b, "upsample2x fwd", shape, 0, 5 * 2 * el, rec_up, &n, error) &&
                dl_bench_ops_case (b, "upsample2x bwd", shape, 0, 5 * 2 * el, rec_up_bwd, &n, error);
  norm_clear (&n);
  if (!ok)
    return FALSE;

  int64_t sa[4] = { 2, 1280, 2 * side, 2 * side }, sc[4] = { 2, 2560, 2 * side, 2 * side };
  g_autofree char *s2 = dl_shape_to_string (4, sc);
  g_autofree char *shape2 = g_strdup_printf ("%s f16", s2);
  double bytes = 2.0 * 2 * 2 * 2560 * 4 * side * side; /* read and write y's size */
  ok = (n.x = dl_bench_ops_tensor (b, "a", F16, 4, sa, error)) &&
       (n.b = dl_bench_ops_tensor (b, "b", F16, 4, sa, error)) &&
       (n.y = dl_bench_ops_tensor (b, "y", F16, 4, sc, error)) &&
       dl_bench_ops_case (b, "concat channels", shape2, 0, bytes, rec_concat, &n, error) &&
       dl_bench_ops_case (b, "split channels", shape2, 0, bytes, rec_split, &n, error);
  norm_clear (&n);
  return ok;
}

gboolean
dl_bench_ops_norm (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  return bench_group_norm (b, small, error) && bench_layer_norm (b, small, error) && bench_geglu (b, small, error) &&
         bench_resample (b, small, error);
}
