/* test-event-queue.c: items pushed from worker threads arrive on the main
 * context, all of them, in the order they were pushed; none after close. */
#include "dl-config.h"

#include <glib.h>

#include "dl-event-queue.h"

#define N_ITEMS 2000

typedef struct
{
  GArray *got;
  guint freed;
} Sink;

static void
deliver (gpointer item, gpointer user_data)
{
  Sink *s = user_data;
  int v = GPOINTER_TO_INT (item);
  g_array_append_val (s->got, v);
}

static Sink *free_sink;

static void
item_free (gpointer item)
{
  (void)item;
  free_sink->freed++;
}

static gpointer
producer (gpointer data)
{
  DlEventQueue *q = data;
  for (int i = 1; i <= N_ITEMS; i++)
    {
      dl_event_queue_push (q, GINT_TO_POINTER (i));
      if (i % 97 == 0)
        g_usleep (100);
    }
  return NULL;
}

static void
test_order (void)
{
  Sink s = { g_array_new (FALSE, FALSE, sizeof (int)), 0 };
  free_sink = &s;
  g_autoptr (DlEventQueue) q = dl_event_queue_new (NULL, deliver, &s, item_free);
  GThread *th = g_thread_new ("producer", producer, q);
  /* nothing arrives on the producer's thread: only while the main context runs */
  while (s.got->len < N_ITEMS)
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (th);
  g_assert_cmpuint (s.got->len, ==, N_ITEMS);
  for (guint i = 0; i < s.got->len; i++)
    g_assert_cmpint (g_array_index (s.got, int, i), ==, (int)i + 1);
  g_assert_cmpuint (s.freed, ==, N_ITEMS);
  g_array_unref (s.got);
}

static void
test_close (void)
{
  Sink s = { g_array_new (FALSE, FALSE, sizeof (int)), 0 };
  free_sink = &s;
  g_autoptr (DlEventQueue) q = dl_event_queue_new (NULL, deliver, &s, item_free);
  dl_event_queue_push (q, GINT_TO_POINTER (1));
  dl_event_queue_push (q, GINT_TO_POINTER (2));
  dl_event_queue_close (q);
  dl_event_queue_push (q, GINT_TO_POINTER (3));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (s.got->len, ==, 0);
  g_assert_cmpuint (s.freed, ==, 3);
  g_array_unref (s.got);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/event-queue/order", test_order);
  g_test_add_func ("/event-queue/close", test_close);
  return g_test_run ();
}
