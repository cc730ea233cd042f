/* dl-loss-curve.h: the Train page's live loss curve: step losses as faint points,
 * the smoothed loss as a line, validation losses, the best checkpoint and, if
 * asked, the learning rate on a second axis; the values under the pointer in a
 * read-out.  The numbers live in the DlLossSeries it owns. */
#pragma once

#include <gtk/gtk.h>

#include "dl-loss-series.h"

G_BEGIN_DECLS

#define DL_TYPE_LOSS_CURVE (dl_loss_curve_get_type ())
G_DECLARE_FINAL_TYPE (DlLossCurve, dl_loss_curve, DL, LOSS_CURVE, GtkWidget)

GtkWidget *dl_loss_curve_new (void);

/* The widget's series (owned by it).  After changing it directly, call
 * gtk_widget_queue_draw; the wrappers below do that themselves. */
DlLossSeries *dl_loss_curve_get_series (DlLossCurve *self);
void dl_loss_curve_add_step (DlLossCurve *self, gint64 step, double loss, double lr);
void dl_loss_curve_add_validation (DlLossCurve *self, gint64 step, double val_loss);
void dl_loss_curve_set_best (DlLossCurve *self, gint64 step);
void dl_loss_curve_clear (DlLossCurve *self);

/* Properties: "smoothing" (double 0..0.999, default 0.6), "log-scale" (loss axis in
 * log10), "show-lr" (learning rate on a right-hand axis), "follow" (only the last
 * "follow-steps" steps, default 500; else the whole run). */
void dl_loss_curve_set_smoothing (DlLossCurve *self, double smoothing);
double dl_loss_curve_get_smoothing (DlLossCurve *self);
void dl_loss_curve_set_log_scale (DlLossCurve *self, gboolean log_scale);
gboolean dl_loss_curve_get_log_scale (DlLossCurve *self);
void dl_loss_curve_set_show_lr (DlLossCurve *self, gboolean show_lr);
gboolean dl_loss_curve_get_show_lr (DlLossCurve *self);
void dl_loss_curve_set_follow (DlLossCurve *self, gboolean follow);
gboolean dl_loss_curve_get_follow (DlLossCurve *self);
void dl_loss_curve_set_follow_steps (DlLossCurve *self, int follow_steps);
int dl_loss_curve_get_follow_steps (DlLossCurve *self);

/* The read-out shown while the pointer is over the plot (NULL when it is not). */
char *dl_loss_curve_dup_readout (DlLossCurve *self);
/* The accessible description as last announced ("Step 30 of the run: …"). */
const char *dl_loss_curve_get_description (DlLossCurve *self);

G_END_DECLS
