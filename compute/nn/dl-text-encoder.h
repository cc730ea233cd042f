/* dl-text-encoder.h: the CLIP text encoder of SD 1.x (transformers CLIPTextModel):
 * token + position embeddings, pre-LayerNorm causal transformer layers with
 * quick_gelu MLPs, final LayerNorm. */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

typedef struct
{
  int clip_skip;            /* A1111's "Clip skip": 1 = last layer, N = hidden_states[-N] */
  GPtrArray *hidden_states; /* when not NULL, receives every hidden state (n_layers + 1) */
} DlTextEncoderOptions;

/* ids: i32 [B, 77].  Returns the conditioning [B, 77, hidden] (final_layer_norm of
 * the chosen layer).  Parameters are `text_encoder.text_model.*` in `params`. */
DlTensor *dl_text_encoder_forward (DlParams *params, const DlTextEncoderConfig *config, DlTape *tape, DlTensor *ids,
                                   const DlTextEncoderOptions *options, GError **error);

G_END_DECLS
