/* dl-preview-backend.h: what the preview panel needs from an image generator.
 *
 * The window never talks to the engine directly: it builds DlPreviewRequests and
 * hands them, one at a time on a worker thread, to the DlPreviewBackend that the
 * application registered with dl_preview_backend_set_default().  Until a Stable
 * Diffusion sampler registers one, there is none, and the panel says previews need
 * the sampler.  This header is deliberately free of engine (compute/) types. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  char *path;      /* a LoRA .safetensors file */
  double strength; /* multiplier of its change to the weights (A1111's <lora:name:strength>) */
} DlPreviewLora;

typedef struct
{
  char *model_path; /* base checkpoint: a .safetensors/.ckpt file or a diffusers folder */
  char *device;     /* Vulkan device: index or name part (dl_device_choose); NULL or "" picks */
  char *prompt;
  char *negative_prompt; /* "" for none */
  guint64 seed;          /* 0 .. 2^32-1 */
  int steps;
  char *sampler; /* "euler_a", "euler", "ddim" or "dpmpp_2m_karras" */
  double cfg_scale;
  int width, height; /* multiples of 8 */
  GPtrArray *loras;  /* DlPreviewLora, applied in order on top of the base */
} DlPreviewRequest;

DlPreviewRequest *dl_preview_request_new (void);
DlPreviewRequest *dl_preview_request_copy (const DlPreviewRequest *request);
void dl_preview_request_free (DlPreviewRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlPreviewRequest, dl_preview_request_free)
void dl_preview_request_add_lora (DlPreviewRequest *request, const char *path, double strength);
/* The request as AUTOMATIC1111 writes it into a PNG's "parameters" text:
 *   a photo of sks dog <lora:dog:0.8>
 *   Negative prompt: blurry
 *   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: v1-5-pruned-emaonly */
char *dl_preview_request_to_parameters (const DlPreviewRequest *request);

typedef struct
{
  int width, height;
  gsize stride; /* bytes per row, at least width * 4 */
  GBytes *rgba; /* 8-bit RGBA, straight alpha, height * stride bytes */
} DlPreviewImage;

/* Takes a reference to `rgba`; NULL (with a critical) when the sizes do not fit. */
DlPreviewImage *dl_preview_image_new (int width, int height, gsize stride, GBytes *rgba);
void dl_preview_image_free (DlPreviewImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlPreviewImage, dl_preview_image_free)

/* Called from the worker thread while an image is being made. */
typedef void (*DlPreviewProgressFunc) (int step, int n_steps, gpointer user_data);

#define DL_TYPE_PREVIEW_BACKEND (dl_preview_backend_get_type ())
G_DECLARE_INTERFACE (DlPreviewBackend, dl_preview_backend, DL, PREVIEW_BACKEND, GObject)

struct _DlPreviewBackendInterface
{
  GTypeInterface parent_iface;

  /* Make one image.  Runs on a worker thread and blocks; the panel sends one request
   * at a time per backend, so an implementation may keep the loaded model, LoRAs and
   * device between calls.  Report progress after each step.  Once `cancellable` is
   * cancelled, return soon (between steps) with G_IO_ERROR_CANCELLED.  Any other
   * failure is a GError whose message a person can act on ("The checkpoint … is an
   * SDXL model; Dreamloom trains SD 1.x and 2.x"). */
  DlPreviewImage *(*generate) (DlPreviewBackend *self, const DlPreviewRequest *request, GCancellable *cancellable,
                               DlPreviewProgressFunc progress, gpointer progress_data, GError **error);
};

DlPreviewImage *dl_preview_backend_generate (DlPreviewBackend *self, const DlPreviewRequest *request,
                                             GCancellable *cancellable, DlPreviewProgressFunc progress,
                                             gpointer progress_data, GError **error);

/* The application's backend; NULL while no generator is available. */
DlPreviewBackend *dl_preview_backend_get_default (void);
/* Register (or, with NULL, withdraw) the application's backend.  Main thread. */
void dl_preview_backend_set_default (DlPreviewBackend *backend);

G_END_DECLS
