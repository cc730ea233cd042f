/* dl-train-plan.h: the device memory a run will need, predicted from the
 * settings and the model's configuration before anything is allocated —
 * weights, trained tensors with their gradients and AdamW moments, activations
 * at the peak of a step (and of encoding the images), the activation arena's
 * granularity — against what the device can give (VK_EXT_memory_budget where
 * the driver has it).  When it does not fit, the plan says which settings
 * would (f16 weights, gradient checkpointing, a smaller batch or rank). */
#pragma once

#include "io/dl-model-config.h"
#include "train/dl-train-settings.h"
#include "vk/dl-device.h"

G_BEGIN_DECLS

typedef struct
{
  guint64 weights;               /* the frozen model on the device */
  guint64 text_encoders_on_host; /* of the model, what waits in host memory while the UNet trains */
  guint64 trained;               /* trained tensors as the optimizer allocates them (dl_optimizer_tensor_bytes) */
  guint64 activations;           /* the largest step (forward + backward) */
  guint64 encode;                /* encoding the images once (VAE encoder, no gradients) */
  guint64 arena_chunk;           /* activations come in chunks of this size */
  /* the device memory at the peak of each phase of a run; the arena gives
   * back its chunks between them (dl-latent-cache.c, dl-trainer.c) */
  guint64 peak_encoding;      /* the images and, with frozen encoders, the prompts, before anything is trained */
  guint64 peak_training;      /* the trained tensors, one step's activations */
  guint64 peak_encoders_back; /* the encoders on the device again, next to the trained tensors (0: never) */
  guint64 total;              /* the predicted peak: the largest of the three */
  guint64 budget;             /* what the device offers */
  gboolean budget_from_driver;
  gboolean budget_is_host;  /* a CPU device's: the host's free memory */
  gboolean budget_is_limit; /* the device's memory limit ($DREAMLOOM_MEMORY_LIMIT) */
  gint64 trained_params;
} DlTrainPlanFigures;

typedef struct _DlTrainPlan DlTrainPlan;

/* Reads the model's configuration and parameter list (not its weights). */
DlTrainPlan *dl_train_plan_new (DlDevice *device, const DlTrainSettings *settings, GError **error);
/* The same for a configuration (a model of random weights). */
DlTrainPlan *dl_train_plan_new_for_config (DlDevice *device, const DlTrainSettings *settings,
                                           const DlModelConfig *config);
void dl_train_plan_free (DlTrainPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTrainPlan, dl_train_plan_free)

const DlTrainPlanFigures *dl_train_plan_get_figures (DlTrainPlan *plan);
/* The configuration of the model the plan was made for. */
const DlModelConfig *dl_train_plan_get_config (DlTrainPlan *plan);
gboolean dl_train_plan_fits (DlTrainPlan *plan);
/* Settings changes that would fit, as options ("--fp16 --checkpointing: 3.1 GiB"),
 * cheapest first; empty when it fits or nothing would. */
GPtrArray *dl_train_plan_suggestions (DlTrainPlan *plan);
/* The plan as text (one item per line, the total, the budget, suggestions). */
char *dl_train_plan_describe (DlTrainPlan *plan);

/* The prediction for other settings on the same model (no file read). */
gboolean dl_train_plan_compute (DlTrainPlan *plan, const DlTrainSettings *settings, DlTrainPlanFigures *out);

G_END_DECLS
