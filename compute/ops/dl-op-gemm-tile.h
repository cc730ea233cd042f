/* dl-op-gemm-tile.h: the tile geometry of the GEMM-shaped kernels (matmul.comp
 * and the convolutions' implicit GEMM, shaders/conv/) and the one rule that
 * picks a tile for a product. */
#pragma once

#include "vk/dl-device.h"

G_BEGIN_DECLS

/* A workgroup computes a bm x bn block of the output, walking K bk at a time;
 * each of its (bm/tm)*(bn/tn) threads owns tm x tn outputs.  `speed` is the
 * relative rate of a full tile on a GPU (more outputs per thread do more
 * multiply-adds per shared-memory read). */
typedef struct
{
  guint bm, bn, bk, tm, tn;
  const char *name;
  double speed;
} DlGemmTile;

guint dl_gemm_tile_threads (const DlGemmTile *t);

/* Whether a kernel can run tile `t` on `dev` (its shared memory, thread count
 * and load-mapping limits). */
typedef gboolean (*DlGemmTileFits) (DlDevice *dev, const DlGemmTile *t);

/* The tile of `table` (n entries) that fits and takes the least time for an
 * M x N product over `batch` grid layers, by a wave model: the device runs
 * busy_workgroups workgroups at a time, a wave lasts as long as one full tile
 * (bm * bn / speed), and partial tiles cost as much as full ones.  So a product
 * with few rows gets a short tile instead of a 128 x 128 one computing up to
 * 128x the useful work, and a large one the fastest tile that keeps every
 * slot busy.  Ties go to the earlier entry.  NULL when no tile fits. */
const DlGemmTile *dl_gemm_tile_pick (DlDevice *dev, const DlGemmTile *table, guint n, DlGemmTileFits fits, int64_t M,
                                     int64_t N, int64_t batch);

G_END_DECLS
