/* dl-sd-grad.c: see dl-sd-grad.h. */
#include "dl-config.h"

#include "train/dl-sd-grad.h"

#include "dl-error.h"
#include "ops/dl-ops.h"
#include "train/dl-optimizer.h"
#include "train/dl-train-step.h"

#include <string.h>

static float *
batch_read (DlSafetensors *batch, const char *name, int64_t expect, GError **error)
{
  int64_t n = 0;
  float *v = dl_safetensors_read_f32 (batch, name, &n, error);
  if (v && expect >= 0 && n != expect)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s”: tensor %s has %" G_GINT64_FORMAT " elements, expected %" G_GINT64_FORMAT,
                   dl_safetensors_get_path (batch), name, n, expect);
      g_free (v);
      return NULL;
    }
  return v;
}

static DlTensor *
upload (DlDevice *device, const char *name, DlDType dtype, int ndim, const int64_t *shape, const float *v,
        GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (device, name, dtype, ndim, shape, error);
  if (!t)
    return NULL;
  if (dtype == DL_DTYPE_I32)
    {
      int64_t n = dl_tensor_numel (t);
      g_autofree gint32 *iv = g_new (gint32, n);
      for (int64_t i = 0; i < n; i++)
        iv[i] = (gint32)v[i];
      if (!dl_tensor_upload (t, iv, DL_DTYPE_I32, error))
        return NULL;
    }
  else if (!dl_tensor_upload_f32 (t, v, error))
    {
      return NULL;
    }
  return g_steal_pointer (&t);
}

gboolean
dl_sd_grad (DlSdModel *m, DlSafetensors *batch, GHashTable *lora_tensors, DlSafetensorsWriter *out, GError **error)
{
  g_return_val_if_fail (m != NULL && batch != NULL && out != NULL, FALSE);
  DlParams *params = dl_sd_model_get_params (m);
  DlDevice *device = dl_params_get_device (params);
  const char *path = dl_safetensors_get_path (batch);

  const DlStTensor *ts = dl_safetensors_find (batch, "timesteps");
  const DlStTensor *lat = dl_safetensors_find (batch, "latents");
  const DlStTensor *noisy_t = dl_safetensors_find (batch, "noisy_latents");
  const DlStTensor *ids_t = dl_safetensors_find (batch, "input_ids");
  const DlStTensor *ctx_t = dl_safetensors_find (batch, "context");
  const DlStTensor *xs = lat ? lat : noisy_t;
  if (!ts || !xs || (!ids_t && !ctx_t) || xs->ndim != 4)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s” needs timesteps, latents + noise or noisy_latents + target ([B, C, H, W]), "
                   "and input_ids or context",
                   path);
      return FALSE;
    }
  int64_t B = xs->shape[0], per = xs->numel / B;
  g_autofree float *t = batch_read (batch, "timesteps", B, error);
  g_autofree float *x = t ? batch_read (batch, lat ? "latents" : "noisy_latents", xs->numel, error) : NULL;
  g_autofree float *second = x ? batch_read (batch, lat ? "noise" : "target", xs->numel, error) : NULL;
  if (!second)
    return FALSE;
  g_autofree float *noisy = NULL, *target = NULL;
  if (lat)
    {
      const DlNoiseSchedule *s = dl_sd_model_get_schedule (m);
      noisy = g_new (float, xs->numel);
      target = g_new (float, xs->numel);
      for (int64_t b = 0; b < B; b++)
        {
          int tb = (int)t[b];
          if (tb < 0 || tb >= s->n || (float)tb != t[b])
            {
              g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                           "“%s”: timestep %g is not one of the schedule's 0..%d", path, t[b], s->n - 1);
              return FALSE;
            }
          dl_noise_schedule_add_noise (s, tb, x + b * per, second + b * per, noisy + b * per, per);
          if (s->config.prediction == DL_PREDICTION_V)
            dl_noise_schedule_velocity (s, tb, x + b * per, second + b * per, target + b * per, per);
          else
            memcpy (target + b * per, second + b * per, per * sizeof (float));
        }
    }
  else
    {
      noisy = g_steal_pointer (&x);
      target = g_steal_pointer (&second);
    }

  /* the trainable tensors as a run would hold them (gradient buffers zeroed) */
  DlRecorder *rec = dl_sd_model_get_recorder (m);
  g_autoptr (DlOptimizer) opt = dl_optimizer_new (device, 0.9, 0.999, 1e-8);
  dl_optimizer_add_group (opt, "all", 0.0);
  if (lora_tensors)
    {
      g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (lora_tensors), (GCompareFunc)strcmp);
      for (GList *k = keys; k; k = k->next)
        if (!dl_optimizer_add (opt, rec, k->data, g_hash_table_lookup (lora_tensors, k->data), 0, error))
          return FALSE;
    }
  else
    {
      g_autoptr (GPtrArray) names = dl_params_names (params);
      for (guint i = 0; i < names->len; i++)
        {
          const char *name = names->pdata[i];
          if (g_str_has_prefix (name, "unet.") ||
              (ids_t && (g_str_has_prefix (name, "text_encoder.") || g_str_has_prefix (name, "text_encoder_2."))))
            if (!dl_optimizer_add (opt, rec, name, dl_params_lookup (params, name), 0, error))
              return FALSE;
        }
    }
  g_autoptr (DlTape) tape = dl_tape_new (rec, dl_sd_model_get_arena (m));
  if (!dl_optimizer_zero_grad (opt, rec, error))
    return FALSE;
  dl_optimizer_attach (opt, tape);

  g_autoptr (DlTensor) ids_dev = NULL, context = NULL;
  if (ids_t)
    {
      g_autofree float *ids = batch_read (batch, "input_ids", B * 77, error);
      int64_t shape[2] = { B, 77 };
      if (!ids || !(ids_dev = upload (device, "input_ids", DL_DTYPE_I32, 2, shape, ids, error)))
        return FALSE;
    }
  else
    {
      g_autofree float *c = batch_read (batch, "context", -1, error);
      if (!c || !(context = upload (device, "context", DL_DTYPE_F32, ctx_t->ndim, ctx_t->shape, c, error)))
        return FALSE;
    }
  /* SDXL: the second encoder's ids or the pooled embedding, and the time ids */
  g_autoptr (DlTensor) ids2_dev = NULL, text_embeds = NULL, time_ids = NULL;
  g_autofree gint32 *host_ids2 = NULL;
  if (dl_model_config_is_sdxl (dl_sd_model_get_config (m)))
    {
      const DlStTensor *ids2_t = dl_safetensors_find (batch, "input_ids_2");
      const DlStTensor *te_t = dl_safetensors_find (batch, "text_embeds");
      if (!dl_safetensors_find (batch, "time_ids") || (ids_t && !ids2_t) || (!ids_t && !te_t))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: an SDXL model also needs time_ids [B, 6], and input_ids_2 [B, 77] with input_ids or "
                       "text_embeds [B, P] with context",
                       path);
          return FALSE;
        }
      int64_t tshape[2] = { B, 6 };
      g_autofree float *tid = batch_read (batch, "time_ids", B * 6, error);
      if (!tid || !(time_ids = upload (device, "time_ids", DL_DTYPE_F32, 2, tshape, tid, error)))
        return FALSE;
      if (ids_t)
        {
          int64_t shape[2] = { B, 77 };
          g_autofree float *ids2 = batch_read (batch, "input_ids_2", B * 77, error);
          if (!ids2 || !(ids2_dev = upload (device, "input_ids_2", DL_DTYPE_I32, 2, shape, ids2, error)))
            return FALSE;
          host_ids2 = g_new (gint32, B * 77);
          for (int64_t i = 0; i < B * 77; i++)
            host_ids2[i] = (gint32)ids2[i];
        }
      else
        {
          g_autofree float *te = batch_read (batch, "text_embeds", -1, error);
          if (!te || !(text_embeds = upload (device, "text_embeds", DL_DTYPE_F32, te_t->ndim, te_t->shape, te, error)))
            return FALSE;
        }
    }
  g_autoptr (DlTensor) xt = upload (device, "noisy_latents", DL_DTYPE_F32, 4, xs->shape, noisy, error);
  g_autoptr (DlTensor) tt = xt ? upload (device, "timesteps", DL_DTYPE_F32, 1, &B, t, error) : NULL;
  g_autoptr (DlTensor) yt = tt ? upload (device, "target", DL_DTYPE_F32, 4, xs->shape, target, error) : NULL;
  if (!yt)
    return FALSE;
  DlTrainBatch tb = {
    .noisy = xt,
    .timesteps = tt,
    .target = yt,
    .input_ids = ids_dev,
    .context = context,
    .input_ids_2 = ids2_dev,
    .host_ids_2 = host_ids2,
    .text_embeds = text_embeds,
    .time_ids = time_ids,
    .clip_skip = 1,
    .grad_scale = 1.0f,
    .backward = TRUE,
  };
  g_autoptr (DlTensor) loss = NULL;
  if (!dl_train_batch_run (m, tape, &tb, &loss, NULL, error))
    return FALSE;

  g_autofree float *lv = dl_tensor_download_f32 (loss, error);
  if (!lv || !dl_safetensors_writer_add_f32 (out, "loss", DL_ST_F32, 0, NULL, lv, error))
    return FALSE;
  for (guint i = 0; i < dl_optimizer_get_n (opt); i++)
    {
      DlTensor *g = dl_optimizer_get_grad (opt, i);
      g_autofree char *name = g_strconcat ("grad.", dl_optimizer_get_name (opt, i), NULL);
      g_autofree float *gv = dl_tensor_download_f32 (g, error);
      if (!gv || !dl_safetensors_writer_add_f32 (out, name, DL_ST_F32, g->ndim, g->shape, gv, error))
        return FALSE;
    }
  return TRUE;
}
