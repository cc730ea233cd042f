/* dl-engine-session.c: see dl-engine-session.h.
 *
 * One lock guards the device and the model.  Without a run, a preview request
 * samples under it.  While a run trains (self->trainer set), the worker that
 * runs it owns the model: a preview request waits in `pending` until the
 * trainer's between-steps hook serves it with dl_trainer_sample, or until the
 * run ends and it samples as usual. */
#include "dl-config.h"

#include "dl-engine-session.h"

#include "dl-error.h"
#include "dl-train-job-private.h"
#include "image/dl-png.h"
#include "nn/dl-lora.h"
#include "nn/dl-sd-model.h"
#include "text/dl-clip-tokenizer.h"
#include "train/dl-run-info.h"
#include "vk/dl-device.h"

typedef struct
{
  const DlPreviewRequest *request;
  GCancellable *cancellable;
  DlPreviewProgressFunc progress;
  gpointer progress_data;
  DlPreviewImage *image;
  GError *error;
  gboolean done;
} Pending;

struct _DlEngineSession
{
  GObject parent_instance;
  GMutex lock;
  GCond served; /* a pending request was served, or the run ended */
  char *device_selector;
  DlDevice *device;
  char *model_path;
  DlSdModel *model;
  DlClipTokenizer *tokenizer;
  guint n_loads;
  DlTrainer *trainer;   /* the run that owns the model now, or NULL */
  GQueue pending;       /* Pending *, served between the run's steps */
  DlTrainJob *training; /* main thread: the run in progress */
};

static void dl_engine_session_iface_init (DlPreviewBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DlEngineSession, dl_engine_session, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DL_TYPE_PREVIEW_BACKEND, dl_engine_session_iface_init))

static void
unload (DlEngineSession *self)
{
  g_clear_pointer (&self->tokenizer, dl_clip_tokenizer_free);
  g_clear_pointer (&self->model, dl_sd_model_free);
  g_clear_pointer (&self->model_path, g_free);
}

static void
dl_engine_session_finalize (GObject *object)
{
  DlEngineSession *self = DL_ENGINE_SESSION (object);
  /* a run holds a reference to the session until its worker ends */
  g_clear_object (&self->training);
  unload (self);
  g_clear_pointer (&self->device, dl_device_free);
  g_free (self->device_selector);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->served);
  G_OBJECT_CLASS (dl_engine_session_parent_class)->finalize (object);
}

static gboolean
ensure_device (DlEngineSession *self, const char *selector, GError **error)
{
  selector = selector && *selector ? selector : NULL;
  if (self->device && self->trainer && g_strcmp0 (selector, self->device_selector) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "A training run is using the GPU; another can be chosen once it ends");
      return FALSE;
    }
  if (self->device && g_strcmp0 (selector, self->device_selector) != 0)
    {
      unload (self);
      g_clear_pointer (&self->device, dl_device_free);
    }
  if (!self->device)
    {
      if (!(self->device = dl_device_new (selector, error)))
        return FALSE;
      g_free (self->device_selector);
      self->device_selector = g_strdup (selector);
    }
  return TRUE;
}

/* The model at `path`, in `dtype` (DL_N_DTYPES: any), loaded unless it is already. */
static gboolean
ensure_model (DlEngineSession *self, const char *path, const char *config, DlDType dtype, GError **error)
{
  if (self->model && g_strcmp0 (self->model_path, path) == 0 &&
      (dtype == DL_N_DTYPES || dl_sd_model_get_dtype (self->model) == dtype))
    return TRUE;
  unload (self);
  g_autoptr (DlSdModel) m = dtype == DL_N_DTYPES ? dl_sd_model_load (self->device, path, config, error)
                                                 : dl_sd_model_load_as (self->device, path, config, dtype, error);
  if (!m)
    return FALSE;
  self->n_loads++;
  DlClipTokenizer *tok =
    dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (dl_sd_model_get_checkpoint (m)), NULL, error);
  if (!tok)
    return FALSE;
  self->model = g_steal_pointer (&m);
  self->tokenizer = tok;
  self->model_path = g_strdup (path);
  return TRUE;
}

typedef struct
{
  DlPreviewProgressFunc progress;
  gpointer data;
} Progress;

static void
on_step (int step, int n_steps, const float *latents, gpointer user_data)
{
  Progress *p = user_data;
  (void)latents;
  if (p->progress)
    p->progress (step + 1, n_steps, p->data);
}

static DlPreviewImage *
image_from_rgb (const guint8 *rgb, int width, int height)
{
  gsize stride = (gsize)width * 4;
  guint8 *rgba = g_malloc (stride * height);
  for (gsize i = 0; i < (gsize)width * height; i++)
    {
      rgba[4 * i] = rgb[3 * i];
      rgba[4 * i + 1] = rgb[3 * i + 1];
      rgba[4 * i + 2] = rgb[3 * i + 2];
      rgba[4 * i + 3] = 255;
    }
  g_autoptr (GBytes) bytes = g_bytes_new_take (rgba, stride * height);
  return dl_preview_image_new (width, height, stride, bytes);
}

/* Without a run: the base model with the request's LoRAs. */
static DlPreviewImage *
generate_locked (DlEngineSession *self, const DlPreviewRequest *r, GCancellable *cancellable,
                 DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  if (!ensure_device (self, r->device, error) || !ensure_model (self, r->model_path, NULL, DL_N_DTYPES, error))
    return NULL;
  /* after a failed sampling they may still wait on the host: LoRAs attach to
   * their modules */
  if (!dl_sd_model_text_encoders_to_device (self->model, error))
    return NULL;
  DlParams *params = dl_sd_model_get_params (self->model);
  dl_params_clear_adapters (params);
  for (guint i = 0; r->loras && i < r->loras->len; i++)
    {
      DlPreviewLora *l = r->loras->pdata[i];
      g_autoptr (DlLoraFile) lf = dl_lora_file_open (l->path, error);
      if (!lf || !dl_lora_attach (params, lf, (float)l->strength, NULL, NULL, error))
        {
          dl_params_clear_adapters (params);
          return NULL;
        }
    }
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  if (!dl_sampler_kind_from_name (r->sampler, &kind, &sigmas))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Unknown sampler “%s”", r->sampler);
      return NULL;
    }
  DlPromptIds ids;
  if (!dl_prompt_ids_encode (&ids, self->model, self->tokenizer, r->prompt, r->negative_prompt, 1, error))
    return NULL;
  Progress prog = { progress, progress_data };
  DlSampleParams sp = {
    .batch = 1,
    .width = r->width,
    .height = r->height,
    .steps = r->steps,
    .sampler = kind,
    .sigmas = sigmas,
    .cfg_scale = (float)r->cfg_scale,
    .seed = r->seed,
    .clip_skip = 1,
    .on_step = on_step,
    .on_step_data = &prog,
    .cancellable = cancellable,
  };
  dl_sample_params_set_prompt_ids (&sp, &ids);
  g_autofree float *images = NULL;
  gboolean ok = dl_sd_sample (self->model, &sp, NULL, &images, error);
  dl_prompt_ids_clear (&ids);
  dl_params_clear_adapters (params);
  if (!ok)
    return NULL;
  g_autofree guint8 *rgb = g_new (guint8, (gsize)r->width * r->height * 3);
  dl_image_chw_to_rgb8 (images, r->width, r->height, rgb);
  return image_from_rgb (rgb, r->width, r->height);
}

/* During a run, on its worker between steps: the weights as they are now. */
static void
serve (DlTrainer *t, Pending *p)
{
  const DlPreviewRequest *r = p->request;
  if (g_cancellable_set_error_if_cancelled (p->cancellable, &p->error))
    return;
  Progress prog = { p->progress, p->progress_data };
  DlTrainerSampleRequest sr = {
    .prompt = r->prompt,
    .negative_prompt = r->negative_prompt,
    .seed = r->seed,
    .steps = r->steps,
    .sampler = r->sampler,
    .cfg_scale = r->cfg_scale,
    .width = r->width,
    .height = r->height,
    .on_step = on_step,
    .on_step_data = &prog,
    .cancellable = p->cancellable,
  };
  g_autofree guint8 *rgb = NULL;
  if (dl_trainer_sample (t, &sr, &rgb, &p->error))
    p->image = image_from_rgb (rgb, r->width, r->height);
}

static void
between_steps (DlTrainer *t, gpointer user_data)
{
  DlEngineSession *self = user_data;
  g_mutex_lock (&self->lock);
  Pending *p;
  while ((p = g_queue_pop_head (&self->pending)))
    {
      serve (t, p);
      p->done = TRUE;
      g_cond_broadcast (&self->served);
    }
  g_mutex_unlock (&self->lock);
}

static DlPreviewImage *
dl_engine_session_generate (DlPreviewBackend *backend, const DlPreviewRequest *r, GCancellable *cancellable,
                            DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  DlEngineSession *self = DL_ENGINE_SESSION (backend);
  g_mutex_lock (&self->lock);
  if (self->trainer)
    {
      Pending p = { r, cancellable, progress, progress_data, NULL, NULL, FALSE };
      g_queue_push_tail (&self->pending, &p);
      while (!p.done && self->trainer && !g_cancellable_is_cancelled (cancellable))
        g_cond_wait_until (&self->served, &self->lock, g_get_monotonic_time () + G_TIME_SPAN_SECOND / 5);
      if (p.done)
        {
          g_mutex_unlock (&self->lock);
          if (p.error)
            g_propagate_error (error, p.error);
          return p.image;
        }
      g_queue_remove (&self->pending, &p);
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          g_mutex_unlock (&self->lock);
          return NULL;
        }
      /* the run ended: the model is ours again */
    }
  DlPreviewImage *image = generate_locked (self, r, cancellable, progress, progress_data, error);
  g_mutex_unlock (&self->lock);
  return image;
}

static void
dl_engine_session_iface_init (DlPreviewBackendInterface *iface)
{
  iface->generate = dl_engine_session_generate;
}

static void
dl_engine_session_class_init (DlEngineSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dl_engine_session_finalize;
}

static void
dl_engine_session_init (DlEngineSession *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->served);
  g_queue_init (&self->pending);
}

DlEngineSession *
dl_engine_session_new (void)
{
  return g_object_new (DL_TYPE_ENGINE_SESSION, NULL);
}

guint
dl_engine_session_get_n_model_loads (DlEngineSession *self)
{
  g_mutex_lock (&self->lock);
  guint n = self->n_loads;
  g_mutex_unlock (&self->lock);
  return n;
}

DlTrainJob *
dl_engine_session_get_training (DlEngineSession *self)
{
  return self->training;
}

/* ---- training ---- */

typedef struct
{
  DlEngineSession *self;
  DlTrainJob *job;
  char *device;
} Run;

static void
forward_event (const DlTrainEvent *event, gpointer user_data)
{
  dl_train_job_push_event (user_data, event);
}

/* Under the lock: the model for the run and its trainer. */
static DlTrainer *
start_trainer (DlEngineSession *self, DlTrainJob *job, const char *device, GError **error)
{
  const DlTrainSettings *s = dl_train_job_get_settings (job);
  const char *resume = dl_train_job_get_resume_dir (job);
  g_autoptr (DlRunInfo) info = resume ? dl_run_info_read (resume, error) : NULL;
  if (resume && !info)
    return NULL;
  const DlTrainSettings *run = info ? info->settings : s;
  if (!ensure_device (self, device, error) ||
      !ensure_model (self, run->model, run->config, run->fp16 ? DL_DTYPE_F16 : DL_DTYPE_F32, error))
    return NULL;
  DlTrainer *t = resume ? dl_trainer_new_resume (self->device, self->model, resume, NULL, NULL, error)
                        : dl_trainer_new (self->device, self->model, s, error);
  if (!t)
    return NULL;
  const char *const *paths = dl_train_job_get_image_paths (job);
  dl_trainer_set_images (t, paths, dl_train_job_get_image_captions (job), g_strv_length ((char **)paths));
  dl_trainer_set_event_func (t, forward_event, g_object_ref (job), g_object_unref);
  dl_trainer_set_between_steps_func (t, between_steps, self);
  return t;
}

/* Whether the model still is the base model, whole, after a run. */
static gboolean
model_intact (DlEngineSession *self, DlTrainMethod method)
{
  if (method == DL_TRAIN_DREAMBOOTH)
    return FALSE; /* its weights were trained in place */
  DlParams *p = dl_sd_model_get_params (self->model);
  return dl_params_lookup (p, "vae.decoder.conv_in.weight") != NULL;
}

static gpointer
run_thread (gpointer data)
{
  Run *run = data;
  DlEngineSession *self = run->self;
  DlTrainJob *job = run->job;
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&self->lock);
  DlTrainer *t = start_trainer (self, job, run->device, &error);
  self->trainer = t;
  g_mutex_unlock (&self->lock);

  if (t)
    {
      dl_train_job_attach_trainer (job, t);
      dl_trainer_run (t, dl_train_job_get_cancellable (job), &error);
      dl_train_job_attach_trainer (job, NULL);
      DlTrainMethod method = dl_trainer_get_settings (t)->method;
      g_mutex_lock (&self->lock);
      dl_trainer_free (t); /* takes what it attached off the model */
      self->trainer = NULL;
      if (self->model && !model_intact (self, method))
        unload (self);
      g_cond_broadcast (&self->served);
      g_mutex_unlock (&self->lock);
    }
  dl_train_job_push_end (job, error);
  g_object_unref (job);
  g_object_unref (self);
  g_free (run->device);
  g_free (run);
  return NULL;
}

static void
job_finished (DlTrainJob *job, DlEngineSession *self)
{
  if (self->training == job)
    {
      g_signal_handlers_disconnect_by_data (job, self);
      g_clear_object (&self->training);
      GApplication *app = g_application_get_default ();
      if (app)
        g_application_release (app);
    }
}

typedef struct
{
  DlTrainSettings *settings;
  char *device;
} PlanData;

static void
plan_data_free (gpointer p)
{
  PlanData *d = p;
  dl_train_settings_free (d->settings);
  g_free (d->device);
  g_free (d);
}

static void
plan_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  DlEngineSession *self = source;
  PlanData *d = data;
  GError *error = NULL;
  (void)cancellable;
  g_mutex_lock (&self->lock);
  gboolean ok = ensure_device (self, d->device, &error);
  DlDevice *device = self->device;
  g_mutex_unlock (&self->lock);
  /* the device stays while the session lives: only ensure_device replaces it,
   * and a plan asks for the same one */
  DlTrainPlan *plan = ok ? dl_train_plan_new (device, d->settings, &error) : NULL;
  if (plan)
    g_task_return_pointer (task, plan, (GDestroyNotify)dl_train_plan_free);
  else
    g_task_return_error (task, error);
}

void
dl_engine_session_plan_async (DlEngineSession *self, const DlTrainSettings *settings, const char *device,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  PlanData *d = g_new0 (PlanData, 1);
  d->settings = dl_train_settings_copy (settings);
  d->device = g_strdup (device);
  g_task_set_task_data (task, d, plan_data_free);
  g_task_run_in_thread (task, plan_thread);
}

DlTrainPlan *
dl_engine_session_plan_finish (DlEngineSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

DlTrainJob *
dl_engine_session_train (DlEngineSession *self, const DlTrainSettings *settings, const char *const *paths,
                         const char *const *captions, const char *resume_dir, const char *device, GError **error)
{
  g_return_val_if_fail (DL_IS_ENGINE_SESSION (self), NULL);
  if (self->training)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "A training run is in progress already");
      return NULL;
    }
  DlTrainJob *job = dl_train_job_new (settings, paths, captions, resume_dir);
  self->training = g_object_ref (job);
  GApplication *app = g_application_get_default ();
  if (app)
    g_application_hold (app);
  g_signal_connect (job, "finished", G_CALLBACK (job_finished), self);
  Run *run = g_new0 (Run, 1);
  run->self = g_object_ref (self);
  run->job = g_object_ref (job);
  run->device = g_strdup (device);
  g_thread_unref (g_thread_new ("dl-train", run_thread, run));
  return job;
}
