/* One exclusive worker thread: writes happen in queue order, so two saves of the
 * same file can never land out of order. */
#include "dl-config.h"

#include "dl-file-writer.h"

typedef struct
{
  char *path;
  GBytes *bytes;
} WriteJob;

static GMutex lock;
static GCond idle_cond;
static guint pending;
static GThreadPool *pool;

static void
write_job_free (gpointer data)
{
  WriteJob *job = data;
  g_free (job->path);
  g_bytes_unref (job->bytes);
  g_free (job);
}

static void
run_write (gpointer data, gpointer user_data)
{
  GTask *task = data;
  WriteJob *job = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  const char *contents = g_bytes_get_data (job->bytes, &len);

  if (g_task_return_error_if_cancelled (task))
    ;
  else if (g_file_set_contents_full (job->path, contents ? contents : "", len, G_FILE_SET_CONTENTS_CONSISTENT, 0666,
                                     &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, g_steal_pointer (&error));
  g_object_unref (task);

  g_mutex_lock (&lock);
  if (--pending == 0)
    g_cond_broadcast (&idle_cond);
  g_mutex_unlock (&lock);
}

void
dl_file_writer_write_async (const char *path, GBytes *bytes, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_return_if_fail (path != NULL);
  g_return_if_fail (bytes != NULL);

  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_file_writer_write_async);
  WriteJob *job = g_new0 (WriteJob, 1);
  job->path = g_strdup (path);
  job->bytes = g_bytes_ref (bytes);
  g_task_set_task_data (task, job, write_job_free);

  g_mutex_lock (&lock);
  if (!pool)
    pool = g_thread_pool_new (run_write, NULL, 1, TRUE, NULL);
  pending++;
  g_mutex_unlock (&lock);
  g_thread_pool_push (pool, task, NULL);
}

gboolean
dl_file_writer_write_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
dl_file_writer_wait (void)
{
  g_mutex_lock (&lock);
  while (pending > 0)
    g_cond_wait (&idle_cond, &lock);
  g_mutex_unlock (&lock);
}
