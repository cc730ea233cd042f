/* dl-train-job.c: see dl-train-job.h.  The worker pushes copies of the
 * trainer's events into a DlEventQueue; the main thread turns them into
 * signals and state. */
#include "dl-config.h"

#include "dl-train-job-private.h"

#include "dl-event-queue.h"

typedef struct
{
  gboolean end;       /* not an event: the run is over */
  DlTrainEvent event; /* strings below */
  char *path, *prompt, *message;
  GError *error; /* end: NULL when finished */
} Item;

struct _DlTrainJob
{
  GObject parent_instance;
  DlTrainSettings *settings;
  GStrv paths, captions;
  char *resume_dir;
  char *run_dir;
  GCancellable *cancellable;
  DlEventQueue *events;

  /* main thread */
  DlTrainJobState state;
  gint64 step;
  GError *error;

  /* worker and main thread, under lock */
  GMutex lock;
  DlTrainer *trainer;
  gboolean pause_wanted;
};

enum
{
  PROP_0,
  PROP_STATE,
  PROP_STEP,
  N_PROPS
};
static GParamSpec *props[N_PROPS];
enum
{
  SIGNAL_EVENT,
  SIGNAL_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (DlTrainJob, dl_train_job, G_TYPE_OBJECT)

static void
item_free (gpointer p)
{
  Item *it = p;
  g_free (it->path);
  g_free (it->prompt);
  g_free (it->message);
  g_clear_error (&it->error);
  g_free (it);
}

static void
set_state (DlTrainJob *self, DlTrainJobState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_STATE]);
}

static void
deliver (gpointer data, gpointer user_data)
{
  Item *it = data;
  DlTrainJob *self = user_data;
  g_object_ref (self);
  if (it->end)
    {
      if (!it->error)
        set_state (self, DL_TRAIN_JOB_FINISHED);
      else if (g_error_matches (it->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        set_state (self, DL_TRAIN_JOB_STOPPED);
      else
        {
          self->error = g_error_copy (it->error);
          set_state (self, DL_TRAIN_JOB_FAILED);
        }
      g_signal_emit (self, signals[SIGNAL_FINISHED], 0);
      g_object_unref (self);
      return;
    }
  DlTrainEvent ev = it->event;
  ev.path = it->path;
  ev.prompt = it->prompt;
  ev.message = it->message;
  if (ev.kind == DL_TRAIN_EVENT_STEP || ev.kind == DL_TRAIN_EVENT_VALIDATION)
    {
      if (self->state == DL_TRAIN_JOB_PREPARING)
        set_state (self, DL_TRAIN_JOB_RUNNING);
      if (ev.step != self->step)
        {
          self->step = ev.step;
          g_object_notify_by_pspec (G_OBJECT (self), props[PROP_STEP]);
        }
    }
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, &ev);
  g_object_unref (self);
}

DlTrainJob *
dl_train_job_new (const DlTrainSettings *settings, const char *const *paths, const char *const *captions,
                  const char *resume_dir)
{
  g_return_val_if_fail (settings != NULL && paths != NULL, NULL);
  DlTrainJob *self = g_object_new (DL_TYPE_TRAIN_JOB, NULL);
  self->settings = dl_train_settings_copy (settings);
  self->paths = g_strdupv ((char **)paths);
  self->captions = captions ? g_strdupv ((char **)captions) : NULL;
  self->resume_dir = g_strdup (resume_dir);
  self->run_dir = resume_dir ? g_strdup (resume_dir) : dl_train_settings_run_dir (settings);
  /* the queue holds the job weakly: closed in dispose, so never delivered to a dead job */
  self->events = dl_event_queue_new (NULL, deliver, self, item_free);
  return self;
}

static void
dl_train_job_dispose (GObject *object)
{
  DlTrainJob *self = DL_TRAIN_JOB (object);
  if (self->events)
    dl_event_queue_close (self->events);
  G_OBJECT_CLASS (dl_train_job_parent_class)->dispose (object);
}

static void
dl_train_job_finalize (GObject *object)
{
  DlTrainJob *self = DL_TRAIN_JOB (object);
  g_clear_pointer (&self->events, dl_event_queue_unref);
  g_clear_pointer (&self->settings, dl_train_settings_free);
  g_strfreev (self->paths);
  g_strfreev (self->captions);
  g_free (self->resume_dir);
  g_free (self->run_dir);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (dl_train_job_parent_class)->finalize (object);
}

static void
dl_train_job_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DlTrainJob *self = DL_TRAIN_JOB (object);
  switch (id)
    {
    case PROP_STATE:
      g_value_set_int (value, self->state);
      break;
    case PROP_STEP:
      g_value_set_int64 (value, self->step);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
dl_train_job_class_init (DlTrainJobClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  oc->dispose = dl_train_job_dispose;
  oc->finalize = dl_train_job_finalize;
  oc->get_property = dl_train_job_get_property;
  props[PROP_STATE] = g_param_spec_int ("state", NULL, NULL, 0, DL_TRAIN_JOB_FAILED, 0,
                                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  props[PROP_STEP] = g_param_spec_int64 ("step", NULL, NULL, 0, G_MAXINT64, 0,
                                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (oc, N_PROPS, props);
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_FINISHED] =
    g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dl_train_job_init (DlTrainJob *self)
{
  g_mutex_init (&self->lock);
  self->cancellable = g_cancellable_new ();
  self->state = DL_TRAIN_JOB_PREPARING;
}

const DlTrainSettings *
dl_train_job_get_settings (DlTrainJob *self)
{
  return self->settings;
}

DlTrainJobState
dl_train_job_get_state (DlTrainJob *self)
{
  return self->state;
}

gboolean
dl_train_job_is_done (DlTrainJob *self)
{
  return self->state >= DL_TRAIN_JOB_FINISHED;
}

gint64
dl_train_job_get_step (DlTrainJob *self)
{
  return self->step;
}

gint64
dl_train_job_get_total_steps (DlTrainJob *self)
{
  return self->settings->steps;
}

const char *
dl_train_job_get_run_dir (DlTrainJob *self)
{
  return self->run_dir;
}

const GError *
dl_train_job_get_error (DlTrainJob *self)
{
  return self->error;
}

const char *
dl_train_job_get_resume_dir (DlTrainJob *self)
{
  return self->resume_dir;
}

const char *const *
dl_train_job_get_image_paths (DlTrainJob *self)
{
  return (const char *const *)self->paths;
}

const char *const *
dl_train_job_get_image_captions (DlTrainJob *self)
{
  return (const char *const *)self->captions;
}

GCancellable *
dl_train_job_get_cancellable (DlTrainJob *self)
{
  return self->cancellable;
}

void
dl_train_job_pause (DlTrainJob *self)
{
  if (dl_train_job_is_done (self))
    return;
  g_mutex_lock (&self->lock);
  self->pause_wanted = TRUE;
  if (self->trainer)
    dl_trainer_pause (self->trainer);
  g_mutex_unlock (&self->lock);
  if (self->state == DL_TRAIN_JOB_RUNNING || self->state == DL_TRAIN_JOB_PREPARING)
    set_state (self, DL_TRAIN_JOB_PAUSED);
}

void
dl_train_job_unpause (DlTrainJob *self)
{
  if (dl_train_job_is_done (self))
    return;
  g_mutex_lock (&self->lock);
  self->pause_wanted = FALSE;
  if (self->trainer)
    dl_trainer_unpause (self->trainer);
  g_mutex_unlock (&self->lock);
  if (self->state == DL_TRAIN_JOB_PAUSED)
    set_state (self, DL_TRAIN_JOB_RUNNING);
}

void
dl_train_job_stop (DlTrainJob *self)
{
  g_cancellable_cancel (self->cancellable);
}

void
dl_train_job_attach_trainer (DlTrainJob *self, DlTrainer *trainer)
{
  g_mutex_lock (&self->lock);
  self->trainer = trainer;
  if (trainer && self->pause_wanted)
    dl_trainer_pause (trainer);
  g_mutex_unlock (&self->lock);
}

void
dl_train_job_push_event (DlTrainJob *self, const DlTrainEvent *event)
{
  Item *it = g_new0 (Item, 1);
  it->event = *event;
  it->path = g_strdup (event->path);
  it->prompt = g_strdup (event->prompt);
  it->message = g_strdup (event->message);
  it->event.path = it->event.prompt = it->event.message = NULL;
  dl_event_queue_push (self->events, it);
}

void
dl_train_job_push_end (DlTrainJob *self, const GError *error)
{
  Item *it = g_new0 (Item, 1);
  it->end = TRUE;
  it->error = error ? g_error_copy (error) : NULL;
  dl_event_queue_push (self->events, it);
}
