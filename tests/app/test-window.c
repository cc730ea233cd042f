/* The window opens and reports the GPU the engine found, without blocking. */
#include "dl-config.h"

#include <adwaita.h>

#include "dl-application.h"
#include "dl-window.h"

static void
test_window_reports_device (void)
{
  g_autoptr (DlApplication) app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);
  DlWindow *win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (win));
  /* the probe runs on a worker thread: the label first says it is looking */
  g_assert_cmpstr (dl_window_get_device_text (win), ==, "Looking for a GPU…");
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (g_str_has_prefix (dl_window_get_device_text (win), "Looking") && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  const char *text = dl_window_get_device_text (win);
  g_test_message ("window says: %s", text);
  g_assert_true (g_str_has_prefix (text, "GPU: "));
  gtk_window_destroy (GTK_WINDOW (win));
}

int
main (int argc, char **argv)
{
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();
  g_test_add_func ("/app/window/reports-device", test_window_reports_device);
  return g_test_run ();
}
