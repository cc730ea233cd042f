#include "dl-config.h"

#include "dl-image-loader.h"

#include "dl-caption.h"
#include "train/dl-image-file.h"

void
dl_image_info_free (DlImageInfo *info)
{
  if (!info)
    return;
  g_free (info->content_hash);
  g_free (info->format);
  g_free (info->sidecar_caption);
  g_free (info->sidecar_error);
  g_free (info);
}

DlImageInfo *
dl_image_decode (const char *path, gboolean read_sidecar, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (DlImageFile) file = dl_image_file_read (path, cancellable, error);
  if (!file)
    return NULL;

  DlImageInfo *info = g_new0 (DlImageInfo, 1);
  info->width = gdk_pixbuf_get_width (file->pixbuf);
  info->height = gdk_pixbuf_get_height (file->pixbuf);
  info->content_hash = g_steal_pointer (&file->content_hash);
  info->format = g_steal_pointer (&file->format);

  if (read_sidecar)
    {
      g_autoptr (GError) local = NULL;
      g_autofree char *sidecar = dl_caption_sidecar_path (path);
      info->has_sidecar = g_file_test (sidecar, G_FILE_TEST_EXISTS);
      info->sidecar_caption = dl_caption_read_sidecar (path, &local);
      if (local)
        info->sidecar_error = g_strdup (local->message);
    }
  return info;
}

/* ---- the worker pool ---- */

typedef struct
{
  char *path;
  gboolean read_sidecar;
} DecodeJob;

static void
decode_job_free (gpointer data)
{
  DecodeJob *job = data;
  g_free (job->path);
  g_free (job);
}

static void
run_decode (gpointer data, gpointer user_data)
{
  GTask *task = data;
  DecodeJob *job = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr (GError) error = NULL;

  if (!g_task_return_error_if_cancelled (task))
    {
      DlImageInfo *info = dl_image_decode (job->path, job->read_sidecar, cancellable, &error);
      if (info)
        g_task_return_pointer (task, info, (GDestroyNotify)dl_image_info_free);
      else
        g_task_return_error (task, g_steal_pointer (&error));
    }
  g_object_unref (task);
}

static GThreadPool *
decode_pool (void)
{
  static GThreadPool *pool;
  if (g_once_init_enter (&pool))
    {
      int n = CLAMP ((int)g_get_num_processors () - 1, 1, 4);
      g_once_init_leave (&pool, g_thread_pool_new (run_decode, NULL, n, FALSE, NULL));
    }
  return pool;
}

void
dl_image_decode_async (const char *path, gboolean read_sidecar, GCancellable *cancellable, GAsyncReadyCallback callback,
                       gpointer user_data)
{
  g_return_if_fail (path != NULL);
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_image_decode_async);
  DecodeJob *job = g_new0 (DecodeJob, 1);
  job->path = g_strdup (path);
  job->read_sidecar = read_sidecar;
  g_task_set_task_data (task, job, decode_job_free);
  g_thread_pool_push (decode_pool (), task, NULL);
}

DlImageInfo *
dl_image_decode_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
