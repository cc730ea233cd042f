/* dl-train-draws.h: every random choice of one training step, made by the
 * run's own generator or read from a replay file (docs/training.md, “Replay
 * files”: a reference run's draws, so that a whole run can be compared step by
 * step with PyTorch).
 *
 * The generator is counter-based (Philox, compute/dl-philox.h): each draw is a
 * pure function of (seed, step, micro-batch, kind), so a run resumed at step k
 * draws exactly what it would have drawn never stopped. */
#pragma once

#include "io/dl-safetensors.h"
#include "train/dl-train-settings.h"

G_BEGIN_DECLS

typedef struct
{
  int n;      /* instance samples in this micro-batch */
  int n_rows; /* rows of the UNet batch: n, or 2n with prior preservation */
  int latent_h, latent_w;
  gint64 *images;          /* [n] image indices (sorted file order) */
  gint64 *class_images;    /* [n] or NULL */
  gint64 *templates;       /* [n] template line per sample, or NULL */
  gboolean *flips;         /* [n] mirror the image */
  float *latent_eps;       /* [n_rows, 4, h, w] */
  float *noise;            /* [n_rows, 4, h, w] */
  float *offset_eps;       /* [n_rows, 4] or NULL (noise offset off) */
  gint64 *timesteps;       /* [n_rows] */
  guint32 *caption_random; /* [n * DL_DRAWS_CAPTION_WORDS] words for caption shuffling and dropout */
} DlStepDraws;

#define DL_DRAWS_CAPTION_WORDS 64

void dl_step_draws_clear (DlStepDraws *d);

/* ---- the run's generator ---- */

typedef struct
{
  guint64 seed;
  guint n_images;
  guint repeats;
  guint batch;
  guint n_templates;    /* 0: none */
  guint n_class_images; /* prior preservation: each sample gets a class image (rows = 2n); 0: none */
  gboolean flip;
  double noise_offset;
  int n_timesteps;     /* the schedule's (1000) */
  int latent_channels; /* 4 */
  /* image i's bucket (NULL: all in one) and the latent size of each bucket */
  const guint *bucket_of;
  guint n_buckets;
  const int *bucket_latent_hw; /* [n_buckets * 2] */
} DlDrawsConfig;

/* Batches of one pass ("epoch") over the images x repeats: per bucket the
 * entries shuffled and cut into batches of `batch` (a smaller last one), then
 * the batches shuffled (as kohya's bucket batching does). */
typedef struct _DlDraws DlDraws;

DlDraws *dl_draws_new (const DlDrawsConfig *config);
void dl_draws_free (DlDraws *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlDraws, dl_draws_free)
guint dl_draws_batches_per_epoch (DlDraws *d);
/* The draws of micro-batch `micro` (0, 1, ... over the whole run: step * accum + j). */
void dl_draws_make (DlDraws *d, guint64 micro, DlStepDraws *out);

/* ---- replay files ---- */

typedef struct _DlReplay DlReplay;

/* Opens and checks the file: its method and step count against `settings`,
 * then every step's tensors (presence, shapes against the batch and the
 * latent size, dtypes).  Errors name the file and the tensor. */
DlReplay *dl_replay_open (const char *path, const DlTrainSettings *settings, int latent_channels, int latent_size,
                          GError **error);
void dl_replay_free (DlReplay *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlReplay, dl_replay_free)

DlSafetensors *dl_replay_get_file (DlReplay *r);
/* The draws of step s (replays have no gradient accumulation). */
gboolean dl_replay_make (DlReplay *r, gint64 step, DlStepDraws *out, GError **error);
/* The replay's `args` as an argument vector ({dir} replaced by the file's folder). */
char **dl_replay_read_args (const char *path, GError **error);

G_END_DECLS
