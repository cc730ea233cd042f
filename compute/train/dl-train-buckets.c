/* dl-train-buckets.c: see dl-train-buckets.h.  Arithmetic as kohya's Python:
 * integer floor division for the sizes, doubles for the aspect ratios. */
#include "dl-config.h"

#include "train/dl-train-buckets.h"

#include <math.h>

#define STEP 64
#define MIN_SIZE 256
#define MAX_SIZE 1024

static int
compare_buckets (gconstpointer a, gconstpointer b)
{
  const DlTrainBucket *x = a, *y = b;
  if (x->width != y->width)
    return x->width < y->width ? -1 : 1;
  return (x->height > y->height) - (x->height < y->height);
}

static void
add_unique (GArray *buckets, int width, int height)
{
  for (guint i = 0; i < buckets->len; i++)
    {
      const DlTrainBucket *b = &g_array_index (buckets, DlTrainBucket, i);
      if (b->width == width && b->height == height)
        return;
    }
  DlTrainBucket b = { width, height };
  g_array_append_val (buckets, b);
}

GArray *
dl_train_buckets_for_resolution (int resolution)
{
  g_return_val_if_fail (resolution >= STEP && resolution % STEP == 0, NULL);
  int min_size = MIN (MIN_SIZE, resolution), max_size = MAX (MAX_SIZE, resolution);
  gint64 max_area = (gint64)resolution * resolution;
  GArray *buckets = g_array_new (FALSE, FALSE, sizeof (DlTrainBucket));

  add_unique (buckets, resolution, resolution); /* int(sqrt(max_area) // 64) * 64 */
  for (int width = min_size; width <= max_size; width += STEP)
    {
      int height = (int)MIN ((gint64)max_size, max_area / width / STEP * STEP);
      if (height >= min_size)
        {
          add_unique (buckets, width, height);
          add_unique (buckets, height, width);
        }
    }
  g_array_sort (buckets, compare_buckets);
  return buckets;
}

guint
dl_train_buckets_select (const DlTrainBucket *buckets, guint n_buckets, int width, int height, int *resized_width,
                         int *resized_height)
{
  g_return_val_if_fail (buckets != NULL && n_buckets > 0 && width > 0 && height > 0, 0);
  double aspect = (double)width / height;
  guint chosen = n_buckets;
  for (guint i = 0; i < n_buckets && chosen == n_buckets; i++)
    if (buckets[i].width == width && buckets[i].height == height)
      chosen = i;
  if (chosen == n_buckets)
    {
      /* np.abs(ar_errors).argmin(): the first of equal errors */
      double best = INFINITY;
      for (guint i = 0; i < n_buckets; i++)
        {
          double error = fabs ((double)buckets[i].width / buckets[i].height - aspect);
          if (error < best)
            {
              best = error;
              chosen = i;
            }
        }
    }
  const DlTrainBucket *b = &buckets[chosen];
  /* wider than the bucket: match the heights, else the widths */
  double scale = aspect > (double)b->width / b->height ? (double)b->height / height : (double)b->width / width;
  int rw = (int)(width * scale + 0.5), rh = (int)(height * scale + 0.5);
  /* the rounding above always covers the bucket; never let it crop past the edge */
  if (resized_width)
    *resized_width = MAX (rw, b->width);
  if (resized_height)
    *resized_height = MAX (rh, b->height);
  return chosen;
}
