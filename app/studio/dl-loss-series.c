/* dl-loss-series.c: see dl-loss-series.h. */
#include "dl-config.h"

#include "dl-loss-series.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "io/dl-atomic-file.h"

struct _DlLossSeries
{
  GArray *steps; /* DlLossPoint, increasing step */
  GArray *vals;  /* DlLossValidation, increasing step */
  gint64 best;
  double weight;
  /* the moving average so far: its undivided value and how many losses it holds */
  double ema;
  guint64 ema_n;
};

#define STEP_AT(s, i) (&g_array_index ((s)->steps, DlLossPoint, (i)))
#define VAL_AT(s, i) (&g_array_index ((s)->vals, DlLossValidation, (i)))

DlLossSeries *
dl_loss_series_new (void)
{
  DlLossSeries *s = g_new0 (DlLossSeries, 1);
  s->steps = g_array_new (FALSE, FALSE, sizeof (DlLossPoint));
  s->vals = g_array_new (FALSE, FALSE, sizeof (DlLossValidation));
  s->best = -1;
  return s;
}

void
dl_loss_series_free (DlLossSeries *series)
{
  if (!series)
    return;
  g_array_unref (series->steps);
  g_array_unref (series->vals);
  g_free (series);
}

/* ---- smoothing ----
 * The debiased exponential moving average of TensorBoard's scalar charts
 * (tensorboard/components/vz_line_chart2/line-chart.ts, resmoothDataset): the
 * average starts at 0, each finite value x moves it to ema*w + (1-w)*x, and the
 * value shown after n finite values is ema / (1 - w^n), which removes the pull
 * towards the starting 0.  Non-finite values leave the average alone. */

static double
smooth_next (DlLossSeries *s, double loss)
{
  if (!isfinite (loss))
    return NAN;
  s->ema = s->ema * s->weight + (1.0 - s->weight) * loss;
  s->ema_n++;
  return s->ema / (1.0 - pow (s->weight, (double)s->ema_n));
}

static void
resmooth (DlLossSeries *s)
{
  s->ema = 0;
  s->ema_n = 0;
  for (guint i = 0; i < s->steps->len; i++)
    STEP_AT (s, i)->smoothed = smooth_next (s, STEP_AT (s, i)->loss);
}

void
dl_loss_series_set_smoothing (DlLossSeries *series, double weight)
{
  g_return_if_fail (series != NULL);
  g_return_if_fail (weight >= 0.0 && weight < 1.0);
  if (weight == series->weight)
    return;
  series->weight = weight;
  resmooth (series);
}

double
dl_loss_series_get_smoothing (const DlLossSeries *series)
{
  return series->weight;
}

/* ---- searching by step ---- */

/* The first step index with step >= `step` (len if none). */
static guint
steps_lower_bound (const DlLossSeries *s, gint64 step)
{
  guint lo = 0, hi = s->steps->len;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      if (STEP_AT (s, mid)->step < step)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

static guint
vals_lower_bound (const DlLossSeries *s, gint64 step)
{
  guint lo = 0, hi = s->vals->len;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      if (VAL_AT (s, mid)->step < step)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/* ---- adding ---- */

void
dl_loss_series_add_step (DlLossSeries *series, gint64 step, double loss, double lr)
{
  g_return_if_fail (series != NULL);
  guint n = series->steps->len;
  if (n > 0 && step <= STEP_AT (series, n - 1)->step)
    {
      /* the run went back: forget what came after */
      g_array_set_size (series->steps, steps_lower_bound (series, step));
      g_array_set_size (series->vals, vals_lower_bound (series, step));
      if (series->best >= step)
        series->best = -1;
      resmooth (series);
    }
  DlLossPoint p = { step, loss, smooth_next (series, loss), lr };
  g_array_append_val (series->steps, p);
}

void
dl_loss_series_add_validation (DlLossSeries *series, gint64 step, double val_loss)
{
  g_return_if_fail (series != NULL);
  guint n = series->vals->len;
  if (n > 0 && step <= VAL_AT (series, n - 1)->step)
    g_array_set_size (series->vals, vals_lower_bound (series, step));
  DlLossValidation v = { step, val_loss };
  g_array_append_val (series->vals, v);
}

void
dl_loss_series_set_best (DlLossSeries *series, gint64 step)
{
  g_return_if_fail (series != NULL);
  series->best = step < 0 ? -1 : step;
}

gint64
dl_loss_series_get_best (const DlLossSeries *series)
{
  return series->best;
}

void
dl_loss_series_clear (DlLossSeries *series)
{
  g_return_if_fail (series != NULL);
  g_array_set_size (series->steps, 0);
  g_array_set_size (series->vals, 0);
  series->best = -1;
  series->ema = 0;
  series->ema_n = 0;
}

gsize
dl_loss_series_get_n_steps (const DlLossSeries *series)
{
  return series->steps->len;
}

const DlLossPoint *
dl_loss_series_get_steps (const DlLossSeries *series)
{
  return (const DlLossPoint *)series->steps->data;
}

gsize
dl_loss_series_get_n_validations (const DlLossSeries *series)
{
  return series->vals->len;
}

const DlLossValidation *
dl_loss_series_get_validations (const DlLossSeries *series)
{
  return (const DlLossValidation *)series->vals->data;
}

gboolean
dl_loss_series_is_empty (const DlLossSeries *series)
{
  return series->steps->len == 0 && series->vals->len == 0;
}

/* ---- ranges ---- */

gboolean
dl_loss_series_visible_range (const DlLossSeries *series, gint64 follow_steps, gint64 *first, gint64 *last)
{
  g_return_val_if_fail (series != NULL, FALSE);
  const DlLossSeries *s = series;
  if (dl_loss_series_is_empty (s))
    return FALSE;
  gint64 lo = G_MAXINT64, hi = G_MININT64;
  if (s->steps->len > 0)
    {
      lo = STEP_AT (s, 0)->step;
      hi = STEP_AT (s, s->steps->len - 1)->step;
    }
  if (s->vals->len > 0)
    {
      lo = MIN (lo, VAL_AT (s, 0)->step);
      hi = MAX (hi, VAL_AT (s, s->vals->len - 1)->step);
    }
  if (follow_steps > 0 && hi - lo >= follow_steps)
    lo = hi - follow_steps + 1;
  *first = lo;
  *last = hi;
  return TRUE;
}

typedef struct
{
  double lo, hi;
  gboolean log_scale;
  gboolean any;
} Extent;

static void
extent_add (Extent *e, double v)
{
  if (!isfinite (v) || (e->log_scale && v <= 0))
    return;
  if (e->log_scale)
    v = log10 (v);
  e->lo = e->any ? MIN (e->lo, v) : v;
  e->hi = e->any ? MAX (e->hi, v) : v;
  e->any = TRUE;
}

gboolean
dl_loss_series_y_range (const DlLossSeries *series, gint64 first, gint64 last, gboolean log_scale, double *lo,
                        double *hi)
{
  g_return_val_if_fail (series != NULL, FALSE);
  Extent e = { 0, 0, log_scale, FALSE };
  for (guint i = steps_lower_bound (series, first); i < series->steps->len && STEP_AT (series, i)->step <= last; i++)
    {
      extent_add (&e, STEP_AT (series, i)->loss);
      extent_add (&e, STEP_AT (series, i)->smoothed);
    }
  for (guint i = vals_lower_bound (series, first); i < series->vals->len && VAL_AT (series, i)->step <= last; i++)
    extent_add (&e, VAL_AT (series, i)->loss);
  *lo = e.lo;
  *hi = e.hi;
  return e.any;
}

gboolean
dl_loss_series_lr_range (const DlLossSeries *series, gint64 first, gint64 last, double *lo, double *hi)
{
  g_return_val_if_fail (series != NULL, FALSE);
  Extent e = { 0, 0, FALSE, FALSE };
  for (guint i = steps_lower_bound (series, first); i < series->steps->len && STEP_AT (series, i)->step <= last; i++)
    extent_add (&e, STEP_AT (series, i)->lr);
  *lo = e.lo;
  *hi = e.hi;
  return e.any;
}

gsize
dl_loss_series_count_in_range (const DlLossSeries *series, gint64 first, gint64 last)
{
  g_return_val_if_fail (series != NULL, 0);
  if (last < first)
    return 0;
  return steps_lower_bound (series, last == G_MAXINT64 ? last : last + 1) - steps_lower_bound (series, first);
}

/* ---- decimation ---- */

gsize
dl_loss_series_decimate (const DlLossSeries *series, gint64 first, gint64 last, int width, gboolean log_scale,
                         DlLossColumn *out)
{
  g_return_val_if_fail (series != NULL, 0);
  g_return_val_if_fail (out != NULL || width <= 0, 0);
  if (width <= 0 || last < first)
    return 0;
  double span = (double)(last - first);
  gsize n_out = 0;
  DlLossColumn *col = NULL;
  for (guint i = steps_lower_bound (series, first); i < series->steps->len && STEP_AT (series, i)->step <= last; i++)
    {
      const DlLossPoint *p = STEP_AT (series, i);
      int c = span > 0 ? (int)floor ((double)(p->step - first) / span * width) : 0;
      c = CLAMP (c, 0, width - 1);
      if (!col || col->column != c)
        {
          col = &out[n_out++];
          *col = (DlLossColumn){ c, NAN, NAN, NAN, NAN, 0 };
        }
      col->n++;
      if (isfinite (p->loss) && (!log_scale || p->loss > 0))
        {
          col->min = isnan (col->min) ? p->loss : MIN (col->min, p->loss);
          col->max = isnan (col->max) ? p->loss : MAX (col->max, p->loss);
        }
      if (isfinite (p->smoothed))
        col->smoothed = p->smoothed;
      if (isfinite (p->lr))
        col->lr = p->lr;
    }
  return n_out;
}

/* ---- ticks ---- */

int
dl_loss_nice_ticks (double lo, double hi, int max_ticks, gboolean integral, double *out)
{
  g_return_val_if_fail (out != NULL, 0);
  if (!isfinite (lo) || !isfinite (hi) || hi < lo || max_ticks < 1)
    return 0;
  if (hi == lo || max_ticks == 1)
    {
      out[0] = integral ? round (lo) : lo;
      return 1;
    }
  double raw = (hi - lo) / (max_ticks - 1);
  double mag = pow (10.0, floor (log10 (raw)));
  double step = mag * 10;
  static const double factors[] = { 1, 2, 5, 10 };
  for (guint i = 0; i < G_N_ELEMENTS (factors); i++)
    if (mag * factors[i] >= raw * (1 - 1e-9))
      {
        step = mag * factors[i];
        break;
      }
  if (integral)
    step = MAX (1.0, round (step));
  double k0 = ceil (lo / step - 1e-9);
  int n = 0;
  for (; n < max_ticks; n++)
    {
      double v = (k0 + n) * step;
      if (v > hi + step * 1e-9)
        break;
      out[n] = fabs (v) < step * 1e-9 ? 0.0 : v;
    }
  return n;
}

int
dl_loss_log_ticks (double lo, double hi, int max_ticks, double *out)
{
  g_return_val_if_fail (out != NULL, 0);
  if (!isfinite (lo) || !isfinite (hi) || hi < lo || max_ticks < 1)
    return 0;
  if (hi - lo > 2 * max_ticks)
    return dl_loss_nice_ticks (lo, hi, max_ticks, TRUE, out);
  static const double mantissas[] = { 1, 2, 5 };
  int n = 0;
  for (double e = floor (lo); e <= ceil (hi) && n <= max_ticks; e++)
    for (guint k = 0; k < G_N_ELEMENTS (mantissas); k++)
      {
        double t = e + log10 (mantissas[k]);
        if (t >= lo - 1e-9 && t <= hi + 1e-9 && n <= max_ticks)
          {
            if (n < max_ticks)
              out[n] = t;
            n++;
          }
      }
  if (n >= 2 && n <= max_ticks)
    return n;
  if (n > max_ticks)
    return dl_loss_nice_ticks (lo, hi, max_ticks, TRUE, out);
  /* less than a factor of 2: round values of the losses themselves */
  n = dl_loss_nice_ticks (pow (10.0, lo), pow (10.0, hi), max_ticks, FALSE, out);
  for (int i = 0; i < n; i++)
    out[i] = log10 (out[i]);
  return n;
}

/* ---- read-out ---- */

gboolean
dl_loss_series_hover (const DlLossSeries *series, double x, DlLossHover *out)
{
  g_return_val_if_fail (series != NULL, FALSE);
  g_return_val_if_fail (out != NULL, FALSE);
  guint n = series->steps->len;
  if (n == 0)
    return FALSE;
  gint64 key = x >= (double)G_MAXINT64 ? G_MAXINT64 : x <= (double)G_MININT64 ? G_MININT64 : (gint64)ceil (x);
  guint i = steps_lower_bound (series, key);
  if (i == n || (i > 0 && x - STEP_AT (series, i - 1)->step <= STEP_AT (series, i)->step - x))
    i = i > 0 ? i - 1 : 0;
  const DlLossPoint *p = STEP_AT (series, i);
  out->step = p->step;
  out->loss = p->loss;
  out->smoothed = p->smoothed;
  out->lr = p->lr;
  out->validation = NAN;
  out->validation_step = -1;
  guint v = vals_lower_bound (series, p->step == G_MAXINT64 ? p->step : p->step + 1);
  if (v > 0)
    {
      out->validation = VAL_AT (series, v - 1)->loss;
      out->validation_step = VAL_AT (series, v - 1)->step;
    }
  return TRUE;
}

static char *
format_value (double v)
{
  if (isfinite (v) && v != 0 && (fabs (v) < 1e-3 || fabs (v) >= 1e5))
    return g_strdup_printf ("%.3g", v);
  return g_strdup_printf ("%.4f", v);
}

char *
dl_loss_hover_format (const DlLossHover *hover, gboolean with_lr)
{
  g_return_val_if_fail (hover != NULL, NULL);
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, hover->step);
  g_autofree char *loss = format_value (hover->loss);
  g_autofree char *smoothed = format_value (hover->smoothed);
  /* Translators: the parts of the loss curve's hover text, joined by " · ":
   * "Step 120 · loss 0.1234 · smoothed 0.1302 · validation 0.1190 · lr 0.0001" */
  g_ptr_array_add (parts, g_strdup_printf (_ ("Step %s"), step));
  g_ptr_array_add (parts, g_strdup_printf (_ ("loss %s"), loss));
  g_ptr_array_add (parts, g_strdup_printf (_ ("smoothed %s"), smoothed));
  if (!isnan (hover->validation))
    {
      g_autofree char *validation = format_value (hover->validation);
      g_ptr_array_add (parts, g_strdup_printf (_ ("validation %s"), validation));
    }
  if (with_lr && isfinite (hover->lr))
    {
      g_autofree char *lr = g_strdup_printf ("%.3g", hover->lr);
      /* Translators: the learning rate */
      g_ptr_array_add (parts, g_strdup_printf (_ ("lr %s"), lr));
    }
  g_ptr_array_add (parts, NULL);
  return g_strjoinv (" · ", (char **)parts->pdata);
}

/* ---- CSV ---- */

static void
csv_number (GString *s, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (s, g_ascii_formatd (buf, sizeof buf, "%.9g", v));
}

char *
dl_loss_series_to_csv (const DlLossSeries *series)
{
  g_return_val_if_fail (series != NULL, NULL);
  GString *s = g_string_new ("step,loss,smoothed,lr,val_loss\n");
  guint i = 0, j = 0;
  while (i < series->steps->len || j < series->vals->len)
    {
      const DlLossPoint *p = i < series->steps->len ? STEP_AT (series, i) : NULL;
      const DlLossValidation *v = j < series->vals->len ? VAL_AT (series, j) : NULL;
      if (p && (!v || p->step <= v->step))
        {
          g_string_append_printf (s, "%" G_GINT64_FORMAT ",", p->step);
          csv_number (s, p->loss);
          g_string_append_c (s, ',');
          csv_number (s, p->smoothed);
          g_string_append_c (s, ',');
          csv_number (s, p->lr);
          g_string_append_c (s, ',');
          if (v && v->step == p->step)
            {
              csv_number (s, v->loss);
              j++;
            }
          i++;
        }
      else
        {
          g_string_append_printf (s, "%" G_GINT64_FORMAT ",,,,", v->step);
          csv_number (s, v->loss);
          j++;
        }
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

gboolean
dl_loss_series_write_csv (const DlLossSeries *series, const char *path, GError **error)
{
  g_return_val_if_fail (series != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_autofree char *text = dl_loss_series_to_csv (series);
  g_autoptr (DlAtomicFile) f = dl_atomic_file_begin (path, error);
  if (!f)
    return FALSE;
  if (!dl_atomic_file_write (f, text, strlen (text), error))
    return FALSE;
  return dl_atomic_file_commit (g_steal_pointer (&f), error);
}
