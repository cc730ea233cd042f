/* dl-sd-grad.h: one training forward/backward on a given batch, the way the
 * reference training scripts compute it: the check anyone can run of a build
 * against PyTorch (`dreamloom grad`), through the trainer's own step
 * (dl-train-step.h). */
#pragma once

#include "io/dl-safetensors.h"
#include "nn/dl-sd-model.h"

G_BEGIN_DECLS

/* `batch` holds `timesteps` [B] (int or float); `latents` + `noise` [B, 4, h, w]
 * (noised with the DDPM schedule; target = noise, or v for v-prediction) or
 * `noisy_latents` + `target`; `input_ids` [B, 77] (through the text encoder) or
 * `context` [B, 77, C].  An SDXL model also takes `time_ids` [B, 6] (f32) and
 * either `input_ids_2` [B, 77] with input_ids (through both encoders) or
 * `text_embeds` [B, P] with context.  The loss is the mean squared error.
 *
 * Trainable: when `lora_tensors` (file key -> tensor, from dl_lora_attach) is
 * given, exactly those; otherwise every UNet parameter and, when the text
 * encoders run, every text-encoder parameter (both of SDXL's).  `out` receives `loss` and
 * `grad.<name>` for each trainable tensor (file keys for LoRA, internal names
 * otherwise). */
gboolean dl_sd_grad (DlSdModel *m, DlSafetensors *batch, GHashTable *lora_tensors, DlSafetensorsWriter *out,
                     GError **error);

G_END_DECLS
