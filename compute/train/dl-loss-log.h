/* dl-loss-log.h: the loss and learning rate of every step of a run, kept in
 * the run folder as `losses.csv` ("step,loss,lr", one line per step), so that
 * a reopened project shows its whole loss curve and a resumed run goes on
 * with it.  Written whole and atomically with run.json at every checkpoint:
 * it holds the steps up to the newest checkpoint (the ones a resumed run
 * keeps).  A step at or before the last one means the run went back (a
 * rollback or a retried step): the entries from that step on are dropped
 * first, as the Train page's curve does. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64 step;
  double loss; /* may be non-finite */
  double lr;
} DlLossEntry;

#define DL_LOSS_LOG_NAME "losses.csv"

/* A new, empty log (GArray of DlLossEntry). */
GArray *dl_loss_log_new (void);
/* Append one step, dropping the entries at or after it first. */
void dl_loss_log_add (GArray *log, gint64 step, double loss, double lr);
/* Drop the entries after `step`. */
void dl_loss_log_truncate (GArray *log, gint64 step);
/* The CSV text. */
char *dl_loss_log_format (const GArray *log);
/* `dir`/losses.csv, atomically. */
gboolean dl_loss_log_write (const GArray *log, const char *dir, GError **error);
/* `dir`/losses.csv: an empty log when the file is missing (a run of an older
 * version); lines that are not "step,loss,lr" (a header, a damaged line) are
 * skipped.  NULL with *error set only when the file exists but cannot be
 * read. */
GArray *dl_loss_log_read (const char *dir, GError **error);

G_END_DECLS
