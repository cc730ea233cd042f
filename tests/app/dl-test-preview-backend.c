#include "dl-config.h"

#include "dl-test-preview-backend.h"

#include <math.h>
#include <string.h>

struct _DlTestPreviewBackend
{
  GObject parent_instance;
  guint step_delay;
  guint hold_call;
  guint cancel_latency;
  char *fail_on_lora;
  /* touched by the panel's worker thread */
  gint n_calls, n_running, max_concurrent, n_cancelled;
  GMutex lock;
};

static void dl_test_preview_backend_iface_init (DlPreviewBackendInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DlTestPreviewBackend, dl_test_preview_backend, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DL_TYPE_PREVIEW_BACKEND, dl_test_preview_backend_iface_init))

/* FNV-1a: a stable hash of whatever makes a preview what it is. */
static guint64
mix (guint64 h, const void *data, gsize len)
{
  const guchar *p = data;
  for (gsize i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static guint64
mix_str (guint64 h, const char *s)
{
  return mix (h, s ? s : "", strlen (s ? s : "") + 1);
}

/* Rings around a hashed centre over a hashed base colour; a LoRA also turns the
 * phase and the hue, so that its column is visibly different. */
static DlPreviewImage *
draw (const DlPreviewRequest *request)
{
  guint64 h = 0xcbf29ce484222325ull;
  h = mix_str (h, request->prompt);
  h = mix (h, &request->seed, sizeof request->seed);
  double lora_shift = 0;
  for (guint i = 0; i < request->loras->len; i++)
    {
      DlPreviewLora *l = request->loras->pdata[i];
      h = mix_str (h, l->path);
      h = mix (h, &l->strength, sizeof l->strength);
      lora_shift += l->strength;
    }
  int w = request->width, ht = request->height;
  gsize stride = (gsize)w * 4;
  guchar *rgba = g_malloc (stride * (gsize)ht);
  double cx = (double)(h % 1000) / 1000.0 * w, cy = (double)((h >> 10) % 1000) / 1000.0 * ht;
  double period = 6.0 + (double)((h >> 20) % 24);
  guchar base[3] = { (guchar)(h >> 32), (guchar)(h >> 40), (guchar)(h >> 48) };
  int accent = ((int)(fabs (lora_shift) * 2)) % 3;
  for (int y = 0; y < ht; y++)
    for (int x = 0; x < w; x++)
      {
        double d = sqrt ((x - cx) * (x - cx) + (y - cy) * (y - cy));
        double ring = 0.5 + 0.5 * sin (d / period * 2 * G_PI + lora_shift * 3.0);
        guchar *p = rgba + y * stride + x * 4;
        for (int c = 0; c < 3; c++)
          p[c] = (guchar)CLAMP (base[c] * 0.5 + ring * 127.0 * (c == accent ? 1.0 : 0.6), 0, 255);
        p[3] = 255;
      }
  g_autoptr (GBytes) bytes = g_bytes_new_take (rgba, stride * (gsize)ht);
  return dl_preview_image_new (w, ht, stride, bytes);
}

static DlPreviewImage *
run_steps (DlTestPreviewBackend *self, guint call, const DlPreviewRequest *request, GCancellable *cancellable,
           DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  g_mutex_lock (&self->lock);
  g_autofree char *fail_on = g_strdup (self->fail_on_lora);
  guint delay = self->step_delay;
  gboolean hold = self->hold_call == call;
  guint latency = self->cancel_latency;
  g_mutex_unlock (&self->lock);

  for (int step = 0; step < request->steps; step++)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          /* a step that cannot be interrupted finishes first */
          if (latency)
            g_usleep (latency);
          g_cancellable_set_error_if_cancelled (cancellable, error);
          g_atomic_int_inc (&self->n_cancelled);
          return NULL;
        }
      while (hold && !g_cancellable_is_cancelled (cancellable))
        g_usleep (2000);
      if (delay)
        g_usleep (delay);
      if (progress)
        progress (step + 1, request->steps, progress_data);
    }
  for (guint i = 0; fail_on && i < request->loras->len; i++)
    {
      DlPreviewLora *l = request->loras->pdata[i];
      if (strstr (l->path, fail_on))
        {
          g_autofree char *name = g_path_get_basename (l->path);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "“%s” is not a LoRA file (test double)", name);
          return NULL;
        }
    }
  return draw (request);
}

static DlPreviewImage *
generate (DlPreviewBackend *backend, const DlPreviewRequest *request, GCancellable *cancellable,
          DlPreviewProgressFunc progress, gpointer progress_data, GError **error)
{
  DlTestPreviewBackend *self = DL_TEST_PREVIEW_BACKEND (backend);
  guint call = (guint)g_atomic_int_add (&self->n_calls, 1) + 1;
  int running = g_atomic_int_add (&self->n_running, 1) + 1;
  g_mutex_lock (&self->lock);
  self->max_concurrent = MAX (self->max_concurrent, running);
  g_mutex_unlock (&self->lock);
  DlPreviewImage *image = run_steps (self, call, request, cancellable, progress, progress_data, error);
  g_atomic_int_add (&self->n_running, -1);
  return image;
}

static void
dl_test_preview_backend_iface_init (DlPreviewBackendInterface *iface)
{
  iface->generate = generate;
}

static void
dl_test_preview_backend_finalize (GObject *object)
{
  DlTestPreviewBackend *self = DL_TEST_PREVIEW_BACKEND (object);
  g_free (self->fail_on_lora);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dl_test_preview_backend_parent_class)->finalize (object);
}

static void
dl_test_preview_backend_class_init (DlTestPreviewBackendClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = dl_test_preview_backend_finalize;
}

static void
dl_test_preview_backend_init (DlTestPreviewBackend *self)
{
  g_mutex_init (&self->lock);
}

DlTestPreviewBackend *
dl_test_preview_backend_new (void)
{
  return g_object_new (DL_TYPE_TEST_PREVIEW_BACKEND, NULL);
}

void
dl_test_preview_backend_set_step_delay (DlTestPreviewBackend *self, guint microseconds)
{
  g_return_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self));
  g_mutex_lock (&self->lock);
  self->step_delay = microseconds;
  g_mutex_unlock (&self->lock);
}

void
dl_test_preview_backend_hold_call (DlTestPreviewBackend *self, guint call)
{
  g_return_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self));
  g_mutex_lock (&self->lock);
  self->hold_call = call;
  g_mutex_unlock (&self->lock);
}

void
dl_test_preview_backend_set_cancel_latency (DlTestPreviewBackend *self, guint microseconds)
{
  g_return_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self));
  g_mutex_lock (&self->lock);
  self->cancel_latency = microseconds;
  g_mutex_unlock (&self->lock);
}

void
dl_test_preview_backend_set_fail_on_lora (DlTestPreviewBackend *self, const char *needle)
{
  g_return_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self));
  g_mutex_lock (&self->lock);
  g_free (self->fail_on_lora);
  self->fail_on_lora = g_strdup (needle);
  g_mutex_unlock (&self->lock);
}

guint
dl_test_preview_backend_get_n_calls (DlTestPreviewBackend *self)
{
  g_return_val_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self), 0);
  return (guint)g_atomic_int_get (&self->n_calls);
}

guint
dl_test_preview_backend_get_max_concurrent (DlTestPreviewBackend *self)
{
  g_return_val_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self), 0);
  g_mutex_lock (&self->lock);
  guint n = (guint)self->max_concurrent;
  g_mutex_unlock (&self->lock);
  return n;
}

guint
dl_test_preview_backend_get_n_cancelled (DlTestPreviewBackend *self)
{
  g_return_val_if_fail (DL_IS_TEST_PREVIEW_BACKEND (self), 0);
  return (guint)g_atomic_int_get (&self->n_cancelled);
}
