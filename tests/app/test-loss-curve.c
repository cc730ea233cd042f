/* The Train page's loss curve: the series behind it (smoothing against numbers
 * worked out by hand, the visible and y ranges, decimation, ticks, the read-out,
 * the CSV export) and the widget itself in a window under Xvfb (what it renders
 * for an empty and a filled run, log scale, the learning rate, the best mark,
 * hovering, its properties and accessible description). */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <locale.h>
#include <math.h>
#include <string.h>

#include "app-test-util.h"
#include "dl-error.h"
#include "dl-loss-curve.h"
#include "dl-loss-series.h"

#define EPS 1e-9

/* ---- the series ---- */

static void
test_smoothing (void)
{
  g_autoptr (DlLossSeries) s = dl_loss_series_new ();
  dl_loss_series_set_smoothing (s, 0.5);
  dl_loss_series_add_step (s, 1, 1.0, NAN);
  dl_loss_series_add_step (s, 2, 2.0, NAN);
  dl_loss_series_add_step (s, 3, 3.0, NAN);
  const DlLossPoint *p = dl_loss_series_get_steps (s);
  g_assert_cmpuint (dl_loss_series_get_n_steps (s), ==, 3);
  /* ema 0.5, 1.25, 2.125 divided by 1 - 0.5^n = 0.5, 0.75, 0.875 */
  g_assert_cmpfloat_with_epsilon (p[0].smoothed, 1.0, EPS);
  g_assert_cmpfloat_with_epsilon (p[1].smoothed, 5.0 / 3.0, EPS);
  g_assert_cmpfloat_with_epsilon (p[2].smoothed, 17.0 / 7.0, EPS);

  /* no smoothing: the raw values */
  dl_loss_series_set_smoothing (s, 0.0);
  p = dl_loss_series_get_steps (s);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (p[i].smoothed, ==, p[i].loss);

  /* a non-finite loss stays a point but the average passes it by */
  g_autoptr (DlLossSeries) n = dl_loss_series_new ();
  dl_loss_series_set_smoothing (n, 0.5);
  dl_loss_series_add_step (n, 1, 1.0, NAN);
  dl_loss_series_add_step (n, 2, NAN, NAN);
  dl_loss_series_add_step (n, 3, INFINITY, NAN);
  dl_loss_series_add_step (n, 4, 2.0, NAN);
  p = dl_loss_series_get_steps (n);
  g_assert_cmpuint (dl_loss_series_get_n_steps (n), ==, 4);
  g_assert_true (isnan (p[1].loss));
  g_assert_true (isnan (p[1].smoothed));
  g_assert_true (isnan (p[2].smoothed));
  g_assert_cmpfloat_with_epsilon (p[3].smoothed, 5.0 / 3.0, EPS);

  /* changing the weight afterwards gives what adding with it gives */
  g_autoptr (DlLossSeries) late = dl_loss_series_new ();
  dl_loss_series_add_step (late, 1, 1.0, NAN);
  dl_loss_series_add_step (late, 2, 2.0, NAN);
  dl_loss_series_add_step (late, 3, 3.0, NAN);
  dl_loss_series_set_smoothing (late, 0.5);
  g_assert_cmpfloat (dl_loss_series_get_smoothing (late), ==, 0.5);
  g_assert_cmpfloat_with_epsilon (dl_loss_series_get_steps (late)[2].smoothed, 17.0 / 7.0, EPS);
}

static void
test_go_back (void)
{
  g_autoptr (DlLossSeries) s = dl_loss_series_new ();
  dl_loss_series_set_smoothing (s, 0.5);
  for (int i = 1; i <= 5; i++)
    dl_loss_series_add_step (s, i, 10.0 * i, 1e-4);
  dl_loss_series_add_validation (s, 2, 7.0);
  dl_loss_series_add_validation (s, 4, 8.0);
  dl_loss_series_set_best (s, 4);
  g_assert_cmpint (dl_loss_series_get_best (s), ==, 4);

  /* resumed from step 2: steps 3.. and what belongs to them are dropped */
  dl_loss_series_add_step (s, 3, 1.0, 1e-4);
  g_assert_cmpuint (dl_loss_series_get_n_steps (s), ==, 3);
  g_assert_cmpuint (dl_loss_series_get_n_validations (s), ==, 1);
  g_assert_cmpint (dl_loss_series_get_validations (s)[0].step, ==, 2);
  g_assert_cmpint (dl_loss_series_get_best (s), ==, -1);
  /* smoothed over 10, 20, 1: ema 5, 12.5, 6.75 over 0.5, 0.75, 0.875 */
  g_assert_cmpfloat_with_epsilon (dl_loss_series_get_steps (s)[2].smoothed, 6.75 / 0.875, EPS);

  /* a validation at or before the last one replaces those from there on */
  dl_loss_series_add_validation (s, 2, 6.0);
  g_assert_cmpuint (dl_loss_series_get_n_validations (s), ==, 1);
  g_assert_cmpfloat (dl_loss_series_get_validations (s)[0].loss, ==, 6.0);

  dl_loss_series_clear (s);
  g_assert_true (dl_loss_series_is_empty (s));
  g_assert_cmpuint (dl_loss_series_get_n_steps (s), ==, 0);
  g_assert_cmpint (dl_loss_series_get_best (s), ==, -1);
  dl_loss_series_add_step (s, 7, 4.0, NAN);
  g_assert_cmpfloat_with_epsilon (dl_loss_series_get_steps (s)[0].smoothed, 4.0, EPS);
}

static void
test_ranges (void)
{
  g_autoptr (DlLossSeries) s = dl_loss_series_new ();
  gint64 first, last;
  double lo, hi;
  g_assert_false (dl_loss_series_visible_range (s, 0, &first, &last));

  dl_loss_series_set_smoothing (s, 0.0);
  for (int i = 0; i < 1000; i++)
    dl_loss_series_add_step (s, i, 1.0 + (i % 7), 1e-4 * (1 + i / 100));
  dl_loss_series_add_validation (s, 1005, 0.5);
  g_assert_true (dl_loss_series_visible_range (s, 0, &first, &last));
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (last, ==, 1005);
  g_assert_true (dl_loss_series_visible_range (s, 100, &first, &last));
  g_assert_cmpint (first, ==, 906);
  g_assert_cmpint (last, ==, 1005);
  g_assert_cmpuint (dl_loss_series_count_in_range (s, 906, 1005), ==, 94);
  g_assert_cmpuint (dl_loss_series_count_in_range (s, 0, 999), ==, 1000);
  g_assert_cmpuint (dl_loss_series_count_in_range (s, 5, 4), ==, 0);

  g_assert_true (dl_loss_series_y_range (s, 0, 2000, FALSE, &lo, &hi));
  g_assert_cmpfloat (lo, ==, 0.5); /* the validation */
  g_assert_cmpfloat (hi, ==, 7.0);
  g_assert_true (dl_loss_series_y_range (s, 0, 3, FALSE, &lo, &hi));
  g_assert_cmpfloat (lo, ==, 1.0);
  g_assert_cmpfloat (hi, ==, 4.0);
  g_assert_true (dl_loss_series_lr_range (s, 0, 999, &lo, &hi));
  g_assert_cmpfloat_with_epsilon (lo, 1e-4, 1e-15);
  g_assert_cmpfloat_with_epsilon (hi, 1e-3, 1e-15);

  /* log scale: log10, with zero and negative losses left out */
  g_autoptr (DlLossSeries) l = dl_loss_series_new ();
  dl_loss_series_set_smoothing (l, 0.0);
  dl_loss_series_add_step (l, 1, 0.01, NAN);
  dl_loss_series_add_step (l, 2, 0.0, NAN);
  dl_loss_series_add_step (l, 3, -1.0, NAN);
  dl_loss_series_add_step (l, 4, 100.0, NAN);
  dl_loss_series_add_step (l, 5, NAN, NAN);
  g_assert_true (dl_loss_series_y_range (l, 0, 10, TRUE, &lo, &hi));
  g_assert_cmpfloat_with_epsilon (lo, -2.0, EPS);
  g_assert_cmpfloat_with_epsilon (hi, 2.0, EPS);
  g_assert_true (dl_loss_series_y_range (l, 0, 10, FALSE, &lo, &hi));
  g_assert_cmpfloat (lo, ==, -1.0);
  g_assert_cmpfloat (hi, ==, 100.0);
  /* nothing positive in steps 2..3 */
  g_assert_false (dl_loss_series_y_range (l, 2, 3, TRUE, &lo, &hi));
  g_assert_false (dl_loss_series_lr_range (l, 0, 10, &lo, &hi));
}

static void
test_decimate (void)
{
  g_autoptr (DlLossSeries) s = dl_loss_series_new ();
  const int n = 100000;
  g_autofree double *loss = g_new (double, n + 1);
  GRand *rand = g_rand_new_with_seed (7);
  for (int i = 0; i <= n; i++)
    loss[i] = g_rand_double_range (rand, 0.1, 0.2);
  g_rand_free (rand);
  /* a spike and a dip in the middle of a column, and a NaN */
  loss[50017] = 9.0;
  loss[70023] = 0.001;
  loss[80000] = NAN;
  for (int i = 0; i <= n; i++)
    dl_loss_series_add_step (s, i, loss[i], 1e-4);
  const DlLossPoint *pts = dl_loss_series_get_steps (s);

  for (int width = 1; width <= 1000; width *= 10)
    {
      g_autofree DlLossColumn *cols = g_new (DlLossColumn, width);
      gsize nc = dl_loss_series_decimate (s, 0, n, width, FALSE, cols);
      g_assert_cmpuint (nc, <=, (gsize)width);
      g_assert_cmpuint (nc, ==, (gsize)width); /* dense: every column has steps */
      /* the columns take the steps in order, each a run of them */
      gsize at = 0;
      gboolean saw_spike = FALSE, saw_dip = FALSE;
      for (gsize c = 0; c < nc; c++)
        {
          if (c > 0)
            g_assert_cmpint (cols[c].column, >, cols[c - 1].column);
          g_assert_cmpint (cols[c].column, <, width);
          g_assert_cmpuint (cols[c].n, >, 0);
          double mn = INFINITY, mx = -INFINITY;
          for (gsize i = at; i < at + cols[c].n; i++)
            if (isfinite (pts[i].loss))
              {
                mn = MIN (mn, pts[i].loss);
                mx = MAX (mx, pts[i].loss);
              }
          g_assert_cmpfloat (cols[c].min, ==, mn);
          g_assert_cmpfloat (cols[c].max, ==, mx);
          g_assert_cmpfloat (cols[c].smoothed, ==, pts[at + cols[c].n - 1].smoothed);
          saw_spike |= cols[c].max == 9.0;
          saw_dip |= cols[c].min == 0.001;
          at += cols[c].n;
        }
      g_assert_cmpuint (at, ==, (gsize)n + 1);
      g_assert_true (saw_spike);
      g_assert_true (saw_dip);
    }

  /* part of the run, sparse: one column per step at most */
  DlLossColumn few[1000];
  gsize nc = dl_loss_series_decimate (s, 10, 19, 1000, FALSE, few);
  g_assert_cmpuint (nc, ==, 10);
  g_assert_cmpint (few[0].column, ==, 0);
  g_assert_cmpint (few[9].column, ==, 999);
  g_assert_cmpfloat (few[3].min, ==, pts[13].loss);
  g_assert_cmpfloat (few[3].max, ==, pts[13].loss);
  g_assert_cmpuint (dl_loss_series_decimate (s, 10, 19, 0, FALSE, NULL), ==, 0);

  /* log scale leaves out what it cannot draw */
  g_autoptr (DlLossSeries) l = dl_loss_series_new ();
  dl_loss_series_add_step (l, 0, -1.0, NAN);
  dl_loss_series_add_step (l, 1, 0.5, NAN);
  DlLossColumn one;
  g_assert_cmpuint (dl_loss_series_decimate (l, 0, 1, 1, TRUE, &one), ==, 1);
  g_assert_cmpfloat (one.min, ==, 0.5);
  g_assert_cmpuint (dl_loss_series_decimate (l, 0, 1, 1, FALSE, &one), ==, 1);
  g_assert_cmpfloat (one.min, ==, -1.0);
}

static void
test_ticks (void)
{
  double t[12];
  int n = dl_loss_nice_ticks (0.0, 1.0, 6, FALSE, t);
  g_assert_cmpint (n, ==, 6);
  for (int i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (t[i], 0.2 * i, EPS);
  n = dl_loss_nice_ticks (0.13, 0.87, 5, FALSE, t);
  g_assert_cmpint (n, ==, 4);
  g_assert_cmpfloat_with_epsilon (t[0], 0.2, EPS);
  g_assert_cmpfloat_with_epsilon (t[3], 0.8, EPS);
  /* steps: whole numbers, never more than asked */
  n = dl_loss_nice_ticks (0, 7, 12, TRUE, t);
  g_assert_cmpint (n, ==, 8);
  g_assert_cmpfloat (t[7], ==, 7.0);
  n = dl_loss_nice_ticks (0, 100000, 5, TRUE, t);
  g_assert_cmpint (n, <=, 5);
  g_assert_cmpfloat (t[0], ==, 0.0);
  g_assert_cmpfloat (t[1], ==, 50000.0);
  n = dl_loss_nice_ticks (-2.3, 1.2, 12, FALSE, t);
  for (int i = 0; i < n; i++)
    {
      g_assert_cmpfloat (t[i], >=, -2.3);
      g_assert_cmpfloat (t[i], <=, 1.2);
    }
  g_assert_cmpint (dl_loss_nice_ticks (1, 0, 5, FALSE, t), ==, 0);

  /* log axes: 0.01 .. 1 has 0.01 0.02 0.05 0.1 0.2 0.5 1 */
  n = dl_loss_log_ticks (-2.0, 0.0, 8, t);
  g_assert_cmpint (n, ==, 7);
  g_assert_cmpfloat_with_epsilon (t[1], log10 (0.02), EPS);
  g_assert_cmpfloat_with_epsilon (t[5], log10 (0.5), EPS);
  g_assert_cmpfloat_with_epsilon (t[6], 0.0, EPS);
  /* too many for that: the powers of ten */
  n = dl_loss_log_ticks (-3.0, 1.0, 6, t);
  g_assert_cmpint (n, ==, 5);
  for (int i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (t[i], -3.0 + i, EPS);
  /* twelve decades, at most four ticks: whole decades, every few */
  n = dl_loss_log_ticks (-10.0, 2.0, 4, t);
  g_assert_cmpint (n, >=, 2);
  g_assert_cmpint (n, <=, 4);
  for (int i = 0; i < n; i++)
    g_assert_cmpfloat (t[i], ==, round (t[i]));
  /* 0.11 .. 0.19: round losses */
  n = dl_loss_log_ticks (log10 (0.11), log10 (0.19), 5, t);
  g_assert_cmpint (n, >=, 2);
  g_assert_cmpfloat_with_epsilon (pow (10.0, t[0]), 0.12, EPS);
  g_assert_cmpint (dl_loss_log_ticks (1, 0, 5, t), ==, 0);
  g_assert_cmpint (dl_loss_nice_ticks (3, 3, 5, FALSE, t), ==, 1);
}

static void
test_hover (void)
{
  g_autoptr (DlLossSeries) s = dl_loss_series_new ();
  DlLossHover h;
  g_assert_false (dl_loss_series_hover (s, 3, &h));
  dl_loss_series_set_smoothing (s, 0.0);
  for (int i = 0; i <= 3; i++)
    dl_loss_series_add_step (s, 10 * i, 1.0 + i, 1e-4 * (i + 1));
  dl_loss_series_add_validation (s, 10, 0.75);
  dl_loss_series_add_validation (s, 30, 0.25);

  g_assert_true (dl_loss_series_hover (s, 14, &h));
  g_assert_cmpint (h.step, ==, 10);
  g_assert_cmpfloat (h.loss, ==, 2.0);
  g_assert_cmpfloat (h.smoothed, ==, 2.0);
  g_assert_cmpfloat (h.validation, ==, 0.75);
  g_assert_cmpfloat (h.lr, ==, 2e-4);
  g_assert_true (dl_loss_series_hover (s, 15, &h)); /* a tie: the earlier */
  g_assert_cmpint (h.step, ==, 10);
  g_assert_true (dl_loss_series_hover (s, 16.5, &h));
  g_assert_cmpint (h.step, ==, 20);
  g_assert_cmpfloat (h.validation, ==, 0.75); /* at or before 20: step 10's */
  g_assert_cmpint (h.validation_step, ==, 10);
  g_assert_true (dl_loss_series_hover (s, -50, &h));
  g_assert_cmpint (h.step, ==, 0);
  g_assert_true (isnan (h.validation));
  g_assert_true (dl_loss_series_hover (s, 1e9, &h));
  g_assert_cmpint (h.step, ==, 30);
  g_assert_cmpfloat (h.validation, ==, 0.25);

  DlLossHover r = { .step = 120, .loss = 0.1234, .smoothed = 0.1302, .validation = 0.1190, .lr = 1e-4 };
  g_autofree char *text = dl_loss_hover_format (&r, FALSE);
  g_assert_cmpstr (text, ==, "Step 120 · loss 0.1234 · smoothed 0.1302 · validation 0.1190");
  g_autofree char *with_lr = dl_loss_hover_format (&r, TRUE);
  g_assert_cmpstr (with_lr, ==, "Step 120 · loss 0.1234 · smoothed 0.1302 · validation 0.1190 · lr 0.0001");
  r.validation = NAN;
  r.loss = NAN;
  r.smoothed = 2.5e-5;
  g_autofree char *bare = dl_loss_hover_format (&r, FALSE);
  g_assert_cmpstr (bare, ==, "Step 120 · loss nan · smoothed 2.5e-05");
  r.loss = 0.05;
  r.smoothed = 0.00012345;
  g_autofree char *small = dl_loss_hover_format (&r, FALSE);
  g_assert_cmpstr (small, ==, "Step 120 · loss 0.0500 · smoothed 0.000123");
}

static const char csv_want[] = "step,loss,smoothed,lr,val_loss\n"
                               "1,1,1,0.001,\n"
                               "2,2,1.66666667,0.001,1.5\n"
                               "3,,,,1.25\n"
                               "4,3,2.42857143,0.0005,\n"
                               "5,nan,nan,0.0005,\n";

static DlLossSeries *
csv_series (void)
{
  DlLossSeries *s = dl_loss_series_new ();
  dl_loss_series_set_smoothing (s, 0.5);
  dl_loss_series_add_step (s, 1, 1.0, 0.001);
  dl_loss_series_add_step (s, 2, 2.0, 0.001);
  dl_loss_series_add_validation (s, 2, 1.5);
  dl_loss_series_add_validation (s, 3, 1.25);
  dl_loss_series_add_step (s, 4, 3.0, 0.0005);
  dl_loss_series_add_step (s, 5, NAN, 0.0005);
  return s;
}

static void
test_csv (void)
{
  g_autoptr (DlLossSeries) s = csv_series ();
  g_autofree char *csv = dl_loss_series_to_csv (s);
  g_assert_cmpstr (csv, ==, csv_want);

  g_autoptr (DlLossSeries) empty = dl_loss_series_new ();
  g_autofree char *header = dl_loss_series_to_csv (empty);
  g_assert_cmpstr (header, ==, "step,loss,smoothed,lr,val_loss\n");

  g_autofree char *dir = app_test_make_dir ("loss-curve-csv");
  g_autofree char *path = g_build_filename (dir, "loss.csv", NULL);
  g_autoptr (GError) error = NULL;
  app_test_write_file (path, "old contents");
  g_assert_true (dl_loss_series_write_csv (s, path, &error));
  g_assert_no_error (error);
  g_autofree char *back = NULL;
  g_assert_true (g_file_get_contents (path, &back, NULL, NULL));
  g_assert_cmpstr (back, ==, csv_want);
  /* nothing left beside it */
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (d), ==, "loss.csv");
  g_assert_null (g_dir_read_name (d));

  g_autofree char *bad = g_build_filename (dir, "no-such-folder", "loss.csv", NULL);
  g_assert_false (dl_loss_series_write_csv (s, bad, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "no-such-folder"));
  app_test_rmtree (dir);
}

/* ---- the widget ---- */

typedef struct
{
  GtkWindow *window;
  DlLossCurve *curve;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  f->window = GTK_WINDOW (gtk_window_new ());
  gtk_window_set_default_size (f->window, 480, 260);
  f->curve = DL_LOSS_CURVE (dl_loss_curve_new ());
  gtk_window_set_child (f->window, GTK_WIDGET (f->curve));
  gtk_window_present (f->window);
  APP_TEST_WAIT_UNTIL (
    gtk_widget_get_mapped (GTK_WIDGET (f->curve)) && gtk_widget_get_width (GTK_WIDGET (f->curve)) > 0, 10);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  gtk_window_destroy (f->window);
  app_test_run_for (10);
}

static void
count_paint (int *count)
{
  (*count)++;
}

/* What the curve draws now, on white, through the window's renderer.  A widget's
 * paintable shows what the widget drew in the window's last frame: let one come. */
static GdkTexture *
render (Fixture *f)
{
  GtkWidget *w = GTK_WIDGET (f->curve);
  int width = gtk_widget_get_width (w), height = gtk_widget_get_height (w);
  g_assert_cmpint (width, >, 0);
  GdkFrameClock *clock = gtk_widget_get_frame_clock (w);
  int painted = 0;
  gulong id = g_signal_connect_swapped (clock, "after-paint", G_CALLBACK (count_paint), &painted);
  gtk_widget_queue_draw (w);
  APP_TEST_WAIT_UNTIL (painted > 0, 10);
  g_signal_handler_disconnect (clock, id);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (w);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gtk_snapshot_append_color (snapshot, &(GdkRGBA){ 1, 1, 1, 1 }, &GRAPHENE_RECT_INIT (0, 0, width, height));
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), width, height);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (w));
  g_assert_nonnull (renderer);
  return gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
}

static void
fill (DlLossCurve *curve, int n)
{
  for (int i = 1; i <= n; i++)
    dl_loss_curve_add_step (curve, i, 0.05 + 1.0 / i + 0.02 * ((i * 7919) % 13) / 13.0,
                            1e-4 * (1.0 - (double)i / (n + 1)));
  for (int i = 25; i <= n; i += 25)
    dl_loss_curve_add_validation (curve, i, 0.06 + 1.0 / i);
}

static void
test_render (Fixture *f, gconstpointer data)
{
  g_autoptr (GdkTexture) empty = render (f);
  g_assert_true (app_test_texture_has_content (empty)); /* "No steps yet" */
  g_assert_cmpstr (dl_loss_curve_get_description (f->curve), ==, "No steps yet");

  fill (f->curve, 200);
  g_autoptr (GdkTexture) filled = render (f);
  g_assert_cmpfloat (app_test_texture_difference (empty, filled), >, 1.0);

  dl_loss_curve_set_log_scale (f->curve, TRUE);
  g_autoptr (GdkTexture) log_scale = render (f);
  g_assert_cmpfloat (app_test_texture_difference (filled, log_scale), >, 1.0);
  dl_loss_curve_set_log_scale (f->curve, FALSE);
  g_autoptr (GdkTexture) linear_again = render (f);
  g_assert_cmpfloat (app_test_texture_difference (filled, linear_again), ==, 0.0);

  dl_loss_curve_set_show_lr (f->curve, TRUE);
  g_autoptr (GdkTexture) with_lr = render (f);
  g_assert_cmpfloat (app_test_texture_difference (filled, with_lr), >, 0.5);
  dl_loss_curve_set_show_lr (f->curve, FALSE);

  dl_loss_curve_set_best (f->curve, 150);
  g_autoptr (GdkTexture) best = render (f);
  g_assert_cmpfloat (app_test_texture_difference (filled, best), >, 0.1);

  /* following the last 50 steps draws another picture */
  dl_loss_curve_set_follow_steps (f->curve, 50);
  dl_loss_curve_set_follow (f->curve, TRUE);
  g_autoptr (GdkTexture) follow = render (f);
  g_assert_cmpfloat (app_test_texture_difference (best, follow), >, 1.0);
  dl_loss_curve_set_follow (f->curve, FALSE);

  /* dense: 20000 steps as min/max columns */
  dl_loss_curve_clear (f->curve);
  g_autoptr (GdkTexture) cleared = render (f);
  g_assert_cmpfloat (app_test_texture_difference (empty, cleared), ==, 0.0);
  fill (f->curve, 20000);
  g_autoptr (GdkTexture) dense = render (f);
  g_assert_cmpfloat (app_test_texture_difference (empty, dense), >, 1.0);

  g_autofree char *dir = g_strdup (g_getenv ("DL_TEST_ARTIFACT_DIR"));
  if (dir)
    {
      g_mkdir_with_parents (dir, 0755);
      g_autofree char *path = g_build_filename (dir, "loss-curve.png", NULL);
      gdk_texture_save_to_png (dense, path);
    }
}

/* The mean row of the dark pixels (the smoothed line) in column x, above the step labels. */
static double
line_row (GdkTexture *texture, int x)
{
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  g_autofree guchar *rgba = app_test_texture_rgba (texture);
  double sum = 0;
  int n = 0;
  for (int y = 0; y < h - 30; y++)
    {
      const guchar *px = rgba + ((gsize)y * w + x) * 4;
      if (px[0] + px[1] + px[2] < 3 * 128)
        {
          sum += y;
          n++;
        }
    }
  g_assert_cmpint (n, >, 0);
  return sum / n;
}

/* 0.01, 0.1, 1: a straight line on a log axis, a bent one on a linear axis */
static void
test_log_mapping (Fixture *f, gconstpointer data)
{
  dl_loss_curve_set_smoothing (f->curve, 0.0);
  dl_loss_curve_add_step (f->curve, 0, 0.01, NAN);
  dl_loss_curve_add_step (f->curve, 1, 0.1, NAN);
  dl_loss_curve_add_step (f->curve, 2, 1.0, NAN);
  int w = gtk_widget_get_width (GTK_WIDGET (f->curve));
  int x3 = w * 3 / 10, x5 = w / 2, x7 = w * 7 / 10;

  dl_loss_curve_set_log_scale (f->curve, TRUE);
  g_autoptr (GdkTexture) log_scale = render (f);
  double y3 = line_row (log_scale, x3), y5 = line_row (log_scale, x5), y7 = line_row (log_scale, x7);
  g_assert_cmpfloat (y3, >, y7 + 50); /* rising */
  g_assert_cmpfloat (fabs (y5 - (y3 + y7) / 2), <, 2.0);

  dl_loss_curve_set_log_scale (f->curve, FALSE);
  g_autoptr (GdkTexture) linear = render (f);
  y3 = line_row (linear, x3), y5 = line_row (linear, x5), y7 = line_row (linear, x7);
  g_assert_cmpfloat (y3, >, y7 + 50);
  g_assert_cmpfloat (fabs (y5 - (y3 + y7) / 2), >, 20.0);
}

static GtkEventController *
motion_controller (DlLossCurve *curve)
{
  g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (GTK_WIDGET (curve));
  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr (GtkEventController) c = g_list_model_get_item (controllers, i);
      if (GTK_IS_EVENT_CONTROLLER_MOTION (c))
        return c; /* the widget holds it */
    }
  g_assert_not_reached ();
}

static void
test_hover_widget (Fixture *f, gconstpointer data)
{
  dl_loss_curve_set_smoothing (f->curve, 0.0);
  for (int i = 0; i <= 100; i += 10)
    dl_loss_curve_add_step (f->curve, i, 1.0 + i / 100.0, 1e-4);
  dl_loss_curve_add_validation (f->curve, 40, 0.5);
  g_autoptr (GdkTexture) plain = render (f);
  g_assert_null (dl_loss_curve_dup_readout (f->curve));

  GtkEventController *motion = motion_controller (f->curve);
  int width = gtk_widget_get_width (GTK_WIDGET (f->curve));
  /* the far right: the last step */
  g_signal_emit_by_name (motion, "motion", (double)width - 1, 50.0);
  g_autofree char *right = dl_loss_curve_dup_readout (f->curve);
  g_assert_cmpstr (right, ==, "Step 100 · loss 2.0000 · smoothed 2.0000 · validation 0.5000");
  g_autoptr (GdkTexture) hovered = render (f);
  g_assert_cmpfloat (app_test_texture_difference (plain, hovered), >, 0.5);

  /* the far left: the first step, no validation yet */
  g_signal_emit_by_name (motion, "motion", 0.0, 50.0);
  g_autofree char *left = dl_loss_curve_dup_readout (f->curve);
  g_assert_cmpstr (left, ==, "Step 0 · loss 1.0000 · smoothed 1.0000");

  g_signal_emit_by_name (motion, "leave");
  g_assert_null (dl_loss_curve_dup_readout (f->curve));
  g_autoptr (GdkTexture) left_again = render (f);
  g_assert_cmpfloat (app_test_texture_difference (plain, left_again), ==, 0.0);
}

static void
count_notify (int *count)
{
  (*count)++;
}

static void
test_properties (Fixture *f, gconstpointer data)
{
  double smoothing;
  gboolean log_scale, show_lr, follow;
  int follow_steps;
  g_object_get (f->curve, "smoothing", &smoothing, "log-scale", &log_scale, "show-lr", &show_lr, "follow", &follow,
                "follow-steps", &follow_steps, NULL);
  g_assert_cmpfloat (smoothing, ==, 0.6);
  g_assert_false (log_scale);
  g_assert_false (show_lr);
  g_assert_false (follow);
  g_assert_cmpint (follow_steps, ==, 500);
  g_assert_cmpfloat (dl_loss_series_get_smoothing (dl_loss_curve_get_series (f->curve)), ==, 0.6);

  int notified = 0;
  g_signal_connect_swapped (f->curve, "notify", G_CALLBACK (count_notify), &notified);
  g_object_set (f->curve, "smoothing", 0.9, "log-scale", TRUE, "show-lr", TRUE, "follow", TRUE, "follow-steps", 42,
                NULL);
  g_assert_cmpint (notified, ==, 5);
  g_object_set (f->curve, "smoothing", 0.9, "log-scale", TRUE, NULL);
  g_assert_cmpint (notified, ==, 5); /* no change, no notification */
  g_object_get (f->curve, "smoothing", &smoothing, "log-scale", &log_scale, "show-lr", &show_lr, "follow", &follow,
                "follow-steps", &follow_steps, NULL);
  g_assert_cmpfloat (smoothing, ==, 0.9);
  g_assert_true (log_scale);
  g_assert_true (show_lr);
  g_assert_true (follow);
  g_assert_cmpint (follow_steps, ==, 42);
  g_assert_cmpfloat (dl_loss_curve_get_smoothing (f->curve), ==, 0.9);
  g_assert_cmpfloat (dl_loss_series_get_smoothing (dl_loss_curve_get_series (f->curve)), ==, 0.9);
  g_assert_true (dl_loss_curve_get_log_scale (f->curve));
  g_assert_true (dl_loss_curve_get_show_lr (f->curve));
  g_assert_true (dl_loss_curve_get_follow (f->curve));
  g_assert_cmpint (dl_loss_curve_get_follow_steps (f->curve), ==, 42);
  g_signal_handlers_disconnect_by_data (f->curve, &notified);
}

static void
test_accessible (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (gtk_accessible_get_accessible_role (GTK_ACCESSIBLE (f->curve)), ==, GTK_ACCESSIBLE_ROLE_IMG);
  g_assert_cmpstr (dl_loss_curve_get_description (f->curve), ==, "No steps yet");
  app_test_run_for (300);

  dl_loss_curve_set_smoothing (f->curve, 0.0);
  dl_loss_curve_add_step (f->curve, 10, 0.5, 1e-4);
  /* the first change after a quiet while is told at once */
  g_assert_cmpstr (dl_loss_curve_get_description (f->curve), ==, "Step 10 of the run: loss 0.500, smoothed 0.500");

  gint64 t0 = g_get_monotonic_time ();
  dl_loss_curve_add_step (f->curve, 20, 0.25, 1e-4);
  dl_loss_curve_add_validation (f->curve, 20, 0.125);
  dl_loss_curve_set_best (f->curve, 20);
  dl_loss_curve_add_step (f->curve, 30, 0.123, 1e-4);
  const char *want = "Step 30 of the run: loss 0.123, smoothed 0.123, validation 0.125, best at step 20";
  /* a burst right after: held back for a moment, then told once */
  if (g_get_monotonic_time () - t0 < 200 * 1000)
    g_assert_cmpstr (dl_loss_curve_get_description (f->curve), !=, want);
  APP_TEST_WAIT_UNTIL (g_strcmp0 (dl_loss_curve_get_description (f->curve), want) == 0, 2);
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  /* the read-out is for people: in the C locale here, so that the texts are known */
  setlocale (LC_NUMERIC, "C");

  g_test_add_func ("/loss-curve/series/smoothing", test_smoothing);
  g_test_add_func ("/loss-curve/series/go-back", test_go_back);
  g_test_add_func ("/loss-curve/series/ranges", test_ranges);
  g_test_add_func ("/loss-curve/series/decimate", test_decimate);
  g_test_add_func ("/loss-curve/series/ticks", test_ticks);
  g_test_add_func ("/loss-curve/series/hover", test_hover);
  g_test_add_func ("/loss-curve/series/csv", test_csv);
  g_test_add ("/loss-curve/widget/render", Fixture, NULL, setup, test_render, teardown);
  g_test_add ("/loss-curve/widget/log-mapping", Fixture, NULL, setup, test_log_mapping, teardown);
  g_test_add ("/loss-curve/widget/hover", Fixture, NULL, setup, test_hover_widget, teardown);
  g_test_add ("/loss-curve/widget/properties", Fixture, NULL, setup, test_properties, teardown);
  g_test_add ("/loss-curve/widget/accessible", Fixture, NULL, setup, test_accessible, teardown);
  return g_test_run ();
}
