/* dl-train-buckets.h: aspect-ratio buckets as kohya sd-scripts makes them
 * (library/model_util.py make_bucket_resolutions, library/train_util.py
 * BucketManager.select_bucket), and the size an image is resized to so that it
 * covers its bucket. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  int width, height;
} DlTrainBucket;

/* Every bucket for `resolution` (a multiple of 64), sorted by (width, height):
 * the square resolution x resolution, and for each width w = 256, 320, ... 1024
 * the pair (w, h) and (h, w) with h = min(1024, floor(resolution^2 / w / 64) * 64)
 * when h >= 256.  kohya refuses a resolution outside [256, 1024] with these
 * limits; here the limits widen to include it, so a smaller resolution gets the
 * one square bucket (no other height reaches it) and a larger one its own
 * square plus the pairs up to that size. */
GArray *dl_train_buckets_for_resolution (int resolution);

/* The bucket of a width x height image (kohya select_bucket): the image's own
 * size when it is a bucket, else the bucket nearest in aspect ratio (the first
 * in order on a tie); `resized` is the size that covers the bucket: the side
 * that is relatively shorter scaled to the bucket's, the other rounded
 * (int(x * scale + 0.5)).  Without buckets pass the one bucket resolution x
 * resolution. */
guint dl_train_buckets_select (const DlTrainBucket *buckets, guint n_buckets, int width, int height, int *resized_width,
                               int *resized_height);

G_END_DECLS
