/* dl-trainer-private.h: the parts of a run shared by the trainer's files
 * (dl-trainer.c: the loop and the step; dl-train-state.c: saving and resuming;
 * dl-latent-cache.c; the methods dl-train-lora.c and dl-train-ti.c). */
#pragma once

#include "io/dl-model-hash.h"
#include "nn/dl-params.h"
#include "text/dl-clip-tokenizer.h"
#include "train/dl-loss-log.h"
#include "train/dl-optimizer.h"
#include "train/dl-train-draws.h"
#include "train/dl-train-images.h"
#include "train/dl-trainer.h"

G_BEGIN_DECLS

typedef struct _DlTrainMethodOps DlTrainMethodOps;

/* The VAE posterior of one image at its bucket: mean and std, never one sample,
 * since every step draws a fresh latent as diffusers' latent_dist.sample() does
 * (docs/training.md, “One training step”). */
typedef struct
{
  float *mean; /* [L, h, w] */
  float *std;
  float *mean_flipped; /* with --flip: the mirrored image's; else NULL */
  float *std_flipped;
  int h, w;
} DlLatentMoments;

struct _DlTrainer
{
  DlDevice *device;
  DlTrainSettings *settings;
  char *run_dir;
  DlSdModel *model;
  DlSdModel *owned_model; /* when the trainer loaded it */
  DlClipTokenizer *tok;
  DlClipTokenizer *tok2; /* SDXL's tokenizer_2 (OpenCLIP/kohya padding), else NULL */
  DlTrainImages *images;
  GPtrArray *image_paths;      /* dl_trainer_set_images: the files (else settings->images' folder) */
  GHashTable *image_captions;  /* path -> its given caption, which wins over the caption file */
  DlLatentMoments *moments;    /* [n_images] */
  DlTrainImages *class_images; /* prior preservation (DreamBooth), or NULL */
  DlLatentMoments *class_moments;
  char **templates; /* TI: template lines */
  guint n_templates;
  DlDraws *draws;
  DlReplay *replay;
  DlOptimizer *opt;
  const DlTrainMethodOps *method;
  gpointer method_data;
  gboolean train_text;         /* the text encoder's output depends on trained tensors */
  GHashTable *text_cache;      /* prompt -> float [77 * C] (frozen text encoder) */
  gboolean text_encoders_away; /* they wait in host memory (dl_train_settings_text_encoders_off_device) */

  gint64 step;     /* steps done */
  double lr_scale; /* 1, halved by each rollback */
  int non_finite_streak;
  gint64 best_step; /* -1: none */
  double best_val;
  double last_val;        /* NaN until the first validation */
  GArray *checkpoints;    /* gint64 steps with a state file, oldest first */
  GArray *validations;    /* DlTrainValidation, in step order (run.json keeps them) */
  GArray *losses;         /* DlLossEntry of every step (losses.csv keeps them) */
  gboolean finished;      /* the final export is written */
  char *model_hash;       /* identity of the base model (refuses resuming onto another) */
  DlModelHashes hashes;   /* what the exported files say of the base model */
  gint64 started_at;      /* wall clock (µs) of the run's first start */
  gint64 inject_nan_from; /* $DREAMLOOM_TEST_INJECT_NAN (tests): steps to poison (from 1), or -1 */
  gint64 inject_nan_to;
  gint64 inject_nan_done; /* the last step poisoned */
  gboolean prepared;
  gboolean resuming;

  /* progress */
  gint64 t_first_step; /* monotonic µs at the first step of this session */
  gint64 steps_this_session;

  GCancellable *cancellable;
  GMutex pause_lock;
  GCond pause_cond;
  gboolean paused;

  DlTrainBetweenStepsFunc between_func;
  gpointer between_data;

  DlTrainEventFunc event_func;
  gpointer event_data;
  GDestroyNotify event_destroy;
};

/* ---- methods ---- */

struct _DlTrainMethodOps
{
  const char *name;
  /* create or load the trained tensors, attach them to the model, add them to the optimizer */
  gboolean (*setup) (DlTrainer *t, GError **error);
  /* the prompt of sample i of a step (image index, template line or -1) */
  char *(*prompt) (DlTrainer *t, guint image, gint64 template_line, const char *caption);
  gboolean (*export) (DlTrainer *t, const char *path, GError **error);
  /* words substituted for "S*" in the preview templates (the trigger) */
  char *(*trigger) (DlTrainer *t);
  /* before each forward: training (TRUE) or evaluating, at step (may be NULL) */
  void (*begin_forward) (DlTrainer *t, gboolean train);
  void (*free) (gpointer data);
};

extern const DlTrainMethodOps dl_train_method_lora;
extern const DlTrainMethodOps dl_train_method_textual_inversion;
extern const DlTrainMethodOps dl_train_method_dreambooth;
extern const DlTrainMethodOps dl_train_method_hypernetwork;

/* ---- shared helpers ---- */

void dl_trainer_emit (DlTrainer *t, const DlTrainEvent *ev);
void dl_trainer_warn (DlTrainer *t, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
void dl_trainer_status (DlTrainer *t, double progress, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
/* The caption an image trains with before augmentation. */
const char *dl_trainer_image_caption (DlTrainer *t, guint image);

/* dl-train-class.c: prior preservation's class images (generated when missing). */
gboolean dl_trainer_prepare_class_images (DlTrainer *t, GError **error);
char *dl_trainer_class_dir (DlTrainer *t);

/* dl-latent-cache.c: every image's posterior, from the disk cache or the VAE. */
gboolean dl_trainer_cache_latents (DlTrainer *t, GError **error);
void dl_latent_moments_clear (DlLatentMoments *m);

/* dl-train-state.c */
gboolean dl_trainer_write_state (DlTrainer *t, const char *path, GError **error);
gboolean dl_trainer_read_state (DlTrainer *t, const char *path, GError **error);
/* The newest state file in the run folder, or NULL. */
char *dl_trainer_latest_state (DlTrainer *t);
/* t->checkpoints from the state files in the run folder (resuming). */
void dl_trainer_list_checkpoints (DlTrainer *t);
/* kohya-style metadata of the run for the exported file (kind: "lora",
 * "textual-inversion"). */
GHashTable *dl_trainer_metadata (DlTrainer *t, const char *kind);
gboolean dl_trainer_write_run_json (DlTrainer *t, GError **error);
char *dl_trainer_state_path (DlTrainer *t, gint64 step);
char *dl_trainer_checkpoint_export_path (DlTrainer *t, gint64 step);

G_END_DECLS
