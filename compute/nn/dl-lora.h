/* dl-lora.h: LoRA files attached to a model as run-time adapters
 * (y = W x + strength · alpha/rank · up(down(x))), for previews (any number of
 * files, a strength each, removed again without touching the base weights) and
 * for training or gradient checks (the adapter tensors are the parameters). */
#pragma once

#include "nn/dl-lora-file.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

/* Upload `file`'s matrices and attach them to the modules of `params` they
 * name.  `tensors` (may be NULL) receives file key -> device tensor (e.g.
 * "lora_unet_..._to_q.lora_down.weight"), to train them or read their gradients.
 * Modules the model lacks are reported in *unmatched (may be NULL). */
gboolean dl_lora_attach (DlParams *params, DlLoraFile *file, float strength, GHashTable *tensors, GPtrArray **unmatched,
                         GError **error);

G_END_DECLS
