/* dl-caption-augment.c: see dl-caption-augment.h. */
#include "dl-config.h"

#include "train/dl-caption-augment.h"

#include <string.h>

gsize
dl_caption_augment_n_random (const char *caption)
{
  g_return_val_if_fail (caption != NULL, 1);
  gsize n = 1;
  for (const char *p = caption; *p; p++)
    n += *p == ',';
  return 1 + n;
}

/* Word k of the draw: u[k], or past the end of u one made from u[1 + (k - 1) % (n_u - 1)]
 * and k (a splitmix64 finalizer), so a caller with a fixed number of words still
 * shuffles a caption with more tags. */
static guint32
word (const guint32 *u, gsize n_u, gsize k)
{
  if (k < n_u)
    return u[k];
  guint64 z = (guint64)(n_u > 1 ? u[1 + (k - 1) % (n_u - 1)] : u[0]) ^ ((guint64)k << 32);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (guint32)((z ^ (z >> 31)) >> 32);
}

char *
dl_caption_augment (const char *caption, gboolean shuffle, guint keep, double dropout, const guint32 *u, gsize n_u)
{
  g_return_val_if_fail (caption != NULL, NULL);
  g_return_val_if_fail (u != NULL && n_u >= 1, NULL);

  /* kohya: caption_dropout_rate > 0 and random.random() < caption_dropout_rate */
  if (dropout > 0 && (double)(u[0] >> 8) * (1.0 / (1 << 24)) < dropout)
    return g_strdup ("");
  if (!shuffle)
    return g_strdup (caption);

  /* tokens = [t.strip() for t in caption.strip().split(",")]: stripping the
   * whole caption first only changes the ends, which the tags strip anyway */
  g_auto (GStrv) tags = g_strsplit (caption, ",", -1);
  guint n = g_strv_length (tags);
  for (guint i = 0; i < n; i++)
    g_strstrip (tags[i]);

  /* random.shuffle on the tags after the first `keep` */
  guint first = MIN (keep, n);
  char **flex = tags + first;
  guint n_flex = n - first;
  gsize k = 1;
  for (guint i = n_flex > 0 ? n_flex - 1 : 0; i > 0; i--)
    {
      guint j = (guint)(((guint64)word (u, n_u, k++) * (i + 1)) >> 32);
      char *t = flex[i];
      flex[i] = flex[j];
      flex[j] = t;
    }
  return g_strjoinv (", ", tags);
}
