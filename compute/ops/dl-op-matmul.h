/* dl-op-matmul.h: batched matrix products, the hot path of everything. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef enum
{
  DL_MATMUL_TILE_AUTO,
  DL_MATMUL_TILE_S, /* 32 x 32 */
  DL_MATMUL_TILE_M, /* 64 x 64 */
  DL_MATMUL_TILE_L, /* 128 x 128 */
  DL_MATMUL_TILE_T, /* 128 x 64: tall */
  DL_MATMUL_TILE_N, /* 16 x 128: few rows (tokens of the inner UNet levels) */
  DL_MATMUL_TILE_C, /* 128 x 16: few columns (a LoRA's rank) */
  DL_MATMUL_TILE_R, /* 4 x 128: a handful of rows */
  DL_MATMUL_N_TILES
} DlMatmulTile;

typedef struct
{
  float alpha;       /* scales the product (default 1) */
  float beta;        /* d = alpha*ab + bias + beta*d; 0 never reads d */
  DlMatmulTile tile; /* AUTO picks from the problem size and the device */
} DlMatmulParams;

#define DL_MATMUL_PARAMS_DEFAULT ((DlMatmulParams){ .alpha = 1.0f, .beta = 0.0f, .tile = DL_MATMUL_TILE_AUTO })

/* d[..., M, N] = op(a)[..., M, K] · op(b)[..., K, N] (+ bias[N]), where op(a) = a
 * ([..., M, K]) or aᵀ (a stored [..., K, M] when trans_a), likewise b ([..., K, N],
 * or [..., N, K] when trans_b: PyTorch's Linear weight layout).  Leading dimensions
 * of a and b either match d's or multiply to 1 (broadcast).  a, b: f32 or f16
 * (independently); d: f32 or f16; bias: b's dtype; fp32 accumulation always.
 * `params` may be NULL for the defaults. */
gboolean dl_op_matmul (DlRecorder *rec, DlTensor *d, DlTensor *a, gboolean trans_a, DlTensor *b, gboolean trans_b,
                       DlTensor *bias, const DlMatmulParams *params, GError **error);

/* The tile DL_MATMUL_TILE_AUTO takes for an M x N product over `batch` batches:
 * dl_gemm_tile_pick's choice ($DREAMLOOM_MATMUL_TILE=s|m|l|t|n|c|r overrides
 * it). */
DlMatmulTile dl_matmul_auto_tile (DlDevice *device, int64_t M, int64_t N, int64_t batch);

/* Tile sizes of a configuration, and whether this device can run it. */
void dl_matmul_tile_dims (DlMatmulTile tile, guint *bm, guint *bn, guint *bk);
gboolean dl_matmul_tile_supported (DlDevice *device, DlMatmulTile tile);
const char *dl_matmul_tile_name (DlMatmulTile tile);

G_END_DECLS
