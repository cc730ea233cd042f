/* dl-train-step.h: the forward and backward of one training batch — text
 * encoder (or a given context), UNet, the per-sample-weighted MSE, and its
 * backward into the tensors the tape trains — shared by the trainer, `dreamloom
 * grad` and the benchmarks, so that there is one training step in the engine. */
#pragma once

#include "nn/dl-sd-model.h"
#include "nn/dl-tape.h"

G_BEGIN_DECLS

typedef struct
{
  DlTensor *noisy;     /* [rows, L, h, w], the tape's activation dtype */
  DlTensor *timesteps; /* f32 or i32 [rows] */
  DlTensor *target;    /* like noisy */
  DlTensor *weights;   /* f32 [rows] per-sample loss weights, or NULL */
  DlTensor *input_ids; /* i32 [rows, 77]: through the text encoder; or NULL and ... */
  DlTensor *context;   /* ... [rows, 77, C] given */
  /* SDXL: text_encoder_2's ids with input_ids (and the same on the host, for
   * the pooled output's end position), or the pooled embedding with context;
   * and the time ids, always */
  DlTensor *input_ids_2;    /* i32 [rows, 77] */
  const gint32 *host_ids_2; /* [rows, 77] */
  DlTensor *text_embeds;    /* [rows, P] */
  DlTensor *time_ids;       /* f32 [rows, 6] */
  int clip_skip;            /* A1111's Clip skip (1: last layer; SDXL takes the penultimate at 1 and 2) */
  gboolean checkpointing;
  float grad_scale;  /* d loss multiplied by this (1 / gradient-accumulation steps) */
  gboolean backward; /* record and run the backward (the tape must be enabled) */
  /* tests: the gradient of the prediction becomes NaN */
  gboolean poison;
} DlTrainBatch;

/* Records and runs (finishing the model's recorder) the batch; *loss (f32 [],
 * the weighted mean) and *per_sample (f32 [rows]) may be NULL. */
gboolean dl_train_batch_run (DlSdModel *model, DlTape *tape, const DlTrainBatch *batch, DlTensor **loss,
                             DlTensor **per_sample, GError **error);

G_END_DECLS
