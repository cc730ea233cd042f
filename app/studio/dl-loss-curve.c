/* dl-loss-curve.c: see dl-loss-curve.h.  Drawn with cairo inside snapshot()
 * (gtk_snapshot_append_cairo), dense runs decimated to one min/max bar per pixel
 * column so that a long run costs O(width) primitives. */
#include "dl-config.h"

#include "dl-loss-curve.h"

#include <glib/gi18n.h>
#include <math.h>

#define PAD 8.0
#define POINT_SIZE 2.0
#define MAX_TICKS 12
/* the accessible description changes at most this often */
#define DESCRIPTION_INTERVAL_MS 250

struct _DlLossCurve
{
  GtkWidget parent_instance;
  DlLossSeries *series;
  double smoothing;
  gboolean log_scale;
  gboolean show_lr;
  gboolean follow;
  int follow_steps;

  gboolean hovering;
  double hover_x;

  char *description;
  gint64 description_time; /* monotonic µs of the last announcement */
  guint description_source;
};

G_DEFINE_FINAL_TYPE (DlLossCurve, dl_loss_curve, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_SMOOTHING,
  PROP_LOG_SCALE,
  PROP_SHOW_LR,
  PROP_FOLLOW,
  PROP_FOLLOW_STEPS,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

/* ---- geometry ---- */

typedef struct
{
  double left, top, right, bottom; /* the plot area */
  gint64 x0, x1;                   /* steps at left and right */
  double y0, y1;                   /* loss axis at bottom and top (log10 with log scale) */
  gboolean has_lr;
  double lr0, lr1;
  double yticks[MAX_TICKS], xticks[MAX_TICKS], lrticks[MAX_TICKS];
  int n_yticks, n_xticks, n_lrticks;
} Plot;

static double
map_x (const Plot *p, double step)
{
  return p->left + (step - (double)p->x0) / (double)(p->x1 - p->x0) * (p->right - p->left);
}

/* The loss `v` on screen; NaN when it cannot be drawn (log scale, v <= 0). */
static double
map_y (const DlLossCurve *self, const Plot *p, double v)
{
  if (self->log_scale)
    v = v > 0 ? log10 (v) : NAN;
  return p->bottom - (v - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top);
}

static double
map_lr (const Plot *p, double lr)
{
  return p->bottom - (lr - p->lr0) / (p->lr1 - p->lr0) * (p->bottom - p->top);
}

static char *
format_tick (double v)
{
  return g_strdup_printf ("%.3g", v);
}

static char *
format_loss_tick (const DlLossCurve *self, double t)
{
  return format_tick (self->log_scale ? pow (10.0, t) : t);
}

static int
label_width (GtkWidget *widget, const char *text, int *height)
{
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);
  int w, h;
  pango_layout_get_pixel_size (layout, &w, &h);
  if (height)
    *height = h;
  return w;
}

static void
pad_range (double *lo, double *hi, double min_half)
{
  if (*hi - *lo < 1e-12)
    {
      double half = MAX (fabs (*lo) * 0.1, min_half);
      *lo -= half;
      *hi += half;
    }
  else
    {
      double m = (*hi - *lo) * 0.05;
      *lo -= m;
      *hi += m;
    }
}

/* Where everything goes for a widget of this size; FALSE when there is nothing to plot. */
static gboolean
compute_plot (DlLossCurve *self, int width, int height, Plot *p)
{
  GtkWidget *widget = GTK_WIDGET (self);
  *p = (Plot){ 0 };
  if (!dl_loss_series_visible_range (self->series, self->follow ? self->follow_steps : 0, &p->x0, &p->x1))
    return FALSE;
  if (p->x1 == p->x0)
    p->x1 = p->x0 + 1;
  if (!dl_loss_series_y_range (self->series, p->x0, p->x1, self->log_scale, &p->y0, &p->y1))
    {
      p->y0 = 0;
      p->y1 = 1;
    }
  pad_range (&p->y0, &p->y1, self->log_scale ? 0.1 : 1e-3);
  p->has_lr = self->show_lr && dl_loss_series_lr_range (self->series, p->x0, p->x1, &p->lr0, &p->lr1);
  if (p->has_lr)
    {
      p->lr0 = MIN (p->lr0, 0.0);
      pad_range (&p->lr0, &p->lr1, 1e-6);
    }

  int text_h = 0;
  label_width (widget, "0", &text_h);
  int max_y_ticks = CLAMP ((int)((height - 2 * PAD - text_h) / (2.5 * MAX (text_h, 1))), 2, MAX_TICKS);
  p->n_yticks = self->log_scale ? dl_loss_log_ticks (p->y0, p->y1, max_y_ticks, p->yticks)
                                : dl_loss_nice_ticks (p->y0, p->y1, max_y_ticks, FALSE, p->yticks);
  double left_w = 0;
  for (int i = 0; i < p->n_yticks; i++)
    {
      g_autofree char *t = format_loss_tick (self, p->yticks[i]);
      left_w = MAX (left_w, label_width (widget, t, NULL));
    }
  double right_w = 0;
  if (p->has_lr)
    {
      p->n_lrticks = dl_loss_nice_ticks (p->lr0, p->lr1, max_y_ticks, FALSE, p->lrticks);
      for (int i = 0; i < p->n_lrticks; i++)
        {
          g_autofree char *t = format_tick (p->lrticks[i]);
          right_w = MAX (right_w, label_width (widget, t, NULL) + 6);
        }
    }
  /* the last step's label is centred on the right edge */
  g_autofree char *widest = g_strdup_printf ("%" G_GINT64_FORMAT, p->x1);
  double step_label_w = label_width (widget, widest, NULL);
  p->left = PAD + left_w + 6;
  p->right = floor (width - PAD - MAX (right_w, step_label_w / 2));
  p->top = PAD;
  p->bottom = height - PAD - text_h - 4;
  if (p->right - p->left < 10 || p->bottom - p->top < 10)
    return FALSE;

  step_label_w += 24;
  int max_x_ticks = CLAMP ((int)((p->right - p->left) / step_label_w), 2, MAX_TICKS);
  p->n_xticks = dl_loss_nice_ticks ((double)p->x0, (double)p->x1, max_x_ticks, TRUE, p->xticks);
  return TRUE;
}

/* ---- colours ---- */

typedef struct
{
  GdkRGBA fg, accent, best, lr, bg;
} Colours;

static void
lookup_colours (DlLossCurve *self, Colours *c)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  GtkStyleContext *ctx = gtk_widget_get_style_context (GTK_WIDGET (self));
  gtk_style_context_get_color (ctx, &c->fg);
  /* libadwaita's named colours, with its default values when there are none */
  if (!gtk_style_context_lookup_color (ctx, "accent_color", &c->accent))
    c->accent = (GdkRGBA){ 0.11, 0.44, 0.85, 1 };
  if (!gtk_style_context_lookup_color (ctx, "success_color", &c->best))
    c->best = (GdkRGBA){ 0.15, 0.64, 0.41, 1 };
  if (!gtk_style_context_lookup_color (ctx, "warning_color", &c->lr))
    c->lr = (GdkRGBA){ 0.80, 0.50, 0.0, 1 };
  if (!gtk_style_context_lookup_color (ctx, "view_bg_color", &c->bg))
    c->bg = (GdkRGBA){ 1, 1, 1, 1 };
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static void
set_colour (cairo_t *cr, const GdkRGBA *c, double alpha)
{
  cairo_set_source_rgba (cr, c->red, c->green, c->blue, c->alpha * alpha);
}

/* ---- drawing ---- */

static void
draw_text (DlLossCurve *self, cairo_t *cr, const char *text, double x, double y, double xalign, double yalign)
{
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), text);
  int w, h;
  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, round (x - w * xalign), round (y - h * yalign));
  pango_cairo_show_layout (cr, layout);
}

static void
draw_axes (DlLossCurve *self, cairo_t *cr, const Plot *p, const Colours *c)
{
  cairo_set_line_width (cr, 1);
  set_colour (cr, &c->fg, 0.08);
  for (int i = 0; i < p->n_yticks; i++)
    {
      double y = round (p->bottom - (p->yticks[i] - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top)) + 0.5;
      cairo_move_to (cr, p->left, y);
      cairo_line_to (cr, p->right, y);
    }
  cairo_stroke (cr);
  set_colour (cr, &c->fg, 0.35);
  cairo_move_to (cr, p->left + 0.5, p->top);
  cairo_line_to (cr, p->left + 0.5, p->bottom + 0.5);
  cairo_line_to (cr, p->right, p->bottom + 0.5);
  cairo_stroke (cr);

  set_colour (cr, &c->fg, 0.7);
  for (int i = 0; i < p->n_yticks; i++)
    {
      g_autofree char *t = format_loss_tick (self, p->yticks[i]);
      double y = p->bottom - (p->yticks[i] - p->y0) / (p->y1 - p->y0) * (p->bottom - p->top);
      draw_text (self, cr, t, p->left - 6, y, 1.0, 0.5);
    }
  for (int i = 0; i < p->n_xticks; i++)
    {
      g_autofree char *t = g_strdup_printf ("%.0f", p->xticks[i]);
      draw_text (self, cr, t, map_x (p, p->xticks[i]), p->bottom + 3, 0.5, 0.0);
    }
  if (p->has_lr)
    {
      set_colour (cr, &c->lr, 0.9);
      for (int i = 0; i < p->n_lrticks; i++)
        {
          g_autofree char *t = format_tick (p->lrticks[i]);
          draw_text (self, cr, t, p->right + 6, map_lr (p, p->lrticks[i]), 0.0, 0.5);
        }
    }
}

/* Step losses as faint dots, or one min-max bar per pixel column when dense; then
 * the smoothed line and the learning rate. */
static void
draw_steps (DlLossCurve *self, cairo_t *cr, const Plot *p, const Colours *c)
{
  int columns = MAX (1, (int)ceil (p->right - p->left));
  gsize visible = dl_loss_series_count_in_range (self->series, p->x0, p->x1);
  gboolean dense = visible > (gsize)columns / 2;
  g_autofree DlLossColumn *cols = NULL;
  gsize n_cols = 0;
  const DlLossPoint *pts = dl_loss_series_get_steps (self->series);
  gsize n_pts = dl_loss_series_get_n_steps (self->series);
  gsize i0 = 0;
  while (i0 < n_pts && pts[i0].step < p->x0)
    i0++;

  set_colour (cr, &c->fg, 0.3);
  if (dense)
    {
      cols = g_new (DlLossColumn, columns);
      n_cols = dl_loss_series_decimate (self->series, p->x0, p->x1, columns, self->log_scale, cols);
      for (gsize i = 0; i < n_cols; i++)
        {
          if (isnan (cols[i].min))
            continue;
          /* whole pixels: cairo fills such boxes without tessellating them */
          double top = floor (map_y (self, p, cols[i].max)), bottom = ceil (map_y (self, p, cols[i].min));
          cairo_rectangle (cr, p->left + cols[i].column, top, 1.0, MAX (bottom - top, 1.0));
        }
    }
  else
    for (gsize i = i0; i < n_pts && pts[i].step <= p->x1; i++)
      {
        double y = map_y (self, p, pts[i].loss);
        if (isfinite (y))
          cairo_rectangle (cr, map_x (p, pts[i].step) - POINT_SIZE / 2, y - POINT_SIZE / 2, POINT_SIZE, POINT_SIZE);
      }
  cairo_fill (cr);

  /* the smoothed loss: a break where it cannot be drawn */
  gboolean pen_down = FALSE;
  gsize n = dense ? n_cols : n_pts;
  for (gsize i = dense ? 0 : i0; i < n; i++)
    {
      if (!dense && pts[i].step > p->x1)
        break;
      double x = dense ? p->left + cols[i].column + 0.5 : map_x (p, pts[i].step);
      double y = map_y (self, p, dense ? cols[i].smoothed : pts[i].smoothed);
      if (!isfinite (y))
        {
          pen_down = FALSE;
          continue;
        }
      if (pen_down)
        cairo_line_to (cr, x, y);
      else
        cairo_move_to (cr, x, y);
      pen_down = TRUE;
    }
  set_colour (cr, &c->fg, 0.9);
  cairo_set_line_width (cr, 1.6);
  cairo_stroke (cr);

  if (!p->has_lr)
    return;
  pen_down = FALSE;
  for (gsize i = dense ? 0 : i0; i < n; i++)
    {
      if (!dense && pts[i].step > p->x1)
        break;
      double lr = dense ? cols[i].lr : pts[i].lr;
      if (!isfinite (lr))
        continue;
      double x = dense ? p->left + cols[i].column + 0.5 : map_x (p, pts[i].step);
      if (pen_down)
        cairo_line_to (cr, x, map_lr (p, lr));
      else
        cairo_move_to (cr, x, map_lr (p, lr));
      pen_down = TRUE;
    }
  set_colour (cr, &c->lr, 0.8);
  cairo_set_line_width (cr, 1.0);
  cairo_stroke (cr);
}

static void
draw_validation (DlLossCurve *self, cairo_t *cr, const Plot *p, const Colours *c)
{
  const DlLossValidation *v = dl_loss_series_get_validations (self->series);
  gsize n = dl_loss_series_get_n_validations (self->series);
  gboolean pen_down = FALSE;
  for (gsize i = 0; i < n; i++)
    {
      double y = map_y (self, p, v[i].loss);
      if (v[i].step < p->x0 || v[i].step > p->x1 || !isfinite (y))
        continue;
      if (pen_down)
        cairo_line_to (cr, map_x (p, v[i].step), y);
      else
        cairo_move_to (cr, map_x (p, v[i].step), y);
      pen_down = TRUE;
    }
  set_colour (cr, &c->accent, 1.0);
  cairo_set_line_width (cr, 1.4);
  cairo_stroke (cr);
  /* a dot at each, unless they crowd each other */
  double last_x = -G_MAXDOUBLE;
  for (gsize i = 0; i < n; i++)
    {
      double x = map_x (p, v[i].step), y = map_y (self, p, v[i].loss);
      if (v[i].step < p->x0 || v[i].step > p->x1 || !isfinite (y) || x - last_x < 8)
        continue;
      cairo_new_sub_path (cr);
      cairo_arc (cr, x, y, 3.0, 0, 2 * G_PI);
      last_x = x;
    }
  cairo_fill (cr);
}

/* The best checkpoint: a dashed vertical line topped by a diamond. */
static void
draw_best (DlLossCurve *self, cairo_t *cr, const Plot *p, const Colours *c)
{
  gint64 best = dl_loss_series_get_best (self->series);
  if (best < 0 || best < p->x0 || best > p->x1)
    return;
  double x = round (map_x (p, best)) + 0.5;
  static const double dash[] = { 4, 3 };
  cairo_save (cr);
  set_colour (cr, &c->best, 1.0);
  cairo_set_line_width (cr, 1.2);
  cairo_set_dash (cr, dash, G_N_ELEMENTS (dash), 0);
  cairo_move_to (cr, x, p->top + 6);
  cairo_line_to (cr, x, p->bottom);
  cairo_stroke (cr);
  cairo_restore (cr);
  set_colour (cr, &c->best, 1.0);
  cairo_move_to (cr, x, p->top);
  cairo_line_to (cr, x + 4, p->top + 5);
  cairo_line_to (cr, x, p->top + 10);
  cairo_line_to (cr, x - 4, p->top + 5);
  cairo_close_path (cr);
  cairo_fill (cr);
}

static gboolean
hover_at (DlLossCurve *self, const Plot *p, DlLossHover *h)
{
  if (!self->hovering)
    return FALSE;
  double x = CLAMP (self->hover_x, p->left, p->right);
  double step = p->x0 + (x - p->left) / (p->right - p->left) * (double)(p->x1 - p->x0);
  return dl_loss_series_hover (self->series, step, h);
}

static void
draw_hover (DlLossCurve *self, cairo_t *cr, const Plot *p, const Colours *c)
{
  DlLossHover h;
  if (!hover_at (self, p, &h))
    return;
  double x = round (map_x (p, h.step)) + 0.5;
  set_colour (cr, &c->fg, 0.45);
  cairo_set_line_width (cr, 1);
  cairo_move_to (cr, x, p->top);
  cairo_line_to (cr, x, p->bottom);
  cairo_stroke (cr);
  double y = map_y (self, p, h.smoothed);
  if (isfinite (y))
    {
      cairo_arc (cr, x, y, 3.5, 0, 2 * G_PI);
      set_colour (cr, &c->fg, 0.9);
      cairo_fill (cr);
    }

  g_autofree char *text = dl_loss_hover_format (&h, self->show_lr);
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), text);
  int w, th;
  pango_layout_get_pixel_size (layout, &w, &th);
  double bx = p->left + 6, by = p->top + 4;
  cairo_rectangle (cr, bx + 0.5, by + 0.5, w + 10, th + 6);
  set_colour (cr, &c->bg, 0.92);
  cairo_fill_preserve (cr);
  set_colour (cr, &c->fg, 0.25);
  cairo_stroke (cr);
  set_colour (cr, &c->fg, 1.0);
  cairo_move_to (cr, bx + 5, by + 3);
  pango_cairo_show_layout (cr, layout);
}

static void
dl_loss_curve_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  DlLossCurve *self = DL_LOSS_CURVE (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  if (width <= 0 || height <= 0)
    return;
  Colours c;
  lookup_colours (self, &c);
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  Plot p;
  if (!compute_plot (self, width, height, &p))
    {
      set_colour (cr, &c.fg, 0.55);
      draw_text (self, cr, dl_loss_series_is_empty (self->series) ? _ ("No steps yet") : _ ("Too small to draw"),
                 width / 2.0, height / 2.0, 0.5, 0.5);
      cairo_destroy (cr);
      return;
    }
  draw_axes (self, cr, &p, &c);
  cairo_save (cr);
  cairo_rectangle (cr, p.left, p.top - 1, p.right - p.left + 1, p.bottom - p.top + 2);
  cairo_clip (cr);
  draw_steps (self, cr, &p, &c);
  draw_validation (self, cr, &p, &c);
  draw_best (self, cr, &p, &c);
  cairo_restore (cr);
  draw_hover (self, cr, &p, &c);
  cairo_destroy (cr);
}

static void
dl_loss_curve_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum, int *natural,
                       int *minimum_baseline, int *natural_baseline)
{
  gboolean horizontal = orientation == GTK_ORIENTATION_HORIZONTAL;
  *minimum = horizontal ? 160 : 120;
  *natural = horizontal ? 480 : 240;
}

/* ---- accessibility ---- */

static char *
a11y_value (double v)
{
  if (isfinite (v) && v != 0 && fabs (v) < 1e-2)
    return g_strdup_printf ("%.3g", v);
  return g_strdup_printf ("%.3f", v);
}

static char *
describe (DlLossCurve *self)
{
  gsize n = dl_loss_series_get_n_steps (self->series);
  gsize n_val = dl_loss_series_get_n_validations (self->series);
  if (n == 0 && n_val == 0)
    return g_strdup (_ ("No steps yet"));
  /* the parts that apply, joined by ", " */
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  if (n > 0)
    {
      const DlLossPoint *last = &dl_loss_series_get_steps (self->series)[n - 1];
      g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, last->step);
      g_autofree char *loss = a11y_value (last->loss);
      g_autofree char *smoothed = a11y_value (last->smoothed);
      /* Translators: read out for the loss curve: the last step, its loss and the smoothed loss */
      g_ptr_array_add (parts, g_strdup_printf (_ ("Step %s of the run: loss %s, smoothed %s"), step, loss, smoothed));
    }
  if (n_val > 0)
    {
      g_autofree char *val = a11y_value (dl_loss_series_get_validations (self->series)[n_val - 1].loss);
      g_ptr_array_add (parts, g_strdup_printf (n > 0 ? _ ("validation %s") : _ ("Validation %s"), val));
    }
  gint64 best = dl_loss_series_get_best (self->series);
  if (best >= 0)
    {
      g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, best);
      g_ptr_array_add (parts, g_strdup_printf (_ ("best at step %s"), step));
    }
  g_ptr_array_add (parts, NULL);
  return g_strjoinv (", ", (char **)parts->pdata);
}

static void
announce (DlLossCurve *self)
{
  g_autofree char *text = describe (self);
  if (g_strcmp0 (text, self->description) == 0)
    return;
  self->description_time = g_get_monotonic_time ();
  g_free (self->description);
  self->description = g_steal_pointer (&text);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, self->description, -1);
}

static gboolean
announce_timeout (gpointer data)
{
  DlLossCurve *self = data;
  self->description_source = 0;
  announce (self);
  return G_SOURCE_REMOVE;
}

/* After a change: at once if the last announcement is old enough, else once the
 * interval is over (however many changes come meanwhile). */
static void
schedule_announce (DlLossCurve *self)
{
  if (self->description_source)
    return;
  gint64 since_ms = (g_get_monotonic_time () - self->description_time) / 1000;
  if (since_ms >= DESCRIPTION_INTERVAL_MS)
    announce (self);
  else
    self->description_source = g_timeout_add ((guint)(DESCRIPTION_INTERVAL_MS - since_ms), announce_timeout, self);
}

static void
changed (DlLossCurve *self)
{
  gtk_widget_queue_draw (GTK_WIDGET (self));
  schedule_announce (self);
}

/* ---- pointer ---- */

static void
on_motion (GtkEventControllerMotion *motion, double x, double y, DlLossCurve *self)
{
  self->hovering = TRUE;
  self->hover_x = x;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_leave (GtkEventControllerMotion *motion, DlLossCurve *self)
{
  self->hovering = FALSE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

char *
dl_loss_curve_dup_readout (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), NULL);
  Plot p;
  DlLossHover h;
  GtkWidget *widget = GTK_WIDGET (self);
  if (!compute_plot (self, gtk_widget_get_width (widget), gtk_widget_get_height (widget), &p) ||
      !hover_at (self, &p, &h))
    return NULL;
  return dl_loss_hover_format (&h, self->show_lr);
}

const char *
dl_loss_curve_get_description (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), NULL);
  return self->description;
}

/* ---- data ---- */

DlLossSeries *
dl_loss_curve_get_series (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), NULL);
  return self->series;
}

void
dl_loss_curve_add_step (DlLossCurve *self, gint64 step, double loss, double lr)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  dl_loss_series_add_step (self->series, step, loss, lr);
  changed (self);
}

void
dl_loss_curve_add_validation (DlLossCurve *self, gint64 step, double val_loss)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  dl_loss_series_add_validation (self->series, step, val_loss);
  changed (self);
}

void
dl_loss_curve_set_best (DlLossCurve *self, gint64 step)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  dl_loss_series_set_best (self->series, step);
  changed (self);
}

void
dl_loss_curve_clear (DlLossCurve *self)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  dl_loss_series_clear (self->series);
  changed (self);
}

/* ---- properties ---- */

void
dl_loss_curve_set_smoothing (DlLossCurve *self, double smoothing)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  smoothing = CLAMP (smoothing, 0.0, 0.999);
  if (smoothing == self->smoothing)
    return;
  self->smoothing = smoothing;
  dl_loss_series_set_smoothing (self->series, smoothing);
  changed (self);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SMOOTHING]);
}

double
dl_loss_curve_get_smoothing (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), 0);
  return self->smoothing;
}

static void
set_flag (DlLossCurve *self, gboolean *field, gboolean value, int prop)
{
  value = !!value;
  if (*field == value)
    return;
  *field = value;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[prop]);
}

void
dl_loss_curve_set_log_scale (DlLossCurve *self, gboolean log_scale)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  set_flag (self, &self->log_scale, log_scale, PROP_LOG_SCALE);
}

gboolean
dl_loss_curve_get_log_scale (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), FALSE);
  return self->log_scale;
}

void
dl_loss_curve_set_show_lr (DlLossCurve *self, gboolean show_lr)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  set_flag (self, &self->show_lr, show_lr, PROP_SHOW_LR);
}

gboolean
dl_loss_curve_get_show_lr (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), FALSE);
  return self->show_lr;
}

void
dl_loss_curve_set_follow (DlLossCurve *self, gboolean follow)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  set_flag (self, &self->follow, follow, PROP_FOLLOW);
}

gboolean
dl_loss_curve_get_follow (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), FALSE);
  return self->follow;
}

void
dl_loss_curve_set_follow_steps (DlLossCurve *self, int follow_steps)
{
  g_return_if_fail (DL_IS_LOSS_CURVE (self));
  g_return_if_fail (follow_steps >= 1);
  if (follow_steps == self->follow_steps)
    return;
  self->follow_steps = follow_steps;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_FOLLOW_STEPS]);
}

int
dl_loss_curve_get_follow_steps (DlLossCurve *self)
{
  g_return_val_if_fail (DL_IS_LOSS_CURVE (self), 0);
  return self->follow_steps;
}

static void
dl_loss_curve_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DlLossCurve *self = DL_LOSS_CURVE (object);
  switch (prop_id)
    {
    case PROP_SMOOTHING:
      dl_loss_curve_set_smoothing (self, g_value_get_double (value));
      break;
    case PROP_LOG_SCALE:
      dl_loss_curve_set_log_scale (self, g_value_get_boolean (value));
      break;
    case PROP_SHOW_LR:
      dl_loss_curve_set_show_lr (self, g_value_get_boolean (value));
      break;
    case PROP_FOLLOW:
      dl_loss_curve_set_follow (self, g_value_get_boolean (value));
      break;
    case PROP_FOLLOW_STEPS:
      dl_loss_curve_set_follow_steps (self, g_value_get_int (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_loss_curve_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlLossCurve *self = DL_LOSS_CURVE (object);
  switch (prop_id)
    {
    case PROP_SMOOTHING:
      g_value_set_double (value, self->smoothing);
      break;
    case PROP_LOG_SCALE:
      g_value_set_boolean (value, self->log_scale);
      break;
    case PROP_SHOW_LR:
      g_value_set_boolean (value, self->show_lr);
      break;
    case PROP_FOLLOW:
      g_value_set_boolean (value, self->follow);
      break;
    case PROP_FOLLOW_STEPS:
      g_value_set_int (value, self->follow_steps);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_loss_curve_dispose (GObject *object)
{
  DlLossCurve *self = DL_LOSS_CURVE (object);
  g_clear_handle_id (&self->description_source, g_source_remove);
  G_OBJECT_CLASS (dl_loss_curve_parent_class)->dispose (object);
}

static void
dl_loss_curve_finalize (GObject *object)
{
  DlLossCurve *self = DL_LOSS_CURVE (object);
  dl_loss_series_free (self->series);
  g_free (self->description);
  G_OBJECT_CLASS (dl_loss_curve_parent_class)->finalize (object);
}

static void
dl_loss_curve_class_init (DlLossCurveClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->set_property = dl_loss_curve_set_property;
  object_class->get_property = dl_loss_curve_get_property;
  object_class->dispose = dl_loss_curve_dispose;
  object_class->finalize = dl_loss_curve_finalize;
  widget_class->snapshot = dl_loss_curve_snapshot;
  widget_class->measure = dl_loss_curve_measure;

  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  props[PROP_SMOOTHING] = g_param_spec_double ("smoothing", NULL, NULL, 0.0, 0.999, 0.6, flags);
  props[PROP_LOG_SCALE] = g_param_spec_boolean ("log-scale", NULL, NULL, FALSE, flags);
  props[PROP_SHOW_LR] = g_param_spec_boolean ("show-lr", NULL, NULL, FALSE, flags);
  props[PROP_FOLLOW] = g_param_spec_boolean ("follow", NULL, NULL, FALSE, flags);
  props[PROP_FOLLOW_STEPS] = g_param_spec_int ("follow-steps", NULL, NULL, 1, G_MAXINT, 500, flags);
  g_object_class_install_properties (object_class, N_PROPS, props);

  gtk_widget_class_set_css_name (widget_class, "losscurve");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
dl_loss_curve_init (DlLossCurve *self)
{
  self->series = dl_loss_series_new ();
  self->smoothing = 0.6;
  dl_loss_series_set_smoothing (self->series, self->smoothing);
  self->follow_steps = 500;
  self->description_time = G_MININT64 / 2;

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "enter", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);

  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Loss curve"), -1);
  announce (self);
}

GtkWidget *
dl_loss_curve_new (void)
{
  return g_object_new (DL_TYPE_LOSS_CURVE, NULL);
}
