/* Host side of matmul.comp: shape checks, batch folding, tile choice. */
#include "dl-op-matmul.h"

#include "dl-op-gemm-tile.h"
#include "dl-op-util.h"

#include <string.h>

/* Indexed by DlMatmulTile; speeds as conv2d's (dl-op-gemm-tile.h). */
static const DlGemmTile tiles[DL_MATMUL_N_TILES] = {
  [DL_MATMUL_TILE_S] = { 32, 32, 16, 4, 2, "s", 0.45 }, [DL_MATMUL_TILE_M] = { 64, 64, 16, 4, 4, "m", 0.6 },
  [DL_MATMUL_TILE_L] = { 128, 128, 8, 8, 8, "l", 1.0 }, [DL_MATMUL_TILE_T] = { 128, 64, 8, 8, 4, "t", 0.9 },
  [DL_MATMUL_TILE_N] = { 16, 128, 16, 2, 8, "n", 0.4 }, [DL_MATMUL_TILE_C] = { 128, 16, 16, 8, 2, "c", 0.4 },
  [DL_MATMUL_TILE_R] = { 4, 128, 16, 1, 4, "r", 0.25 },
};

typedef struct
{
  uint32_t M, N, K;
  uint32_t sa_m, sa_k, sb_k, sb_n, sd_m;
  uint32_t bsa, bsb, bsd;
  uint32_t off_a, off_b, off_d, off_bias;
  uint32_t flags;
  float alpha, beta;
} MatmulPush;

enum
{
  FLAG_BIAS = 1,
  FLAG_ACCUMULATE = 2,
  FLAG_A_K_CONTIG = 4,
  FLAG_B_N_CONTIG = 8,
};

void
dl_matmul_tile_dims (DlMatmulTile tile, guint *bm, guint *bn, guint *bk)
{
  g_return_if_fail (tile > DL_MATMUL_TILE_AUTO && tile < DL_MATMUL_N_TILES);
  *bm = tiles[tile].bm;
  *bn = tiles[tile].bn;
  *bk = tiles[tile].bk;
}

const char *
dl_matmul_tile_name (DlMatmulTile tile)
{
  return tile > DL_MATMUL_TILE_AUTO && tile < DL_MATMUL_N_TILES ? tiles[tile].name : "auto";
}

static gboolean
tile_fits (DlDevice *device, const DlGemmTile *t)
{
  const DlDeviceInfo *info = dl_device_get_info (device);
  guint shared = (t->bm + t->bn) * t->bk * 4;
  guint threads = dl_gemm_tile_threads (t);
  return shared <= info->max_shared_memory && threads <= info->max_workgroup_invocations &&
         threads <= info->max_workgroup_size[0];
}

gboolean
dl_matmul_tile_supported (DlDevice *device, DlMatmulTile tile)
{
  g_return_val_if_fail (tile > DL_MATMUL_TILE_AUTO && tile < DL_MATMUL_N_TILES, FALSE);
  return tile_fits (device, &tiles[tile]);
}

/* the device's tuning.matmul_tile ($DREAMLOOM_MATMUL_TILE) */
static DlMatmulTile
forced_tile (DlDevice *device)
{
  const char *e = dl_device_get_tuning (device)->matmul_tile;
  if (!*e)
    return DL_MATMUL_TILE_AUTO;
  for (int t = DL_MATMUL_TILE_S; t < DL_MATMUL_N_TILES; t++)
    if (g_ascii_strcasecmp (e, tiles[t].name) == 0)
      return (DlMatmulTile)t;
  return DL_MATMUL_TILE_AUTO;
}

DlMatmulTile
dl_matmul_auto_tile (DlDevice *device, int64_t M, int64_t N, int64_t batch)
{
  DlMatmulTile forced = forced_tile (device);
  if (forced != DL_MATMUL_TILE_AUTO)
    return forced;
  /* tiles[0] is AUTO's empty slot */
  const DlGemmTile *t = dl_gemm_tile_pick (device, tiles + 1, DL_MATMUL_N_TILES - 1, tile_fits, M, N, batch);
  return t ? (DlMatmulTile)(t - tiles) : DL_MATMUL_TILE_AUTO;
}

static int64_t
batch_of (const DlTensor *t)
{
  int64_t b = 1;
  for (int i = 0; i < t->ndim - 2; i++)
    b *= t->shape[i];
  return b;
}

static gboolean
shape_error (GError **error, DlTensor *d, DlTensor *a, gboolean ta, DlTensor *b, gboolean tb, const char *why)
{
  g_autofree char *sd = dl_tensor_describe (d);
  g_autofree char *sa = dl_tensor_describe (a);
  g_autofree char *sb = dl_tensor_describe (b);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "matmul: %s = %s%s · %s%s: %s", sd, sa, ta ? "ᵀ" : "", sb,
               tb ? "ᵀ" : "", why);
  return FALSE;
}

gboolean
dl_op_matmul (DlRecorder *rec, DlTensor *d, DlTensor *a, gboolean trans_a, DlTensor *b, gboolean trans_b,
              DlTensor *bias, const DlMatmulParams *params, GError **error)
{
  g_return_val_if_fail (rec != NULL && d != NULL && a != NULL && b != NULL, FALSE);
  DlMatmulParams prm = params ? *params : DL_MATMUL_PARAMS_DEFAULT;
  DlDevice *dev = dl_recorder_get_device (rec);

  guint fmask = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  if (!dl_op_check_dtype ("matmul", a, fmask, error) || !dl_op_check_dtype ("matmul", b, fmask, error) ||
      !dl_op_check_dtype ("matmul", d, fmask, error))
    return FALSE;
  if (a->ndim < 2 || b->ndim < 2 || d->ndim < 2)
    return shape_error (error, d, a, trans_a, b, trans_b, "operands need at least 2 dimensions");

  int64_t M = d->shape[d->ndim - 2], N = d->shape[d->ndim - 1];
  int64_t am = a->shape[a->ndim - (trans_a ? 1 : 2)], K = a->shape[a->ndim - (trans_a ? 2 : 1)];
  int64_t bk = b->shape[b->ndim - (trans_b ? 1 : 2)], bn = b->shape[b->ndim - (trans_b ? 2 : 1)];
  if (am != M || bn != N || bk != K)
    return shape_error (error, d, a, trans_a, b, trans_b, "inner or outer dimensions do not match");
  int64_t batch = batch_of (d), batch_a = batch_of (a), batch_b = batch_of (b);
  if ((batch_a != batch && batch_a != 1) || (batch_b != batch && batch_b != 1))
    return shape_error (error, d, a, trans_a, b, trans_b, "batch dimensions do not match");
  if (bias)
    {
      if (bias->dtype != b->dtype)
        return shape_error (error, d, a, trans_a, b, trans_b, "the bias must have b's dtype");
      if (dl_tensor_numel (bias) != N)
        return shape_error (error, d, a, trans_a, b, trans_b, "the bias must hold N elements");
    }
  if (!dl_op_check_fits_u32 ("matmul", a, error) || !dl_op_check_fits_u32 ("matmul", b, error) ||
      !dl_op_check_fits_u32 ("matmul", d, error))
    return FALSE;
  if (M == 0 || N == 0 || batch == 0)
    return TRUE;

  /* Weights shared across the batch with a plain (untransposed) a: the batch is just
   * more rows, and one tall product fills the GPU better than many short ones. */
  if (batch > 1 && batch_b == 1 && batch_a == batch && !trans_a)
    {
      M *= batch;
      batch = batch_a = 1;
    }
  if (batch > 65535)
    return shape_error (error, d, a, trans_a, b, trans_b, "more than 65535 batches");

  DlMatmulTile tile = prm.tile != DL_MATMUL_TILE_AUTO ? prm.tile : dl_matmul_auto_tile (dev, M, N, batch);
  if (tile == DL_MATMUL_TILE_AUTO || !dl_matmul_tile_supported (dev, tile))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "matmul: tile %s does not fit %s's limits",
                   dl_matmul_tile_name (tile), dl_device_get_info (dev)->name);
      return FALSE;
    }
  const DlGemmTile *t = &tiles[tile];
  uint32_t spec[6] = { dl_gemm_tile_threads (t), t->bm, t->bn, t->bk, t->tm, t->tn };
  g_autofree char *name =
    g_strdup_printf ("matmul_%s_%s_%s", dl_dtype_name (a->dtype), dl_dtype_name (b->dtype), dl_dtype_name (d->dtype));
  DlPipeline *p = dl_device_get_pipeline (dev, name, spec, G_N_ELEMENTS (spec), error);
  if (!p)
    return FALSE;

  /* K == 0 needs no special case: the kernel then writes bias + beta*d */
  if ((M + t->bm - 1) / t->bm > 65535 || (N + t->bn - 1) / t->bn > 65535)
    return shape_error (error, d, a, trans_a, b, trans_b, "more than 65535 tiles along a dimension");

  DlBinding bd[4] = {
    dl_op_bind (rec, a, FALSE),
    dl_op_bind (rec, b, FALSE),
    dl_op_bind (rec, d, TRUE),
    dl_op_bind (rec, bias ? bias : b, FALSE),
  };
  MatmulPush pc = {
    .M = (uint32_t)M,
    .N = (uint32_t)N,
    .K = (uint32_t)K,
    .sa_m = trans_a ? 1 : (uint32_t)K,
    .sa_k = trans_a ? (uint32_t)a->shape[a->ndim - 1] : 1,
    .sb_k = trans_b ? 1 : (uint32_t)N,
    .sb_n = trans_b ? (uint32_t)K : 1,
    .sd_m = (uint32_t)N,
    .bsa = batch_a == 1 ? 0 : (uint32_t)(M * K),
    .bsb = batch_b == 1 ? 0 : (uint32_t)(K * N),
    .bsd = (uint32_t)(M * N),
    .off_a = dl_binding_shader_offset (&bd[0], dl_dtype_size (a->dtype)),
    .off_b = dl_binding_shader_offset (&bd[1], dl_dtype_size (b->dtype)),
    .off_d = dl_binding_shader_offset (&bd[2], dl_dtype_size (d->dtype)),
    .off_bias = dl_binding_shader_offset (&bd[3], dl_dtype_size (b->dtype)),
    .flags = (bias ? FLAG_BIAS : 0) | (prm.beta != 0.0f ? FLAG_ACCUMULATE : 0) | (trans_a ? 0 : FLAG_A_K_CONTIG) |
             (trans_b ? 0 : FLAG_B_N_CONTIG),
    .alpha = prm.alpha,
    .beta = prm.beta,
  };
  return dl_recorder_dispatch (rec, p, bd, 4, &pc, sizeof pc, (uint32_t)((N + t->bn - 1) / t->bn),
                               (uint32_t)((M + t->bm - 1) / t->bm), (uint32_t)batch, error);
}
