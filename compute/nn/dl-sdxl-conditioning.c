/* dl-sdxl-conditioning.c: see dl-sdxl-conditioning.h. */
#include "dl-config.h"

#include "nn/dl-sdxl-conditioning.h"

#include "dl-error.h"
#include "nn/dl-nn.h"
#include "nn/dl-text-encoder.h"

void
dl_sdxl_time_ids (float out[6], int original_width, int original_height, int crop_left, int crop_top, int target_width,
                  int target_height)
{
  out[0] = (float)original_height;
  out[1] = (float)original_width;
  out[2] = (float)crop_top;
  out[3] = (float)crop_left;
  out[4] = (float)target_height;
  out[5] = (float)target_width;
}

DlTensor *
dl_sdxl_concat_features (DlTape *tape, DlTensor *a, DlTensor *b, GError **error)
{
  g_return_val_if_fail (a->ndim == 3 && b->ndim == 3, NULL);
  int64_t B = a->shape[0], T = a->shape[1];
  if (b->shape[0] != B || b->shape[1] != T)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "SDXL's two text encoders gave different token counts");
      return NULL;
    }
  /* rows of features are channels of [B*T, D, 1, 1] */
  int64_t sa[4] = { B * T, a->shape[2], 1, 1 }, sb[4] = { B * T, b->shape[2], 1, 1 };
  int64_t out[3] = { B, T, a->shape[2] + b->shape[2] };
  g_autoptr (DlTensor) a4 = dl_nn_reshape (tape, a, 4, sa, error);
  g_autoptr (DlTensor) b4 = a4 ? dl_nn_reshape (tape, b, 4, sb, error) : NULL;
  g_autoptr (DlTensor) cat = b4 ? dl_nn_concat_channels (tape, a4, b4, error) : NULL;
  return cat ? dl_nn_reshape (tape, cat, 3, out, error) : NULL;
}

gboolean
dl_sdxl_encode_prompt (DlParams *params, const DlModelConfig *config, DlTape *tape, DlTensor *ids_1, DlTensor *ids_2,
                       const gint32 *host_ids_2, const DlSdxlEncodeOptions *options, DlTensor **context,
                       DlTensor **pooled, GError **error)
{
  g_return_val_if_fail (params && config && tape && ids_1 && ids_2 && host_ids_2 && context && pooled, FALSE);
  if (!dl_model_config_is_sdxl (config))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the model has no second text encoder: not SDXL");
      return FALSE;
    }
  int clip_skip = options && options->clip_skip > 0 ? options->clip_skip : 2;
  DlTextEncoderOptions o1 = {
    .clip_skip = clip_skip,
    .skip_final_norm = TRUE,
    .hidden_states = options ? options->hidden_states_1 : NULL,
  };
  g_autoptr (DlTensor) pooled_out = NULL;
  DlTextEncoderOptions o2 = {
    .clip_skip = clip_skip,
    .skip_final_norm = TRUE,
    .component = "text_encoder_2",
    .pooled = &pooled_out,
    .host_ids = host_ids_2,
    .hidden_states = options ? options->hidden_states_2 : NULL,
  };
  g_autoptr (DlTensor) h1 = dl_text_encoder_forward (params, &config->text_encoder, tape, ids_1, &o1, error);
  g_autoptr (DlTensor) h2 =
    h1 ? dl_text_encoder_forward (params, &config->text_encoder_2, tape, ids_2, &o2, error) : NULL;
  g_autoptr (DlTensor) cat = h2 ? dl_sdxl_concat_features (tape, h1, h2, error) : NULL;
  if (!cat)
    return FALSE;
  *context = g_steal_pointer (&cat);
  *pooled = g_steal_pointer (&pooled_out);
  return TRUE;
}
