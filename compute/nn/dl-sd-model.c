/* dl-sd-model.c: see dl-sd-model.h. */
#include "dl-config.h"

#include "nn/dl-sd-model.h"

#include "dl-error.h"
#include "dl-philox.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-nn.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-unet.h"
#include "nn/dl-vae.h"
#include "io/dl-model-params.h"
#include "ops/dl-ops.h"

#include <math.h>
#include <string.h>

struct _DlSdModel
{
  DlDevice *device;
  DlCheckpoint *ckpt; /* NULL for a model of random weights */
  DlModelConfig config;
  DlParams *params;
  DlRecorder *rec;
  DlArena *arena;
  DlNoiseSchedule *schedule;
  DlDType dtype;
  DlDType vae_dtype;
  GPtrArray *te_host; /* HostTensor*: the text encoders while they wait on the host; NULL when on the device */
};

/* A parameter's bytes kept in host memory. */
typedef struct
{
  char *name;
  DlDType dtype;
  int ndim;
  int64_t shape[DL_MAX_DIMS];
  gpointer data;
} HostTensor;

static void
host_tensor_free (HostTensor *h)
{
  g_free (h->name);
  g_free (h->data);
  g_free (h);
}

static void
drop_text_encoders (DlParams *params)
{
  dl_params_remove_prefix (params, "text_encoder.");
  dl_params_remove_prefix (params, "text_encoder_2.");
}

gboolean
dl_sd_model_text_encoders_on_device (DlSdModel *m)
{
  g_return_val_if_fail (m != NULL, FALSE);
  return m->te_host == NULL;
}

gboolean
dl_sd_model_text_encoders_to_host (DlSdModel *m, gboolean *moved, GError **error)
{
  g_return_val_if_fail (m != NULL, FALSE);
  if (moved)
    *moved = FALSE;
  if (m->te_host)
    {
      if (moved)
        *moved = TRUE;
      return TRUE;
    }
  g_autoptr (GPtrArray) names = dl_params_names (m->params);
  g_autoptr (GPtrArray) host = g_ptr_array_new_with_free_func ((GDestroyNotify)host_tensor_free);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      DlTensor *t = dl_component_is_text_encoder_param (name) ? dl_params_lookup (m->params, name) : NULL;
      if (t && dl_tensor_is_shared (t))
        {
          g_debug ("the text encoders stay on the device: %s is in use elsewhere", name);
          return TRUE;
        }
    }
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      DlTensor *t = dl_component_is_text_encoder_param (name) ? dl_params_lookup (m->params, name) : NULL;
      if (!t)
        continue;
      HostTensor *h = g_new0 (HostTensor, 1);
      h->name = g_strdup (name);
      h->dtype = t->dtype;
      h->ndim = t->ndim;
      memcpy (h->shape, t->shape, sizeof h->shape);
      h->data = g_try_malloc (MAX (dl_tensor_nbytes (t), 1));
      g_ptr_array_add (host, h);
      if (!h->data)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY,
                       "no host memory to keep the text encoders in while the UNet runs (%s)", name);
          return FALSE;
        }
      if (!dl_tensor_download (t, h->data, t->dtype, error))
        return FALSE;
    }
  if (host->len == 0)
    return TRUE;
  drop_text_encoders (m->params);
  m->te_host = g_steal_pointer (&host);
  if (moved)
    *moved = TRUE;
  return dl_device_trim_memory (m->device, error);
}

gboolean
dl_sd_model_text_encoders_to_device (DlSdModel *m, GError **error)
{
  g_return_val_if_fail (m != NULL, FALSE);
  if (!m->te_host)
    return TRUE;
  /* the arena's free chunks (a training step's, between steps) go first, so
   * that the encoders do not stack up on them (dl-train-plan.c
   * peak_encoders_back) */
  if (!dl_recorder_finish (m->rec, error))
    return FALSE;
  dl_arena_trim (m->arena);
  for (guint i = 0; i < m->te_host->len; i++)
    {
      HostTensor *h = m->te_host->pdata[i];
      g_autoptr (DlTensor) t = dl_tensor_new (m->device, h->name, h->dtype, h->ndim, h->shape, error);
      if (!t || !dl_tensor_upload (t, h->data, h->dtype, error))
        {
          /* all or nothing: what went back leaves again */
          drop_text_encoders (m->params);
          g_prefix_error (error, "bringing the text encoders back to the device: ");
          return FALSE;
        }
      dl_params_insert (m->params, h->name, t);
    }
  g_clear_pointer (&m->te_host, g_ptr_array_unref);
  return TRUE;
}

DlSdModel *
dl_sd_model_load (DlDevice *device, const char *path, const char *config_dir, GError **error)
{
  return dl_sd_model_load_as (device, path, config_dir, DL_DTYPE_F32, error);
}

DlDType
dl_sd_model_get_dtype (DlSdModel *m)
{
  return m->dtype;
}

DlDType
dl_sd_model_get_vae_dtype (DlSdModel *m)
{
  return m->vae_dtype;
}

/* SDXL's VAE overflows in f16 (its vae/config.json has force_upcast: the
 * diffusers SDXL pipeline decodes it in f32 whatever its dtype) unless the
 * config says it was made f16-safe */
static DlDType
vae_dtype_for (const DlModelConfig *config, DlDType dtype)
{
  return dl_model_config_is_sdxl (config) && config->vae.force_upcast ? DL_DTYPE_F32 : dtype;
}

static void finish_model (DlSdModel *m);

DlSdModel *
dl_sd_model_load_as (DlDevice *device, const char *path, const char *config_dir, DlDType dtype, GError **error)
{
  g_return_val_if_fail (device != NULL && path != NULL, NULL);
  g_return_val_if_fail (dtype == DL_DTYPE_F32 || dtype == DL_DTYPE_F16, NULL);
  g_autoptr (DlCheckpoint) ckpt = dl_checkpoint_open (path, config_dir, error);
  if (!ckpt)
    return NULL;
  g_autoptr (DlParams) params = dl_params_new (device);
  DlDType vae_dtype = vae_dtype_for (dl_checkpoint_get_config (ckpt), dtype);
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    if (!dl_params_load_checkpoint (params, ckpt, c, c == DL_COMPONENT_VAE ? vae_dtype : dtype, error))
      return NULL;
  DlRecorder *rec = dl_recorder_new (device, error);
  if (!rec)
    return NULL;
  DlSdModel *m = g_new0 (DlSdModel, 1);
  m->device = device;
  m->dtype = dtype;
  m->vae_dtype = vae_dtype;
  m->config = *dl_checkpoint_get_config (ckpt);
  m->ckpt = g_steal_pointer (&ckpt);
  m->params = g_steal_pointer (&params);
  m->rec = rec;
  finish_model (m);
  return m;
}

static void
finish_model (DlSdModel *m)
{
  m->arena = dl_arena_new (m->device, "activations", 256 << 20);
  const DlSchedulerConfig *sc = &m->config.scheduler;
  DlNoiseScheduleConfig nc;
  dl_noise_schedule_config_sd15 (&nc);
  nc.num_train_timesteps = sc->num_train_timesteps;
  nc.beta_start = sc->beta_start;
  nc.beta_end = sc->beta_end;
  nc.beta_schedule = g_str_equal (sc->beta_schedule, "linear") ? DL_BETA_LINEAR : DL_BETA_SCALED_LINEAR;
  nc.prediction = sc->prediction_type == DL_PREDICTION_TYPE_V ? DL_PREDICTION_V : DL_PREDICTION_EPSILON;
  nc.steps_offset = sc->steps_offset;
  nc.set_alpha_to_one = sc->set_alpha_to_one;
  m->schedule = dl_noise_schedule_new (&nc);
}

void
dl_sd_model_free (DlSdModel *m)
{
  if (!m)
    return;
  dl_noise_schedule_free (m->schedule);
  dl_arena_unref (m->arena);
  dl_recorder_free (m->rec);
  dl_params_free (m->params);
  g_clear_pointer (&m->te_host, g_ptr_array_unref);
  if (m->ckpt)
    dl_checkpoint_free (m->ckpt);
  g_free (m);
}

DlCheckpoint *
dl_sd_model_get_checkpoint (DlSdModel *m)
{
  return m->ckpt;
}

DlParams *
dl_sd_model_get_params (DlSdModel *m)
{
  return m->params;
}

const DlModelConfig *
dl_sd_model_get_config (DlSdModel *m)
{
  return &m->config;
}

/* Random weights shaped like the real model: N(0, 1/fan_in) matrices, unit
 * scales, zero biases.  For benchmarks: nothing there depends on the values. */
DlSdModel *
dl_sd_model_new_random (DlDevice *device, const DlModelConfig *config, DlDType dtype, guint64 seed, GError **error)
{
  g_return_val_if_fail (device != NULL && config != NULL, NULL);
  g_autoptr (DlRecorder) rec = dl_recorder_new (device, error);
  if (!rec)
    return NULL;
  g_autoptr (DlParams) p = dl_params_new (device);
  g_autoptr (GPtrArray) specs = dl_model_param_specs (config);
  int64_t tok_numel = (int64_t)config->text_encoder.vocab_size *
                      MAX (config->text_encoder.hidden_size, config->text_encoder_2.hidden_size);
  DlDType emb_dtype = dl_params_embedding_dtype (device, tok_numel, dtype);
  DlDType vae_dtype = vae_dtype_for (config, dtype);
  for (guint i = 0; i < specs->len; i++)
    {
      const DlParamSpec *s = specs->pdata[i];
      gboolean emb = g_str_has_prefix (s->name, "text_encoder.text_model.embeddings.") ||
                     g_str_has_prefix (s->name, "text_encoder_2.text_model.embeddings.");
      DlDType dt = emb ? emb_dtype : s->component == DL_COMPONENT_VAE ? vae_dtype : dtype;
      g_autoptr (DlTensor) t = dl_tensor_new (device, s->name, dt, s->ndim, s->shape, error);
      if (!t)
        return NULL;
      gboolean ok;
      if (g_str_has_suffix (s->name, ".bias"))
        ok = dl_op_fill (rec, t, 0.0, error);
      else if (s->ndim == 1)
        ok = dl_op_fill (rec, t, 1.0, error);
      else
        {
          double fan_in = (double)dl_tensor_numel (t) / (double)s->shape[0];
          if (strstr (s->name, "embedding"))
            fan_in = 4.0;
          ok = dl_op_random_normal (rec, t, DL_RANDOM_PHILOX, seed, i, 0.0f, (float)(1.0 / sqrt (fan_in)), error);
        }
      if (!ok)
        return NULL;
      dl_params_insert (p, s->name, t);
    }
  if (!dl_recorder_finish (rec, error))
    return NULL;
  DlSdModel *m = g_new0 (DlSdModel, 1);
  m->device = device;
  m->dtype = dtype;
  m->vae_dtype = vae_dtype;
  m->config = *config;
  m->params = g_steal_pointer (&p);
  m->rec = g_steal_pointer (&rec);
  finish_model (m);
  return m;
}

DlRecorder *
dl_sd_model_get_recorder (DlSdModel *m)
{
  return m->rec;
}

DlArena *
dl_sd_model_get_arena (DlSdModel *m)
{
  return m->arena;
}

const DlNoiseSchedule *
dl_sd_model_get_schedule (DlSdModel *m)
{
  return m->schedule;
}

static DlTensor *
upload_i32 (DlDevice *device, const char *name, const gint32 *v, int ndim, const int64_t *shape, GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (device, name, DL_DTYPE_I32, ndim, shape, error);
  if (!t || !dl_tensor_upload (t, v, DL_DTYPE_I32, error))
    return NULL;
  return g_steal_pointer (&t);
}

static DlTensor *
upload_as (DlDevice *device, const char *name, DlDType dtype, const float *v, int ndim, const int64_t *shape,
           GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (device, name, dtype, ndim, shape, error);
  if (!t || !dl_tensor_upload (t, v, DL_DTYPE_F32, error))
    return NULL;
  return g_steal_pointer (&t);
}

/* After the prompts are encoded: the text encoders wait on the host when the
 * UNet's activations would not fit next to them (or `always`). */
static gboolean
make_room_for_unet (DlSdModel *m, int64_t rows, int64_t h, int64_t w, gboolean always, GError **error)
{
  if (always)
    return dl_sd_model_text_encoders_to_host (m, NULL, error);
  guint64 need = dl_unet_inference_activation_bytes (&m->config.unet, rows, h, w, m->dtype);
  guint64 available = dl_arena_available_bytes (m->device, m->arena);
  if (need <= available)
    return TRUE;
  gboolean moved = FALSE;
  if (!dl_sd_model_text_encoders_to_host (m, &moved, error))
    return FALSE;
  if (moved)
    g_debug ("the text encoders wait on the host: the UNet needs about %" G_GUINT64_FORMAT " MiB, %" G_GUINT64_FORMAT
             " MiB are free",
             need >> 20, available >> 20);
  return TRUE;
}

static gboolean sample_run (DlSdModel *m, const DlSampleParams *sp, float **latents_out, float **images_out,
                            GError **error);

gboolean
dl_sd_sample (DlSdModel *m, const DlSampleParams *sp, float **latents_out, float **images_out, GError **error)
{
  g_return_val_if_fail (m != NULL && sp != NULL && sp->prompt_ids != NULL, FALSE);
  if (!dl_sd_model_text_encoders_to_device (m, error))
    return FALSE;
  gboolean ok = sample_run (m, sp, latents_out, images_out, error);
  /* back for the next prompt; after a failure the next call tries again */
  if (!dl_sd_model_text_encoders_to_device (m, ok ? error : NULL))
    ok = FALSE;
  return ok;
}

static gboolean
sample_run (DlSdModel *m, const DlSampleParams *sp, float **latents_out, float **images_out, GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (m);
  int vae_factor = 1 << (cfg->vae.n_levels - 1);
  int unet_factor = 1 << (cfg->unet.n_levels - 1);
  int B = sp->batch > 0 ? sp->batch : 1;
  if (sp->width <= 0 || sp->height <= 0 || sp->width % (vae_factor * unet_factor) ||
      sp->height % (vae_factor * unet_factor))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "width and height must be positive multiples of %d",
                   vae_factor * unet_factor);
      return FALSE;
    }
  gboolean guided = sp->cfg_scale != 1.0f;
  gboolean sdxl = dl_model_config_is_sdxl (cfg);
  gboolean zero_negative = sdxl && sp->zero_negative;
  if (guided && !zero_negative && (!sp->negative_ids || (sdxl && !sp->negative_ids_2)))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "classifier-free guidance needs the negative prompt's token ids");
      return FALSE;
    }
  if (sdxl && !sp->prompt_ids_2)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "an SDXL model needs the prompt's ids for its second text encoder");
      return FALSE;
    }
  int64_t h = sp->height / vae_factor, w = sp->width / vae_factor, L = cfg->unet.in_channels;
  gsize per = (gsize)(L * h * w), n = per * B;

  g_autoptr (DlSampler) sampler = dl_sampler_new (m->schedule, sp->sampler, sp->sigmas, sp->steps, error);
  if (!sampler)
    return FALSE;
  if (sp->diffusers_dpm && sp->sampler == DL_SAMPLER_DPMPP_2M)
    dl_sampler_use_diffusers_dpm (sampler);

  /* conditioning for [negative..., positive...] once (with zero_negative the
   * negative rows are encoded from the prompt, then zeroed) */
  int rows = guided ? 2 * B : B;
  g_autofree gint32 *ids = g_new (gint32, (gsize)rows * 77);
  g_autofree gint32 *ids2 = g_new0 (gint32, (gsize)rows * 77);
  for (int pass = 0; pass < (sdxl ? 2 : 1); pass++)
    {
      gint32 *dst = pass == 0 ? ids : ids2;
      const gint32 *pos = pass == 0 ? sp->prompt_ids : sp->prompt_ids_2;
      const gint32 *neg = zero_negative ? pos : pass == 0 ? sp->negative_ids : sp->negative_ids_2;
      if (guided)
        memcpy (dst, neg, sizeof (gint32) * B * 77);
      memcpy (dst + (guided ? B * 77 : 0), pos, sizeof (gint32) * B * 77);
    }
  g_autoptr (DlTape) tape = dl_tape_new (m->rec, m->arena);
  dl_tape_set_enabled (tape, FALSE);
  dl_tape_set_activation_dtype (tape, m->dtype);
  int64_t ids_shape[2] = { rows, 77 };
  g_autoptr (DlTensor) ids_t = upload_i32 (m->device, "input_ids", ids, 2, ids_shape, error);
  if (!ids_t)
    return FALSE;
  g_autoptr (DlTensor) context = NULL, pooled = NULL, time_ids = NULL;
  if (sdxl)
    {
      g_autoptr (DlTensor) ids2_t = upload_i32 (m->device, "input_ids_2", ids2, 2, ids_shape, error);
      /* A1111 and ComfyUI always take SDXL's penultimate layer; a deeper
       * clip skip still goes deeper */
      DlSdxlEncodeOptions eo = { .clip_skip = MAX (sp->clip_skip, 2) };
      if (!ids2_t || !dl_sdxl_encode_prompt (m->params, cfg, tape, ids_t, ids2_t, ids2, &eo, &context, &pooled, error))
        return FALSE;
      if (guided && zero_negative)
        {
          int64_t cs[3] = { B, context->shape[1], context->shape[2] }, ps[2] = { B, pooled->shape[1] };
          g_autoptr (DlTensor) cneg = dl_tensor_view (context, "negative_context", 0, 3, cs, error);
          g_autoptr (DlTensor) pneg = cneg ? dl_tensor_view (pooled, "negative_pooled", 0, 2, ps, error) : NULL;
          if (!pneg || !dl_op_fill (m->rec, cneg, 0.0, error) || !dl_op_fill (m->rec, pneg, 0.0, error))
            return FALSE;
        }
      g_autofree float *tid = g_new (float, (gsize)rows * 6);
      int ow = sp->original_width > 0 ? sp->original_width : sp->width;
      int oh = sp->original_height > 0 ? sp->original_height : sp->height;
      int tw = sp->target_width > 0 ? sp->target_width : sp->width;
      int th = sp->target_height > 0 ? sp->target_height : sp->height;
      for (int r = 0; r < rows; r++)
        dl_sdxl_time_ids (tid + 6 * r, ow, oh, sp->crop_left, sp->crop_top, tw, th);
      int64_t tshape[2] = { rows, 6 };
      time_ids = upload_as (m->device, "time_ids", DL_DTYPE_F32, tid, 2, tshape, error);
      if (!time_ids)
        return FALSE;
    }
  else
    {
      DlTextEncoderOptions topts = { .clip_skip = sp->clip_skip };
      context = dl_text_encoder_forward (m->params, &cfg->text_encoder, tape, ids_t, &topts, error);
      if (!context)
        return FALSE;
    }
  if (!dl_recorder_finish (m->rec, error) || !make_room_for_unet (m, rows, h, w, sp->text_encoders_on_host, error))
    return FALSE;
  DlUNetOptions unet_opts = { .text_embeds = pooled, .time_ids = time_ids };

  /* starting noise */
  g_autofree float *x = g_new (float, n);
  if (sp->init_latents)
    {
      memcpy (x, sp->init_latents, n * sizeof (float));
    }
  else
    {
      for (int b = 0; b < B; b++)
        for (gsize i = 0; i < per; i++)
          x[b * per + i] = dl_philox_normal (DL_RANDOM_A1111, sp->seed + b, 0, i);
    }
  float s0 = dl_sampler_init_noise_sigma (sampler);
  for (gsize i = 0; i < n; i++)
    x[i] *= s0;

  g_autofree float *model_in = g_new (float, n *(guided ? 2 : 1));
  g_autofree float *eps = g_new (float, n);
  g_autofree float *noise = dl_sampler_needs_noise (sampler) ? g_new (float, n) : NULL;
  g_autofree float *tsteps = g_new (float, rows);
  int64_t xshape[4] = { rows, L, h, w };
  for (int i = 0; i < sp->steps; i++)
    {
      if (g_cancellable_set_error_if_cancelled (sp->cancellable, error))
        return FALSE;
      float scale = dl_sampler_input_scale (sampler, i);
      for (int r = 0; r < rows; r++)
        for (gsize k = 0; k < per; k++)
          model_in[r * per + k] = x[(r % B) * per + k] * scale;
      for (int r = 0; r < rows; r++)
        tsteps[r] = dl_sampler_timestep (sampler, i);
      int64_t tshape = rows;
      g_autoptr (DlTensor) xt = upload_as (m->device, "sample", m->dtype, model_in, 4, xshape, error);
      g_autoptr (DlTensor) tt = xt ? upload_as (m->device, "timesteps", DL_DTYPE_F32, tsteps, 1, &tshape, error) : NULL;
      g_autoptr (DlTensor) out =
        tt ? dl_unet_forward (m->params, &cfg->unet, tape, xt, tt, context, &unet_opts, error) : NULL;
      if (!out || !dl_recorder_finish (m->rec, error))
        return FALSE;
      g_autofree float *o = dl_tensor_download_f32 (out, error);
      if (!o)
        return FALSE;
      if (guided)
        for (gsize k = 0; k < n; k++)
          eps[k] = o[k] + sp->cfg_scale * (o[n + k] - o[k]);
      else
        memcpy (eps, o, n * sizeof (float));
      if (noise)
        for (int b = 0; b < B; b++)
          for (gsize k = 0; k < per; k++)
            noise[b * per + k] = dl_philox_normal (DL_RANDOM_A1111, sp->seed + b, (guint64)i + 1, k);
      dl_sampler_step (sampler, i, eps, x, noise, NULL, n);
      if (sp->on_step)
        sp->on_step (i, sp->steps, x, sp->on_step_data);
    }

  if (images_out)
    {
      g_autofree float *z = g_new (float, n);
      for (gsize k = 0; k < n; k++)
        z[k] = x[k] / (float)cfg->vae.scaling_factor;
      int64_t zshape[4] = { B, L, h, w };
      g_autoptr (DlTape) vae_tape = dl_tape_new (m->rec, m->arena);
      dl_tape_set_enabled (vae_tape, FALSE);
      dl_tape_set_activation_dtype (vae_tape, m->vae_dtype);
      g_autoptr (DlTensor) zt = upload_as (m->device, "latents", m->vae_dtype, z, 4, zshape, error);
      /* in tiles when the whole would not fit the device's free memory */
      g_autoptr (DlTensor) img = zt ? dl_vae_decode_auto (m->params, &cfg->vae, vae_tape, zt, error) : NULL;
      if (!img || !dl_recorder_finish (m->rec, error))
        return FALSE;
      if (!(*images_out = dl_tensor_download_f32 (img, error)))
        return FALSE;
    }
  if (latents_out)
    *latents_out = g_steal_pointer (&x);
  return TRUE;
}

/* ---- prompts to ids ---- */

static gboolean
encode_rows (DlClipTokenizer *tok, const char *text, int batch, gint32 **out, GError **error)
{
  g_autofree gint32 *ids = g_new (gint32, (gsize)batch * DL_CLIP_MAX_LENGTH);
  if (!dl_clip_tokenizer_encode_77 (tok, text ? text : "", ids, error))
    return FALSE;
  for (int b = 1; b < batch; b++)
    memcpy (ids + (gsize)b * DL_CLIP_MAX_LENGTH, ids, DL_CLIP_MAX_LENGTH * sizeof (gint32));
  *out = g_steal_pointer (&ids);
  return TRUE;
}

gboolean
dl_prompt_ids_encode (DlPromptIds *ids, DlSdModel *m, DlClipTokenizer *tok, const char *prompt, const char *negative,
                      int batch, GError **error)
{
  g_return_val_if_fail (ids != NULL && m != NULL && tok != NULL && prompt != NULL, FALSE);
  memset (ids, 0, sizeof *ids);
  batch = MAX (batch, 1);
  if (!encode_rows (tok, prompt, batch, &ids->prompt, error) ||
      !encode_rows (tok, negative, batch, &ids->negative, error))
    goto fail;
  if (dl_model_config_is_sdxl (&m->config))
    {
      g_autoptr (DlClipTokenizer) tok2 = dl_clip_tokenizer_copy (tok);
      dl_clip_tokenizer_set_pad_style (tok2, DL_CLIP_PAD_SDXL_DIFFUSERS);
      if (!encode_rows (tok2, prompt, batch, &ids->prompt_2, error) ||
          !encode_rows (tok2, negative, batch, &ids->negative_2, error))
        goto fail;
    }
  return TRUE;
fail:
  dl_prompt_ids_clear (ids);
  return FALSE;
}

void
dl_prompt_ids_clear (DlPromptIds *ids)
{
  g_clear_pointer (&ids->prompt, g_free);
  g_clear_pointer (&ids->negative, g_free);
  g_clear_pointer (&ids->prompt_2, g_free);
  g_clear_pointer (&ids->negative_2, g_free);
}

void
dl_sample_params_set_prompt_ids (DlSampleParams *sp, const DlPromptIds *ids)
{
  sp->prompt_ids = ids->prompt;
  sp->negative_ids = ids->negative;
  sp->prompt_ids_2 = ids->prompt_2;
  sp->negative_ids_2 = ids->negative_2;
}
