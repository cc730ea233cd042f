/* Host side of shaders/norm: GroupNorm (gn_*.comp) and LayerNorm (ln_*.comp),
 * with norm_param_reduce.comp for dgamma/dbeta of both. */
#include "dl-op-norm.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>

#define WG 256
/* GroupNorm: aim for this many (group, chunk) workgroups, so that 64 huge groups
 * ([2, 320, 64, 64] with 32 groups) still fill a large GPU ... */
#define GN_TARGET_ITEMS 1024
/* ... but into no more than ceil(M / GN_MIN_CHUNK) chunks, so each workgroup
 * still has several elements per thread. */
#define GN_MIN_CHUNK 2048
/* LayerNorm parameter gradient: threads (chunks x columns) to aim for. */
#define LN_TARGET_THREADS 16384

/* flags shared by the shaders */
#define FLAG_GAMMA 1u
#define FLAG_BETA 2u
#define FLAG_SILU 4u
#define FLAG_STATS 8u
#define RED_DGAMMA 1u
#define RED_DBETA 2u
#define RED_ACCUMULATE 4u

typedef struct
{
  uint32_t groups, M, chunk, nchunks;
  uint32_t off_x, off_part;
} GnStatsPush;

typedef struct
{
  uint32_t groups, M, chunk, nchunks;
  uint32_t S, Cg, G;
  uint32_t off_x, off_y, off_g, off_b, off_part, off_mean, off_rstd;
  float eps;
  uint32_t flags;
} GnNormPush;

typedef struct
{
  uint32_t rows, S, C, Cg, G, lanes;
  uint32_t off_x, off_dy, off_g, off_b, off_mean, off_rstd, off_ab;
  uint32_t flags;
} GnRowsPush;

typedef struct
{
  uint32_t groups, M, chunk, nchunks;
  uint32_t S, Cg, G;
  uint32_t off_x, off_dy, off_dx, off_g, off_b, off_mean, off_rstd, off_ab;
  uint32_t flags;
} GnDxPush;

typedef struct
{
  uint32_t R, C;
  uint32_t off_ab, off_dg, off_db;
  uint32_t flags;
} ParamReducePush;

typedef struct
{
  uint32_t rows, C;
  uint32_t off_x, off_y, off_g, off_b, off_mean, off_rstd;
  float eps;
  uint32_t flags;
} LnFwdPush;

typedef struct
{
  uint32_t rows, C;
  uint32_t off_x, off_dy, off_dx, off_g, off_mean, off_rstd;
  uint32_t flags;
} LnDxPush;

typedef struct
{
  uint32_t rows, C, chunk, nchunks;
  uint32_t off_x, off_dy, off_mean, off_rstd, off_ab;
} LnParamPush;

#define FLOAT_MASK (DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16))

/* ---- checks ---- */

static gboolean
check_act (const char *op, const char *what, DlTensor *t, DlTensor *like, GError **error)
{
  if (!dl_op_check_same_shape (op, like, t, error))
    return FALSE;
  if (t->dtype != like->dtype)
    {
      g_autofree char *d = dl_tensor_describe (t);
      g_autofree char *l = dl_tensor_describe (like);
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s %s must have the dtype of %s", op, what, d, l);
      return FALSE;
    }
  return TRUE;
}

/* gamma, beta, dgamma, dbeta: C elements of f32 or f16. */
static gboolean
check_param (const char *op, const char *what, DlTensor *t, int64_t C, GError **error)
{
  if (!t)
    return TRUE;
  if (!dl_op_check_dtype (op, t, FLOAT_MASK, error))
    return FALSE;
  if (dl_tensor_numel (t) != C)
    {
      g_autofree char *d = dl_tensor_describe (t);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s %s must have %" G_GINT64_FORMAT " elements", op,
                   what, d, C);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_pair_dtype (const char *op, const char *what, DlTensor *a, DlTensor *b, GError **error)
{
  if (!a || !b || a->dtype == b->dtype)
    return TRUE;
  g_autofree char *da = dl_tensor_describe (a);
  g_autofree char *db = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s %s and %s must share a dtype", op, what, da, db);
  return FALSE;
}

/* mean / rstd: f32 with `count` elements. */
static gboolean
check_stats (const char *op, const char *what, DlTensor *t, int64_t count, GError **error)
{
  if (!t)
    return TRUE;
  if (t->dtype != DL_DTYPE_F32 || dl_tensor_numel (t) != count)
    {
      g_autofree char *d = dl_tensor_describe (t);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: %s %s must be f32 with %" G_GINT64_FORMAT " elements", op, what, d, count);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  int64_t N, C, S, G, Cg, M;
} GnShape;

static gboolean
check_gn_x (const char *op, DlTensor *x, int groups, GnShape *s, GError **error)
{
  if (!dl_op_check_dtype (op, x, FLOAT_MASK, error) || !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  if (x->ndim < 2)
    {
      g_autofree char *d = dl_tensor_describe (x);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s has no channel axis (need [N, C, ...])", op, d);
      return FALSE;
    }
  s->N = x->shape[0];
  s->C = x->shape[1];
  s->S = 1;
  for (int i = 2; i < x->ndim; i++)
    s->S *= x->shape[i];
  if (groups <= 0 || s->C % groups != 0)
    {
      g_autofree char *d = dl_tensor_describe (x);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: %d groups do not divide the %" G_GINT64_FORMAT " channels of %s", op, groups, s->C, d);
      return FALSE;
    }
  s->G = groups;
  s->Cg = s->C / groups;
  s->M = s->Cg * s->S;
  return TRUE;
}

static gboolean
check_eps (const char *op, float eps, GError **error)
{
  if (isfinite (eps) && eps >= 0)
    return TRUE;
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: eps %g must be finite and not negative", op,
               (double)eps);
  return FALSE;
}

/* ---- shared pieces ---- */

/* Workgroups for a loop over `items` workgroup-sized work items. */
static guint32
item_groups (DlRecorder *rec, int64_t items)
{
  return dl_op_groups (rec, items, 1);
}

static void
gn_chunking (const GnShape *s, int64_t *chunk, int64_t *nchunks)
{
  int64_t groups = s->N * s->G;
  int64_t n = 1;
  if (groups < GN_TARGET_ITEMS)
    n = MIN ((GN_TARGET_ITEMS + groups - 1) / groups, (s->M + GN_MIN_CHUNK - 1) / GN_MIN_CHUNK);
  n = MAX (n, 1);
  *chunk = (s->M + n - 1) / n;
  *nchunks = (s->M + *chunk - 1) / *chunk;
}

/* A binding for an optional read-only tensor: `t`, or `fallback` (never read by the
 * shader, which is told by a flag).  Returns the shader offset in elements. */
static uint32_t
bind_opt (DlRecorder *rec, DlBinding *b, DlTensor *t, DlTensor *fallback)
{
  DlTensor *u = t ? t : fallback;
  *b = dl_op_bind (rec, u, FALSE);
  return dl_binding_shader_offset (b, dl_dtype_size (u->dtype));
}

static uint32_t
bind_off (DlRecorder *rec, DlBinding *b, DlTensor *t, gboolean write)
{
  *b = dl_op_bind (rec, t, write);
  return dl_binding_shader_offset (b, dl_dtype_size (t->dtype));
}

/* dgamma/dbeta (+)= sums over the R rows of ab [R, C, 2]. */
static gboolean
param_reduce (DlRecorder *rec, DlTensor *dgamma, DlTensor *dbeta, DlTensor *ab, int64_t R, int64_t C,
              gboolean accumulate, GError **error)
{
  if (!dgamma && !dbeta)
    return TRUE;
  DlTensor *dg = dgamma ? dgamma : dbeta, *db = dbeta ? dbeta : dgamma;
  DlPipeline *p = dl_op_pipeline (rec, error, "norm_param_reduce_%s", dl_dtype_name (dg->dtype));
  if (!p)
    return FALSE;
  DlBinding b[3];
  ParamReducePush pc = {
    .R = (uint32_t)R,
    .C = (uint32_t)C,
    .flags = (dgamma ? RED_DGAMMA : 0u) | (dbeta ? RED_DBETA : 0u) | (accumulate ? RED_ACCUMULATE : 0u),
  };
  pc.off_ab = bind_off (rec, &b[0], ab, FALSE);
  pc.off_dg = bind_off (rec, &b[1], dg, TRUE);
  pc.off_db = bind_off (rec, &b[2], db, TRUE);
  return dl_recorder_dispatch (rec, p, b, 3, &pc, sizeof pc, dl_op_groups (rec, C, WG), 1, 1, error);
}

/* The dtype name for the parameter slot of a shader (any when both are absent). */
static const char *
param_dtype_name (DlTensor *gamma, DlTensor *beta, DlTensor *x)
{
  DlTensor *t = gamma ? gamma : beta ? beta : x;
  return dl_dtype_name (t->dtype);
}

/* ---- GroupNorm ---- */

gboolean
dl_op_group_norm (DlRecorder *rec, DlTensor *y, DlTensor *mean, DlTensor *rstd, DlTensor *x, DlTensor *gamma,
                  DlTensor *beta, int groups, float eps, gboolean silu, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  const char *op = "group_norm";
  GnShape s;
  if (!check_gn_x (op, x, groups, &s, error) || !check_act (op, "y", y, x, error) ||
      !check_param (op, "gamma", gamma, s.C, error) || !check_param (op, "beta", beta, s.C, error) ||
      !check_pair_dtype (op, "gamma and beta", gamma, beta, error) ||
      !check_stats (op, "mean", mean, s.N * s.G, error) || !check_stats (op, "rstd", rstd, s.N * s.G, error) ||
      !check_eps (op, eps, error))
    return FALSE;
  if (dl_tensor_numel (x) == 0)
    {
      /* torch: the statistics of an empty group are NaN */
      if (s.N * s.G == 0)
        return TRUE;
      return (!mean || dl_op_fill (rec, mean, NAN, error)) && (!rstd || dl_op_fill (rec, rstd, NAN, error));
    }

  DlDevice *dev = dl_recorder_get_device (rec);
  int64_t chunk, nchunks;
  gn_chunking (&s, &chunk, &nchunks);
  int64_t ngroups = s.N * s.G, items = ngroups * nchunks;
  int64_t pshape[3] = { ngroups, nchunks, 2 };
  g_autoptr (DlTensor) part = dl_tensor_new (dev, "group_norm chunk statistics", DL_DTYPE_F32, 3, pshape, error);
  if (!part)
    return FALSE;
  g_autoptr (DlTensor) tmp_mean = NULL, tmp_rstd = NULL;
  if (!mean && !(mean = tmp_mean = dl_tensor_new_1d (dev, "group_norm mean", DL_DTYPE_F32, ngroups, error)))
    return FALSE;
  if (!rstd && !(rstd = tmp_rstd = dl_tensor_new_1d (dev, "group_norm rstd", DL_DTYPE_F32, ngroups, error)))
    return FALSE;

  DlPipeline *ps = dl_op_pipeline (rec, error, "gn_stats_%s", dl_dtype_name (x->dtype));
  if (!ps)
    return FALSE;
  DlBinding b[7];
  GnStatsPush sp = {
    .groups = (uint32_t)ngroups,
    .M = (uint32_t)s.M,
    .chunk = (uint32_t)chunk,
    .nchunks = (uint32_t)nchunks,
  };
  sp.off_x = bind_off (rec, &b[0], x, FALSE);
  sp.off_part = bind_off (rec, &b[1], part, TRUE);
  if (!dl_recorder_dispatch (rec, ps, b, 2, &sp, sizeof sp, item_groups (rec, items), 1, 1, error))
    return FALSE;

  DlPipeline *pn =
    dl_op_pipeline (rec, error, "gn_norm_%s_%s", dl_dtype_name (x->dtype), param_dtype_name (gamma, beta, x));
  if (!pn)
    return FALSE;
  GnNormPush np = {
    .groups = (uint32_t)ngroups,
    .M = (uint32_t)s.M,
    .chunk = (uint32_t)chunk,
    .nchunks = (uint32_t)nchunks,
    .S = (uint32_t)s.S,
    .Cg = (uint32_t)s.Cg,
    .G = (uint32_t)s.G,
    .eps = eps,
    .flags = (gamma ? FLAG_GAMMA : 0u) | (beta ? FLAG_BETA : 0u) | (silu ? FLAG_SILU : 0u) | FLAG_STATS,
  };
  np.off_x = bind_off (rec, &b[0], x, FALSE);
  np.off_g = bind_opt (rec, &b[1], gamma, beta ? beta : x);
  np.off_b = bind_opt (rec, &b[2], beta, gamma ? gamma : x);
  np.off_part = bind_off (rec, &b[3], part, FALSE);
  np.off_mean = bind_off (rec, &b[4], mean, TRUE);
  np.off_rstd = bind_off (rec, &b[5], rstd, TRUE);
  np.off_y = bind_off (rec, &b[6], y, TRUE);
  return dl_recorder_dispatch (rec, pn, b, 7, &np, sizeof np, item_groups (rec, items), 1, 1, error);
}

gboolean
dl_op_group_norm_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dgamma, DlTensor *dbeta, DlTensor *x,
                           DlTensor *gamma, DlTensor *beta, DlTensor *mean, DlTensor *rstd, DlTensor *dy, int groups,
                           gboolean silu, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && x != NULL && mean != NULL && rstd != NULL && dy != NULL, FALSE);
  const char *op = "group_norm_backward";
  GnShape s;
  if (!check_gn_x (op, x, groups, &s, error) || !check_act (op, "dy", dy, x, error) ||
      (dx && !check_act (op, "dx", dx, x, error)) || !check_param (op, "gamma", gamma, s.C, error) ||
      !check_param (op, "beta", beta, s.C, error) || !check_param (op, "dgamma", dgamma, s.C, error) ||
      !check_param (op, "dbeta", dbeta, s.C, error) || !check_pair_dtype (op, "gamma and beta", gamma, beta, error) ||
      !check_pair_dtype (op, "dgamma and dbeta", dgamma, dbeta, error) ||
      !check_stats (op, "mean", mean, s.N * s.G, error) || !check_stats (op, "rstd", rstd, s.N * s.G, error))
    return FALSE;
  if (!dx && !dgamma && !dbeta)
    return TRUE;
  if (dl_tensor_numel (x) == 0)
    {
      /* an empty batch or spatial extent: the parameter gradients are sums over nothing */
      if (accumulate || s.C == 0)
        return TRUE;
      return (!dgamma || dl_op_fill (rec, dgamma, 0.0, error)) && (!dbeta || dl_op_fill (rec, dbeta, 0.0, error));
    }

  DlDevice *dev = dl_recorder_get_device (rec);
  const char *adt = dl_dtype_name (x->dtype), *bdt = param_dtype_name (gamma, beta, x);
  uint32_t flags = (gamma ? FLAG_GAMMA : 0u) | (beta ? FLAG_BETA : 0u) | (silu ? FLAG_SILU : 0u);
  DlTensor *gamma_fb = beta ? beta : x, *beta_fb = gamma ? gamma : x;

  /* per-(n, c) sums of dz and dz * xhat */
  int64_t rows = s.N * s.C;
  int64_t abshape[3] = { s.N, s.C, 2 };
  g_autoptr (DlTensor) ab = dl_tensor_new (dev, "group_norm row sums", DL_DTYPE_F32, 3, abshape, error);
  if (!ab)
    return FALSE;
  DlPipeline *pr = dl_op_pipeline (rec, error, "gn_bwd_rows_%s_%s", adt, bdt);
  if (!pr)
    return FALSE;
  uint32_t lanes = 1;
  while (lanes < WG && lanes < s.S)
    lanes *= 2;
  DlBinding b[8];
  GnRowsPush rp = {
    .rows = (uint32_t)rows,
    .S = (uint32_t)s.S,
    .C = (uint32_t)s.C,
    .Cg = (uint32_t)s.Cg,
    .G = (uint32_t)s.G,
    .lanes = lanes,
    .flags = flags,
  };
  rp.off_x = bind_off (rec, &b[0], x, FALSE);
  rp.off_dy = bind_off (rec, &b[1], dy, FALSE);
  rp.off_g = bind_opt (rec, &b[2], gamma, gamma_fb);
  rp.off_b = bind_opt (rec, &b[3], beta, beta_fb);
  rp.off_mean = bind_off (rec, &b[4], mean, FALSE);
  rp.off_rstd = bind_off (rec, &b[5], rstd, FALSE);
  rp.off_ab = bind_off (rec, &b[6], ab, TRUE);
  int64_t blocks = (rows + (WG / lanes) - 1) / (WG / lanes);
  if (!dl_recorder_dispatch (rec, pr, b, 7, &rp, sizeof rp, item_groups (rec, blocks), 1, 1, error))
    return FALSE;

  if (!param_reduce (rec, dgamma, dbeta, ab, s.N, s.C, accumulate, error))
    return FALSE;
  if (!dx)
    return TRUE;

  int64_t chunk, nchunks;
  gn_chunking (&s, &chunk, &nchunks);
  int64_t items = s.N * s.G * nchunks;
  DlPipeline *pd = dl_op_pipeline (rec, error, "gn_bwd_dx_%s_%s", adt, bdt);
  if (!pd)
    return FALSE;
  GnDxPush dp = {
    .groups = (uint32_t)(s.N * s.G),
    .M = (uint32_t)s.M,
    .chunk = (uint32_t)chunk,
    .nchunks = (uint32_t)nchunks,
    .S = (uint32_t)s.S,
    .Cg = (uint32_t)s.Cg,
    .G = (uint32_t)s.G,
    .flags = flags,
  };
  dp.off_x = bind_off (rec, &b[0], x, FALSE);
  dp.off_dy = bind_off (rec, &b[1], dy, FALSE);
  dp.off_g = bind_opt (rec, &b[2], gamma, gamma_fb);
  dp.off_b = bind_opt (rec, &b[3], beta, beta_fb);
  dp.off_mean = bind_off (rec, &b[4], mean, FALSE);
  dp.off_rstd = bind_off (rec, &b[5], rstd, FALSE);
  dp.off_ab = bind_off (rec, &b[6], ab, FALSE);
  dp.off_dx = bind_off (rec, &b[7], dx, TRUE);
  return dl_recorder_dispatch (rec, pd, b, 8, &dp, sizeof dp, item_groups (rec, items), 1, 1, error);
}

/* ---- LayerNorm ---- */

/* Threads per row: enough to cover short rows without idling most of them. */
static uint32_t
ln_row_threads (int64_t C)
{
  return C <= 128 ? 32 : C <= 512 ? 64 : C <= 2048 ? 128 : 256;
}

static gboolean
check_ln_x (const char *op, DlTensor *x, int64_t *rows, int64_t *C, GError **error)
{
  if (!dl_op_check_dtype (op, x, FLOAT_MASK, error) || !dl_op_check_fits_u32 (op, x, error))
    return FALSE;
  if (x->ndim < 1)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: a scalar has no last dimension", op);
      return FALSE;
    }
  *C = x->shape[x->ndim - 1];
  *rows = 1;
  for (int i = 0; i < x->ndim - 1; i++)
    *rows *= x->shape[i];
  return TRUE;
}

static DlPipeline *
ln_pipeline (DlRecorder *rec, const char *kind, DlTensor *x, DlTensor *gamma, DlTensor *beta, int64_t C, GError **error)
{
  g_autofree char *name =
    g_strdup_printf ("ln_%s_%s_%s", kind, dl_dtype_name (x->dtype), param_dtype_name (gamma, beta, x));
  uint32_t wg = ln_row_threads (C);
  return dl_device_get_pipeline (dl_recorder_get_device (rec), name, &wg, 1, error);
}

gboolean
dl_op_layer_norm (DlRecorder *rec, DlTensor *y, DlTensor *mean, DlTensor *rstd, DlTensor *x, DlTensor *gamma,
                  DlTensor *beta, float eps, GError **error)
{
  g_return_val_if_fail (rec != NULL && y != NULL && x != NULL, FALSE);
  const char *op = "layer_norm";
  int64_t rows, C;
  if (!check_ln_x (op, x, &rows, &C, error) || !check_act (op, "y", y, x, error) ||
      !check_param (op, "gamma", gamma, C, error) || !check_param (op, "beta", beta, C, error) ||
      !check_pair_dtype (op, "gamma and beta", gamma, beta, error) || !check_stats (op, "mean", mean, rows, error) ||
      !check_stats (op, "rstd", rstd, rows, error) || !check_eps (op, eps, error))
    return FALSE;
  if (rows == 0)
    return TRUE;
  if (C == 0)
    {
      /* torch: mean and variance of nothing are NaN */
      return (!mean || dl_op_fill (rec, mean, NAN, error)) && (!rstd || dl_op_fill (rec, rstd, NAN, error));
    }
  DlPipeline *p = ln_pipeline (rec, "fwd", x, gamma, beta, C, error);
  if (!p)
    return FALSE;
  DlBinding b[6];
  LnFwdPush pc = {
    .rows = (uint32_t)rows,
    .C = (uint32_t)C,
    .eps = eps,
    .flags = (gamma ? FLAG_GAMMA : 0u) | (beta ? FLAG_BETA : 0u) | (mean && rstd ? FLAG_STATS : 0u),
  };
  g_autoptr (DlTensor) tmp = NULL;
  if ((mean != NULL) != (rstd != NULL))
    {
      /* one of the two wanted: keep the shader simple, give it a place for both */
      if (!(tmp = dl_tensor_new_1d (dl_recorder_get_device (rec), "layer_norm statistics", DL_DTYPE_F32, rows, error)))
        return FALSE;
      mean = mean ? mean : tmp;
      rstd = rstd ? rstd : tmp;
      pc.flags |= FLAG_STATS;
    }
  pc.off_x = bind_off (rec, &b[0], x, FALSE);
  pc.off_g = bind_opt (rec, &b[1], gamma, beta ? beta : x);
  pc.off_b = bind_opt (rec, &b[2], beta, gamma ? gamma : x);
  if (mean)
    {
      pc.off_mean = bind_off (rec, &b[3], mean, TRUE);
      pc.off_rstd = bind_off (rec, &b[4], rstd, TRUE);
    }
  else
    {
      /* neither wanted: y fills their slots, and the shader does not write them */
      pc.off_mean = bind_off (rec, &b[3], y, TRUE);
      pc.off_rstd = bind_off (rec, &b[4], y, TRUE);
    }
  pc.off_y = bind_off (rec, &b[5], y, TRUE);
  return dl_recorder_dispatch (rec, p, b, 6, &pc, sizeof pc, item_groups (rec, rows), 1, 1, error);
}

gboolean
dl_op_layer_norm_backward (DlRecorder *rec, DlTensor *dx, DlTensor *dgamma, DlTensor *dbeta, DlTensor *x,
                           DlTensor *gamma, DlTensor *mean, DlTensor *rstd, DlTensor *dy, gboolean accumulate,
                           GError **error)
{
  g_return_val_if_fail (rec != NULL && x != NULL && mean != NULL && rstd != NULL && dy != NULL, FALSE);
  const char *op = "layer_norm_backward";
  int64_t rows, C;
  if (!check_ln_x (op, x, &rows, &C, error) || !check_act (op, "dy", dy, x, error) ||
      (dx && !check_act (op, "dx", dx, x, error)) || !check_param (op, "gamma", gamma, C, error) ||
      !check_param (op, "dgamma", dgamma, C, error) || !check_param (op, "dbeta", dbeta, C, error) ||
      !check_pair_dtype (op, "dgamma and dbeta", dgamma, dbeta, error) ||
      !check_stats (op, "mean", mean, rows, error) || !check_stats (op, "rstd", rstd, rows, error))
    return FALSE;
  if (C == 0)
    return TRUE;
  if (rows == 0)
    {
      if (accumulate)
        return TRUE;
      return (!dgamma || dl_op_fill (rec, dgamma, 0.0, error)) && (!dbeta || dl_op_fill (rec, dbeta, 0.0, error));
    }
  DlBinding b[6];
  if (dx)
    {
      DlPipeline *p = ln_pipeline (rec, "bwd_dx", x, gamma, NULL, C, error);
      if (!p)
        return FALSE;
      LnDxPush pc = { .rows = (uint32_t)rows, .C = (uint32_t)C, .flags = gamma ? FLAG_GAMMA : 0u };
      pc.off_x = bind_off (rec, &b[0], x, FALSE);
      pc.off_dy = bind_off (rec, &b[1], dy, FALSE);
      pc.off_g = bind_opt (rec, &b[2], gamma, x);
      pc.off_mean = bind_off (rec, &b[3], mean, FALSE);
      pc.off_rstd = bind_off (rec, &b[4], rstd, FALSE);
      pc.off_dx = bind_off (rec, &b[5], dx, TRUE);
      if (!dl_recorder_dispatch (rec, p, b, 6, &pc, sizeof pc, item_groups (rec, rows), 1, 1, error))
        return FALSE;
    }
  if (!dgamma && !dbeta)
    return TRUE;

  /* column sums in two stages: chunks of rows, then over the chunks */
  int64_t nchunks = MIN (rows, MAX ((int64_t)1, (LN_TARGET_THREADS + C - 1) / C));
  int64_t chunk = (rows + nchunks - 1) / nchunks;
  nchunks = (rows + chunk - 1) / chunk;
  int64_t abshape[3] = { nchunks, C, 2 };
  g_autoptr (DlTensor) ab =
    dl_tensor_new (dl_recorder_get_device (rec), "layer_norm column sums", DL_DTYPE_F32, 3, abshape, error);
  if (!ab)
    return FALSE;
  DlPipeline *p = dl_op_pipeline (rec, error, "ln_bwd_param_%s", dl_dtype_name (x->dtype));
  if (!p)
    return FALSE;
  LnParamPush pc = {
    .rows = (uint32_t)rows,
    .C = (uint32_t)C,
    .chunk = (uint32_t)chunk,
    .nchunks = (uint32_t)nchunks,
  };
  pc.off_x = bind_off (rec, &b[0], x, FALSE);
  pc.off_dy = bind_off (rec, &b[1], dy, FALSE);
  pc.off_mean = bind_off (rec, &b[2], mean, FALSE);
  pc.off_rstd = bind_off (rec, &b[3], rstd, FALSE);
  pc.off_ab = bind_off (rec, &b[4], ab, TRUE);
  if (!dl_recorder_dispatch (rec, p, b, 5, &pc, sizeof pc, dl_op_groups (rec, nchunks * C, WG), 1, 1, error))
    return FALSE;
  return param_reduce (rec, dgamma, dbeta, ab, nchunks, C, accumulate, error);
}
