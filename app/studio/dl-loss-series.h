/* dl-loss-series.h: the numbers behind the Train page's loss curve: the loss and
 * learning rate of each step, validation losses, the best checkpoint, the
 * smoothed loss, and what a plot needs from them (the visible range, the y range,
 * per-pixel-column decimation, the read-out under the pointer, a CSV export).
 * GLib only: no GTK here. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64 step;
  double loss;     /* may be non-finite: kept, but left out of the smoothing */
  double smoothed; /* NaN where the loss is not finite */
  double lr;       /* NaN when unknown */
} DlLossPoint;

typedef struct
{
  gint64 step;
  double loss;
} DlLossValidation;

typedef struct _DlLossSeries DlLossSeries;

DlLossSeries *dl_loss_series_new (void);
void dl_loss_series_free (DlLossSeries *series);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlLossSeries, dl_loss_series_free)

/* Steps come in increasing order.  A step at or before the last one means the run
 * went back (resumed from an earlier checkpoint): the steps, validations and best
 * mark from that step on are dropped first.  The same holds for validations
 * among themselves. */
void dl_loss_series_add_step (DlLossSeries *series, gint64 step, double loss, double lr);
void dl_loss_series_add_validation (DlLossSeries *series, gint64 step, double val_loss);
/* The step of the best checkpoint; -1: none. */
void dl_loss_series_set_best (DlLossSeries *series, gint64 step);
gint64 dl_loss_series_get_best (const DlLossSeries *series);
void dl_loss_series_clear (DlLossSeries *series);

gsize dl_loss_series_get_n_steps (const DlLossSeries *series);
const DlLossPoint *dl_loss_series_get_steps (const DlLossSeries *series);
gsize dl_loss_series_get_n_validations (const DlLossSeries *series);
const DlLossValidation *dl_loss_series_get_validations (const DlLossSeries *series);
gboolean dl_loss_series_is_empty (const DlLossSeries *series);

/* Smoothing weight w in [0, 1) (0: none), as TensorBoard's scalar charts do it: a
 * debiased exponential moving average over the finite losses.  Changing it
 * recomputes every smoothed value; adding a step costs O(1). */
void dl_loss_series_set_smoothing (DlLossSeries *series, double weight);
double dl_loss_series_get_smoothing (const DlLossSeries *series);

/* ---- what a plot needs ---- */

/* The steps on the x axis: all of them (follow_steps <= 0), or only the last
 * `follow_steps` steps before the newest.  FALSE when there is nothing. */
gboolean dl_loss_series_visible_range (const DlLossSeries *series, gint64 follow_steps, gint64 *first, gint64 *last);
/* Lowest and highest of the losses, smoothed losses and validation losses with a
 * step in [first, last].  log_scale: log10 of them, values <= 0 left out.  FALSE
 * when no value qualifies. */
gboolean dl_loss_series_y_range (const DlLossSeries *series, gint64 first, gint64 last, gboolean log_scale, double *lo,
                                 double *hi);
/* The same for the known learning rates (linear). */
gboolean dl_loss_series_lr_range (const DlLossSeries *series, gint64 first, gint64 last, double *lo, double *hi);
/* How many steps lie in [first, last]. */
gsize dl_loss_series_count_in_range (const DlLossSeries *series, gint64 first, gint64 last);

typedef struct
{
  int column;      /* 0 .. width-1 */
  double min, max; /* of the finite losses in the column (with log_scale, the positive ones); NaN if none */
  double smoothed; /* the smoothed loss of the column's last step that has one; NaN if none */
  double lr;       /* the learning rate of the column's last step that has one; NaN if none */
  guint n;         /* steps in the column */
} DlLossColumn;

/* Decimation for drawing: [first, last] spread over `width` pixel columns, one
 * entry per column that holds at least one step, in column order.  `out` has room
 * for `width` entries; returns how many were written (<= width). */
gsize dl_loss_series_decimate (const DlLossSeries *series, gint64 first, gint64 last, int width, gboolean log_scale,
                               DlLossColumn *out);

/* Axis ticks: at most `max_ticks` round values (1, 2 or 5 times a power of ten,
 * and whole numbers when `integral`) inside [lo, hi], ascending.  Returns how many
 * were written to `out`. */
int dl_loss_nice_ticks (double lo, double hi, int max_ticks, gboolean integral, double *out);
/* The same for a log10 axis: lo, hi and the ticks are log10 values, at 1, 2 and 5
 * times powers of ten when at most `max_ticks` of those fit, else at powers of ten
 * (every few when they are many), else (less than a factor 2 apart) at round values. */
int dl_loss_log_ticks (double lo, double hi, int max_ticks, double *out);

/* ---- the read-out under the pointer ---- */

typedef struct
{
  gint64 step;
  double loss, smoothed;
  double validation; /* the last validation at or before `step`; NaN if none */
  gint64 validation_step;
  double lr;
} DlLossHover;

/* The step nearest to `x` (a step value; ties go to the earlier step).  FALSE when
 * there are no steps. */
gboolean dl_loss_series_hover (const DlLossSeries *series, double x, DlLossHover *out);
/* "Step 120 · loss 0.1234 · smoothed 0.1302 · validation 0.1190" (the validation
 * only when there is one; " · lr 0.0001" appended when with_lr and known). */
char *dl_loss_hover_format (const DlLossHover *hover, gboolean with_lr);

/* ---- export ---- */

/* "step,loss,smoothed,lr,val_loss\n" then one row per step in step order; rows of
 * validation-only steps have only step and val_loss; val_loss is empty where there
 * is no validation at that step.  Numbers in the C locale, %.9g (NaN: "nan"). */
char *dl_loss_series_to_csv (const DlLossSeries *series);
/* The same written to `path` atomically. */
gboolean dl_loss_series_write_csv (const DlLossSeries *series, const char *path, GError **error);

G_END_DECLS
