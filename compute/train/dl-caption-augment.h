/* dl-caption-augment.h: a caption as one training step uses it, with kohya
 * sd-scripts' augmentations (library/train_util.py process_caption):
 * --caption_dropout_rate, then --shuffle_caption with --keep_tokens. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* With probability `dropout` (when > 0) the caption becomes "" (kohya
 * --caption_dropout_rate, decided first).  Otherwise with `shuffle` it is split
 * at commas into tags (each stripped of white space), the tags after the first
 * `keep` are shuffled, and all are joined with ", " (kohya --shuffle_caption,
 * --keep_tokens); without `shuffle` it is returned unchanged.
 *
 * Random choices come from the 32-bit words u[0], u[1], ... (the caller draws
 * them): u[0] decides the dropout (dropped when (u[0] >> 8) * 2^-24 < dropout, as
 * dl_philox_uniform), u[1], u[2], ... the swaps of a Fisher-Yates shuffle done as
 * Python's random.shuffle (i from the last tag down to the second, j =
 * (u * (i + 1)) >> 32).  n_u must be at least 1; dl_caption_augment_n_random
 * words give every choice its own word, and where fewer are given the missing
 * ones are derived from those (deterministically), so a caller with a fixed
 * number of words can shuffle any caption. */
char *dl_caption_augment (const char *caption, gboolean shuffle, guint keep, double dropout, const guint32 *u,
                          gsize n_u);
/* 1 + the number of comma-separated tags of `caption`. */
gsize dl_caption_augment_n_random (const char *caption);

G_END_DECLS
