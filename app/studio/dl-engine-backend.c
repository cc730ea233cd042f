/* dl-engine-backend.c: see dl-engine-backend.h.  Keeps the last model (and its
 * device) loaded between requests: previews of one project use one model, and
 * loading a 4 GB checkpoint per image would dominate everything. */
#include "dl-config.h"

#include "dl-engine-backend.h"

#include "image/dl-png.h"
#include "nn/dl-lora.h"
#include "nn/dl-sd-pipeline.h"
#include "text/dl-clip-tokenizer.h"
#include "vk/dl-device.h"

struct _DlEngineBackend {
  GObject parent_instance;
  GMutex lock;           /* one generation at a time, whatever the caller does */
  char *device_selector;
  DlDevice *device;
  char *model_path;
  DlSdModel *model;
  DlClipTokenizer *tokenizer;
};

static void dl_engine_backend_iface_init (DlPreviewBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DlEngineBackend, dl_engine_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DL_TYPE_PREVIEW_BACKEND, dl_engine_backend_iface_init))

static void
unload (DlEngineBackend *self)
{
  g_clear_pointer (&self->tokenizer, dl_clip_tokenizer_free);
  g_clear_pointer (&self->model, dl_sd_model_free);
  g_clear_pointer (&self->model_path, g_free);
}

static void
dl_engine_backend_finalize (GObject *object)
{
  DlEngineBackend *self = DL_ENGINE_BACKEND (object);
  unload (self);
  g_clear_pointer (&self->device, dl_device_free);
  g_free (self->device_selector);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dl_engine_backend_parent_class)->finalize (object);
}

static gboolean
ensure_model (DlEngineBackend *self, const DlPreviewRequest *r, GError **error)
{
  const char *selector = r->device && *r->device ? r->device : NULL;
  if (self->device && g_strcmp0 (selector, self->device_selector) != 0) {
    unload (self);
    g_clear_pointer (&self->device, dl_device_free);
  }
  if (!self->device) {
    if (!(self->device = dl_device_new (selector, error)))
      return FALSE;
    g_free (self->device_selector);
    self->device_selector = g_strdup (selector);
  }
  if (self->model && g_strcmp0 (self->model_path, r->model_path) == 0)
    return TRUE;
  unload (self);
  g_autoptr (DlSdModel) m = dl_sd_model_load (self->device, r->model_path, NULL, error);
  if (!m)
    return FALSE;
  DlClipTokenizer *tok =
    dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (dl_sd_model_get_checkpoint (m)), NULL, error);
  if (!tok)
    return FALSE;
  self->model = g_steal_pointer (&m);
  self->tokenizer = tok;
  self->model_path = g_strdup (r->model_path);
  return TRUE;
}

typedef struct {
  DlPreviewProgressFunc progress;
  gpointer data;
} Progress;

static void
on_step (int step, int n_steps, const float *latents, gpointer user_data)
{
  Progress *p = user_data;
  (void) latents;
  if (p->progress)
    p->progress (step + 1, n_steps, p->data);
}

static DlPreviewImage *
generate_locked (DlEngineBackend *self, const DlPreviewRequest *r, GCancellable *cancellable,
                 DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  if (!ensure_model (self, r, error))
    return NULL;
  DlParams *params = dl_sd_model_get_params (self->model);
  dl_params_clear_adapters (params);
  for (guint i = 0; r->loras && i < r->loras->len; i++) {
    DlPreviewLora *l = r->loras->pdata[i];
    g_autoptr (DlLoraFile) lf = dl_lora_file_open (l->path, error);
    if (!lf || !dl_lora_attach (params, lf, (float) l->strength, NULL, NULL, error)) {
      dl_params_clear_adapters (params);
      return NULL;
    }
  }
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  if (!dl_sampler_kind_from_name (r->sampler, &kind, &sigmas)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Unknown sampler “%s”", r->sampler);
    return NULL;
  }
  gint32 pos[77], neg[77];
  if (!dl_clip_tokenizer_encode_77 (self->tokenizer, r->prompt, pos, error) ||
      !dl_clip_tokenizer_encode_77 (self->tokenizer, r->negative_prompt ? r->negative_prompt : "", neg, error))
    return NULL;
  Progress prog = { progress, progress_data };
  DlSampleParams sp = {
    .prompt_ids = pos, .negative_ids = neg, .batch = 1, .width = r->width, .height = r->height,
    .steps = r->steps, .sampler = kind, .sigmas = sigmas, .cfg_scale = (float) r->cfg_scale, .seed = r->seed,
    .clip_skip = 1, .on_step = on_step, .on_step_data = &prog, .cancellable = cancellable,
  };
  g_autofree float *images = NULL;
  gboolean ok = dl_sd_sample (self->model, &sp, NULL, &images, error);
  dl_params_clear_adapters (params);
  if (!ok)
    return NULL;
  gsize stride = (gsize) r->width * 4;
  g_autofree guint8 *rgb = g_new (guint8, (gsize) r->width * r->height * 3);
  dl_image_chw_to_rgb8 (images, r->width, r->height, rgb);
  guint8 *rgba = g_malloc (stride * r->height);
  for (gsize i = 0; i < (gsize) r->width * r->height; i++) {
    rgba[4 * i] = rgb[3 * i];
    rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  g_autoptr (GBytes) bytes = g_bytes_new_take (rgba, stride * r->height);
  return dl_preview_image_new (r->width, r->height, stride, bytes);
}

static DlPreviewImage *
dl_engine_backend_generate (DlPreviewBackend *backend, const DlPreviewRequest *r, GCancellable *cancellable,
                            DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  DlEngineBackend *self = DL_ENGINE_BACKEND (backend);
  g_mutex_lock (&self->lock);
  DlPreviewImage *image = generate_locked (self, r, cancellable, progress, progress_data, error);
  g_mutex_unlock (&self->lock);
  return image;
}

static void
dl_engine_backend_iface_init (DlPreviewBackendInterface *iface)
{
  iface->generate = dl_engine_backend_generate;
}

static void
dl_engine_backend_class_init (DlEngineBackendClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dl_engine_backend_finalize;
}

static void
dl_engine_backend_init (DlEngineBackend *self)
{
  g_mutex_init (&self->lock);
}

DlEngineBackend *
dl_engine_backend_new (void)
{
  return g_object_new (DL_TYPE_ENGINE_BACKEND, NULL);
}
