/* The worker owns copies of the requests and a reference to the backend; it talks
 * to the job only through messages that hold a weak reference, so a closed window
 * simply stops listening. */
#include "dl-config.h"

#include "dl-preview-job.h"

typedef struct
{
  guint row, column;
  DlPreviewRequest *request;
} Item;

struct _DlPreviewJob
{
  GObject parent_instance;
  DlPreviewBackend *backend;
  GArray *items; /* Item */
  GCancellable *cancellable;
  gboolean running;
  gboolean started;
  GMainContext *context;
};

G_DEFINE_FINAL_TYPE (DlPreviewJob, dl_preview_job, G_TYPE_OBJECT)

enum
{
  SIGNAL_ITEM_STARTED,
  SIGNAL_PROGRESS,
  SIGNAL_ITEM_FINISHED,
  SIGNAL_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

enum
{
  PROP_0,
  PROP_RUNNING,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

GdkTexture *
dl_preview_image_to_texture (const DlPreviewImage *image)
{
  g_return_val_if_fail (image != NULL, NULL);
  return gdk_memory_texture_new (image->width, image->height, GDK_MEMORY_R8G8B8A8, image->rgba, image->stride);
}

/* ---- messages from the worker ---- */

typedef enum
{
  MSG_STARTED,
  MSG_PROGRESS,
  MSG_DONE,
  MSG_FINISHED
} MsgKind;

/* The job, weakly, shared by the worker and its messages and only ever resolved on
 * the main thread: the worker never holds the job itself, so the job is always
 * disposed on the main thread. */
typedef struct
{
  gatomicrefcount rc;
  GWeakRef job;
} JobRef;

static JobRef *
job_ref_new (DlPreviewJob *job)
{
  JobRef *r = g_new0 (JobRef, 1);
  g_atomic_ref_count_init (&r->rc);
  g_weak_ref_init (&r->job, job);
  return r;
}

static JobRef *
job_ref_ref (JobRef *r)
{
  g_atomic_ref_count_inc (&r->rc);
  return r;
}

static void
job_ref_unref (JobRef *r)
{
  if (g_atomic_ref_count_dec (&r->rc))
    {
      g_weak_ref_clear (&r->job);
      g_free (r);
    }
}

typedef struct
{
  JobRef *job;
  MsgKind kind;
  guint row, column;
  double fraction;
  GdkTexture *texture;
  GError *error;
  gboolean cancelled;
} Msg;

static void
msg_free (gpointer data)
{
  Msg *m = data;
  job_ref_unref (m->job);
  g_clear_object (&m->texture);
  g_clear_error (&m->error);
  g_free (m);
}

static gboolean
msg_dispatch (gpointer data)
{
  Msg *m = data;
  g_autoptr (DlPreviewJob) self = g_weak_ref_get (&m->job->job);
  if (!self)
    return G_SOURCE_REMOVE;
  switch (m->kind)
    {
    case MSG_STARTED:
      g_signal_emit (self, signals[SIGNAL_ITEM_STARTED], 0, m->row, m->column);
      break;
    case MSG_PROGRESS:
      g_signal_emit (self, signals[SIGNAL_PROGRESS], 0, m->fraction);
      break;
    case MSG_DONE:
      g_signal_emit (self, signals[SIGNAL_ITEM_FINISHED], 0, m->row, m->column, m->texture, m->error);
      break;
    case MSG_FINISHED:
      self->running = FALSE;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_RUNNING]);
      g_signal_emit (self, signals[SIGNAL_FINISHED], 0, m->cancelled);
      break;
    }
  return G_SOURCE_REMOVE;
}

typedef struct
{
  JobRef *job;
  GMainContext *context;
  DlPreviewBackend *backend;
  GArray *items; /* Item, own copies */
  GCancellable *cancellable;
  /* progress bookkeeping (worker only) */
  guint index;
  int last_permille;
} Work;

static void
post (Work *w, Msg *m)
{
  m->job = job_ref_ref (w->job);
  /* Always through a source, never g_main_context_invoke: that runs the function
   * right here, on this thread, whenever the main thread is between two loop
   * iterations, and the handlers touch widgets.  Sources of one priority run in
   * the order they were attached, so the messages keep theirs. */
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, msg_dispatch, m, msg_free);
  g_source_set_static_name (source, "[dreamloom] preview message");
  g_source_attach (source, w->context);
  g_source_unref (source);
}

static void
item_clear (gpointer data)
{
  Item *it = data;
  dl_preview_request_free (it->request);
}

static void
work_free (Work *w)
{
  job_ref_unref (w->job);
  g_main_context_unref (w->context);
  g_object_unref (w->backend);
  g_array_unref (w->items);
  g_object_unref (w->cancellable);
  g_free (w);
}

static void
report_progress (Work *w, double within_item)
{
  double fraction = (w->index + CLAMP (within_item, 0.0, 1.0)) / MAX (1u, w->items->len);
  int permille = (int)(fraction * 1000);
  /* a message per visible change, not per callback */
  if (permille == w->last_permille)
    return;
  w->last_permille = permille;
  Msg *m = g_new0 (Msg, 1);
  m->kind = MSG_PROGRESS;
  m->fraction = fraction;
  post (w, m);
}

static void
step_progress (int step, int n_steps, gpointer user_data)
{
  report_progress (user_data, n_steps > 0 ? (double)step / n_steps : 0.0);
}

/* One image at a time in the whole program: a cancelled run's worker may still be
 * finishing its step when the next run starts, and a backend keeps one model on
 * one GPU (see dl-preview-backend.h).  Held only around a generate call. */
static GMutex generate_lock;

static gpointer
worker (gpointer data)
{
  Work *w = data;
  gboolean cancelled = FALSE;
  for (w->index = 0; w->index < w->items->len; w->index++)
    {
      Item *it = &g_array_index (w->items, Item, w->index);
      if (g_cancellable_is_cancelled (w->cancellable))
        {
          cancelled = TRUE;
          break;
        }
      GError *error = NULL;
      DlPreviewImage *image = NULL;
      g_mutex_lock (&generate_lock);
      if (!g_cancellable_set_error_if_cancelled (w->cancellable, &error))
        {
          Msg *start = g_new0 (Msg, 1);
          start->kind = MSG_STARTED;
          start->row = it->row;
          start->column = it->column;
          post (w, start);
          report_progress (w, 0.0);
          image = dl_preview_backend_generate (w->backend, it->request, w->cancellable, step_progress, w, &error);
        }
      g_mutex_unlock (&generate_lock);
      Msg *done = g_new0 (Msg, 1);
      done->kind = MSG_DONE;
      done->row = it->row;
      done->column = it->column;
      if (image)
        {
          done->texture = dl_preview_image_to_texture (image);
          dl_preview_image_free (image);
        }
      else
        done->error = error;
      gboolean was_cancelled = error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      post (w, done);
      if (was_cancelled)
        {
          cancelled = TRUE;
          break;
        }
    }
  if (!cancelled)
    report_progress (w, 0.0);
  Msg *fin = g_new0 (Msg, 1);
  fin->kind = MSG_FINISHED;
  fin->cancelled = cancelled;
  post (w, fin);
  work_free (w);
  return NULL;
}

/* ---- API ---- */

DlPreviewJob *
dl_preview_job_new (DlPreviewBackend *backend)
{
  g_return_val_if_fail (DL_IS_PREVIEW_BACKEND (backend), NULL);
  DlPreviewJob *self = g_object_new (DL_TYPE_PREVIEW_JOB, NULL);
  self->backend = g_object_ref (backend);
  return self;
}

void
dl_preview_job_add (DlPreviewJob *self, guint row, guint column, const DlPreviewRequest *request)
{
  g_return_if_fail (DL_IS_PREVIEW_JOB (self));
  g_return_if_fail (request != NULL);
  g_return_if_fail (!self->started);
  Item it = { row, column, dl_preview_request_copy (request) };
  g_array_append_val (self->items, it);
}

guint
dl_preview_job_get_n_items (DlPreviewJob *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_JOB (self), 0);
  return self->items->len;
}

const DlPreviewRequest *
dl_preview_job_get_request (DlPreviewJob *self, guint row, guint column)
{
  g_return_val_if_fail (DL_IS_PREVIEW_JOB (self), NULL);
  for (guint i = 0; i < self->items->len; i++)
    {
      Item *it = &g_array_index (self->items, Item, i);
      if (it->row == row && it->column == column)
        return it->request;
    }
  return NULL;
}

void
dl_preview_job_start (DlPreviewJob *self)
{
  g_return_if_fail (DL_IS_PREVIEW_JOB (self));
  g_return_if_fail (!self->started);
  self->started = TRUE;
  self->running = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_RUNNING]);

  Work *w = g_new0 (Work, 1);
  w->job = job_ref_new (self);
  w->context = g_main_context_ref_thread_default ();
  w->backend = g_object_ref (self->backend);
  w->cancellable = g_object_ref (self->cancellable);
  w->last_permille = -1;
  w->items = g_array_sized_new (FALSE, FALSE, sizeof (Item), self->items->len);
  g_array_set_clear_func (w->items, item_clear);
  for (guint i = 0; i < self->items->len; i++)
    {
      Item *it = &g_array_index (self->items, Item, i);
      Item copy = { it->row, it->column, dl_preview_request_copy (it->request) };
      g_array_append_val (w->items, copy);
    }
  g_autoptr (GThread) thread = g_thread_new ("dl-preview", worker, w);
}

void
dl_preview_job_cancel (DlPreviewJob *self)
{
  g_return_if_fail (DL_IS_PREVIEW_JOB (self));
  g_cancellable_cancel (self->cancellable);
}

gboolean
dl_preview_job_get_running (DlPreviewJob *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_JOB (self), FALSE);
  return self->running;
}

static void
dl_preview_job_dispose (GObject *object)
{
  DlPreviewJob *self = DL_PREVIEW_JOB (object);
  g_cancellable_cancel (self->cancellable);
  G_OBJECT_CLASS (dl_preview_job_parent_class)->dispose (object);
}

static void
dl_preview_job_finalize (GObject *object)
{
  DlPreviewJob *self = DL_PREVIEW_JOB (object);
  g_clear_object (&self->backend);
  g_array_unref (self->items);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (dl_preview_job_parent_class)->finalize (object);
}

static void
dl_preview_job_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlPreviewJob *self = DL_PREVIEW_JOB (object);
  switch (prop_id)
    {
    case PROP_RUNNING:
      g_value_set_boolean (value, self->running);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_preview_job_class_init (DlPreviewJobClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = dl_preview_job_dispose;
  object_class->finalize = dl_preview_job_finalize;
  object_class->get_property = dl_preview_job_get_property;

  props[PROP_RUNNING] = g_param_spec_boolean ("running", NULL, NULL, FALSE,
                                              G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  signals[SIGNAL_ITEM_STARTED] = g_signal_new ("item-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                               NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
  signals[SIGNAL_PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                           NULL, G_TYPE_NONE, 1, G_TYPE_DOUBLE);
  signals[SIGNAL_ITEM_FINISHED] =
    g_signal_new ("item-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                  G_TYPE_UINT, G_TYPE_UINT, GDK_TYPE_TEXTURE, G_TYPE_ERROR);
  signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                           NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
}

static void
dl_preview_job_init (DlPreviewJob *self)
{
  self->items = g_array_new (FALSE, FALSE, sizeof (Item));
  g_array_set_clear_func (self->items, item_clear);
  self->cancellable = g_cancellable_new ();
}
