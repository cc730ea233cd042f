/* dl-event-queue.c: see dl-event-queue.h. */
#include "dl-config.h"

#include "dl-event-queue.h"

struct _DlEventQueue
{
  gatomicrefcount ref;
  GMutex lock;
  GQueue items;
  GMainContext *context;
  GSource *source; /* pending idle source, or NULL */
  gboolean closed;
  GFunc deliver;
  gpointer user_data;
  GDestroyNotify item_free;
};

DlEventQueue *
dl_event_queue_new (GMainContext *context, GFunc deliver, gpointer user_data, GDestroyNotify item_free)
{
  DlEventQueue *q = g_new0 (DlEventQueue, 1);
  g_atomic_ref_count_init (&q->ref);
  g_mutex_init (&q->lock);
  g_queue_init (&q->items);
  q->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  q->deliver = deliver;
  q->user_data = user_data;
  q->item_free = item_free;
  return q;
}

DlEventQueue *
dl_event_queue_ref (DlEventQueue *q)
{
  g_atomic_ref_count_inc (&q->ref);
  return q;
}

static void
free_items (DlEventQueue *q, GQueue *items)
{
  gpointer item;
  while ((item = g_queue_pop_head (items)))
    if (q->item_free)
      q->item_free (item);
}

void
dl_event_queue_unref (DlEventQueue *q)
{
  if (!q || !g_atomic_ref_count_dec (&q->ref))
    return;
  free_items (q, &q->items);
  g_main_context_unref (q->context);
  g_mutex_clear (&q->lock);
  g_free (q);
}

/* deliver everything pending, one at a time, so that an item pushed while
 * one is delivered still comes after it */
void
dl_event_queue_flush (DlEventQueue *q)
{
  for (;;)
    {
      g_mutex_lock (&q->lock);
      gpointer item = q->closed ? NULL : g_queue_pop_head (&q->items);
      g_mutex_unlock (&q->lock);
      if (!item)
        return;
      q->deliver (item, q->user_data);
      if (q->item_free)
        q->item_free (item);
    }
}

static gboolean
dispatch (gpointer data)
{
  DlEventQueue *q = data;
  g_mutex_lock (&q->lock);
  g_clear_pointer (&q->source, g_source_unref);
  g_mutex_unlock (&q->lock);
  dl_event_queue_flush (q);
  return G_SOURCE_REMOVE;
}

void
dl_event_queue_push (DlEventQueue *q, gpointer item)
{
  g_mutex_lock (&q->lock);
  if (q->closed)
    {
      g_mutex_unlock (&q->lock);
      if (q->item_free)
        q->item_free (item);
      return;
    }
  g_queue_push_tail (&q->items, item);
  if (!q->source)
    {
      /* always through a source, never g_main_context_invoke, which would run
     * the delivery at once when the pushing thread owns the context */
      q->source = g_idle_source_new ();
      g_source_set_priority (q->source, G_PRIORITY_DEFAULT);
      g_source_set_name (q->source, "[dreamloom] job events");
      g_source_set_callback (q->source, dispatch, dl_event_queue_ref (q), (GDestroyNotify)dl_event_queue_unref);
      g_source_attach (q->source, q->context);
    }
  g_mutex_unlock (&q->lock);
}

void
dl_event_queue_close (DlEventQueue *q)
{
  GQueue pending = G_QUEUE_INIT;
  g_mutex_lock (&q->lock);
  q->closed = TRUE;
  pending = q->items;
  g_queue_init (&q->items);
  if (q->source)
    g_source_destroy (q->source);
  g_clear_pointer (&q->source, g_source_unref);
  g_mutex_unlock (&q->lock);
  free_items (q, &pending);
}
