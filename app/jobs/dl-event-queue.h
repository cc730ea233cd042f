/* dl-event-queue.h: items from worker threads delivered, in the order they
 * were pushed, on one GMainContext (the window's), through one idle source.
 * The one way a job's worker reports back to the main thread. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DlEventQueue DlEventQueue;

/* `deliver` (item, user_data) runs on `context`'s thread; `item_free` frees an
 * item after delivery, or undelivered after dl_event_queue_close. */
DlEventQueue *dl_event_queue_new (GMainContext *context, GFunc deliver, gpointer user_data, GDestroyNotify item_free);
DlEventQueue *dl_event_queue_ref (DlEventQueue *q);
void dl_event_queue_unref (DlEventQueue *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlEventQueue, dl_event_queue_unref)

/* Any thread.  After close, items are freed at once. */
void dl_event_queue_push (DlEventQueue *q, gpointer item);
/* No delivery after this returns (call it on the context's thread); pending
 * items are freed.  user_data is no longer used. */
void dl_event_queue_close (DlEventQueue *q);
/* Deliver what is pending now (the context's thread): tests, and a job's end
 * that must follow its last event. */
void dl_event_queue_flush (DlEventQueue *q);

G_END_DECLS
