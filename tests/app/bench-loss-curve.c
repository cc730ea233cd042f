/* Benchmark, not a test: how long the loss curve takes per frame for a long run.
 * 10^4 and 10^5 steps (a validation every 100, the learning rate shown), 20 frames
 * each after one to warm up: the widget's snapshot(), then the render of its nodes
 * to a texture with a GskCairoRenderer.  Prints the medians against the 16.7 ms
 * of a 60 Hz frame, and the same for an empty run as the floor. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <math.h>

#include "app-test-util.h"
#include "dl-loss-curve.h"

#define FRAMES 20
#define BUDGET_MS 16.7

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
median (double *v, int n)
{
  qsort (v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
fill (DlLossCurve *curve, int n)
{
  dl_loss_curve_clear (curve);
  GRand *rand = g_rand_new_with_seed (1);
  for (int i = 1; i <= n; i++)
    {
      double trend = 0.08 + 0.5 / sqrt (i);
      dl_loss_curve_add_step (curve, i, trend * g_rand_double_range (rand, 0.6, 1.4), 1e-4 * (1.0 - (double)i / n));
      if (i % 100 == 0)
        dl_loss_curve_add_validation (curve, i, trend);
    }
  dl_loss_curve_set_best (curve, n / 2);
  g_rand_free (rand);
}

static void
run (GskRenderer *renderer, DlLossCurve *curve, int n)
{
  fill (curve, n);
  GtkWidget *w = GTK_WIDGET (curve);
  int width = gtk_widget_get_width (w), height = gtk_widget_get_height (w);
  double snap_ms[FRAMES], render_ms[FRAMES], total_ms[FRAMES];
  for (int f = -1; f < FRAMES; f++)
    {
      /* the widget's own snapshot(), as the window calls it for a new frame */
      gint64 t0 = g_get_monotonic_time ();
      GtkSnapshot *snapshot = gtk_snapshot_new ();
      GTK_WIDGET_GET_CLASS (w)->snapshot (w, snapshot);
      g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
      g_assert_nonnull (node);
      gint64 t1 = g_get_monotonic_time ();
      g_autoptr (GdkTexture) texture =
        gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
      gint64 t2 = g_get_monotonic_time ();
      g_assert_nonnull (texture);
      if (f < 0)
        continue;
      if (f == 0 && g_getenv ("DL_TEST_ARTIFACT_DIR"))
        {
          g_autofree char *name = g_strdup_printf ("bench-loss-curve-%d.png", n);
          g_autofree char *path = g_build_filename (g_getenv ("DL_TEST_ARTIFACT_DIR"), name, NULL);
          g_mkdir_with_parents (g_getenv ("DL_TEST_ARTIFACT_DIR"), 0755);
          gdk_texture_save_to_png (texture, path);
        }
      snap_ms[f] = (t1 - t0) / 1000.0;
      render_ms[f] = (t2 - t1) / 1000.0;
      total_ms[f] = (t2 - t0) / 1000.0;
    }
  double total = median (total_ms, FRAMES);
  g_print ("%6d steps, %dx%d: median %.2f ms/frame (snapshot %.2f, render %.2f) against %.1f ms: %s\n", n, width,
           height, total, median (snap_ms, FRAMES), median (render_ms, FRAMES), BUDGET_MS,
           total <= BUDGET_MS ? "within" : "OVER");
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  GtkWindow *window = GTK_WINDOW (gtk_window_new ());
  gtk_window_set_default_size (window, 960, 400);
  DlLossCurve *curve = DL_LOSS_CURVE (dl_loss_curve_new ());
  dl_loss_curve_set_show_lr (curve, TRUE);
  gtk_window_set_child (window, GTK_WIDGET (curve));
  gtk_window_present (window);
  APP_TEST_WAIT_UNTIL (gtk_widget_get_mapped (GTK_WIDGET (curve)) && gtk_widget_get_width (GTK_WIDGET (curve)) > 0, 10);

  g_autoptr (GskRenderer) renderer = gsk_cairo_renderer_new ();
  g_autoptr (GError) error = NULL;
  if (!gsk_renderer_realize (renderer, gtk_native_get_surface (GTK_NATIVE (window)), &error))
    g_error ("cannot realize the cairo renderer: %s", error->message);

  run (renderer, curve, 0); /* the floor: the empty state's text on a blank frame */
  run (renderer, curve, 10000);
  run (renderer, curve, 100000);

  gsk_renderer_unrealize (renderer);
  gtk_window_destroy (window);
  return 0;
}
