/* dl-train-step.c: see dl-train-step.h.  The loss is diffusers' (examples/
 * text_to_image/train_text_to_image.py): F.mse_loss(pred, target) per sample,
 * weighted (min-SNR-γ, prior preservation), averaged over the batch. */
#include "dl-config.h"

#include "train/dl-train-step.h"

#include <math.h>

#include "dl-error.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-unet.h"
#include "ops/dl-ops.h"

gboolean
dl_train_batch_run (DlSdModel *model, DlTape *tape, const DlTrainBatch *b, DlTensor **loss_out,
                    DlTensor **per_sample_out, GError **error)
{
  g_return_val_if_fail (model && tape && b && b->noisy && b->timesteps && b->target, FALSE);
  g_return_val_if_fail (b->input_ids || b->context, FALSE);
  const DlModelConfig *cfg = dl_sd_model_get_config (model);
  DlParams *params = dl_sd_model_get_params (model);
  DlRecorder *rec = dl_sd_model_get_recorder (model);
  DlDevice *device = dl_params_get_device (params);
  g_autoptr (DlTensor) context = NULL, pooled = NULL;
  /* a preview may have left them on the host (dl_sd_sample) */
  if (b->input_ids && !dl_sd_model_text_encoders_to_device (model, error))
    return FALSE;
  if (dl_model_config_is_sdxl (cfg) && b->input_ids)
    {
      if (!b->input_ids_2 || !b->host_ids_2)
        {
          g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                               "an SDXL batch needs the ids of both text encoders");
          return FALSE;
        }
      DlSdxlEncodeOptions o = { .clip_skip = MAX (b->clip_skip, 2) };
      if (!dl_sdxl_encode_prompt (params, cfg, tape, b->input_ids, b->input_ids_2, b->host_ids_2, &o, &context, &pooled,
                                  error))
        return FALSE;
    }
  else if (b->input_ids)
    {
      DlTextEncoderOptions o = { .clip_skip = b->clip_skip };
      context = dl_text_encoder_forward (params, &cfg->text_encoder, tape, b->input_ids, &o, error);
      if (!context)
        return FALSE;
    }
  else
    {
      context = dl_tensor_ref (b->context);
      pooled = b->text_embeds ? dl_tensor_ref (b->text_embeds) : NULL;
    }
  DlUNetOptions uo = {
    .text_embeds = pooled,
    .time_ids = b->time_ids,
    .checkpoint = b->checkpointing && b->backward,
  };
  g_autoptr (DlTensor) eps = dl_unet_forward (params, &cfg->unet, tape, b->noisy, b->timesteps, context, &uo, error);
  if (!eps)
    return FALSE;
  int64_t rows = b->noisy->shape[0];
  g_autoptr (DlTensor) loss = dl_tensor_new (device, "loss", DL_DTYPE_F32, 0, NULL, error);
  g_autoptr (DlTensor) ps = loss ? dl_tensor_new (device, "loss_per_sample", DL_DTYPE_F32, 1, &rows, error) : NULL;
  if (!ps || !dl_op_mse_loss (rec, loss, ps, eps, b->target, b->weights, error))
    return FALSE;
  if (b->backward)
    {
      g_autoptr (DlTensor) deps = dl_tape_tensor_like (tape, "d_eps", eps, error);
      if (!deps || !dl_op_mse_loss_backward (rec, deps, eps, b->target, b->weights, b->grad_scale, error))
        return FALSE;
      if (b->poison && !dl_op_fill (rec, deps, NAN, error))
        return FALSE;
      if (!dl_tape_backward (tape, eps, deps, error))
        return FALSE;
    }
  if (!dl_recorder_finish (rec, error))
    return FALSE;
  if (loss_out)
    *loss_out = g_steal_pointer (&loss);
  if (per_sample_out)
    *per_sample_out = g_steal_pointer (&ps);
  return TRUE;
}
