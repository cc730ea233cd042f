/* The tile choice shared by matmul and conv2d. */
#include "dl-op-gemm-tile.h"

guint
dl_gemm_tile_threads (const DlGemmTile *t)
{
  return (t->bm / t->tm) * (t->bn / t->tn);
}

const DlGemmTile *
dl_gemm_tile_pick (DlDevice *dev, const DlGemmTile *table, guint n, DlGemmTileFits fits, int64_t M, int64_t N,
                   int64_t batch)
{
  int64_t slots = MAX (1, (int64_t)dl_device_get_info (dev)->busy_workgroups);
  const DlGemmTile *best = NULL;
  double best_cost = 0;
  for (guint i = 0; i < n; i++)
    {
      const DlGemmTile *t = &table[i];
      if (!fits (dev, t))
        continue;
      int64_t groups = ((M + t->bm - 1) / t->bm) * ((N + t->bn - 1) / t->bn) * batch;
      int64_t waves = (groups + slots - 1) / slots;
      double cost = (double)waves * t->bm * t->bn / t->speed;
      if (!best || cost < best_cost)
        {
          best = t;
          best_cost = cost;
        }
    }
  return best;
}
