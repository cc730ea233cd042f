/* dl-train-export.h: a run's file (a checkpoint's or the final one) written
 * where the user wants it, in the form the destination's name asks for:
 * a Textual Inversion embedding as A1111's `.pt`, kohya's `.safetensors`
 * (emb_params) or, for a name ending in `learned_embeds.safetensors`,
 * diffusers' form; a LoRA in `dtype` (F16 or F32: its tensors converted,
 * metadata kept, kohya's hashes computed again); every other file
 * (hypernetwork, DreamBooth model, an embedding or a LoRA in its own form)
 * copied as it is, metadata included.  A DreamBooth model goes to a
 * diffusers folder when `dest` ends in "/" or is a folder (a diffusers model
 * folder or an empty one), to one LDM `.safetensors` otherwise, whichever
 * layout the run wrote (tensors copied as stored; a folder's tokenizer/ from
 * the run's base model when it has one).  `dtype` is the run's save_dtype
 * for "as trained".  Atomic: the destination is whole or untouched. */
#pragma once

#include "train/dl-train-settings.h"

G_BEGIN_DECLS

gboolean dl_train_export_file (const DlTrainSettings *settings, const char *source, const char *dest, DlStDType dtype,
                               GError **error);

G_END_DECLS
