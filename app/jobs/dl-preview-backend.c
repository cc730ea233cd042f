#include "dl-config.h"

#include "dl-preview-backend.h"

#include "image/dl-infotext.h"

#include <glib/gi18n.h>
#include <string.h>
#include "io/dl-file-util.h"
#include "sched/dl-sampler.h"

G_DEFINE_INTERFACE (DlPreviewBackend, dl_preview_backend, G_TYPE_OBJECT)

static void
dl_preview_backend_default_init (DlPreviewBackendInterface *iface)
{
}

static DlPreviewBackend *default_backend;

DlPreviewBackend *
dl_preview_backend_get_default (void)
{
  return default_backend;
}

void
dl_preview_backend_set_default (DlPreviewBackend *backend)
{
  g_return_if_fail (backend == NULL || DL_IS_PREVIEW_BACKEND (backend));
  g_set_object (&default_backend, backend);
}

DlPreviewImage *
dl_preview_backend_generate (DlPreviewBackend *self, const DlPreviewRequest *request, GCancellable *cancellable,
                             DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  g_return_val_if_fail (DL_IS_PREVIEW_BACKEND (self), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  DlPreviewBackendInterface *iface = DL_PREVIEW_BACKEND_GET_IFACE (self);
  g_return_val_if_fail (iface->generate != NULL, NULL);
  DlPreviewImage *image = iface->generate (self, request, cancellable, progress, progress_data, error);
  /* the contract: an image or an error, never neither */
  if (!image && error && !*error)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("The image generator failed without saying why"));
  return image;
}

/* ---- requests ---- */

static void
lora_free (DlPreviewLora *lora)
{
  g_free (lora->path);
  g_free (lora);
}

DlPreviewRequest *
dl_preview_request_new (void)
{
  DlPreviewRequest *r = g_new0 (DlPreviewRequest, 1);
  r->prompt = g_strdup ("");
  r->negative_prompt = g_strdup ("");
  r->sampler = g_strdup ("euler_a");
  r->steps = 20;
  r->cfg_scale = 7.0;
  r->width = r->height = 512;
  r->loras = g_ptr_array_new_with_free_func ((GDestroyNotify)lora_free);
  return r;
}

void
dl_preview_request_add_lora (DlPreviewRequest *request, const char *path, double strength)
{
  g_return_if_fail (request != NULL);
  g_return_if_fail (path != NULL);
  DlPreviewLora *lora = g_new0 (DlPreviewLora, 1);
  lora->path = g_strdup (path);
  lora->strength = strength;
  g_ptr_array_add (request->loras, lora);
}

DlPreviewRequest *
dl_preview_request_copy (const DlPreviewRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  DlPreviewRequest *r = dl_preview_request_new ();
  g_free (r->prompt);
  g_free (r->negative_prompt);
  g_free (r->sampler);
  r->model_path = g_strdup (request->model_path);
  r->device = g_strdup (request->device);
  r->prompt = g_strdup (request->prompt);
  r->negative_prompt = g_strdup (request->negative_prompt);
  r->seed = request->seed;
  r->steps = request->steps;
  r->sampler = g_strdup (request->sampler);
  r->cfg_scale = request->cfg_scale;
  r->width = request->width;
  r->height = request->height;
  for (guint i = 0; i < request->loras->len; i++)
    {
      DlPreviewLora *l = request->loras->pdata[i];
      dl_preview_request_add_lora (r, l->path, l->strength);
    }
  return r;
}

void
dl_preview_request_free (DlPreviewRequest *request)
{
  if (!request)
    return;
  g_free (request->model_path);
  g_free (request->device);
  g_free (request->prompt);
  g_free (request->negative_prompt);
  g_free (request->sampler);
  g_ptr_array_unref (request->loras);
  g_free (request);
}

char *
dl_preview_request_to_parameters (const DlPreviewRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  g_autofree DlInfotextNetwork *loras = g_new0 (DlInfotextNetwork, request->loras->len + 1);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < request->loras->len; i++)
    {
      DlPreviewLora *l = request->loras->pdata[i];
      char *stem = dl_file_stem (l->path);
      g_ptr_array_add (names, stem);
      loras[i] = (DlInfotextNetwork){ .name = stem, .strength = l->strength };
    }
  g_autofree char *model = request->model_path ? dl_file_stem (request->model_path) : NULL;
  DlInfotext info = {
    .prompt = request->prompt,
    .negative = request->negative_prompt,
    .loras = loras,
    .n_loras = request->loras->len,
    .steps = request->steps,
    .sampler = dl_sampler_label (request->sampler),
    .cfg_scale = request->cfg_scale,
    .seed = request->seed,
    .width = request->width,
    .height = request->height,
    .model = model,
  };
  return dl_infotext_format (&info);
}

/* ---- images ---- */

DlPreviewImage *
dl_preview_image_new (int width, int height, gsize stride, GBytes *rgba)
{
  g_return_val_if_fail (width > 0 && height > 0, NULL);
  g_return_val_if_fail (stride >= (gsize)width * 4, NULL);
  g_return_val_if_fail (rgba != NULL && g_bytes_get_size (rgba) >= stride * (gsize)height, NULL);
  DlPreviewImage *image = g_new0 (DlPreviewImage, 1);
  image->width = width;
  image->height = height;
  image->stride = stride;
  image->rgba = g_bytes_ref (rgba);
  return image;
}

void
dl_preview_image_free (DlPreviewImage *image)
{
  if (!image)
    return;
  g_bytes_unref (image->rgba);
  g_free (image);
}
