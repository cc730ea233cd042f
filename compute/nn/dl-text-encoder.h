/* dl-text-encoder.h: the CLIP text encoders of SD 1.x and SDXL (transformers
 * CLIPTextModel and CLIPTextModelWithProjection): token + position embeddings,
 * pre-LayerNorm causal transformer layers with quick_gelu (CLIP ViT-L) or gelu
 * (OpenCLIP bigG) MLPs, final LayerNorm, and SDXL's pooled output. */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

typedef struct
{
  int clip_skip;            /* A1111's "Clip skip": 1 = last layer, N = hidden_states[-N] */
  gboolean skip_final_norm; /* SDXL: the chosen hidden state as it is, without final_layer_norm
                             * (diffusers StableDiffusionXLPipeline.encode_prompt: hidden_states[-2]
                             * is clip_skip 2 here; its clip_skip k is k + 2) */
  const char *component;    /* the parameters' prefix: "text_encoder" (NULL) or "text_encoder_2" */
  /* SDXL's pooled output: final_layer_norm of the last layer at each row's
   * highest id (the end token: transformers CLIPTextTransformer's argmax,
   * eos_token_id 2; added tokens' ids do not count), through text_projection
   * when the model has one: [B, P].  Needs the ids on the host. */
  DlTensor **pooled;
  const gint32 *host_ids;   /* [B, T], the same as `ids` */
  GPtrArray *hidden_states; /* when not NULL, receives every hidden state (n_layers + 1) */
} DlTextEncoderOptions;

/* ids: i32 [B, 77].  Returns the conditioning [B, 77, hidden] (final_layer_norm of
 * the chosen layer unless skip_final_norm).  Parameters are
 * `text_encoder.text_model.*` (or the component's) in `params`; Textual
 * Inversion's added tokens are the component's
 * (dl_params_get_added_tokens_for). */
DlTensor *dl_text_encoder_forward (DlParams *params, const DlTextEncoderConfig *config, DlTape *tape, DlTensor *ids,
                                   const DlTextEncoderOptions *options, GError **error);

G_END_DECLS
